/* model.c: Hugging Face transformer checkpoints in the C core: config, weights, one function per block type,
 * a KV-cached session with a sliding context window, and sentence embeddings.
 *
 * Layout conventions (shapes in comments): D = d_model, H = query heads, Hk = key/value heads, hd = head_dim,
 * F = d_ff, V = vocab, T = tokens in this call, cap = session capacity, n = tokens already cached.
 * Activations are token-major (T, D); attention works head-major: q (H, T, hd), cache k/v (Hk, cap, hd).
 * All weights live in one fp32 allocation; all activations of a session in one scratch allocation (grown only when
 * a longer chunk than ever before arrives, so decoding one token at a time never allocates). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "internal.h"
#include "json.h"
#include "safetensors.h"

#define NAME_MAX_LEN 128
#define MAX_TENSORS_PER_LAYER 24

/* ---------------------------------------------------------------- weights */
typedef struct {
    float *ln1_w, *ln1_b;          /* (D,): llama input_layernorm / gpt2 ln_1 / bert attention.output.LayerNorm */
    float *wq, *wk, *wv, *wo;      /* llama/bert: (H*hd, D), (Hk*hd, D), (Hk*hd, D), (D, H*hd) stored (out, in) */
    float *bq, *bk, *bv, *bo;      /* biases or NULL */
    float *wqkv, *bqkv;            /* gpt2 c_attn: (D, 3D) stored (in, out), bias (3D,) */
    float *q_norm, *k_norm;        /* qwen3: (hd,) */
    float *ln2_w, *ln2_b;          /* (D,) */
    float *w_gate, *w_up, *w_down; /* llama: (F, D), (F, D), (D, F) */
    float *w_fc, *b_fc, *w_proj, *b_proj; /* gpt2 (in, out): (D, F), (F,), (F, D), (D,); bert (out, in) */
} layer_weights;

typedef struct {
    char name[NAME_MAX_LEN];
    int ndim;
    size_t shape[2];
    size_t offset; /* floats from the start of the weight block */
    size_t numel;
    int init;      /* INIT_* for random models */
    int optional;  /* absent in the checkpoint is fine (then zero) */
    float **slot;  /* where the model keeps a pointer to it */
} tensor_spec;

enum { INIT_NORMAL = 0, INIT_ONES = 1, INIT_ZEROS = 2 };

struct llmc_model {
    llmc_model_config c;
    float *block; /* every weight, fp32 */
    size_t block_floats;
    tensor_spec *t;
    size_t n_t, cap_t;
    layer_weights *L;
    float *wte, *wpe, *wtt;     /* token (V, D), position (ctx, D), token-type (types, D) embeddings */
    float *emb_ln_w, *emb_ln_b; /* bert embeddings.LayerNorm */
    float *norm_w, *norm_b;     /* final norm (decoders) */
    float *lm_head;             /* (V, D) */
    float *lm_head_own;         /* untied lm_head tensor (NULL when tied) */
    float *inv_freq;            /* RoPE (hd/2,) */
    int gelu_tanh;              /* gpt2 / bert activation */
};

/* ---------------------------------------------------------------- config */
typedef struct {
    const llmc_json *root;
    const char *file;
} cfg_src;

static llmc_status cfg_missing(const cfg_src *s, const char *key) {
    return llmc_fail(LLMC_ERR_FORMAT, "%s: missing field '%s'", s->file, key);
}

/* integer field >= min; absent -> def (or an error when required) */
static llmc_status cfg_size(const cfg_src *s, const char *key, int required, size_t def, size_t min, size_t *out) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        if (required) return cfg_missing(s, key);
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_NUMBER || !v->is_integer || v->integer < (int64_t)min || v->integer > ((int64_t)1 << 40))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be an integer >= %zu", s->file, key, min);
    *out = (size_t)v->integer;
    return LLMC_OK;
}

static llmc_status cfg_num_in(const cfg_src *s, const llmc_json *obj, const char *key, int required, double def,
                              double *out) {
    const llmc_json *v = llmc_json_get(obj, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        if (required) return cfg_missing(s, key);
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_NUMBER || !isfinite(v->number))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be a number", s->file, key);
    *out = v->number;
    return LLMC_OK;
}

static llmc_status cfg_bool(const cfg_src *s, const char *key, int def, int *out) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_BOOL) return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be true or false", s->file, key);
    *out = v->boolean;
    return LLMC_OK;
}

/* a string field, "" when absent */
static const char *cfg_str(const cfg_src *s, const llmc_json *obj, const char *key) {
    const llmc_json *v = llmc_json_get(obj, key);
    (void)s;
    return llmc_json_is(v, LLMC_JSON_STRING) ? v->str : "";
}

static int arch_from_name(const char *mt) {
    static const struct { const char *name; int arch; } map[] = {
        {"gpt2", LLMC_ARCH_GPT2}, {"llama", LLMC_ARCH_LLAMA}, {"mistral", LLMC_ARCH_MISTRAL},
        {"qwen2", LLMC_ARCH_QWEN2}, {"qwen3", LLMC_ARCH_QWEN3}, {"bert", LLMC_ARCH_BERT},
        /* architectures[0] spellings */
        {"GPT2LMHeadModel", LLMC_ARCH_GPT2}, {"GPT2Model", LLMC_ARCH_GPT2}, {"LlamaForCausalLM", LLMC_ARCH_LLAMA},
        {"MistralForCausalLM", LLMC_ARCH_MISTRAL}, {"Qwen2ForCausalLM", LLMC_ARCH_QWEN2},
        {"Qwen3ForCausalLM", LLMC_ARCH_QWEN3}, {"BertModel", LLMC_ARCH_BERT}, {"BertForMaskedLM", LLMC_ARCH_BERT},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(mt, map[i].name)) return map[i].arch;
    return -1;
}

/* rope_theta and rope scaling: transformers 5 writes them in "rope_parameters", older files as top-level
 * "rope_theta" and "rope_scaling". */
