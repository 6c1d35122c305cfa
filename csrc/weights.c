/* weights.c: the model's tensor table (checkpoint names, shapes, types, where each lives), loading it from
 * safetensors (as stored, or converted to a dtype recipe tensor by tensor), random initialization, in-place
 * conversion, and the tensor views the bindings hand out.
 *
 * A weight is (type, shape, bytes). F32/F16/BF16 checkpoint tensors loaded as stored point straight into the
 * mapped file (copy-on-write pages, so the resident memory is about the file size and nothing is converted);
 * anything converted gets its own allocation. GPT-2's Conv1D weights are (in, out) in the checkpoint and are
 * stored transposed, (out, in), so that every matrix is rows of `in` values: the layout ggml's blocks and
 * llmc_matmul_typed need. Norms and biases are fp32. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "gguf.h"
#include "safetensors.h"

/* ---------------------------------------------------------------- tensor table */
/* Register tensor `name` of shape (d0,) (d1 == 0, vslot) or (d0, d1) (mslot). */
llmc_status model_add_tensor(llmc_model *m, float **vslot, wmat *mslot, int role, int layer, int init, int conv1d,
                             size_t d0, size_t d1, const char *fmt, ...) {
    if (m->n_t == m->cap_t) {
        size_t cap = m->cap_t ? 2 * m->cap_t : 64, bytes;
        if (!llmc_mul_ok(cap, sizeof(tensor_spec), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "tensor table overflows");
        tensor_spec *t = llmc_malloc(bytes, "model tensor table");
        if (!t) return LLMC_ERR_NOMEM;
        if (m->n_t) memcpy(t, m->t, m->n_t * sizeof *t);
        llmc_free(m->t);
        m->t = t;
        m->cap_t = cap;
    }
    tensor_spec *t = &m->t[m->n_t];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    if (!llmc_mul_ok(d0, d1 ? d1 : 1, &t->numel) || !llmc_mul_ok(t->numel, sizeof(float), &(size_t){0}))
        return llmc_fail(LLMC_ERR_NOMEM, "tensor %s: size overflows", t->name);
    t->init = init;
    t->role = role;
    t->layer = layer;
    t->conv1d = conv1d;
    t->type = LLMC_TYPE_F32;
    t->vslot = vslot;
    t->mslot = mslot;
    m->n_t++;
    return LLMC_OK;
}

#define ADD_(...)                                                                                                    \
    do {                                                                                                             \
        llmc_status st_ = model_add_tensor(m, __VA_ARGS__);                                                                 \
        if (st_) return st_;                                                                                         \
    } while (0)
/* a norm weight or bias (d0,) */
#define VEC(slot, init, d0, ...) ADD_(slot, NULL, ROLE_VECTOR, -1, init, 0, d0, 0, __VA_ARGS__)
/* a matrix (d0, d1) stored as it is in the checkpoint */
#define MAT(slot, role, layer, d0, d1, ...) ADD_(NULL, slot, role, layer, INIT_NORMAL, 0, d0, d1, __VA_ARGS__)
/* a GPT-2 Conv1D weight: (in, out) = (d0, d1) in the checkpoint; stored transposed, (out, in), unless F32 */
#define CONV(slot, role, layer, d0, d1, ...) ADD_(NULL, slot, role, layer, INIT_NORMAL, 1, d0, d1, __VA_ARGS__)

/* Every tensor of the architecture, with the checkpoint's names (prefix: "transformer.", "model.", "bert." or ""). */
static llmc_status build_spec(llmc_model *m, const char *pre) {
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model, F = c->d_ff, V = c->vocab, qd = c->n_heads * c->head_dim,
                 kd = c->n_kv_heads * c->head_dim;
    if (c->arch == LLMC_ARCH_GPT2) {
        MAT(&m->wte, ROLE_TOKEN_EMBD, -1, V, D, "%swte.weight", pre);
        MAT(&m->wpe, ROLE_POS_EMBD, -1, c->context_length, D, "%swpe.weight", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            VEC(&L->ln1_w, INIT_ONES, D, "%sh.%zu.ln_1.weight", pre, l);
            VEC(&L->ln1_b, INIT_ZEROS, D, "%sh.%zu.ln_1.bias", pre, l);
            CONV(&L->wqkv, ROLE_ATTN_QKV, (int)l, D, 3 * D, "%sh.%zu.attn.c_attn.weight", pre, l);
            VEC(&L->bqkv, INIT_ZEROS, 3 * D, "%sh.%zu.attn.c_attn.bias", pre, l);
            CONV(&L->wo, ROLE_ATTN_OUT, (int)l, D, D, "%sh.%zu.attn.c_proj.weight", pre, l);
            VEC(&L->bo, INIT_ZEROS, D, "%sh.%zu.attn.c_proj.bias", pre, l);
            VEC(&L->ln2_w, INIT_ONES, D, "%sh.%zu.ln_2.weight", pre, l);
            VEC(&L->ln2_b, INIT_ZEROS, D, "%sh.%zu.ln_2.bias", pre, l);
            CONV(&L->w_fc, ROLE_FFN_UP, (int)l, D, F, "%sh.%zu.mlp.c_fc.weight", pre, l);
            VEC(&L->b_fc, INIT_ZEROS, F, "%sh.%zu.mlp.c_fc.bias", pre, l);
            CONV(&L->w_proj, ROLE_FFN_DOWN, (int)l, F, D, "%sh.%zu.mlp.c_proj.weight", pre, l);
            VEC(&L->b_proj, INIT_ZEROS, D, "%sh.%zu.mlp.c_proj.bias", pre, l);
        }
        VEC(&m->norm_w, INIT_ONES, D, "%sln_f.weight", pre);
        VEC(&m->norm_b, INIT_ZEROS, D, "%sln_f.bias", pre);
    } else if (c->arch == LLMC_ARCH_BERT) {
        MAT(&m->wte, ROLE_TOKEN_EMBD, -1, V, D, "%sembeddings.word_embeddings.weight", pre);
        MAT(&m->wpe, ROLE_POS_EMBD, -1, c->context_length, D, "%sembeddings.position_embeddings.weight", pre);
        MAT(&m->wtt, ROLE_TOKEN_TYPES, -1, c->type_vocab, D, "%sembeddings.token_type_embeddings.weight", pre);
        VEC(&m->emb_ln_w, INIT_ONES, D, "%sembeddings.LayerNorm.weight", pre);
        VEC(&m->emb_ln_b, INIT_ZEROS, D, "%sembeddings.LayerNorm.bias", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            const char *e = "encoder.layer";
            MAT(&L->wq, ROLE_ATTN_Q, (int)l, D, D, "%s%s.%zu.attention.self.query.weight", pre, e, l);
            VEC(&L->bq, INIT_ZEROS, D, "%s%s.%zu.attention.self.query.bias", pre, e, l);
            MAT(&L->wk, ROLE_ATTN_K, (int)l, D, D, "%s%s.%zu.attention.self.key.weight", pre, e, l);
            VEC(&L->bk, INIT_ZEROS, D, "%s%s.%zu.attention.self.key.bias", pre, e, l);
            MAT(&L->wv, ROLE_ATTN_V, (int)l, D, D, "%s%s.%zu.attention.self.value.weight", pre, e, l);
            VEC(&L->bv, INIT_ZEROS, D, "%s%s.%zu.attention.self.value.bias", pre, e, l);
            MAT(&L->wo, ROLE_ATTN_OUT, (int)l, D, D, "%s%s.%zu.attention.output.dense.weight", pre, e, l);
            VEC(&L->bo, INIT_ZEROS, D, "%s%s.%zu.attention.output.dense.bias", pre, e, l);
            VEC(&L->ln1_w, INIT_ONES, D, "%s%s.%zu.attention.output.LayerNorm.weight", pre, e, l);
            VEC(&L->ln1_b, INIT_ZEROS, D, "%s%s.%zu.attention.output.LayerNorm.bias", pre, e, l);
            MAT(&L->w_fc, ROLE_FFN_UP, (int)l, F, D, "%s%s.%zu.intermediate.dense.weight", pre, e, l);
            VEC(&L->b_fc, INIT_ZEROS, F, "%s%s.%zu.intermediate.dense.bias", pre, e, l);
            MAT(&L->w_proj, ROLE_FFN_DOWN, (int)l, D, F, "%s%s.%zu.output.dense.weight", pre, e, l);
            VEC(&L->b_proj, INIT_ZEROS, D, "%s%s.%zu.output.dense.bias", pre, e, l);
            VEC(&L->ln2_w, INIT_ONES, D, "%s%s.%zu.output.LayerNorm.weight", pre, e, l);
            VEC(&L->ln2_b, INIT_ZEROS, D, "%s%s.%zu.output.LayerNorm.bias", pre, e, l);
        }
    } else {
        const int qkv_bias = c->arch == LLMC_ARCH_QWEN2 || c->qkv_bias;
        MAT(&m->wte, ROLE_TOKEN_EMBD, -1, V, D, "%sembed_tokens.weight", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            VEC(&L->ln1_w, INIT_ONES, D, "%slayers.%zu.input_layernorm.weight", pre, l);
            MAT(&L->wq, ROLE_ATTN_Q, (int)l, qd, D, "%slayers.%zu.self_attn.q_proj.weight", pre, l);
            MAT(&L->wk, ROLE_ATTN_K, (int)l, kd, D, "%slayers.%zu.self_attn.k_proj.weight", pre, l);
            MAT(&L->wv, ROLE_ATTN_V, (int)l, kd, D, "%slayers.%zu.self_attn.v_proj.weight", pre, l);
            if (qkv_bias) {
                VEC(&L->bq, INIT_ZEROS, qd, "%slayers.%zu.self_attn.q_proj.bias", pre, l);
                VEC(&L->bk, INIT_ZEROS, kd, "%slayers.%zu.self_attn.k_proj.bias", pre, l);
                VEC(&L->bv, INIT_ZEROS, kd, "%slayers.%zu.self_attn.v_proj.bias", pre, l);
            }
            if (c->arch == LLMC_ARCH_QWEN3 || c->arch == LLMC_ARCH_QWEN3_MOE || c->qk_norm_full) {
                /* qwen3: one (hd,) norm for every head; olmoe: over the whole projection */
                VEC(&L->q_norm, INIT_ONES, c->qk_norm_full ? qd : c->head_dim, "%slayers.%zu.self_attn.q_norm.weight",
                    pre, l);
                VEC(&L->k_norm, INIT_ONES, c->qk_norm_full ? kd : c->head_dim, "%slayers.%zu.self_attn.k_norm.weight",
                    pre, l);
            }
            MAT(&L->wo, ROLE_ATTN_OUT, (int)l, D, qd, "%slayers.%zu.self_attn.o_proj.weight", pre, l);
            VEC(&L->ln2_w, INIT_ONES, D, "%slayers.%zu.post_attention_layernorm.weight", pre, l);
            if (llmc_layer_is_moe(c, l)) {
                llmc_status st_ = moe_build_spec(m, pre, l);
                if (st_) return st_;
                continue;
            }
            MAT(&L->w_gate, ROLE_FFN_GATE, (int)l, F, D, "%slayers.%zu.mlp.gate_proj.weight", pre, l);
            MAT(&L->w_up, ROLE_FFN_UP, (int)l, F, D, "%slayers.%zu.mlp.up_proj.weight", pre, l);
            MAT(&L->w_down, ROLE_FFN_DOWN, (int)l, D, F, "%slayers.%zu.mlp.down_proj.weight", pre, l);
        }
        VEC(&m->norm_w, INIT_ONES, D, "%snorm.weight", pre);
        if (!c->tied_embeddings) MAT(&m->lm_head_own, ROLE_OUTPUT, -1, V, D, "lm_head.weight");
    }
    return LLMC_OK;
}

/* RoPE inverse frequencies (hd/2,), in float32 like transformers, with llama3's frequency-dependent scaling */
static void rope_init(llmc_model *m) {
    const llmc_model_config *c = &m->c;
    const llmc_rope_scaling s = {c->rope_llama3, c->rope_factor, c->rope_low_freq_factor, c->rope_high_freq_factor,
                                 c->rope_original_context};
    llmc_rope_inv_freq(c->rope_theta, c->head_dim, &s, m->rope_factors, m->inv_freq);
}

/* The model's tables and tensor list from its config; the weights themselves come with model_alloc, so a checkpoint
 * can be checked against the list before anything config-sized is allocated. */
llmc_status model_create(const llmc_model_config *c, int gelu_tanh, const char *pre, llmc_model **out) {
    llmc_model *m = llmc_calloc(1, sizeof *m, "model");
    if (!m) return LLMC_ERR_NOMEM;
    m->c = *c;
    m->gelu_tanh = gelu_tanh;
    llmc_status st = LLMC_OK;
    if (!(m->L = llmc_calloc(c->n_layers, sizeof(layer_weights), "layer table")) ||
        !(m->inv_freq = llmc_calloc(c->head_dim / 2 + 1, sizeof(float), "RoPE frequencies")))
        st = LLMC_ERR_NOMEM;
    if (!st) st = build_spec(m, pre);
    if (st) {
        llmc_model_free(m);
        return st;
    }
    *out = m;
    return LLMC_OK;
}


/* Make the model's slots see tensor t's current type and bytes. */
static void publish(tensor_spec *t) {
    if (t->vslot) *t->vslot = (float *)t->data;
    if (t->mslot) {
        t->mslot->type = t->type;
        t->mslot->data = t->data;
        t->mslot->in_out = t->conv1d && !t->transposed;
    }
}

/* After every tensor is in place: the lm_head view and RoPE. */
void model_finish(llmc_model *m) {
    const llmc_model_config *c = &m->c;
    for (size_t i = 0; i < m->n_t; i++) publish(&m->t[i]);
    memset(&m->lm_head, 0, sizeof m->lm_head);
    if (c->has_lm_head) m->lm_head = c->tied_embeddings ? m->wte : m->lm_head_own;
    if (c->rope_theta > 0) rope_init(m);
}

static void release_data(tensor_spec *t) {
    if (t->owned) llmc_free(t->data);
    t->data = NULL;
    t->owned = 0;
}

void llmc_model_free(llmc_model *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_t; i++) release_data(&m->t[i]);
    if (m->sf) llmc_st_close(m->sf);
    if (m->gguf) llmc_gguf_close(m->gguf);
    llmc_free(m->rope_factors);
    llmc_free(m->t);
    moe_free(m);
    llmc_free(m->L);
    llmc_free(m->inv_freq);
    llmc_free(m);
}

