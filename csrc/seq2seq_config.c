/* seq2seq_config.c: a T5 / BART config.json -> llmc_s2s_config. Absent fields take transformers' defaults (T5Config,
 * BartConfig); a present field of the wrong type or range is an error naming the field, the value and the file. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "seq2seq.h"

typedef struct {
    const llmc_json *root;
    const char *file;
} src_t;

#define S2S_MAX_SIZE ((size_t)1 << 32) /* far above any real dimension; keeps products of three far from 2^64 */

/* integer field in [min, max]; absent or null -> def */
static llmc_status get_size(const src_t *s, const char *key, size_t def, size_t min, size_t max, size_t *out) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_NUMBER || !v->is_integer || v->integer < 0 || (uint64_t)v->integer < min ||
        (uint64_t)v->integer > max) {
        if (v->type == LLMC_JSON_NUMBER)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be an integer in [%zu, %zu], got %.17g", s->file,
                             key, min, max, v->number);
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be an integer in [%zu, %zu], got a non-number", s->file,
                         key, min, max);
    }
    *out = (size_t)v->integer;
    return LLMC_OK;
}

/* float field >= 0 that is finite in float32; absent -> def */
static llmc_status get_eps(const src_t *s, const char *key, double def, float *out) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = (float)def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_NUMBER || !(v->number >= 0) || !isfinite((float)v->number))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be a finite number >= 0", s->file, key);
    *out = (float)v->number;
    return LLMC_OK;
}

/* bool field; absent -> def. *present (may be NULL) says whether it was given. */
static llmc_status get_bool(const src_t *s, const char *key, int def, int *out, int *present) {
    const llmc_json *v = llmc_json_get(s->root, key);
    if (present) *present = v && v->type != LLMC_JSON_NULL;
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_BOOL)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be true or false", s->file, key);
    *out = v->boolean;
    return LLMC_OK;
}

/* string field; absent -> def */
static llmc_status get_str(const src_t *s, const char *key, const char *def, const char **out) {
    *out = def;
    const llmc_json *v = llmc_json_get(s->root, key);
    if (!v || v->type == LLMC_JSON_NULL) {
        *out = def;
        return LLMC_OK;
    }
    if (v->type != LLMC_JSON_STRING) return llmc_fail(LLMC_ERR_FORMAT, "%s: field '%s' must be a string", s->file, key);
    *out = v->str;
    return LLMC_OK;
}

/* transformers' ACT2FN names llmc implements */
static int act_from_name(const char *name) {
    if (!strcmp(name, "relu")) return LLMC_FN_RELU;
    if (!strcmp(name, "gelu")) return LLMC_FN_GELU;
    if (!strcmp(name, "gelu_new") || !strcmp(name, "gelu_pytorch_tanh")) return LLMC_FN_GELU_TANH;
    if (!strcmp(name, "silu") || !strcmp(name, "swish")) return LLMC_FN_SILU;
    return -1;
}

/* a flag llmc does not implement must be absent or false */
static llmc_status refuse_true(const src_t *s, const char *key) {
    int v = 0;
    llmc_status st = get_bool(s, key, 0, &v, NULL);
    if (st) return st;
    if (v) return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field '%s' = true is not supported", s->file, key);
    return LLMC_OK;
}

static llmc_status parse_t5(const src_t *s, llmc_s2s_config *c) {
    llmc_status st;
    if ((st = get_size(s, "vocab_size", 32128, 1, (size_t)INT32_MAX - 1, &c->vocab)) ||
        (st = get_size(s, "d_model", 512, 1, S2S_MAX_SIZE, &c->d_model)) ||
        (st = get_size(s, "d_kv", 64, 1, S2S_MAX_SIZE, &c->enc_head_dim)) ||
        (st = get_size(s, "d_ff", 2048, 1, S2S_MAX_SIZE, &c->enc_ff)) ||
        (st = get_size(s, "num_layers", 6, 1, 1 << 16, &c->enc_layers)) ||
        (st = get_size(s, "num_decoder_layers", c->enc_layers, 1, 1 << 16, &c->dec_layers)) ||
        (st = get_size(s, "num_heads", 8, 1, 1 << 16, &c->enc_heads)) ||
        (st = get_size(s, "relative_attention_num_buckets", 32, 2, 1 << 20, &c->num_buckets)) ||
        (st = get_size(s, "relative_attention_max_distance", 128, 1, S2S_MAX_SIZE, &c->max_distance)) ||
        (st = get_eps(s, "layer_norm_epsilon", 1e-6, &c->eps)))
        return st;
    c->dec_heads = c->enc_heads;
    c->dec_head_dim = c->enc_head_dim;
    c->dec_ff = c->enc_ff;
    /* feed_forward_proj: "ACT" or "gated-ACT"; "gated-gelu" means gelu_new (transformers keeps that quirk) */
    const char *ff;
    if ((st = get_str(s, "feed_forward_proj", "relu", &ff))) return st;
    const char *dash = strchr(ff, '-');
    const char *act = ff;
    if (dash) {
        if ((size_t)(dash - ff) != 5 || strncmp(ff, "gated", 5) || strchr(dash + 1, '-'))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: field 'feed_forward_proj' = '%s' is not 'ACT' or 'gated-ACT'",
                             s->file, ff);
        c->gated = 1;
        act = dash + 1;
    }
    c->act = c->gated && !strcmp(act, "gelu") ? LLMC_FN_GELU_TANH : act_from_name(act);
    if (c->act < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'feed_forward_proj' = '%s': activation '%s' is not "
                         "supported (relu, gelu, gelu_new, silu)", s->file, ff, act);
    /* transformers 5 writes scale_decoder_outputs; older files say tie_word_embeddings = false for v1.1, and the
     * original T5 (no field) scales */
    int tie = 1, scale = 1;
    if ((st = get_bool(s, "tie_word_embeddings", 1, &tie, NULL)) ||
        (st = get_bool(s, "scale_decoder_outputs", tie, &scale, NULL)))
        return st;
    c->out_scale = scale ? 1.0f / sqrtf((float)c->d_model) : 1.0f;
    c->embed_scale = 1.0f;
    c->max_positions = 0;
    return refuse_true(s, "is_decoder");
}