static llmc_status cfg_rope(const cfg_src *s, llmc_model_config *c) {
    const llmc_json *rp = llmc_json_get(s->root, "rope_parameters");
    const llmc_json *sc = llmc_json_get(s->root, "rope_scaling");
    double theta = 10000.0;
    llmc_status st;
    if (llmc_json_is(rp, LLMC_JSON_OBJECT)) {
        if ((st = cfg_num_in(s, rp, "rope_theta", 0, 10000.0, &theta))) return st;
        if (!llmc_json_is(sc, LLMC_JSON_OBJECT)) sc = rp;
    } else if ((st = cfg_num_in(s, s->root, "rope_theta", 0, 10000.0, &theta))) {
        return st;
    }
    if (!(theta > 0)) return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'rope_theta' must be > 0", s->file);
    c->rope_theta = (float)theta;
    if (llmc_json_is(sc, LLMC_JSON_OBJECT)) {
        const char *type = cfg_str(s, sc, "rope_type");
        if (!*type) type = cfg_str(s, sc, "type");
        if (!strcmp(type, "llama3")) {
            double f = 0, lo = 0, hi = 0, orig = 0;
            if ((st = cfg_num_in(s, sc, "factor", 1, 0, &f)) || (st = cfg_num_in(s, sc, "low_freq_factor", 1, 0, &lo)) ||
                (st = cfg_num_in(s, sc, "high_freq_factor", 1, 0, &hi)) ||
                (st = cfg_num_in(s, sc, "original_max_position_embeddings", 1, 0, &orig)))
                return st;
            if (!(f > 0) || !(lo > 0) || !(hi > lo) || !(orig >= 1))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: rope_scaling llama3 needs factor > 0 and high_freq_factor > "
                                                  "low_freq_factor > 0", s->file);
            c->rope_llama3 = 1;
            c->rope_factor = (float)f;
            c->rope_low_freq_factor = (float)lo;
            c->rope_high_freq_factor = (float)hi;
            c->rope_original_context = (size_t)orig;
        } else if (*type && strcmp(type, "default")) {
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'rope_scaling' of type '%s' is not supported (only llama3)",
                             s->file, type);
        }
    }
    return LLMC_OK;
}

static llmc_status parse_config(const llmc_json *root, const char *file, llmc_model_config *c, int *gelu_tanh) {
    cfg_src S = {root, file}, *s = &S;
    memset(c, 0, sizeof *c);
    if (!llmc_json_is(root, LLMC_JSON_OBJECT)) return llmc_fail(LLMC_ERR_FORMAT, "%s: must be a JSON object", file);
    const char *mt = cfg_str(s, root, "model_type");
    int arch = *mt ? arch_from_name(mt) : -1;
    const llmc_json *archs = llmc_json_get(root, "architectures");
    if (!*mt) {
        if (llmc_json_is(archs, LLMC_JSON_ARRAY) && archs->len && llmc_json_is(&archs->items[0], LLMC_JSON_STRING)) {
            mt = archs->items[0].str;
            arch = arch_from_name(mt);
        } else {
            return llmc_fail(LLMC_ERR_FORMAT, "%s: missing field 'model_type' (and no 'architectures')", file);
        }
    }
    if (arch < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED,
                         "%s: model_type '%s' is not supported (supported: gpt2, llama, mistral, qwen2, qwen3, bert)",
                         file, mt);
    c->arch = arch;
    llmc_status st;
    if (arch == LLMC_ARCH_GPT2) {
        if ((st = cfg_size(s, "vocab_size", 1, 0, 1, &c->vocab)) || (st = cfg_size(s, "n_embd", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "n_layer", 1, 0, 1, &c->n_layers)) || (st = cfg_size(s, "n_head", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "n_positions", 1, 0, 1, &c->context_length)) ||
            (st = cfg_size(s, "n_inner", 0, 4 * c->d_model, 1, &c->d_ff)))
            return st;
        double eps = 0;
        if ((st = cfg_num_in(s, root, "layer_norm_epsilon", 0, 1e-5, &eps))) return st;
        c->norm_eps = (float)eps;
        const char *act = cfg_str(s, root, "activation_function");
        if (*act && strcmp(act, "gelu_new") && strcmp(act, "gelu_pytorch_tanh"))
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'activation_function' = '%s' is not supported (gelu_new)",
                             file, act);
        *gelu_tanh = 1;
        int by_idx = 0;
        if ((st = cfg_bool(s, "scale_attn_by_inverse_layer_idx", 0, &by_idx))) return st;
        if (by_idx)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'scale_attn_by_inverse_layer_idx' = true is not supported",
                             file);
        c->n_kv_heads = c->n_heads;
        c->tied_embeddings = 1;
        c->causal = c->has_lm_head = 1;
    } else if (arch == LLMC_ARCH_BERT) {
        if ((st = cfg_size(s, "vocab_size", 1, 0, 1, &c->vocab)) ||
            (st = cfg_size(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "num_hidden_layers", 1, 0, 1, &c->n_layers)) ||
            (st = cfg_size(s, "num_attention_heads", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "intermediate_size", 1, 0, 1, &c->d_ff)) ||
            (st = cfg_size(s, "max_position_embeddings", 1, 0, 1, &c->context_length)) ||
            (st = cfg_size(s, "type_vocab_size", 0, 2, 1, &c->type_vocab)))
            return st;
        double eps = 0;
        if ((st = cfg_num_in(s, root, "layer_norm_eps", 0, 1e-12, &eps))) return st;
        c->norm_eps = (float)eps;
        const char *act = cfg_str(s, root, "hidden_act");
        if (!*act || !strcmp(act, "gelu")) *gelu_tanh = 0;
        else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) *gelu_tanh = 1;
        else return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (gelu)", file, act);
        const char *pe = cfg_str(s, root, "position_embedding_type");
        if (*pe && strcmp(pe, "absolute"))
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'position_embedding_type' = '%s' is not supported "
                                                   "(absolute)", file, pe);
        c->n_kv_heads = c->n_heads;
    } else { /* llama family */
        if ((st = cfg_size(s, "vocab_size", 1, 0, 1, &c->vocab)) ||
            (st = cfg_size(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "num_hidden_layers", 1, 0, 1, &c->n_layers)) ||
            (st = cfg_size(s, "num_attention_heads", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "num_key_value_heads", 0, c->n_heads, 1, &c->n_kv_heads)) ||
            (st = cfg_size(s, "intermediate_size", 1, 0, 1, &c->d_ff)) ||
            (st = cfg_size(s, "max_position_embeddings", 1, 0, 1, &c->context_length)))
            return st;
        double eps = 0;
        if ((st = cfg_num_in(s, root, "rms_norm_eps", 0, 1e-6, &eps))) return st;
        c->norm_eps = (float)eps;
        const char *act = cfg_str(s, root, "hidden_act");
        if (*act && strcmp(act, "silu"))
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (silu)", file, act);
        if ((st = cfg_bool(s, "tie_word_embeddings", 0, &c->tied_embeddings)) || (st = cfg_rope(s, c))) return st;
        int mlp_bias = 0;
        if ((st = cfg_bool(s, "mlp_bias", 0, &mlp_bias))) return st;
        if (mlp_bias) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'mlp_bias' = true is not supported", file);
        if (arch == LLMC_ARCH_MISTRAL && (st = cfg_size(s, "sliding_window", 0, 0, 1, &c->sliding_window))) return st;
        if (arch == LLMC_ARCH_QWEN2) {
            int sw = 0;
            if ((st = cfg_bool(s, "use_sliding_window", 0, &sw))) return st;
            if (sw) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'use_sliding_window' = true is not supported for "
                                                           "qwen2", file);
        }
        c->causal = c->has_lm_head = 1;
    }
    if (arch != LLMC_ARCH_GPT2 && arch != LLMC_ARCH_BERT) {
        if ((st = cfg_size(s, "head_dim", 0, c->d_model / c->n_heads, 2, &c->head_dim))) return st;
        if (c->head_dim % 2) return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'head_dim' must be even for RoPE", file);
    } else {
        if (c->d_model % c->n_heads)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: hidden size %zu is not divisible by the %zu heads", file, c->d_model,
                             c->n_heads);
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->n_heads % c->n_kv_heads)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'num_attention_heads' (%zu) must be a multiple of "
                                          "'num_key_value_heads' (%zu)", file, c->n_heads, c->n_kv_heads);
    return LLMC_OK;
}

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

