/* model_gguf.c: a model from a GGUF file (llama.cpp's), with its tensors in their stored types.
 *
 * The hyperparameters come from the {arch}.* keys and the tensors by llama.cpp's names (gguf_arch.c maps them to
 * the checkpoint names of llmc's tensor table). Every tensor is used where it lies in the mapped file (Q4_K stays
 * Q4_K), except where llama.cpp's layout differs from llmc's:
 *  - llama's q and k projections: the converter permuted their rows for llama.cpp's RoPE; the rows are put back
 *    (a row is whole blocks, so this is a byte copy for every type);
 *  - GPT-2's Conv1D weights in F32: the file holds them (out, in); llmc keeps F32 ones (in, out) (trainable,
 *    as the checkpoint has them), so they are transposed once; in any other type (out, in) is what llmc stores;
 *  - norms and biases are kept F32 (converted from F16/BF16 when the file stores them so);
 *  - Llama 3's RoPE scaling is a rope_freqs.weight tensor of per-frequency divisors.
 * dtype: after loading as stored, llmc_model_convert applies a recipe (weight_types.c). */
#include <stdio.h>
#include <string.h>

#include "gguf.h"
#include "gguf_arch.h"
#include "model_internal.h"

/* tensor t (checkpoint name t->name) from the GGUF tensor x */
static llmc_status load_one(llmc_model *m, tensor_spec *t, const llmc_gguf_tensor *x, const char *path) {
    const llmc_model_config *c = &m->c;
    const int type = x->type;
    if (!llmc_type_valid(type))
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which llmc does not compute with",
                         path, x->name, llmc_ggml_type_name(type) ? llmc_ggml_type_name(type) : "?");
    /* shape: GGUF ne is (cols, rows) of the stored matrix; llmc's checkpoint shape is (rows, cols) except GPT-2's
     * Conv1D weights, (in, out) in the checkpoint and (out, in) in the file */
    size_t want0 = t->shape[0], want1 = t->ndim == 2 ? t->shape[1] : 1;
    if (t->conv1d) {
        size_t tmp = want0;
        want0 = want1;
        want1 = tmp;
    }
    int ok = t->ndim == 1 ? (x->n_dims == 1 && x->ne[0] == want0)
                          : (x->n_dims == 2 && x->ne[1] == want0 && x->ne[0] == want1);
    if (!ok)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has ne (%llu, %llu), the metadata implies (%zu, %zu)", path,
                         x->name, (unsigned long long)x->ne[0], (unsigned long long)x->ne[1],
                         t->ndim == 1 ? want0 : want1, t->ndim == 1 ? (size_t)1 : want0);
    if (t->ndim == 1) { /* norms and biases: F32 */
        t->type = LLMC_TYPE_F32;
        t->nbytes = t->numel * sizeof(float);
        if (type == LLMC_TYPE_F32 && (uintptr_t)x->data % sizeof(float) == 0) {
            t->data = (void *)x->data;
            t->owned = 0;
            return LLMC_OK;
        }
        if (!(t->data = llmc_malloc(t->nbytes, "model weights"))) return LLMC_ERR_NOMEM;
        t->owned = 1;
        return type == LLMC_TYPE_F32 ? (memcpy(t->data, x->data, t->nbytes), LLMC_OK)
                                     : llmc_dequantize(type, x->data, t->data, 1, t->numel);
    }
    const int permute = (c->arch == LLMC_ARCH_LLAMA || c->arch == LLMC_ARCH_MISTRAL || c->arch == LLMC_ARCH_MIXTRAL) &&
                        (t->role == ROLE_ATTN_Q || t->role == ROLE_ATTN_K);
    const int f32_conv = t->conv1d && type == LLMC_TYPE_F32;
    t->type = type;
    t->transposed = t->conv1d && !f32_conv;
    const size_t rows = tensor_rows(t), cols = tensor_cols(t);
    size_t rb;
    llmc_status st = llmc_type_row_bytes(type, cols, &rb);
    if (st) return st;
    t->nbytes = rows * rb;
    if (!permute && !f32_conv) {
        t->data = (void *)x->data; /* zero-copy: copy-on-write pages of the mapping */
        t->owned = 0;
        return LLMC_OK;
    }
    if (!(t->data = llmc_malloc(t->nbytes ? t->nbytes : 1, "model weights"))) return LLMC_ERR_NOMEM;
    t->owned = 1;
    if (permute) {
        const size_t heads = t->role == ROLE_ATTN_Q ? c->n_heads : c->n_kv_heads;
        llmc_gguf_permute_rows(x->data, t->data, heads, c->head_dim, rb, 1);
        return LLMC_OK;
    }
    // f32_conv: file (out, in) -> t (in, out) = (rows, cols)
    const float *src = (const float *)x->data;
    float *dst = t->data;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            float v;
            memcpy(&v, src + j * rows + i, sizeof v); /* the mapping may not be 4-byte aligned */
            dst[i * cols + j] = v;
        }
    return LLMC_OK;
}

/* Mixtral's expert e of layer l lives in a 3-D tensor blk.l.ffn_{gate,up,down}_exps.weight, ne (cols, rows, E): its
 * matrix is slice e, used where it lies. Returns 0 when t is not an expert matrix. */
