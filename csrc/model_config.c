/* model_config.c: a Hugging Face config.json -> llmc_model_config, every field validated (messages name the field
 * and the file). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

typedef struct {
    const llmc_json *root;
    const char *file;
} cfg_src;

static llmc_status cfg_missing(const cfg_src *s, const char *key) {
    return llmc_fail(LLMC_ERR_FORMAT, "%s: missing field '%s'", s->file, key);
}

/* What a JSON value is, for messages: "a string", "-3", "1e-300", ... (buf: at least 40 bytes) */
static const char *json_what(const llmc_json *v, char *buf, size_t n) {
    switch (v->type) {
    case LLMC_JSON_NUMBER: snprintf(buf, n, "%.17g", v->number); return buf;
    case LLMC_JSON_STRING: return "a string";
    case LLMC_JSON_BOOL: return v->boolean ? "true" : "false";
    case LLMC_JSON_ARRAY: return "an array";
    case LLMC_JSON_OBJECT: return "an object";
    default: return "null";
    }
}

/* Every field is checked in the type llmc stores it in (size_t counts, float32 numbers, int flags), and a bad one
 * is an error naming the file, the field and the value. */

/* integer field in [min, max] (stored as size_t); absent -> def (or an error when required) */
static llmc_status cfg_size_in(const cfg_src *s, const llmc_json *obj, const char *key, int required, size_t def,
                               size_t min, size_t max, size_t *out) {
    const llmc_json *v = llmc_json_get(obj, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        if (required) return cfg_missing(s, key);
        *out = def;
        return LLMC_OK;
    }
    char w[48];
    if (v->type != LLMC_JSON_NUMBER || !v->is_integer || v->integer < 0 || (uint64_t)v->integer < min ||
        (uint64_t)v->integer > max)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be an integer in [%zu, %zu], got %s", s->file, key, min,
                         max, json_what(v, w, sizeof w));
    *out = (size_t)v->integer;
    return LLMC_OK;
}

#define CFG_MAX_SIZE ((size_t)1 << 40) /* no dimension of a real model comes near; products stay far from 2^64 */

static llmc_status cfg_size(const cfg_src *s, const char *key, int required, size_t def, size_t min, size_t *out) {
    return cfg_size_in(s, s->root, key, required, def, min, CFG_MAX_SIZE, out);
}

enum { CFG_ANY = 0, CFG_NONNEG = 1, CFG_POSITIVE = 2 };

/* number field stored as float32: finite in float32 and, for CFG_POSITIVE, still > 0 after rounding (1e-300 is a
 * positive double but 0.0f) */
static llmc_status cfg_float(const cfg_src *s, const llmc_json *obj, const char *key, int required, double def,
                             int sign, float *out) {
    const llmc_json *v = llmc_json_get(obj, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        if (required) return cfg_missing(s, key);
        *out = (float)def;
        return LLMC_OK;
    }
    char w[48];
    if (v->type != LLMC_JSON_NUMBER)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be a number, got %s", s->file, key,
                         json_what(v, w, sizeof w));
    const double x = v->number;
    const float f = (float)x;
    if (!isfinite(x) || !isfinite(f))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' = %.17g is not a finite float32", s->file, key, x);
    if (sign == CFG_NONNEG && !(x >= 0))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be >= 0, got %.17g", s->file, key, x);
    if (sign == CFG_POSITIVE && !(f > 0))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be > 0 as a float32, got %.17g%s", s->file, key, x,
                         x > 0 ? " (rounds to 0)" : "");
    *out = f;
    return LLMC_OK;
}

static llmc_status cfg_bool(const cfg_src *s, const char *key, int def, int *out) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = def;
        return LLMC_OK;
    }
    char w[48];
    if (v->type != LLMC_JSON_BOOL)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be true or false, got %s", s->file, key,
                         json_what(v, w, sizeof w));
    *out = v->boolean;
    return LLMC_OK;
}

/* a string field, "" when absent or null; another type is an error */
static llmc_status cfg_str(const cfg_src *s, const llmc_json *obj, const char *key, const char **out) {
    const llmc_json *v = llmc_json_get(obj, key);
    *out = "";
    if (!v || v->type == LLMC_JSON_NULL) return LLMC_OK;
    char w[48];
    if (v->type != LLMC_JSON_STRING)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be a string, got %s", s->file, key,
                         json_what(v, w, sizeof w));
    *out = v->str;
    return LLMC_OK;
}