/* ---------------------------------------------------------------- loading */
static llmc_status read_config(const char *dir, llmc_json_doc **doc, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/config.json", dir);
    FILE *fp = fopen(path, "rb");
    if (!fp) return llmc_fail(LLMC_ERR_NOT_FOUND, "%s: cannot open (a checkpoint folder needs config.json)", path);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    llmc_status st = LLMC_OK;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            if (ncap > ((size_t)64 << 20)) {
                st = llmc_fail(LLMC_ERR_FORMAT, "%s: larger than 64 MiB, not a config", path);
                break;
            }
            char *nb = llmc_malloc(ncap, "config.json");
            if (!nb) {
                st = LLMC_ERR_NOMEM;
                break;
            }
            if (len) memcpy(nb, buf, len);
            llmc_free(buf);
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) break;
    }
    fclose(fp);
    if (!st) st = llmc_json_parse(buf, len, path, doc);
    llmc_free(buf);
    return st;
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
    llmc_status st = read_config(dir, &doc, cpath, sizeof cpath);
    if (st) return st;
    llmc_model_config c;
    int gelu_tanh = 0;
    st = parse_config(llmc_json_root(doc), cpath, &c, &gelu_tanh);
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
    st = parse_config(llmc_json_root(doc), "config", &c, &gelu_tanh);
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

/* ---------------------------------------------------------------- building blocks */
/* y = beta * y + x @ W^T with W stored (out, in) (trans = 1), or x @ W with W stored (in, out) (trans = 0).
 * x: (T, in), y: (T, out). One token (decoding) is a matrix-vector product: sgemv streams W once, where sgemm
 * would pack it first (both split over llmc's threads, see threads.c). */
static llmc_status matmul_w(const float *x, const float *w, float *y, size_t T, size_t in, size_t out, int trans,
                            float beta) {
    if (T != 1) return llmc_sgemm(0, trans, T, out, in, 1.0f, x, in, w, trans ? in : out, beta, y, out);
    if (trans) /* y (out,) = W (out, in) @ x */
        return llmc_sgemv(0, out, in, 1.0f, w, in, x, beta, y);
    return llmc_sgemv(1, in, out, 1.0f, w, out, x, beta, y); /* y (out,) = W^T @ x with W (in, out) */
}

/* y = x @ W^T + b with W stored (out, in) (trans = 1), or y = x @ W + b with W stored (in, out) (trans = 0).
 * x: (T, in), y: (T, out), b: (out,) or NULL */
static llmc_status linear(const float *x, const float *w, const float *b, float *y, size_t T, size_t in, size_t out,
                          int trans) {
    if (b)
        for (size_t t = 0; t < T; t++) memcpy(y + t * out, b, out * sizeof(float)); /* beta = 1 adds x @ W onto b */
    return matmul_w(x, w, y, T, in, out, trans, b ? 1.0f : 0.0f);
}

/* Rotate each head vector of x: (T, nh, hd) in place by its token's angles; cs, sn: (T, hd/2) (rotate-half). */
static void rope_rows(float *x, size_t T, size_t nh, size_t hd, const float *cs, const float *sn) {
    const size_t half = hd / 2;
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < nh; h++) {
            float *v = x + (t * nh + h) * hd;
            const float *c = cs + t * half, *s = sn + t * half;
            for (size_t i = 0; i < half; i++) {
                /* pair (i, i + hd/2) rotates by the angle: (a cos - b sin, a sin + b cos) */
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = a * s[i] + b * c[i];
            }
        }
}

/* cs, sn: (T, hd/2) for positions pos0 .. pos0 + T - 1; angle = position * inv_freq in float32 like transformers */
static void rope_table(const llmc_model *m, size_t pos0, size_t T, float *cs, float *sn) {
    const size_t half = m->c.head_dim / 2;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < half; i++) {
            float a = (float)(pos0 + t) * m->inv_freq[i];
            cs[t * half + i] = cosf(a);
            sn[t * half + i] = sinf(a);
        }
}

