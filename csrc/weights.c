/* weights.c: the model's tensor table (checkpoint names, shapes, where each lives), loading it from safetensors,
 * random initialization, and the tensor views the bindings hand out. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"
#include "safetensors.h"

/* ---------------------------------------------------------------- tensor table */
static llmc_status add_tensor(llmc_model *m, float **slot, int init, int optional, size_t d0, size_t d1,
                              const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Register tensor `name` of shape (d0,) (d1 == 0) or (d0, d1). Offsets are rounded to 16 floats (64 bytes). */
static llmc_status add_tensor(llmc_model *m, float **slot, int init, int optional, size_t d0, size_t d1,
                              const char *fmt, ...) {
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
    if (!llmc_mul_ok(d0, d1 ? d1 : 1, &t->numel)) return llmc_fail(LLMC_ERR_NOMEM, "tensor %s: size overflows", t->name);
    t->init = init;
    t->optional = optional;
    t->slot = slot;
    t->offset = m->block_floats;
    size_t end;
    if (!llmc_add_ok(m->block_floats, t->numel, &end) || !llmc_add_ok(end, 15, &end))
        return llmc_fail(LLMC_ERR_NOMEM, "model weights size overflows");
    m->block_floats = end / 16 * 16;
    m->n_t++;
    return LLMC_OK;
}

#define ADD(slot, init, d0, d1, ...)                                                                                 \
    do {                                                                                                             \
        llmc_status st_ = add_tensor(m, slot, init, 0, d0, d1, __VA_ARGS__);                                          \
        if (st_) return st_;                                                                                         \
    } while (0)

/* Every tensor of the architecture, with the checkpoint's names (prefix: "transformer.", "model.", "bert." or ""). */
static llmc_status build_spec(llmc_model *m, const char *pre) {
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model, F = c->d_ff, V = c->vocab, qd = c->n_heads * c->head_dim,
                 kd = c->n_kv_heads * c->head_dim;
    if (c->arch == LLMC_ARCH_GPT2) {
        ADD(&m->wte, INIT_NORMAL, V, D, "%swte.weight", pre);
        ADD(&m->wpe, INIT_NORMAL, c->context_length, D, "%swpe.weight", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            ADD(&L->ln1_w, INIT_ONES, D, 0, "%sh.%zu.ln_1.weight", pre, l);
            ADD(&L->ln1_b, INIT_ZEROS, D, 0, "%sh.%zu.ln_1.bias", pre, l);
            ADD(&L->wqkv, INIT_NORMAL, D, 3 * D, "%sh.%zu.attn.c_attn.weight", pre, l);
            ADD(&L->bqkv, INIT_ZEROS, 3 * D, 0, "%sh.%zu.attn.c_attn.bias", pre, l);
            ADD(&L->wo, INIT_NORMAL, D, D, "%sh.%zu.attn.c_proj.weight", pre, l);
            ADD(&L->bo, INIT_ZEROS, D, 0, "%sh.%zu.attn.c_proj.bias", pre, l);
            ADD(&L->ln2_w, INIT_ONES, D, 0, "%sh.%zu.ln_2.weight", pre, l);
            ADD(&L->ln2_b, INIT_ZEROS, D, 0, "%sh.%zu.ln_2.bias", pre, l);
            ADD(&L->w_fc, INIT_NORMAL, D, F, "%sh.%zu.mlp.c_fc.weight", pre, l);
            ADD(&L->b_fc, INIT_ZEROS, F, 0, "%sh.%zu.mlp.c_fc.bias", pre, l);
            ADD(&L->w_proj, INIT_NORMAL, F, D, "%sh.%zu.mlp.c_proj.weight", pre, l);
            ADD(&L->b_proj, INIT_ZEROS, D, 0, "%sh.%zu.mlp.c_proj.bias", pre, l);
        }
        ADD(&m->norm_w, INIT_ONES, D, 0, "%sln_f.weight", pre);
        ADD(&m->norm_b, INIT_ZEROS, D, 0, "%sln_f.bias", pre);
    } else if (c->arch == LLMC_ARCH_BERT) {
        ADD(&m->wte, INIT_NORMAL, V, D, "%sembeddings.word_embeddings.weight", pre);
        ADD(&m->wpe, INIT_NORMAL, c->context_length, D, "%sembeddings.position_embeddings.weight", pre);
        ADD(&m->wtt, INIT_NORMAL, c->type_vocab, D, "%sembeddings.token_type_embeddings.weight", pre);
        ADD(&m->emb_ln_w, INIT_ONES, D, 0, "%sembeddings.LayerNorm.weight", pre);
        ADD(&m->emb_ln_b, INIT_ZEROS, D, 0, "%sembeddings.LayerNorm.bias", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            const char *e = "encoder.layer";
            ADD(&L->wq, INIT_NORMAL, D, D, "%s%s.%zu.attention.self.query.weight", pre, e, l);
            ADD(&L->bq, INIT_ZEROS, D, 0, "%s%s.%zu.attention.self.query.bias", pre, e, l);
            ADD(&L->wk, INIT_NORMAL, D, D, "%s%s.%zu.attention.self.key.weight", pre, e, l);
            ADD(&L->bk, INIT_ZEROS, D, 0, "%s%s.%zu.attention.self.key.bias", pre, e, l);
            ADD(&L->wv, INIT_NORMAL, D, D, "%s%s.%zu.attention.self.value.weight", pre, e, l);
            ADD(&L->bv, INIT_ZEROS, D, 0, "%s%s.%zu.attention.self.value.bias", pre, e, l);
            ADD(&L->wo, INIT_NORMAL, D, D, "%s%s.%zu.attention.output.dense.weight", pre, e, l);
            ADD(&L->bo, INIT_ZEROS, D, 0, "%s%s.%zu.attention.output.dense.bias", pre, e, l);
            ADD(&L->ln1_w, INIT_ONES, D, 0, "%s%s.%zu.attention.output.LayerNorm.weight", pre, e, l);
            ADD(&L->ln1_b, INIT_ZEROS, D, 0, "%s%s.%zu.attention.output.LayerNorm.bias", pre, e, l);
            ADD(&L->w_fc, INIT_NORMAL, F, D, "%s%s.%zu.intermediate.dense.weight", pre, e, l);
            ADD(&L->b_fc, INIT_ZEROS, F, 0, "%s%s.%zu.intermediate.dense.bias", pre, e, l);
            ADD(&L->w_proj, INIT_NORMAL, D, F, "%s%s.%zu.output.dense.weight", pre, e, l);
            ADD(&L->b_proj, INIT_ZEROS, D, 0, "%s%s.%zu.output.dense.bias", pre, e, l);
            ADD(&L->ln2_w, INIT_ONES, D, 0, "%s%s.%zu.output.LayerNorm.weight", pre, e, l);
            ADD(&L->ln2_b, INIT_ZEROS, D, 0, "%s%s.%zu.output.LayerNorm.bias", pre, e, l);
        }
    } else {
        const int qkv_bias = c->arch == LLMC_ARCH_QWEN2;
        ADD(&m->wte, INIT_NORMAL, V, D, "%sembed_tokens.weight", pre);
        for (size_t l = 0; l < c->n_layers; l++) {
            layer_weights *L = &m->L[l];
            ADD(&L->ln1_w, INIT_ONES, D, 0, "%slayers.%zu.input_layernorm.weight", pre, l);
            ADD(&L->wq, INIT_NORMAL, qd, D, "%slayers.%zu.self_attn.q_proj.weight", pre, l);
            ADD(&L->wk, INIT_NORMAL, kd, D, "%slayers.%zu.self_attn.k_proj.weight", pre, l);
            ADD(&L->wv, INIT_NORMAL, kd, D, "%slayers.%zu.self_attn.v_proj.weight", pre, l);
            if (qkv_bias) {
                ADD(&L->bq, INIT_ZEROS, qd, 0, "%slayers.%zu.self_attn.q_proj.bias", pre, l);
                ADD(&L->bk, INIT_ZEROS, kd, 0, "%slayers.%zu.self_attn.k_proj.bias", pre, l);
                ADD(&L->bv, INIT_ZEROS, kd, 0, "%slayers.%zu.self_attn.v_proj.bias", pre, l);
            }
            if (c->arch == LLMC_ARCH_QWEN3) {
                ADD(&L->q_norm, INIT_ONES, c->head_dim, 0, "%slayers.%zu.self_attn.q_norm.weight", pre, l);
                ADD(&L->k_norm, INIT_ONES, c->head_dim, 0, "%slayers.%zu.self_attn.k_norm.weight", pre, l);
            }
            ADD(&L->wo, INIT_NORMAL, D, qd, "%slayers.%zu.self_attn.o_proj.weight", pre, l);
            ADD(&L->ln2_w, INIT_ONES, D, 0, "%slayers.%zu.post_attention_layernorm.weight", pre, l);
            ADD(&L->w_gate, INIT_NORMAL, F, D, "%slayers.%zu.mlp.gate_proj.weight", pre, l);
            ADD(&L->w_up, INIT_NORMAL, F, D, "%slayers.%zu.mlp.up_proj.weight", pre, l);
            ADD(&L->w_down, INIT_NORMAL, D, F, "%slayers.%zu.mlp.down_proj.weight", pre, l);
        }
        ADD(&m->norm_w, INIT_ONES, D, 0, "%snorm.weight", pre);
        if (!c->tied_embeddings) ADD(&m->lm_head_own, INIT_NORMAL, V, D, "lm_head.weight");
    }
    return LLMC_OK;
}

/* RoPE inverse frequencies (hd/2,), in float32 like transformers, with llama3's frequency-dependent scaling */
static void rope_init(llmc_model *m) {
    const llmc_model_config *c = &m->c;
    const size_t half = c->head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (c->rope_llama3) {
            /* wavelengths longer than the original context / low_freq_factor are slowed down by `factor`, shorter
             * than original / high_freq_factor are kept, and the band between is interpolated smoothly */
            const float orig = (float)c->rope_original_context;
            const float low_wl = orig / c->rope_low_freq_factor, high_wl = orig / c->rope_high_freq_factor;
            const float wl = 2.0f * (float)M_PI / f;
            if (wl > low_wl) {
                f = f / c->rope_factor;
            } else if (wl >= high_wl) {
                float smooth = (orig / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1.0f - smooth) * f / c->rope_factor + smooth * f;
            }
        }
        m->inv_freq[i] = f;
    }
}