static int expert_of(const tensor_spec *t, size_t *layer, size_t *e, const char **which) {
    size_t l, ex;
    int w, n = 0;
    if (sscanf(t->name, "model.layers.%zu.block_sparse_moe.experts.%zu.w%d.weight%n", &l, &ex, &w, &n) != 3 ||
        t->name[n] != '\0' || w < 1 || w > 3)
        return 0;
    *layer = l;
    *e = ex;
    *which = w == 1 ? "gate" : w == 3 ? "up" : "down"; /* w1 gate, w3 up, w2 down */
    return 1;
}

static llmc_status load_expert(llmc_model *m, tensor_spec *t, const llmc_gguf_tensor *x, size_t e, const char *path) {
    const int type = x->type;
    if (!llmc_type_valid(type))
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has type %s, which llmc does not compute with",
                         path, x->name, llmc_ggml_type_name(type) ? llmc_ggml_type_name(type) : "?");
    const size_t rows = t->shape[0], cols = t->shape[1];
    if (x->n_dims != 3 || x->ne[0] != cols || x->ne[1] != rows || x->ne[2] != m->c.n_experts)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has %u dimensions ne (%llu, %llu, %llu), the metadata "
                         "implies (%zu, %zu, %zu)", path, x->name, (unsigned)x->n_dims, (unsigned long long)x->ne[0],
                         (unsigned long long)x->ne[1], x->n_dims > 2 ? (unsigned long long)x->ne[2] : 1ull, cols,
                         rows, m->c.n_experts);
    size_t rb;
    llmc_status st = llmc_type_row_bytes(type, cols, &rb);
    if (st) return st;
    t->type = type;
    t->nbytes = rows * rb;
    t->data = (void *)((const char *)x->data + e * rows * rb); // slice e of (E, rows, cols)
    t->owned = 0;
    return LLMC_OK;
}

llmc_status llmc_model_load_gguf(const char *path, const char *dtype, llmc_progress_fn progress, void *ud,
                                 llmc_model **out) {
    *out = NULL;
    if (dtype && !*dtype) dtype = NULL;
    llmc_status st;
    if (dtype && (st = model_recipe_check(dtype))) return st;
    llmc_gguf *g = NULL;
    if ((st = llmc_gguf_open(path, &g))) return st;
    llmc_model_config c;
    int gelu_tanh = 0;
    if ((st = llmc_gguf_model_config(g, &c, &gelu_tanh))) {
        llmc_gguf_close(g);
        return st;
    }
    if (c.n_layers > llmc_gguf_n_tensors(g)) {
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: %zu layers, but the file holds only %zu tensors", path, c.n_layers,
                       llmc_gguf_n_tensors(g));
        llmc_gguf_close(g);
        return st;
    }
    llmc_model *m = NULL;
    if ((st = model_create(&c, gelu_tanh, c.arch == LLMC_ARCH_GPT2 ? "transformer." : "model.", &m))) {
        llmc_gguf_close(g);
        return st;
    }
    m->gguf = g; /* closed with the model */
    for (size_t i = 0; i < m->n_t && !st; i++) {
        tensor_spec *t = &m->t[i];
        char gname[96];
        size_t el, ee;
        const char *which;
        if (c.n_experts && expert_of(t, &el, &ee, &which)) {
            snprintf(gname, sizeof gname, "blk.%zu.ffn_%s_exps.weight", el, which);
            const llmc_gguf_tensor *x = llmc_gguf_find_tensor(g, gname);
            if (!x) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: missing tensor '%s' (needed by this mixtral model)", path, gname);
                break;
            }
            st = load_expert(m, t, x, ee, path);
            if (progress) progress(ud, i + 1, m->n_t);
            continue;
        }
        if (!llmc_gguf_name_from_hf(c.arch, t->name, gname, sizeof gname)) {
            st = llmc_fail(LLMC_ERR_INTERNAL, "no GGUF name for tensor '%s'", t->name);
            break;
        }
        const llmc_gguf_tensor *x = llmc_gguf_find_tensor(g, gname);
        if (!x) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: missing tensor '%s' (needed by this %s model)", path, gname,
                           c.arch == LLMC_ARCH_GPT2 ? "gpt2" : "llama-family");
            break;
        }
        st = load_one(m, t, x, path);
        if (progress) progress(ud, i + 1, m->n_t);
    }
    /* Llama 3's RoPE scaling: per-frequency divisors, as llama.cpp applies them */
    const llmc_gguf_tensor *rf = st ? NULL : llmc_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf && c.rope_theta > 0) {
        const size_t half = c.head_dim / 2;
        if (rf->n_dims != 1 || rf->ne[0] != half || rf->type != LLMC_TYPE_F32) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: rope_freqs.weight must be F32 of %zu values", path, half);
        } else if (!(m->rope_factors = llmc_malloc(half * sizeof(float), "RoPE factors"))) {
            st = LLMC_ERR_NOMEM;
        } else {
            memcpy(m->rope_factors, rf->data, half * sizeof(float));
            for (size_t i = 0; i < half && !st; i++)
                if (!(m->rope_factors[i] > 0))
                    st = llmc_fail(LLMC_ERR_FORMAT, "%s: rope_freqs.weight[%zu] = %g is not positive", path, i,
                                   (double)m->rope_factors[i]);
        }
    }
    if (st) {
        llmc_model_free(m);
        return st;
    }
    model_finish(m);
    if (dtype && (st = llmc_model_convert(m, dtype, NULL, NULL))) {
        llmc_model_free(m);
        return st;
    }
    *out = m;
    return LLMC_OK;
}