/* (T, nh, hd) -> (nh, rows, hd) at row offset r0 (rows = the destination's row count per head) */
static void to_heads(const float *x, float *dst, size_t T, size_t nh, size_t hd, size_t rows, size_t r0) {
    for (size_t h = 0; h < nh; h++)
        for (size_t t = 0; t < T; t++) memcpy(dst + (h * rows + r0 + t) * hd, x + (t * nh + h) * hd, hd * sizeof(float));
}

/* (nh, T, hd) -> (T, nh * hd) */
static void from_heads(const float *x, float *dst, size_t T, size_t nh, size_t hd) {
    for (size_t h = 0; h < nh; h++)
        for (size_t t = 0; t < T; t++) memcpy(dst + (t * nh + h) * hd, x + (h * T + t) * hd, hd * sizeof(float));
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* ---------------------------------------------------------------- session: cache + scratch */
struct llmc_session {
    const llmc_model *m;
    size_t cap, n;       /* capacity and tokens cached */
    int overflow, attn;
    size_t keep_first;
    float *kv;           /* (n_layers, 2, Hk, cap, hd): keys then values of each layer */
    int64_t *tokens;     /* (cap,) the tokens in the cache */
    float *scratch;      /* activations for up to scratch_T tokens */
    size_t scratch_T;
    int64_t *tmp_ids;    /* (cap,) for re-encoding a slid window */
};

/* activation buffers of one forward call, carved from the session scratch */
typedef struct {
    float *x, *h, *q, *k, *v, *qh, *ah, *a, *f1, *f2, *cs, *sn;
} acts;

/* Lay the activation buffers of T tokens out from base (each 64-byte aligned); returns the floats needed, 0 on
 * overflow. base == NULL only measures. */
static size_t carve(const llmc_model_config *c, float *base, size_t T, acts *a) {
    const size_t D = c->d_model, qd = c->n_heads * c->head_dim, kd = c->n_kv_heads * c->head_dim, F = c->d_ff;
    size_t off = 0, n;
    int ok = 1;
#define TAKE(field, width)                                                                                           \
    do {                                                                                                             \
        a->field = base ? base + off : NULL;                                                                         \
        ok = ok && llmc_mul_ok((width), T, &n) && llmc_add_ok(n, 15, &n) && llmc_add_ok(off, n / 16 * 16, &off);     \
    } while (0)
    TAKE(x, D);                       // x: (T, D) the residual stream
    TAKE(h, D);                       // h: (T, D) normed input of a sublayer / sublayer output
    TAKE(q, qd > 3 * D ? qd : 3 * D); // q: (T, H*hd); gpt2 keeps q, k, v together here: (T, 3D)
    TAKE(k, kd);                      // k, v: (T, Hk*hd)
    TAKE(v, kd);
    TAKE(qh, qd);                     // qh: (H, T, hd) queries head-major
    TAKE(ah, qd);                     // ah: (H, T, hd) attention output head-major
    TAKE(a, qd);                      // a: (T, H*hd) attention output token-major
    TAKE(f1, F);                      // f1, f2: (T, F) MLP hidden
    TAKE(f2, F);
    TAKE(cs, c->head_dim / 2);        // cs, sn: (T, hd/2) RoPE cos / sin
    TAKE(sn, c->head_dim / 2);
#undef TAKE
    return ok ? off : 0;
}

static llmc_status ensure_scratch(llmc_session *s, size_t T) {
    if (T <= s->scratch_T) return LLMC_OK;
    acts probe;
    size_t n = carve(&s->m->c, NULL, T, &probe), bytes;
    if (!n || !llmc_mul_ok(n, sizeof(float), &bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "activation buffer for %zu tokens overflows", T);
    float *p = llmc_malloc(bytes, "activations");
    if (!p) return LLMC_ERR_NOMEM;
    llmc_free(s->scratch);
    s->scratch = p;
    s->scratch_T = T;
    return LLMC_OK;
}

static float *cache_k(const llmc_session *s, size_t l) {
    const llmc_model_config *c = &s->m->c;
    return s->kv + l * 2 * c->n_kv_heads * s->cap * c->head_dim;
}
static float *cache_v(const llmc_session *s, size_t l) {
    const llmc_model_config *c = &s->m->c;
    return cache_k(s, l) + c->n_kv_heads * s->cap * c->head_dim;
}

/* ---------------------------------------------------------------- attention */
/* q: (H, T, hd) for positions n .. n+T-1; k, v: (Hk, cap, hd) holding the first Tk = n + T positions;
 * out: (H, T, hd); probs: (H, T, Tk) or NULL. Causal queries see keys up to their own position (and no further
 * back than the sliding window); BERT sees all Tk keys. */
static llmc_status attend(const llmc_session *s, const float *q, const float *k, const float *v, size_t T, size_t Tk,
                          float *out, float *probs) {
    const llmc_model_config *c = &s->m->c;
    llmc_attention_args a;
    memset(&a, 0, sizeof a);
    a.q = q;
    a.k = k;
    a.v = v;
    a.out = out;
    a.B = 1;
    a.Hq = c->n_heads;
    a.Hkv = c->n_kv_heads;
    a.Tq = T;
    a.Tk = Tk;
    a.d = c->head_dim;
    a.k_sh = a.v_sh = s->cap * c->head_dim; /* the cache rows of one head are cap apart; q and out are packed */
    a.impl = probs ? LLMC_ATTN_STANDARD : s->attn;
    a.causal = c->causal;
    a.window = c->sliding_window;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    a.weights = probs;
    return llmc_attention(&a);
}

/* ---------------------------------------------------------------- blocks */
/* Llama-family decoder block, in place on x: (T, D).
 *   x += o_proj(attn(rope(q_proj(rms(x))), rope(k_proj(..)), v_proj(..)))
 *   x += down(silu(gate(rms(x))) * up(rms(x))) */
static llmc_status block_llama(llmc_session *s, size_t l, acts *a, size_t T, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const size_t D = c->d_model, H = c->n_heads, Hk = c->n_kv_heads, hd = c->head_dim, F = c->d_ff;
    llmc_status st;
    // h: (T, D)
    if ((st = llmc_rms_norm(a->x, L->ln1_w, a->h, T, D, c->norm_eps))) return st;
    // q: (T, H, hd); k, v: (T, Hk, hd)
    if ((st = linear(a->h, L->wq, L->bq, a->q, T, D, H * hd, 1)) || (st = linear(a->h, L->wk, L->bk, a->k, T, D, Hk * hd, 1)) ||
        (st = linear(a->h, L->wv, L->bv, a->v, T, D, Hk * hd, 1)))
        return st;
    if (L->q_norm) { /* qwen3: RMSNorm over each head vector before RoPE */
        if ((st = llmc_rms_norm(a->q, L->q_norm, a->q, T * H, hd, c->norm_eps)) ||
            (st = llmc_rms_norm(a->k, L->k_norm, a->k, T * Hk, hd, c->norm_eps)))
            return st;
    }
    rope_rows(a->q, T, H, hd, a->cs, a->sn);
    rope_rows(a->k, T, Hk, hd, a->cs, a->sn);
    // qh: (H, T, hd); new keys/values go to cache rows n .. n+T-1
    to_heads(a->q, a->qh, T, H, hd, T, 0);
    to_heads(a->k, cache_k(s, l), T, Hk, hd, s->cap, s->n);
    to_heads(a->v, cache_v(s, l), T, Hk, hd, s->cap, s->n);
    // ah: (H, T, hd) -> a: (T, H*hd)
    if ((st = attend(s, a->qh, cache_k(s, l), cache_v(s, l), T, s->n + T, a->ah, probs))) return st;
    from_heads(a->ah, a->a, T, H, hd);
    // x += a @ Wo^T
    if ((st = matmul_w(a->a, L->wo, a->x, T, H * hd, D, 1, 1.0f))) return st;
    // SwiGLU MLP: f1 = silu(h Wg^T) * (h Wu^T): (T, F)
    if ((st = llmc_rms_norm(a->x, L->ln2_w, a->h, T, D, c->norm_eps)) || (st = linear(a->h, L->w_gate, NULL, a->f1, T, D, F, 1)) ||
        (st = linear(a->h, L->w_up, NULL, a->f2, T, D, F, 1)) || (st = llmc_silu(a->f1, a->f1, T * F)))
        return st;
    for (size_t i = 0; i < T * F; i++) a->f1[i] *= a->f2[i];
    return matmul_w(a->f1, L->w_down, a->x, T, F, D, 1, 1.0f);
}

/* GPT-2 block, in place on x: (T, D); Conv1D weights are (in, out).
 *   x += c_proj(attn(split(c_attn(ln_1(x)))));  x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x)))) */
static llmc_status block_gpt2(llmc_session *s, size_t l, acts *a, size_t T, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const size_t D = c->d_model, H = c->n_heads, hd = c->head_dim, F = c->d_ff;
    llmc_status st;
    if ((st = llmc_layer_norm(a->x, L->ln1_w, L->ln1_b, a->h, T, D, c->norm_eps))) return st;
    // qkv: (T, 3D) = [q | k | v], each (T, H, hd) with row stride 3D
    if ((st = linear(a->h, L->wqkv, L->bqkv, a->q, T, D, 3 * D, 0))) return st;
    float *kc = cache_k(s, l), *vc = cache_v(s, l);
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < T; t++) {
            const float *row = a->q + t * 3 * D + h * hd;
            memcpy(a->qh + (h * T + t) * hd, row, hd * sizeof(float));
            memcpy(kc + (h * s->cap + s->n + t) * hd, row + D, hd * sizeof(float));
            memcpy(vc + (h * s->cap + s->n + t) * hd, row + 2 * D, hd * sizeof(float));
        }
    if ((st = attend(s, a->qh, kc, vc, T, s->n + T, a->ah, probs))) return st;
    from_heads(a->ah, a->a, T, H, hd);
    // x += a @ Wproj + b
    if ((st = linear(a->a, L->wo, L->bo, a->h, T, D, D, 0))) return st;
    add_inplace(a->x, a->h, T * D);
    if ((st = llmc_layer_norm(a->x, L->ln2_w, L->ln2_b, a->h, T, D, c->norm_eps)) ||
        (st = linear(a->h, L->w_fc, L->b_fc, a->f1, T, D, F, 0)) || (st = llmc_gelu(a->f1, a->f1, T * F, 1)) ||
        (st = linear(a->f1, L->w_proj, L->b_proj, a->h, T, F, D, 0)))
        return st;
    add_inplace(a->x, a->h, T * D);
    return LLMC_OK;
}

/* BERT encoder block (post-LN), in place on x: (T, D); weights (out, in).
 *   x = LN(x + dense(attn(q(x), k(x), v(x))));  x = LN(x + out(gelu(intermediate(x)))) */
static llmc_status block_bert(llmc_session *s, size_t l, acts *a, size_t T, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const size_t D = c->d_model, H = c->n_heads, hd = c->head_dim, F = c->d_ff;
    llmc_status st;
    if ((st = linear(a->x, L->wq, L->bq, a->q, T, D, D, 1)) || (st = linear(a->x, L->wk, L->bk, a->k, T, D, D, 1)) ||
        (st = linear(a->x, L->wv, L->bv, a->v, T, D, D, 1)))
        return st;
    to_heads(a->q, a->qh, T, H, hd, T, 0);
    to_heads(a->k, cache_k(s, l), T, H, hd, s->cap, s->n);
    to_heads(a->v, cache_v(s, l), T, H, hd, s->cap, s->n);
    if ((st = attend(s, a->qh, cache_k(s, l), cache_v(s, l), T, s->n + T, a->ah, probs))) return st;
    from_heads(a->ah, a->a, T, H, hd);
    if ((st = linear(a->a, L->wo, L->bo, a->h, T, D, D, 1))) return st;
    add_inplace(a->h, a->x, T * D);
    if ((st = llmc_layer_norm(a->h, L->ln1_w, L->ln1_b, a->x, T, D, c->norm_eps)) ||
        (st = linear(a->x, L->w_fc, L->b_fc, a->f1, T, D, F, 1)) || (st = llmc_gelu(a->f1, a->f1, T * F, m->gelu_tanh)) ||
        (st = linear(a->f1, L->w_proj, L->b_proj, a->h, T, F, D, 1)))
        return st;
    add_inplace(a->h, a->x, T * D);
    return llmc_layer_norm(a->h, L->ln2_w, L->ln2_b, a->x, T, D, c->norm_eps);
}

/* token (+ position, + type) embeddings of T tokens at positions n .. n+T-1 -> x: (T, D) */
static llmc_status embed_tokens(llmc_session *s, const int64_t *ids, const int64_t *types, size_t T, acts *a) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model;
    llmc_status st = llmc_embedding(m->wte, c->vocab, D, ids, T, a->x);
    if (st) return st;
    if (m->wpe)
        for (size_t t = 0; t < T; t++) add_inplace(a->x + t * D, m->wpe + (s->n + t) * D, D);
    if (m->wtt) {
        for (size_t t = 0; t < T; t++) {
            int64_t ty = types ? types[t] : 0;
            if (ty < 0 || (uint64_t)ty >= c->type_vocab)
                return llmc_fail(LLMC_ERR_INVALID, "token type id %lld at index %zu is outside [0, %zu)",
                                 (long long)ty, t, c->type_vocab);
            add_inplace(a->x + t * D, m->wtt + (size_t)ty * D, D);
        }
        if ((st = llmc_layer_norm(a->x, m->emb_ln_w, m->emb_ln_b, a->x, T, D, c->norm_eps))) return st;
    }
    return LLMC_OK;
}