static int arch_from_name(const char *mt) {
    static const struct { const char *name; int arch; } map[] = {
        {"gpt2", LLMC_ARCH_GPT2}, {"llama", LLMC_ARCH_LLAMA}, {"mistral", LLMC_ARCH_MISTRAL},
        {"qwen2", LLMC_ARCH_QWEN2}, {"qwen3", LLMC_ARCH_QWEN3}, {"bert", LLMC_ARCH_BERT},
        {"mixtral", LLMC_ARCH_MIXTRAL}, {"qwen2_moe", LLMC_ARCH_QWEN2_MOE}, {"qwen3_moe", LLMC_ARCH_QWEN3_MOE},
        {"olmoe", LLMC_ARCH_OLMOE},
        /* architectures[0] spellings */
        {"GPT2LMHeadModel", LLMC_ARCH_GPT2}, {"GPT2Model", LLMC_ARCH_GPT2}, {"LlamaForCausalLM", LLMC_ARCH_LLAMA},
        {"MistralForCausalLM", LLMC_ARCH_MISTRAL}, {"Qwen2ForCausalLM", LLMC_ARCH_QWEN2},
        {"Qwen3ForCausalLM", LLMC_ARCH_QWEN3}, {"BertModel", LLMC_ARCH_BERT}, {"BertForMaskedLM", LLMC_ARCH_BERT},
        {"MixtralForCausalLM", LLMC_ARCH_MIXTRAL}, {"Qwen2MoeForCausalLM", LLMC_ARCH_QWEN2_MOE},
        {"Qwen3MoeForCausalLM", LLMC_ARCH_QWEN3_MOE}, {"OlmoeForCausalLM", LLMC_ARCH_OLMOE},
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
    /* transformers' default_theta: 1e6 for Mixtral, 10000 for the others */
    const double def_theta = c->arch == LLMC_ARCH_MIXTRAL ? 1e6 : 10000.0;
    llmc_status st;
    if (llmc_json_is(rp, LLMC_JSON_OBJECT)) {
        if ((st = cfg_float(s, rp, "rope_theta", 0, def_theta, CFG_POSITIVE, &c->rope_theta))) return st;
        if (!llmc_json_is(sc, LLMC_JSON_OBJECT)) sc = rp;
    } else if ((st = cfg_float(s, s->root, "rope_theta", 0, def_theta, CFG_POSITIVE, &c->rope_theta))) {
        return st;
    }
    if (llmc_json_is(sc, LLMC_JSON_OBJECT)) {
        const char *type;
        if ((st = cfg_str(s, sc, "rope_type", &type))) return st;
        if (!*type && (st = cfg_str(s, sc, "type", &type))) return st;
        if (!strcmp(type, "llama3")) {
            float f = 0, lo = 0, hi = 0;
            if ((st = cfg_float(s, sc, "factor", 1, 0, CFG_POSITIVE, &f)) ||
                (st = cfg_float(s, sc, "low_freq_factor", 1, 0, CFG_POSITIVE, &lo)) ||
                (st = cfg_float(s, sc, "high_freq_factor", 1, 0, CFG_POSITIVE, &hi)) ||
                (st = cfg_size_in(s, sc, "original_max_position_embeddings", 1, 0, 1, CFG_MAX_SIZE,
                                  &c->rope_original_context)))
                return st;
            if (!(hi > lo))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: rope_scaling llama3 needs high_freq_factor > low_freq_factor, "
                                                  "got %g and %g", s->file, (double)hi, (double)lo);
            c->rope_llama3 = 1;
            c->rope_factor = f;
            c->rope_low_freq_factor = lo;
            c->rope_high_freq_factor = hi;
        } else if (*type && strcmp(type, "default")) {
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'rope_scaling' of type '%s' is not supported (only llama3)",
                             s->file, type);
        }
    }
    return LLMC_OK;
}

/* The RoPE angles position * theta^(-2i/d) must be finite for every position of the context in float32, as the
 * forward pass computes them (a tiny theta makes the frequencies overflow). */
static llmc_status check_rope(const cfg_src *s, const llmc_model_config *c) {
    for (size_t i = 0; i < c->head_dim / 2; i++) {
        float f = 1.0f / powf(c->rope_theta, (float)(2 * i) / (float)c->head_dim);
        if (!(isfinite(f) && f > 0) || !isfinite(f * (float)c->context_length))
            return llmc_fail(LLMC_ERR_FORMAT,
                             "%s: field 'rope_theta' = %g gives RoPE frequency %g for dimension pair %zu of head_dim "
                             "%zu, whose angles are not finite over the %zu positions", s->file, (double)c->rope_theta,
                             (double)f, i, c->head_dim, c->context_length);
    }
    return LLMC_OK;
}