const llmc_model_config *llmc_model_get_config(const llmc_model *m) { return &m->c; }
size_t llmc_model_n_tensors(const llmc_model *m) { return m->n_t; }
const char *llmc_model_dtype(const llmc_model *m) { return m->dtype; }

llmc_status llmc_model_tensor(const llmc_model *m, size_t i, const char **name, int *ndim, size_t shape[2],
                              float **data) {
    if (i >= m->n_t) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, m->n_t);
    const tensor_spec *t = &m->t[i];
    if (t->type != LLMC_TYPE_F32 || t->transposed)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "tensor '%s' is stored as %s%s, not as an fp32 array of its checkpoint "
                         "shape (use llmc_model_tensor_typed)", t->name, llmc_type_name(t->type),
                         t->transposed ? " (transposed)" : "");
    *name = t->name;
    *ndim = t->ndim;
    shape[0] = t->shape[0];
    shape[1] = t->shape[1];
    *data = t->data;
    return LLMC_OK;
}

llmc_status llmc_model_tensor_typed(const llmc_model *m, size_t i, llmc_tensor_view *v) {
    if (i >= m->n_t) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, m->n_t);
    const tensor_spec *t = &m->t[i];
    v->name = t->name;
    v->ndim = t->ndim;
    v->shape[0] = t->shape[0];
    v->shape[1] = t->shape[1];
    v->type = t->type;
    v->transposed = t->transposed;
    v->rows = tensor_rows(t);
    v->cols = tensor_cols(t);
    v->data = t->data;
    v->nbytes = t->nbytes;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- conversion */