/* The final norm of decoders: in -> out, (rows, D) */
static llmc_status final_norm(const llmc_model *m, const float *in, float *out, size_t rows) {
    const llmc_model_config *c = &m->c;
    if (c->arch == LLMC_ARCH_BERT) {
        if (in != out) memcpy(out, in, rows * c->d_model * sizeof(float));
        return LLMC_OK;
    }
    if (c->arch == LLMC_ARCH_GPT2) return llmc_layer_norm(in, m->norm_w, m->norm_b, out, rows, c->d_model, c->norm_eps);
    return llmc_rms_norm(in, m->norm_w, out, rows, c->d_model, c->norm_eps);
}

/* The whole stack over one chunk of Tc tokens appended at position s->n; outputs are written at row r0 of arrays
 * holding Tall rows: hidden (L+1, Tall, D), last (Tall, D), logits (Tall, V) when all_logits, else (V,) for the
 * chunk's last token (when want_last_logits). probs: (H, Tc, n + Tc) of layer probs_layer, or NULL. */
static llmc_status forward_chunk(llmc_session *s, const int64_t *ids, const int64_t *types, size_t Tc, size_t Tall,
                                 size_t r0, float *logits, int all_logits, int want_last_logits, float *hidden,
                                 float *last, size_t probs_layer, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model;
    llmc_status st = ensure_scratch(s, Tc);
    if (st) return st;
    acts a;
    carve(c, s->scratch, Tc, &a);
    if ((st = embed_tokens(s, ids, types, Tc, &a))) return st;
    if (c->rope_theta > 0) rope_table(m, s->n, Tc, a.cs, a.sn);
    if (hidden) memcpy(hidden + r0 * D, a.x, Tc * D * sizeof(float));
    for (size_t l = 0; l < c->n_layers; l++) {
        float *p = probs && l == probs_layer ? probs : NULL;
        st = c->arch == LLMC_ARCH_GPT2 ? block_gpt2(s, l, &a, Tc, p)
             : c->arch == LLMC_ARCH_BERT ? block_bert(s, l, &a, Tc, p)
                                         : block_llama(s, l, &a, Tc, p);
        if (st) return st;
        if (hidden && l + 1 < c->n_layers) memcpy(hidden + ((l + 1) * Tall + r0) * D, a.x, Tc * D * sizeof(float));
    }
    memmove(s->tokens + s->n, ids, Tc * sizeof(int64_t));
    s->n += Tc;
    // the final hidden state: all rows when asked for, else only the last (for next-token logits)
    const int need_all = hidden || last || (logits && all_logits);
    if (!need_all && !(logits && want_last_logits)) return LLMC_OK;
    const size_t f0 = need_all ? 0 : Tc - 1;
    if ((st = final_norm(m, a.x + f0 * D, a.h + f0 * D, Tc - f0))) return st;
    if (hidden) memcpy(hidden + (c->n_layers * Tall + r0) * D, a.h, Tc * D * sizeof(float));
    if (last) memcpy(last + r0 * D, a.h, Tc * D * sizeof(float));
    if (logits && all_logits) // logits rows r0 .. r0+Tc-1 = h @ lm_head^T, lm_head (V, D)
        return matmul_w(a.h, m->lm_head, logits + r0 * c->vocab, Tc, D, c->vocab, 1, 0.0f);
    if (logits && want_last_logits) return matmul_w(a.h + (Tc - 1) * D, m->lm_head, logits, 1, D, c->vocab, 1, 0.0f);
    return LLMC_OK;
}