/* The model's tables and tensor list from its config; the weights themselves come with model_alloc, so a checkpoint
 * can be checked against the list before anything config-sized is allocated. */
static llmc_status model_create(const llmc_model_config *c, int gelu_tanh, const char *pre, llmc_model **out) {
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

/* One fp32 allocation for every weight; point the layer tables into it. */
static llmc_status model_alloc(llmc_model *m) {
    const llmc_model_config *c = &m->c;
    size_t bytes;
    if (!llmc_mul_ok(m->block_floats, sizeof(float), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "weights overflow");
    if (!(m->block = llmc_malloc(bytes ? bytes : 1, "model weights (fp32)"))) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < m->n_t; i++) *m->t[i].slot = m->block + m->t[i].offset;
    m->lm_head = c->has_lm_head ? (c->tied_embeddings ? m->wte : m->lm_head_own) : NULL;
    if (c->rope_theta > 0) rope_init(m);
    return LLMC_OK;
}

void llmc_model_free(llmc_model *m) {
    if (!m) return;
    llmc_free(m->block);
    llmc_free(m->t);
    llmc_free(m->L);
    llmc_free(m->inv_freq);
    llmc_free(m);
}

const llmc_model_config *llmc_model_get_config(const llmc_model *m) { return &m->c; }
size_t llmc_model_n_tensors(const llmc_model *m) { return m->n_t; }

llmc_status llmc_model_tensor(const llmc_model *m, size_t i, const char **name, int *ndim, size_t shape[2],
                              float **data) {
    if (i >= m->n_t) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, m->n_t);
    *name = m->t[i].name;
    *ndim = m->t[i].ndim;
    shape[0] = m->t[i].shape[0];
    shape[1] = m->t[i].shape[1];
    *data = m->block + m->t[i].offset;
    return LLMC_OK;
}


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