/* rows of about this many fp32 values go through the conversion buffer at a time */
#define CONVERT_CHUNK ((size_t)1 << 20)

/* dst: (rows, cols) of dst_type from src. transpose = 0: src is (rows, cols) of src_type. transpose = 1: src is
 * (cols, rows) of src_type (a GPT-2 Conv1D weight as the checkpoint holds it), transposed on the way.
 * Memory: an fp32 buffer of about CONVERT_CHUNK values, plus the whole tensor in fp32 when transposing. */
static llmc_status convert_rows(int src_type, const void *src, int transpose, int dst_type, void *dst, size_t rows,
                                size_t cols) {
    size_t src_rb, dst_rb;
    llmc_status st;
    if ((st = llmc_type_row_bytes(src_type, transpose ? rows : cols, &src_rb)) ||
        (st = llmc_type_row_bytes(dst_type, cols, &dst_rb)))
        return st;
    if (!transpose && src_type == dst_type) { /* same bytes */
        memcpy(dst, src, rows * dst_rb);
        return LLMC_OK;
    }
    float *full = NULL;
    if (transpose) { /* the whole (cols, rows) source in fp32, then rows of the transpose are gathered from it */
        if (!(full = llmc_malloc(rows * cols * sizeof(float), "fp32 copy of a tensor to transpose"))) return LLMC_ERR_NOMEM;
        if (src_type == LLMC_TYPE_F32) memcpy(full, src, rows * cols * sizeof(float));
        else if ((st = llmc_dequantize(src_type, src, full, cols, rows))) goto done;
    }
    size_t chunk = CONVERT_CHUNK / (cols ? cols : 1);
    if (chunk < 1) chunk = 1;
    if (chunk > rows) chunk = rows;
    float *buf = llmc_malloc(chunk * cols * sizeof(float), "conversion buffer");
    if (!buf) {
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    for (size_t r0 = 0; r0 < rows && !st; r0 += chunk) {
        const size_t n = rows - r0 < chunk ? rows - r0 : chunk;
        if (transpose) {
            // buf (n, cols) = full^T rows r0 .. r0+n-1, full: (cols, rows)
            for (size_t r = 0; r < n; r++)
                for (size_t c = 0; c < cols; c++) buf[r * cols + c] = full[c * rows + r0 + r];
        } else if (src_type == LLMC_TYPE_F32) {
            memcpy(buf, (const char *)src + r0 * src_rb, n * cols * sizeof(float)); /* src may be unaligned */
        } else if ((st = llmc_dequantize(src_type, (const char *)src + r0 * src_rb, buf, n, cols))) {
            break;
        }
        if (dst_type == LLMC_TYPE_F32) memcpy((char *)dst + r0 * dst_rb, buf, n * cols * sizeof(float));
        else st = llmc_quantize(dst_type, buf, (char *)dst + r0 * dst_rb, n, cols);
    }
    llmc_free(buf);
done:
    llmc_free(full);
    return st;
}

/* the llmc type of a safetensors dtype, or -1 */
static int st_type(int dtype) {
    return dtype == LLMC_DT_F32 ? LLMC_TYPE_F32 : dtype == LLMC_DT_F16 ? LLMC_TYPE_F16
           : dtype == LLMC_DT_BF16 ? LLMC_TYPE_BF16 : -1;
}

/* Give tensor t the type `type` from the checkpoint tensor x: a pointer into the mapping when the bytes can be
 * used as they are (*mapped = 1), else a converted copy. */
static llmc_status load_tensor(tensor_spec *t, const llmc_st_tensor *x, int type, int *mapped) {
    const int src = st_type(x->dtype);
    *mapped = 0;
    if (src < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; llmc reads F32, F16 and BF16", x->file,
                         x->name, x->dtype_name);
    t->transposed = t->conv1d && type != LLMC_TYPE_F32;
    const size_t rows = tensor_rows(t), cols = tensor_cols(t);
    size_t rb;
    llmc_status st = llmc_type_row_bytes(type, cols, &rb);
    if (st) return llmc_fail(st, "tensor '%s': rows of %zu values are not a whole number of %s blocks of %zu values",
                             t->name, cols, llmc_type_name(type), llmc_type_block_size(type));
    t->type = type;
    t->nbytes = rows * rb;
    if (src == type && !t->transposed && (uintptr_t)x->data % llmc_type_block_bytes(type) == 0) {
        t->data = (void *)x->data; /* the mapping is copy-on-write: writes through state_dict stay private */
        t->owned = 0;
        *mapped = 1;
        return LLMC_OK;
    }
    if (!(t->data = llmc_malloc(t->nbytes ? t->nbytes : 1, "model weights"))) return LLMC_ERR_NOMEM;
    t->owned = 1;
    return convert_rows(src, x->data, t->transposed, type, t->data, rows, cols);
}

/* ---------------------------------------------------------------- loading */
llmc_status llmc_model_load(const char *dir, llmc_model **out) { return llmc_model_load_as(dir, NULL, NULL, NULL, out); }

/* Find which name prefix the checkpoint uses, from its token embedding. */
static const char *detect_prefix(const llmc_st *st, int arch) {
    static const char *const gpt2[] = {"transformer.", ""}, *const llama[] = {"model.", ""},
                             *const bert[] = {"", "bert."};
    const char *const *cand = arch == LLMC_ARCH_GPT2 ? gpt2 : arch == LLMC_ARCH_BERT ? bert : llama;
    const char *emb = arch == LLMC_ARCH_GPT2 ? "wte.weight"
                      : arch == LLMC_ARCH_BERT ? "embeddings.word_embeddings.weight"
                                               : "embed_tokens.weight";
    for (int i = 0; i < 2; i++) {
        char name[NAME_MAX_LEN];
        snprintf(name, sizeof name, "%s%s", cand[i], emb);
        if (llmc_st_find(st, name)) return cand[i];
    }
    return cand[0];
}

llmc_status llmc_model_load_as(const char *dir, const char *dtype, llmc_progress_fn progress, void *ud,
                               llmc_model **out) {
    *out = NULL;
    if (dtype && !*dtype) dtype = NULL;
    llmc_status st;
    if (dtype && (st = model_recipe_check(dtype))) return st;
    char cpath[4096];
    llmc_json_doc *doc = NULL;
    if ((st = model_read_config(dir, &doc, cpath, sizeof cpath))) return st;
    llmc_model_config c;
    int gelu_tanh = 0;
    st = model_parse_config(llmc_json_root(doc), cpath, &c, &gelu_tanh);
    llmc_json_free(doc);
    if (st) return st;
    llmc_st *sf = NULL;
    if ((st = llmc_st_open_dir(dir, &sf))) return st;
    if (c.n_layers > llmc_st_count(sf)) { /* cheap sanity check before building a per-layer table */
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: %zu layers, but the checkpoint holds only %zu tensors", cpath, c.n_layers,
                       llmc_st_count(sf));
        llmc_st_close(sf);
        return st;
    }
    llmc_model *m = NULL;
    if ((st = model_create(&c, gelu_tanh, detect_prefix(sf, c.arch), &m))) {
        llmc_st_close(sf);
        return st;
    }
    m->sf = sf; /* freed with the model from here on */
    /* every tensor present with the shape the config implies, and its type decided, before anything is converted */
    int *types = llmc_malloc(m->n_t * sizeof(int) + 1, "tensor types");
    if (!types) st = LLMC_ERR_NOMEM;
    for (size_t i = 0; i < m->n_t && !st; i++) {
        tensor_spec *t = &m->t[i];
        const llmc_st_tensor *x = llmc_st_find(sf, t->name);
        if (!x) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: missing tensor '%s' (needed by this %s config)", dir, t->name,
                           c.arch == LLMC_ARCH_GPT2 ? "gpt2" : c.arch == LLMC_ARCH_BERT ? "bert"
                           : c.n_experts ? "mixture-of-experts" : "llama-family");
            break;
        }
        int shape_ok = x->ndim == t->ndim && x->shape[0] == t->shape[0] && (t->ndim == 1 || x->shape[1] == t->shape[1]);
        if (!shape_ok) {
            char got[96] = "(", want[64];
            for (int k = 0; k < x->ndim && strlen(got) < 64; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", k ? ", " : "", x->shape[k]);
            strcat(got, ")");
            if (t->ndim == 1) snprintf(want, sizeof want, "(%zu,)", t->shape[0]);
            else snprintf(want, sizeof want, "(%zu, %zu)", t->shape[0], t->shape[1]);
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has shape %s, the config implies %s", x->file, t->name,
                           got, want);
            break;
        }
        if (dtype) st = model_recipe_type(m, dtype, t, &types[i]);
        else if (t->ndim == 1 || t->role == ROLE_POS_EMBD || t->role == ROLE_TOKEN_TYPES) types[i] = LLMC_TYPE_F32;
        else if ((types[i] = st_type(x->dtype)) < 0)
            st = llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; llmc reads F32, F16 and BF16", x->file,
                           x->name, x->dtype_name);
    }
    /* one tensor at a time: at most one tensor's conversion buffers are alive besides the result */
    int any_mapped = 0;
    for (size_t i = 0; i < m->n_t && !st; i++) {
        const llmc_st_tensor *x = llmc_st_find(sf, m->t[i].name);
        int mapped = 0;
        if ((st = load_tensor(&m->t[i], x, types[i], &mapped))) break;
        if (mapped) any_mapped = 1;
        else llmc_st_release(x); /* converted: its file pages leave the resident set */
        if (progress) progress(ud, i + 1, m->n_t);
    }
    llmc_free(types);
    if (st) {
        llmc_model_free(m);
        return st;
    }
    if (!any_mapped) {
        llmc_st_close(sf);
        m->sf = NULL;
    }
    if (dtype) snprintf(m->dtype, sizeof m->dtype, "%s", dtype);
    model_finish(m);
    *out = m;
    return LLMC_OK;
}