/* Prompts are processed in chunks of this many tokens: the activations stay a few MiB whatever the prompt length
 * (causal attention lets a chunk attend to the cached keys of the earlier ones; BERT needs all tokens at once). */
#define PREFILL_CHUNK 256

/* The whole stack over T new tokens appended at position s->n.
 * logits: (T, V) when all_logits, else (V,) of the last token; hidden: (L+1, T, D); last: (T, D); any may be NULL.
 * probs_layer / probs: the attention probabilities (H, T, Tk) of one layer, or NULL. On error the session is left
 * as it was before the call. */
static llmc_status forward_tokens(llmc_session *s, const int64_t *ids, const int64_t *types, size_t T, float *logits,
                                  int all_logits, float *hidden, float *last, size_t probs_layer, float *probs) {
    const llmc_model *m = s->m;
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "need at least one token");
    if (s->n + T > s->cap) return llmc_fail(LLMC_ERR_INTERNAL, "forward past the cache capacity");
    if (logits && !m->lm_head) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    const size_t n0 = s->n, chunk = probs || !m->c.causal ? T : PREFILL_CHUNK;
    llmc_status st = LLMC_OK;
    for (size_t r0 = 0; r0 < T && !st; r0 += chunk) {
        const size_t Tc = T - r0 < chunk ? T - r0 : chunk;
        st = forward_chunk(s, ids + r0, types ? types + r0 : NULL, Tc, T, r0, logits, all_logits, r0 + Tc == T,
                           hidden, last, probs_layer, probs);
    }
    if (st) s->n = n0; /* cache rows past n are unused, so this undoes the partial call */
    return st;
}