int llmc_layer_is_moe(const llmc_model_config *c, size_t l) {
    if (c->n_experts == 0 || (l + 1) % c->decoder_sparse_step) return 0;
    return !(l < LLMC_MOE_MAX_LAYERS && (c->mlp_only[l / 64] >> (l % 64) & 1));
}

/* a boolean field that must be false (a feature llmc does not implement) */
static llmc_status cfg_must_be_false(const cfg_src *s, const char *key, const char *arch) {
    int v = 0;
    llmc_status st = cfg_bool(s, key, 0, &v);
    if (st) return st;
    if (v) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field '%s' = true is not supported for %s", s->file, key, arch);
    return LLMC_OK;
}

/* The mixture-of-experts fields of mixtral / qwen2_moe / qwen3_moe / olmoe, with transformers' defaults. */
static llmc_status cfg_moe(const cfg_src *s, int arch, llmc_model_config *c) {
    const char *name = arch == LLMC_ARCH_MIXTRAL ? "mixtral" : arch == LLMC_ARCH_QWEN2_MOE ? "qwen2_moe"
                       : arch == LLMC_ARCH_QWEN3_MOE ? "qwen3_moe" : "olmoe";
    const size_t def_e = arch == LLMC_ARCH_MIXTRAL ? 8 : arch == LLMC_ARCH_QWEN2_MOE ? 60
                         : arch == LLMC_ARCH_QWEN3_MOE ? 128 : 64;
    const size_t def_k = arch == LLMC_ARCH_MIXTRAL ? 2 : arch == LLMC_ARCH_QWEN2_MOE ? 4 : 8;
    /* transformers maps num_experts <-> num_local_experts, and a config may carry either spelling */
    const char *ekey = llmc_json_get(s->root, "num_experts") ? "num_experts" : "num_local_experts";
    llmc_status st;
    if ((st = cfg_size(s, ekey, 0, def_e, 0, &c->n_experts)) ||
        (st = cfg_size(s, "num_experts_per_tok", 0, def_k, 0, &c->n_experts_used)))
        return st;
    if (c->n_experts == 0)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' = 0: a %s model needs at least one expert", s->file, ekey,
                         name);
    if (c->n_experts_used == 0 || c->n_experts_used > c->n_experts)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'num_experts_per_tok' = %zu must be in [1, %s = %zu]", s->file,
                         c->n_experts_used, ekey, c->n_experts);
    if (c->n_experts > 65536)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field '%s' = %zu: at most 65536 experts are supported", s->file,
                         ekey, c->n_experts);
    if ((st = cfg_float(s, s->root, "router_aux_loss_coef", 0, arch == LLMC_ARCH_OLMOE ? 0.01 : 0.001, CFG_NONNEG,
                        &c->router_aux_loss_coef)))
        return st;
    c->decoder_sparse_step = 1;
    if (arch == LLMC_ARCH_MIXTRAL || arch == LLMC_ARCH_OLMOE) {
        c->moe_d_ff = c->d_ff; /* intermediate_size is each expert's width */
        if (arch == LLMC_ARCH_MIXTRAL) c->norm_topk_prob = 1;
        else if ((st = cfg_bool(s, "norm_topk_prob", 0, &c->norm_topk_prob))) return st;
        return LLMC_OK;
    }
    if ((st = cfg_size(s, "moe_intermediate_size", 0, arch == LLMC_ARCH_QWEN2_MOE ? 1408 : 768, 1, &c->moe_d_ff)) ||
        (st = cfg_bool(s, "norm_topk_prob", 0, &c->norm_topk_prob)) ||
        (st = cfg_size(s, "decoder_sparse_step", 0, 1, 1, &c->decoder_sparse_step)))
        return st;
    if (arch == LLMC_ARCH_QWEN2_MOE &&
        (st = cfg_size(s, "shared_expert_intermediate_size", 0, 5632, 1, &c->shared_d_ff)))
        return st;
    const llmc_json *mo = llmc_json_get(s->root, "mlp_only_layers");
    if (mo && mo->type != LLMC_JSON_NULL) {
        if (mo->type != LLMC_JSON_ARRAY)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'mlp_only_layers' must be a list of layer indices", s->file);
        for (size_t i = 0; i < mo->len; i++) {
            const llmc_json *v = &mo->items[i];
            if (v->type != LLMC_JSON_NUMBER || !v->is_integer || v->integer < 0)
                return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'mlp_only_layers' item %zu must be a layer index >= 0",
                                 s->file, i);
            const uint64_t l = (uint64_t)v->integer;
            if (l >= c->n_layers) continue; /* as transformers: an index past the last layer selects nothing */
            if (l >= LLMC_MOE_MAX_LAYERS)
                return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'mlp_only_layers' names layer %llu; llmc supports "
                                 "mlp_only_layers below %d", s->file, (unsigned long long)l, LLMC_MOE_MAX_LAYERS);
            c->mlp_only[l / 64] |= (uint64_t)1 << (l % 64);
        }
    }
    return LLMC_OK;
}