static llmc_status parse_bart(const src_t *s, llmc_s2s_config *c) {
    llmc_status st;
    if ((st = get_size(s, "vocab_size", 50265, 1, (size_t)INT32_MAX - 1, &c->vocab)) ||
        (st = get_size(s, "d_model", 1024, 1, S2S_MAX_SIZE, &c->d_model)) ||
        (st = get_size(s, "encoder_layers", 12, 1, 1 << 16, &c->enc_layers)) ||
        (st = get_size(s, "decoder_layers", 12, 1, 1 << 16, &c->dec_layers)) ||
        (st = get_size(s, "encoder_attention_heads", 16, 1, 1 << 16, &c->enc_heads)) ||
        (st = get_size(s, "decoder_attention_heads", 16, 1, 1 << 16, &c->dec_heads)) ||
        (st = get_size(s, "encoder_ffn_dim", 4096, 1, S2S_MAX_SIZE, &c->enc_ff)) ||
        (st = get_size(s, "decoder_ffn_dim", 4096, 1, S2S_MAX_SIZE, &c->dec_ff)) ||
        (st = get_size(s, "max_position_embeddings", 1024, 1, S2S_MAX_SIZE, &c->max_positions)))
        return st;
    const char *heads[2] = {"encoder_attention_heads", "decoder_attention_heads"};
    const size_t hn[2] = {c->enc_heads, c->dec_heads};
    for (int i = 0; i < 2; i++)
        if (c->d_model % hn[i])
            return llmc_fail(LLMC_ERR_FORMAT, "%s: d_model %zu is not divisible by '%s' = %zu", s->file, c->d_model,
                             heads[i], hn[i]);
    c->enc_head_dim = c->d_model / c->enc_heads;
    c->dec_head_dim = c->d_model / c->dec_heads;
    const char *act;
    if ((st = get_str(s, "activation_function", "gelu", &act))) return st;
    if ((c->act = act_from_name(act)) < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: field 'activation_function' = '%s' is not supported (relu, gelu, "
                         "gelu_new, silu)", s->file, act);
    int scale_emb = 0;
    if ((st = get_bool(s, "scale_embedding", 0, &scale_emb, NULL))) return st;
    c->embed_scale = scale_emb ? sqrtf((float)c->d_model) : 1.0f; /* math.sqrt in transformers, then float32 */
    c->out_scale = 1.0f;
    c->eps = 1e-5f; /* nn.LayerNorm's default: BART's eps is not configurable */
    /* mBART-style variants: other model types in transformers, but old BART configs may carry the flags */
    const char *refused[] = {"normalize_before", "add_final_layer_norm", "add_bias_logits",
                             "static_position_embeddings", "is_decoder"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if ((st = refuse_true(s, refused[i]))) return st;
    return LLMC_OK;
}

llmc_status s2s_parse_config(const llmc_json *root, const char *file, llmc_s2s_config *c) {
    memset(c, 0, sizeof *c);
    if (!llmc_json_is(root, LLMC_JSON_OBJECT)) return llmc_fail(LLMC_ERR_FORMAT, "%s: must be a JSON object", file);
    src_t S = {root, file};
    const char *mt = "";
    llmc_status st = get_str(&S, "model_type", "", &mt);
    if (st) return st;
    if (!strcmp(mt, "t5")) {
        c->arch = LLMC_S2S_T5;
        st = parse_t5(&S, c);
    } else if (!strcmp(mt, "bart")) {
        c->arch = LLMC_S2S_BART;
        st = parse_bart(&S, c);
    } else {
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: model_type '%s' is not an encoder-decoder llmc supports (t5, bart)",
                         file, mt);
    }
    if (st) return st;
    /* every activation row and cache size below is a product of these: keep each product representable */
    size_t p;
    if (!llmc_mul_ok(c->enc_heads, c->enc_head_dim, &p) || p > S2S_MAX_SIZE ||
        !llmc_mul_ok(c->dec_heads, c->dec_head_dim, &p) || p > S2S_MAX_SIZE)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: heads x head dimension overflows", file);
    return LLMC_OK;
}