/* ---------------------------------------------------------------- sessions */
static llmc_status session_alloc(const llmc_model *m, size_t cap, llmc_session **out) {
    const llmc_model_config *c = &m->c;
    llmc_session *s = llmc_calloc(1, sizeof *s, "session");
    if (!s) return LLMC_ERR_NOMEM;
    s->m = m;
    s->cap = cap;
    size_t kvn;
    llmc_status st = LLMC_OK;
    if (!llmc_size3(c->n_layers * 2, c->n_kv_heads, cap, c->head_dim * sizeof(float), &kvn))
        st = llmc_fail(LLMC_ERR_NOMEM, "KV cache for %zu tokens overflows", cap);
    else if (!(s->kv = llmc_malloc(kvn, "KV cache")) || !(s->tokens = llmc_calloc(cap, sizeof(int64_t), "token history")))
        st = LLMC_ERR_NOMEM;
    else st = ensure_scratch(s, 1); /* decoding one token at a time never allocates after this */
    if (st) {
        llmc_session_free(s);
        return st;
    }
    *out = s;
    return LLMC_OK;
}

void llmc_session_free(llmc_session *s) {
    if (!s) return;
    llmc_free(s->kv);
    llmc_free(s->tokens);
    llmc_free(s->tmp_ids);
    llmc_free(s->scratch);
    llmc_free(s);
}

llmc_status llmc_session_new(const llmc_model *m, size_t capacity, int overflow, size_t keep_first, int attn,
                             llmc_session **out) {
    *out = NULL;
    const llmc_model_config *c = &m->c;
    if (!c->causal) return llmc_fail(LLMC_ERR_UNSUPPORTED, "sessions (KV-cached decoding) need a decoder; bert is an encoder");
    if (capacity == 0) capacity = c->context_length;
    if (capacity > c->context_length)
        return llmc_fail(LLMC_ERR_INVALID, "session capacity %zu exceeds the model's context length %zu", capacity,
                         c->context_length);
    if (overflow != LLMC_OVERFLOW_ERROR && overflow != LLMC_OVERFLOW_SLIDE)
        return llmc_fail(LLMC_ERR_INVALID, "unknown overflow policy %d", overflow);
    if (overflow == LLMC_OVERFLOW_SLIDE && keep_first >= capacity)
        return llmc_fail(LLMC_ERR_INVALID, "keep_first (%zu) must be smaller than the window (%zu tokens)", keep_first,
                         capacity);
    llmc_session *s;
    llmc_status st = session_alloc(m, capacity, &s);
    if (st) return st;
    s->overflow = overflow;
    s->keep_first = keep_first;
    s->attn = attn;
    if (overflow == LLMC_OVERFLOW_SLIDE && c->rope_theta == 0 &&
        !(s->tmp_ids = llmc_malloc(capacity * sizeof(int64_t), "window tokens"))) {
        llmc_session_free(s);
        return LLMC_ERR_NOMEM;
    }
    *out = s;
    return LLMC_OK;
}

size_t llmc_session_n_tokens(const llmc_session *s) { return s->n; }
const int64_t *llmc_session_tokens(const llmc_session *s) { return s->tokens; }
void llmc_session_reset(llmc_session *s) { s->n = 0; }
void llmc_session_set_attn(llmc_session *s, int attn) { s->attn = attn; }

/* Drop `drop` cached tokens right after the first keep_first (first in, first out).
 * RoPE: keys carry their position as a rotation, so moving a key from position p to p - drop is one more rotation
 * by -drop * inv_freq (exact up to rounding; values carry no position). Deeper layers' keys and values still
 * reflect the dropped tokens they once attended to: this is the usual streaming approximation.
 * Learned positions are added to the input, so nothing cached can be moved: the kept window is re-encoded from
 * its tokens, which makes the result exactly a fresh forward over the window. */
static llmc_status slide(llmc_session *s, size_t drop) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t k0 = s->keep_first, moved = s->n - k0 - drop, hd = c->head_dim, half = hd / 2;
    if (c->rope_theta > 0) {
        for (size_t l = 0; l < c->n_layers; l++)
            for (int kv = 0; kv < 2; kv++) {
                float *base = kv ? cache_v(s, l) : cache_k(s, l);
                for (size_t h = 0; h < c->n_kv_heads; h++) {
                    float *rows = base + h * s->cap * hd; // (cap, hd)
                    memmove(rows + k0 * hd, rows + (k0 + drop) * hd, moved * hd * sizeof(float));
                    if (kv) continue;
                    for (size_t i = 0; i < half; i++) {
                        float ang = -(float)drop * m->inv_freq[i], cs = cosf(ang), sn = sinf(ang);
                        for (size_t t = k0; t < k0 + moved; t++) {
                            float *v = rows + t * hd, a = v[i], b = v[i + half];
                            v[i] = a * cs - b * sn;
                            v[i + half] = a * sn + b * cs;
                        }
                    }
                }
            }
        memmove(s->tokens + k0, s->tokens + k0 + drop, moved * sizeof(int64_t));
        s->n -= drop;
        return LLMC_OK;
    }
    // learned positions: re-encode tokens [0, k0) + [k0 + drop, n)
    memcpy(s->tmp_ids, s->tokens, k0 * sizeof(int64_t));
    memcpy(s->tmp_ids + k0, s->tokens + k0 + drop, moved * sizeof(int64_t));
    const size_t keep = k0 + moved;
    s->n = 0;
    return keep ? forward_tokens(s, s->tmp_ids, NULL, keep, NULL, 0, NULL, NULL, 0, NULL) : LLMC_OK;
}