llmc_status llmc_model_load(const char *dir, llmc_model **out) {
    *out = NULL;
    char cpath[4096];
    llmc_json_doc *doc = NULL;
    llmc_status st = model_read_config(dir, &doc, cpath, sizeof cpath);
    if (st) return st;
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
    /* every tensor present with the shape the config implies, before the weights are allocated */
    for (size_t i = 0; i < m->n_t && !st; i++) {
        tensor_spec *t = &m->t[i];
        const llmc_st_tensor *x = llmc_st_find(sf, t->name);
        if (!x) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: missing tensor '%s' (needed by this %s config)", dir, t->name,
                           c.arch == LLMC_ARCH_GPT2 ? "gpt2" : c.arch == LLMC_ARCH_BERT ? "bert" : "llama-family");
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
        }
    }
    if (!st) st = model_alloc(m);
    for (size_t i = 0; i < m->n_t && !st; i++) {
        const llmc_st_tensor *x = llmc_st_find(sf, m->t[i].name);
        if ((st = llmc_st_to_f32(x, m->block + m->t[i].offset))) break;
        llmc_st_release(x); /* the mapped bytes leave the resident set: only the fp32 copy stays */
    }
    llmc_st_close(sf);
    if (st) {
        llmc_model_free(m);
        return st;
    }
    *out = m;
    return LLMC_OK;
}

/* splitmix64 + Box-Muller: deterministic normal samples for random models */
static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
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
    if ((st = model_alloc(m))) {
        llmc_model_free(m);
        return st;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < m->n_t; i++) {
        tensor_spec *t = &m->t[i];
        float *w = m->block + t->offset;
        for (size_t j = 0; j < t->numel; j++) {
            if (t->init == INIT_ONES) w[j] = 1.0f;
            else if (t->init == INIT_ZEROS) w[j] = 0.0f;
            else {
                /* two uniforms in (0, 1] -> one standard normal */
                double u1 = ((double)(splitmix(&s) >> 11) + 1.0) / 9007199254740993.0;
                double u2 = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
                w[j] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
            }
        }
    }
    *out = m;
    return LLMC_OK;
}