llmc_status llmc_model_init(const char *config_json, size_t len, uint64_t seed, llmc_model **out) {
    *out = NULL;
    llmc_json_doc *doc = NULL;
    llmc_status st = llmc_json_parse(config_json, len, "config", &doc);
    if (st) return st;
    llmc_model_config c;
    int gelu_tanh = 0;
    st = model_parse_config(llmc_json_root(doc), "config", &c, &gelu_tanh);
    llmc_json_free(doc);
    if (st) return st;
    const char *pre = c.arch == LLMC_ARCH_GPT2 ? "transformer." : c.arch == LLMC_ARCH_BERT ? "" : "model.";
    llmc_model *m;
    if ((st = model_create(&c, gelu_tanh, pre, &m))) return st;
    uint64_t s = seed;
    for (size_t i = 0; i < m->n_t; i++) {
        tensor_spec *t = &m->t[i];
        t->type = LLMC_TYPE_F32;
        t->nbytes = t->numel * sizeof(float);
        if (!(t->data = llmc_malloc(t->nbytes ? t->nbytes : 1, "model weights (fp32)"))) {
            llmc_model_free(m);
            return LLMC_ERR_NOMEM;
        }
        t->owned = 1;
        float *w = t->data;
        for (size_t j = 0; j < t->numel; j++) {
            float v;
            if (t->init == INIT_ONES) v = 1.0f;
            else if (t->init == INIT_ZEROS) v = 0.0f;
            else {
                v = (float)(0.02 * llmc_rand_normal(&s));
            }
            w[j] = v;
        }
    }
    model_finish(m);
    *out = m;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- converting a loaded model */
llmc_status llmc_model_convert(llmc_model *m, const char *dtype, llmc_progress_fn progress, void *ud) {
    llmc_status st = model_recipe_check(dtype);
    if (st) return st;
    /* decide every type first: an error leaves the model as it was */
    int *types = llmc_malloc(m->n_t * sizeof(int) + 1, "tensor types");
    if (!types) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < m->n_t && !st; i++) st = model_recipe_type(m, dtype, &m->t[i], &types[i]);
    for (size_t i = 0; i < m->n_t && !st; i++) {
        tensor_spec *t = &m->t[i];
        if (types[i] != t->type) {
            /* the new orientation: a Conv1D weight flips between (in, out) (F32) and (out, in) (other types) */
            tensor_spec nt = *t;
            nt.type = types[i];
            nt.transposed = t->conv1d && types[i] != LLMC_TYPE_F32;
            const size_t rows = tensor_rows(&nt), cols = tensor_cols(&nt);
            size_t rb;
            void *dst = NULL;
            if ((st = llmc_type_row_bytes(types[i], cols, &rb))) break;
            if (!(dst = llmc_malloc(rows * rb > 0 ? rows * rb : 1, "model weights"))) {
                st = LLMC_ERR_NOMEM;
                break;
            }
            /* a quantized source is dequantized and requantized (the errors add up, like llama.cpp's
             * --allow-requantize) */
            if ((st = convert_rows(t->type, t->data, nt.transposed != t->transposed, types[i], dst, rows, cols))) {
                llmc_free(dst);
                break;
            }
            release_data(t);
            t->data = dst;
            t->owned = 1;
            t->type = types[i];
            t->transposed = nt.transposed;
            t->nbytes = rows * rb;
            publish(t);
        }
        if (progress) progress(ud, i + 1, m->n_t);
    }
    llmc_free(types);
    int any_mapped = 0;
    for (size_t i = 0; i < m->n_t; i++) any_mapped |= !m->t[i].owned;
    if (!any_mapped && m->sf) {
        llmc_st_close(m->sf);
        m->sf = NULL;
    }
    if (!any_mapped && m->gguf) {
        llmc_gguf_close(m->gguf);
        m->gguf = NULL;
    }
    model_finish(m);
    if (!st) snprintf(m->dtype, sizeof m->dtype, "%s", dtype);
    return st;
}