llmc_status llmc_session_append(llmc_session *s, const int64_t *ids, size_t n, float *logits) {
    if (n == 0) return llmc_fail(LLMC_ERR_INVALID, "append needs at least one token");
    const llmc_model_config *c = &s->m->c;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= c->vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, c->vocab);
    if (s->n + n > s->cap) {
        if (s->overflow == LLMC_OVERFLOW_ERROR)
            return llmc_fail(LLMC_ERR_INVALID,
                             "context window full: %zu cached + %zu new tokens > %zu (create the session with "
                             "overflow=\"slide\" to drop the oldest tokens)",
                             s->n, n, s->cap);
        if (n > s->cap - s->keep_first)
            return llmc_fail(LLMC_ERR_INVALID,
                             "cannot append %zu tokens at once: a window of %zu keeping the first %zu holds at most "
                             "%zu new tokens",
                             n, s->cap, s->keep_first, s->cap - s->keep_first);
        size_t drop = s->n + n - s->cap;
        llmc_status st = slide(s, drop);
        if (st) return st;
    }
    return forward_tokens(s, ids, NULL, n, logits, 0, NULL, NULL, 0, NULL);
}

/* ---------------------------------------------------------------- whole-sequence entry points */
static llmc_status check_ids(const llmc_model *m, const int64_t *ids, size_t T) {
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "need at least one token (got an empty sequence)");
    if (T > m->c.context_length)
        return llmc_fail(LLMC_ERR_INVALID, "%zu tokens exceed the model's context length %zu", T, m->c.context_length);
    for (size_t i = 0; i < T; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= m->c.vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, m->c.vocab);
    return LLMC_OK;
}

static llmc_status run_once(const llmc_model *m, const int64_t *ids, const int64_t *types, size_t T, int attn,
                            float *logits, float *hidden, float *last, size_t probs_layer, float *probs) {
    llmc_status st = check_ids(m, ids, T);
    if (st) return st;
    llmc_session *s;
    if ((st = session_alloc(m, T, &s))) return st;
    s->attn = attn;
    st = forward_tokens(s, ids, types, T, logits, 1, hidden, last, probs_layer, probs);
    llmc_session_free(s);
    return st;
}

llmc_status llmc_model_forward(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T, int attn,
                               float *logits, float *hidden, float *last) {
    if (logits && !m->lm_head) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    return run_once(m, ids, type_ids, T, attn, logits, hidden, last, 0, NULL);
}

llmc_status llmc_model_attention_weights(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T,
                                         size_t layer, float *probs) {
    if (layer >= m->c.n_layers)
        return llmc_fail(LLMC_ERR_INVALID, "layer %zu out of range: the model has %zu layers", layer, m->c.n_layers);
    return run_once(m, ids, type_ids, T, LLMC_ATTN_STANDARD, NULL, NULL, NULL, layer, probs);
}

llmc_status llmc_model_embed(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, const size_t *lengths,
                             size_t N, size_t T_max, int pooling, int normalize, int attn, float *out) {
    const size_t D = m->c.d_model;
    if (pooling != LLMC_POOL_MEAN && pooling != LLMC_POOL_CLS && pooling != LLMC_POOL_LAST)
        return llmc_fail(LLMC_ERR_INVALID, "unknown pooling %d", pooling);
    for (size_t i = 0; i < N; i++)
        if (lengths[i] == 0 || lengths[i] > T_max)
            return llmc_fail(LLMC_ERR_INVALID, "sequence %zu has length %zu, outside [1, %zu]", i, lengths[i], T_max);
    size_t bytes;
    if (!llmc_size3(T_max, D, 1, sizeof(float), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "embedding buffer overflows");
    float *last = llmc_malloc(bytes, "final hidden states");
    if (!last) return LLMC_ERR_NOMEM;
    llmc_status st = LLMC_OK;
    /* each sequence runs over its own tokens only: exactly what an attention mask over the padding does */
    for (size_t i = 0; i < N && !st; i++) {
        const size_t T = lengths[i];
        st = run_once(m, ids + i * T_max, type_ids ? type_ids + i * T_max : NULL, T, attn, NULL, NULL, last, 0, NULL);
        if (st) {
            char msg[900];
            snprintf(msg, sizeof msg, "%s", llmc_last_error());
            st = llmc_fail(st, "sequence %zu: %s", i, msg);
            break;
        }
        float *o = out + i * D;
        if (pooling == LLMC_POOL_CLS) memcpy(o, last, D * sizeof(float));
        else if (pooling == LLMC_POOL_LAST) memcpy(o, last + (T - 1) * D, D * sizeof(float));
        else {
            /* mean over the sequence's tokens, accumulated in double */
            for (size_t d = 0; d < D; d++) {
                double acc = 0.0;
                for (size_t t = 0; t < T; t++) acc += last[t * D + d];
                o[d] = (float)(acc / (double)T);
            }
        }
        if (normalize) {
            double ss = 0.0;
            for (size_t d = 0; d < D; d++) ss += (double)o[d] * o[d];
            /* like torch.nn.functional.normalize: divide by max(norm, 1e-12) */
            float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
            for (size_t d = 0; d < D; d++) o[d] *= inv;
        }
    }
    llmc_free(last);
    return st;
}

/* ---------------------------------------------------------------- copying a session (beam search) */
// kv: (n_layers, 2, Hk, cap, hd): only the first n positions of each (layer, k/v, head) block are live
llmc_status llmc_session_copy(llmc_session *dst, const llmc_session *src) {
    if (dst == src) return LLMC_OK;
    if (dst->m != src->m || dst->cap != src->cap)
        return llmc_fail(LLMC_ERR_INVALID, "can only copy a session into another of the same model and capacity "
                         "(capacities %zu and %zu)", src->cap, dst->cap);
    const llmc_model_config *c = &src->m->c;
    const size_t blocks = c->n_layers * 2 * c->n_kv_heads, hd = c->head_dim;
    for (size_t b = 0; b < blocks; b++)
        memcpy(dst->kv + b * src->cap * hd, src->kv + b * src->cap * hd, src->n * hd * sizeof(float));
    memcpy(dst->tokens, src->tokens, src->n * sizeof(int64_t));
    dst->n = src->n;
    return LLMC_OK;
}
