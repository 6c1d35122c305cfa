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

llmc_status model_parse_config(const llmc_json *root, const char *file, llmc_model_config *c, int *gelu_tanh) {
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

llmc_status model_read_config(const char *dir, llmc_json_doc **doc, char *path, size_t path_len) {
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