llmc_status model_parse_config(const llmc_json *root, const char *file, llmc_model_config *c, int *gelu_tanh) {
    cfg_src S = {root, file}, *s = &S;
    memset(c, 0, sizeof *c);
    if (!llmc_json_is(root, LLMC_JSON_OBJECT)) return llmc_fail(LLMC_ERR_FORMAT, "%s: must be a JSON object", file);
    const char *mt;
    llmc_status st;
    if ((st = cfg_str(s, root, "model_type", &mt))) return st;
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
                         "%s: model_type '%s' is not supported (supported: gpt2, llama, mistral, qwen2, qwen3, bert, "
                         "mixtral, qwen2_moe, qwen3_moe, olmoe)",
                         file, mt);
    c->arch = arch;
    /* token ids are int32 in the tokenizers and the samplers' sort keys */
    if ((st = cfg_size_in(s, root, "vocab_size", 1, 0, 1, (size_t)INT32_MAX - 1, &c->vocab))) return st;
    if (arch == LLMC_ARCH_GPT2) {
        if ((st = cfg_size(s, "n_embd", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "n_layer", 1, 0, 1, &c->n_layers)) || (st = cfg_size(s, "n_head", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "n_positions", 1, 0, 1, &c->context_length)) ||
            (st = cfg_size(s, "n_inner", 0, 4 * c->d_model, 1, &c->d_ff)))
            return st;
        if ((st = cfg_float(s, root, "layer_norm_epsilon", 0, 1e-5, CFG_NONNEG, &c->norm_eps))) return st;
        const char *act;
        if ((st = cfg_str(s, root, "activation_function", &act))) return st;
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
        if ((st = cfg_size(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "num_hidden_layers", 1, 0, 1, &c->n_layers)) ||
            (st = cfg_size(s, "num_attention_heads", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "intermediate_size", 1, 0, 1, &c->d_ff)) ||
            (st = cfg_size(s, "max_position_embeddings", 1, 0, 1, &c->context_length)) ||
            (st = cfg_size(s, "type_vocab_size", 0, 2, 1, &c->type_vocab)))
            return st;
        if ((st = cfg_float(s, root, "layer_norm_eps", 0, 1e-12, CFG_NONNEG, &c->norm_eps))) return st;
        const char *act;
        if ((st = cfg_str(s, root, "hidden_act", &act))) return st;
        if (!*act || !strcmp(act, "gelu")) *gelu_tanh = 0;
        else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh")) *gelu_tanh = 1;
        else return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (gelu)", file, act);
        const char *pe;
        if ((st = cfg_str(s, root, "position_embedding_type", &pe))) return st;
        if (*pe && strcmp(pe, "absolute"))
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'position_embedding_type' = '%s' is not supported "
                                                   "(absolute)", file, pe);
        c->n_kv_heads = c->n_heads;
    } else { /* llama family */
        if ((st = cfg_size(s, "hidden_size", 1, 0, 1, &c->d_model)) ||
            (st = cfg_size(s, "num_hidden_layers", 1, 0, 1, &c->n_layers)) ||
            (st = cfg_size(s, "num_attention_heads", 1, 0, 1, &c->n_heads)) ||
            (st = cfg_size(s, "num_key_value_heads", 0, c->n_heads, 1, &c->n_kv_heads)) ||
            (st = cfg_size(s, "intermediate_size", 1, 0, 1, &c->d_ff)) ||
            (st = cfg_size(s, "max_position_embeddings", 1, 0, 1, &c->context_length)))
            return st;
        /* transformers' defaults: 1e-5 for Mixtral and OLMoE, 1e-6 for the others */
        const double def_eps = arch == LLMC_ARCH_MIXTRAL || arch == LLMC_ARCH_OLMOE ? 1e-5 : 1e-6;
        if ((st = cfg_float(s, root, "rms_norm_eps", 0, def_eps, CFG_NONNEG, &c->norm_eps))) return st;
        const char *act;
        if ((st = cfg_str(s, root, "hidden_act", &act))) return st;
        if (*act && strcmp(act, "silu"))
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'hidden_act' = '%s' is not supported (silu)", file, act);
        if ((st = cfg_bool(s, "tie_word_embeddings", 0, &c->tied_embeddings)) || (st = cfg_rope(s, c))) return st;
        int mlp_bias = 0;
        if ((st = cfg_bool(s, "mlp_bias", 0, &mlp_bias))) return st;
        if (mlp_bias) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'mlp_bias' = true is not supported", file);
        if ((arch == LLMC_ARCH_MISTRAL || arch == LLMC_ARCH_MIXTRAL) &&
            (st = cfg_size(s, "sliding_window", 0, 0, 1, &c->sliding_window)))
            return st;
        if (arch == LLMC_ARCH_QWEN2) {
            int sw = 0;
            if ((st = cfg_bool(s, "use_sliding_window", 0, &sw))) return st;
            if (sw) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'use_sliding_window' = true is not supported for "
                                                           "qwen2", file);
        }
        c->qkv_bias = arch == LLMC_ARCH_QWEN2;
        if (arch == LLMC_ARCH_QWEN2_MOE && (st = cfg_bool(s, "qkv_bias", 1, &c->qkv_bias))) return st;
        if ((arch == LLMC_ARCH_QWEN2_MOE || arch == LLMC_ARCH_QWEN3_MOE) &&
            (st = cfg_must_be_false(s, "use_sliding_window", mt)))
            return st;
        if ((arch == LLMC_ARCH_QWEN3_MOE || arch == LLMC_ARCH_OLMOE) &&
            (st = cfg_must_be_false(s, "attention_bias", mt)))
            return st;
        if (arch == LLMC_ARCH_OLMOE) {
            c->qk_norm_full = 1;
            if ((st = cfg_float(s, root, "clip_qkv", 0, 0.0, CFG_NONNEG, &c->clip_qkv))) return st;
            if (llmc_json_get(root, "clip_qkv") && llmc_json_get(root, "clip_qkv")->type != LLMC_JSON_NULL &&
                !(c->clip_qkv > 0))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'clip_qkv' must be > 0 or null, got %g", file,
                                 (double)c->clip_qkv);
        }
        if (arch >= LLMC_ARCH_MIXTRAL && (st = cfg_moe(s, arch, c))) return st;
        c->causal = c->has_lm_head = 1;
    }
    if (arch != LLMC_ARCH_GPT2 && arch != LLMC_ARCH_BERT) {
        const int explicit_hd = llmc_json_get(root, "head_dim") && llmc_json_get(root, "head_dim")->type != LLMC_JSON_NULL;
        if ((st = cfg_size(s, "head_dim", 0, c->d_model / c->n_heads, 2, &c->head_dim))) return st;
        if (!explicit_hd && c->head_dim < 2)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'hidden_size' = %zu over 'num_attention_heads' = %zu gives a "
                                              "head dimension of %zu (it must be >= 2; set 'head_dim' or fix the sizes)",
                             file, c->d_model, c->n_heads, c->head_dim);
        if (arch == LLMC_ARCH_OLMOE && c->head_dim * c->n_heads != c->d_model)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: olmoe's q_norm spans hidden_size = %zu, so head_dim (%zu) times "
                             "num_attention_heads (%zu) must equal it", file, c->d_model, c->head_dim, c->n_heads);
        if (c->head_dim % 2)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'head_dim' must be even for RoPE, got %zu", file, c->head_dim);
        if ((st = check_rope(s, c))) return st;
    } else {
        if (c->d_model % c->n_heads)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: hidden size %zu is not divisible by the %zu heads", file, c->d_model,
                             c->n_heads);
        c->head_dim = c->d_model / c->n_heads;
    }
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'num_attention_heads' (%zu) must be a multiple of "
                                          "'num_key_value_heads' (%zu)", file, c->n_heads, c->n_kv_heads);
    return LLMC_OK;
}

llmc_status model_read_config(const char *dir, llmc_json_doc **doc, char *path, size_t path_len) {
    snprintf(path, path_len, "%s/config.json", dir);
    char *buf = NULL;
    size_t len = 0;
    /* a regular file only: a FIFO in its place is refused, not waited on (file.c) */
    llmc_status st = llmc_read_file(path, (size_t)64 << 20, &buf, &len);
    if (st == LLMC_ERR_NOT_FOUND)
        return llmc_fail(LLMC_ERR_NOT_FOUND, "%s: cannot open (a checkpoint folder needs config.json)", path);
    if (st) return st;
    st = llmc_json_parse(buf, len, path, doc);
    llmc_free(buf);
    return st;
}
