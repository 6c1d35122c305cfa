/* seq2seq_weights.c: the tensor table of T5 and BART (checkpoint names and shapes), loading it from safetensors,
 * random initialisation, and the views the binding hands out.
 *
 * Matrices keep the checkpoint's F32/F16/BF16 bytes (pointing into the mapped file when aligned) and go through
 * llmc_matmul_typed; norms, biases, position tables and T5's bucket tables are fp32 copies. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "seq2seq.h"

/* ---------------------------------------------------------------- tensor table */
static llmc_status add(llmc_s2s *m, float **vslot, wmat *mslot, int init, size_t d0, size_t d1, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Register tensor `name` of checkpoint shape (d0,) (d1 == 0) or (d0, d1); vslot: an fp32 array, mslot: a matrix. */
static llmc_status add(llmc_s2s *m, float **vslot, wmat *mslot, int init, size_t d0, size_t d1, const char *fmt, ...) {
    if (m->n_t == m->cap_t && llmc_grow((void **)&m->t, &m->cap_t, m->n_t + 1, sizeof(tensor_spec), "tensor table"))
        return LLMC_ERR_NOMEM;
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
    t->layer = -1;
    t->type = LLMC_TYPE_F32;
    t->vslot = vslot;
    t->mslot = mslot;
    m->n_t++;
    return LLMC_OK;
}

#define ADD(...)                                                                                                     \
    do {                                                                                                             \
        llmc_status st_ = add(m, __VA_ARGS__);                                                                       \
        if (st_) return st_;                                                                                         \
    } while (0)
#define VEC(slot, init, d0, ...) ADD(slot, NULL, init, d0, 0, __VA_ARGS__)       /* fp32 (d0,) */
#define TAB(slot, d0, d1, ...) ADD(slot, NULL, INIT_NORMAL, d0, d1, __VA_ARGS__) /* fp32 (d0, d1) */
#define MAT(slot, d0, d1, ...) ADD(NULL, slot, INIT_NORMAL, d0, d1, __VA_ARGS__) /* typed (d0, d1) */

static llmc_status t5_attention(llmc_s2s *m, const char *side, size_t l, int sub, const char *name, wmat *q, wmat *k,
                                wmat *v, wmat *o, size_t H, size_t hd) {
    const size_t D = m->c.d_model;
    const char *p = "%s.block.%zu.layer.%d.%s.%s.weight";
    MAT(q, H * hd, D, p, side, l, sub, name, "q");
    MAT(k, H * hd, D, p, side, l, sub, name, "k");
    MAT(v, H * hd, D, p, side, l, sub, name, "v");
    MAT(o, D, H * hd, p, side, l, sub, name, "o");
    return LLMC_OK;
}

static llmc_status t5_ff(llmc_s2s *m, const char *side, size_t l, int sub, s2s_layer *L, size_t F) {
    const size_t D = m->c.d_model;
    const char *p = "%s.block.%zu.layer.%d.DenseReluDense.%s.weight";
    if (m->c.gated) {
        MAT(&L->wi, F, D, p, side, l, sub, "wi_0");
        MAT(&L->wi1, F, D, p, side, l, sub, "wi_1");
    } else {
        MAT(&L->wi, F, D, p, side, l, sub, "wi");
    }
    MAT(&L->wff, D, F, p, side, l, sub, "wo");
    VEC(&L->ln2_w, INIT_ONES, D, "%s.block.%zu.layer.%d.layer_norm.weight", side, l, sub);
    return LLMC_OK;
}

static llmc_status spec_t5(llmc_s2s *m, int has) {
    const llmc_s2s_config *c = &m->c;
    const size_t D = c->d_model, H = c->enc_heads, hd = c->enc_head_dim;
    llmc_status st;
    MAT(&m->shared, c->vocab, D, "shared.weight");
    if (has & S2S_HAS_ENC_EMB) MAT(&m->enc_emb_own, c->vocab, D, "encoder.embed_tokens.weight");
    if (has & S2S_HAS_DEC_EMB) MAT(&m->dec_emb_own, c->vocab, D, "decoder.embed_tokens.weight");
    TAB(&m->enc_rel, c->num_buckets, H, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    for (size_t l = 0; l < c->enc_layers; l++) {
        s2s_layer *L = &m->enc[l];
        VEC(&L->ln1_w, INIT_ONES, D, "encoder.block.%zu.layer.0.layer_norm.weight", l);
        if ((st = t5_attention(m, "encoder", l, 0, "SelfAttention", &L->wq, &L->wk, &L->wv, &L->wo, H, hd)) ||
            (st = t5_ff(m, "encoder", l, 1, L, c->enc_ff)))
            return st;
    }
    VEC(&m->enc_final, INIT_ONES, D, "encoder.final_layer_norm.weight");
    TAB(&m->dec_rel, c->num_buckets, H, "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
    for (size_t l = 0; l < c->dec_layers; l++) {
        s2s_layer *L = &m->dec[l];
        VEC(&L->ln1_w, INIT_ONES, D, "decoder.block.%zu.layer.0.layer_norm.weight", l);
        VEC(&L->lnx_w, INIT_ONES, D, "decoder.block.%zu.layer.1.layer_norm.weight", l);
        if ((st = t5_attention(m, "decoder", l, 0, "SelfAttention", &L->wq, &L->wk, &L->wv, &L->wo, H, hd)) ||
            (st = t5_attention(m, "decoder", l, 1, "EncDecAttention", &L->xq, &L->xk, &L->xv, &L->xo, H, hd)) ||
            (st = t5_ff(m, "decoder", l, 2, L, c->dec_ff)))
            return st;
    }
    VEC(&m->dec_final, INIT_ONES, D, "decoder.final_layer_norm.weight");
    if (has & S2S_HAS_LM_HEAD) MAT(&m->lm_head_own, c->vocab, D, "lm_head.weight");
    return LLMC_OK;
}

/* one BART attention block: {q,k,v,out}_proj weights (H*hd = D) and biases */
static llmc_status bart_attention(llmc_s2s *m, const char *pre, wmat *w[4], float **b[4]) {
    const size_t D = m->c.d_model;
    static const char *const names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
    for (int i = 0; i < 4; i++) {
        MAT(w[i], D, D, "%s.%s.weight", pre, names[i]);
        VEC(b[i], INIT_ZEROS, D, "%s.%s.bias", pre, names[i]);
    }
    return LLMC_OK;
}

static llmc_status bart_side(llmc_s2s *m, const char *side, s2s_layer *layers, size_t n_layers, size_t F,
                             float **pos, float **lne_w, float **lne_b) {
    const size_t D = m->c.d_model;
    char pre[NAME_MAX_LEN];
    llmc_status st;
    const int dec = strstr(side, "decoder") != NULL;
    TAB(pos, m->c.max_positions + 2, D, "%s.embed_positions.weight", side);
    VEC(lne_w, INIT_ONES, D, "%s.layernorm_embedding.weight", side);
    VEC(lne_b, INIT_ZEROS, D, "%s.layernorm_embedding.bias", side);
    for (size_t l = 0; l < n_layers; l++) {
        s2s_layer *L = &layers[l];
        snprintf(pre, sizeof pre, "%s.layers.%zu.self_attn", side, l);
        if ((st = bart_attention(m, pre, (wmat *[4]){&L->wq, &L->wk, &L->wv, &L->wo},
                                 (float **[4]){&L->bq, &L->bk, &L->bv, &L->bo})))
            return st;
        VEC(&L->ln1_w, INIT_ONES, D, "%s.layers.%zu.self_attn_layer_norm.weight", side, l);
        VEC(&L->ln1_b, INIT_ZEROS, D, "%s.layers.%zu.self_attn_layer_norm.bias", side, l);
        if (dec) {
            snprintf(pre, sizeof pre, "%s.layers.%zu.encoder_attn", side, l);
            if ((st = bart_attention(m, pre, (wmat *[4]){&L->xq, &L->xk, &L->xv, &L->xo},
                                     (float **[4]){&L->bxq, &L->bxk, &L->bxv, &L->bxo})))
                return st;
            VEC(&L->lnx_w, INIT_ONES, D, "%s.layers.%zu.encoder_attn_layer_norm.weight", side, l);
            VEC(&L->lnx_b, INIT_ZEROS, D, "%s.layers.%zu.encoder_attn_layer_norm.bias", side, l);
        }
        MAT(&L->wi, F, D, "%s.layers.%zu.fc1.weight", side, l);
        VEC(&L->bi, INIT_ZEROS, F, "%s.layers.%zu.fc1.bias", side, l);
        MAT(&L->wff, D, F, "%s.layers.%zu.fc2.weight", side, l);
        VEC(&L->bff, INIT_ZEROS, D, "%s.layers.%zu.fc2.bias", side, l);
        VEC(&L->ln2_w, INIT_ONES, D, "%s.layers.%zu.final_layer_norm.weight", side, l);
        VEC(&L->ln2_b, INIT_ZEROS, D, "%s.layers.%zu.final_layer_norm.bias", side, l);
    }
    return LLMC_OK;
}

static llmc_status spec_bart(llmc_s2s *m, int has) {
    const llmc_s2s_config *c = &m->c;
    llmc_status st;
    MAT(&m->shared, c->vocab, c->d_model, "model.shared.weight");
    if (has & S2S_HAS_ENC_EMB) MAT(&m->enc_emb_own, c->vocab, c->d_model, "model.encoder.embed_tokens.weight");
    if (has & S2S_HAS_DEC_EMB) MAT(&m->dec_emb_own, c->vocab, c->d_model, "model.decoder.embed_tokens.weight");
    if ((st = bart_side(m, "model.encoder", m->enc, c->enc_layers, c->enc_ff, &m->enc_pos, &m->enc_lne_w,
                        &m->enc_lne_b)) ||
        (st = bart_side(m, "model.decoder", m->dec, c->dec_layers, c->dec_ff, &m->dec_pos, &m->dec_lne_w,
                        &m->dec_lne_b)))
        return st;
    if (has & S2S_HAS_FLB) ADD(&m->final_logits_bias, NULL, INIT_ZEROS, 1, c->vocab, "final_logits_bias");
    if (has & S2S_HAS_LM_HEAD) MAT(&m->lm_head_own, c->vocab, c->d_model, "lm_head.weight");
    return LLMC_OK;
}

llmc_status s2s_create(const llmc_s2s_config *c, int has, llmc_s2s **out) {
    llmc_s2s *m = llmc_calloc(1, sizeof *m, "seq2seq model");
    if (!m) return LLMC_ERR_NOMEM;
    m->c = *c;
    m->c.untied_head = (has & S2S_HAS_LM_HEAD) != 0;
    llmc_status st = LLMC_OK;
    if (!(m->enc = llmc_calloc(c->enc_layers, sizeof(s2s_layer), "encoder layer table")) ||
        !(m->dec = llmc_calloc(c->dec_layers, sizeof(s2s_layer), "decoder layer table")))
        st = LLMC_ERR_NOMEM;
    if (!st) st = c->arch == LLMC_S2S_T5 ? spec_t5(m, has) : spec_bart(m, has);
    if (st) {
        llmc_s2s_free(m);
        return st;
    }
    *out = m;
    return LLMC_OK;
}

void s2s_finish(llmc_s2s *m) {
    for (size_t i = 0; i < m->n_t; i++) {
        tensor_spec *t = &m->t[i];
        if (t->vslot) *t->vslot = t->data;
        if (t->mslot) {
            t->mslot->type = t->type;
            t->mslot->data = t->data;
            t->mslot->in_out = 0;
        }
    }
    m->lm_head = m->lm_head_own.data ? m->lm_head_own : m->shared;
    m->enc_emb = m->enc_emb_own.data ? m->enc_emb_own : m->shared;
    m->dec_emb = m->dec_emb_own.data ? m->dec_emb_own : m->shared;
}

void llmc_s2s_free(llmc_s2s *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n_t; i++)
        if (m->t[i].owned) llmc_free(m->t[i].data);
    if (m->sf) llmc_st_close(m->sf);
    llmc_free(m->t);
    llmc_free(m->enc);
    llmc_free(m->dec);
    llmc_free(m);
}

const llmc_s2s_config *llmc_s2s_get_config(const llmc_s2s *m) { return &m->c; }
size_t llmc_s2s_n_tensors(const llmc_s2s *m) { return m->n_t; }
uint64_t llmc_s2s_encoder_runs(const llmc_s2s *m) { return m->encoder_runs; }

llmc_status llmc_s2s_tensor_typed(const llmc_s2s *m, size_t i, llmc_tensor_view *v) {
    if (i >= m->n_t) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, m->n_t);
    const tensor_spec *t = &m->t[i];
    v->name = t->name;
    v->ndim = t->ndim;
    v->shape[0] = t->shape[0];
    v->shape[1] = t->shape[1];
    v->type = t->type;
    v->transposed = 0;
    v->rows = tensor_rows(t);
    v->cols = tensor_cols(t);
    v->data = t->data;
    v->nbytes = t->nbytes;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- loading */
static int st_type(int dtype) {
    return dtype == LLMC_DT_F32 ? LLMC_TYPE_F32 : dtype == LLMC_DT_F16 ? LLMC_TYPE_F16
           : dtype == LLMC_DT_BF16 ? LLMC_TYPE_BF16 : -1;
}

static const char *arch_name(int arch) { return arch == LLMC_S2S_T5 ? "t5" : "bart"; }

/* the weight type a seq2seq dtype name stands for: one type for every matrix (no mixed recipes), or -1 */
static int dtype_type(const char *dtype) {
    static const char *const ok[] = {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k",
                                     "q6_k"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (!strcmp(dtype, ok[i])) return llmc_type_from_name(dtype);
    return -1;
}

/* shape check and bytes of tensor t from the checkpoint tensor x; want >= 0 converts a matrix to that type */
static llmc_status load_one(tensor_spec *t, const llmc_st_tensor *x, int want, int *mapped) {
    *mapped = 0;
    /* final_logits_bias is (1, V) in the checkpoint; every other tensor has exactly the registered shape */
    int ok = x->ndim == t->ndim && x->shape[0] == t->shape[0] && (t->ndim == 1 || x->shape[1] == t->shape[1]);
    if (!ok) {
        char got[96] = "(", want[64];
        for (int k = 0; k < x->ndim && strlen(got) < 64; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%zu", k ? ", " : "", x->shape[k]);
        strcat(got, ")");
        if (t->ndim == 1) snprintf(want, sizeof want, "(%zu,)", t->shape[0]);
        else snprintf(want, sizeof want, "(%zu, %zu)", t->shape[0], t->shape[1]);
        return llmc_fail(LLMC_ERR_FORMAT, "%s: tensor '%s' has shape %s, the config implies %s", x->file, t->name, got,
                         want);
    }
    const int src = st_type(x->dtype);
    if (src < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; llmc reads F32, F16 and BF16", x->file,
                         x->name, x->dtype_name);
    /* vectors and tables in fp32; matrices as stored, or in the requested type */
    const int type = t->vslot ? LLMC_TYPE_F32 : want >= 0 ? want : src;
    if (type != src && !t->vslot && tensor_cols(t) % llmc_type_block_size(type))
        return llmc_fail(LLMC_ERR_INVALID, "tensor '%s': rows of %zu values are not a whole number of %s blocks of %zu "
                         "values", t->name, tensor_cols(t), llmc_type_name(type), llmc_type_block_size(type));
    size_t rb;
    llmc_status st = llmc_type_row_bytes(type, tensor_cols(t), &rb);
    if (st) return st;
    t->type = type;
    t->nbytes = tensor_rows(t) * rb;
    if (type == src && (uintptr_t)x->data % llmc_type_block_bytes(type) == 0) {
        t->data = (void *)x->data; /* copy-on-write mapping */
        *mapped = 1;
        return LLMC_OK;
    }
    if (!(t->data = llmc_malloc(t->nbytes ? t->nbytes : 1, "seq2seq weights"))) return LLMC_ERR_NOMEM;
    t->owned = 1;
    if (type == LLMC_TYPE_F32) return llmc_st_to_f32(x, t->data);
    if (type == src) {
        memcpy(t->data, x->data, t->nbytes); /* an unaligned F16/BF16 tensor: same bytes, aligned */
        return LLMC_OK;
    }
    /* converted: the checkpoint's values in fp32 (one tensor at a time), then quantized row by row */
    float *f = llmc_malloc(t->numel * sizeof(float) + 1, "fp32 copy of a tensor to convert");
    if (!f) return LLMC_ERR_NOMEM;
    if (!(st = llmc_st_to_f32(x, f))) st = llmc_quantize(type, f, t->data, tensor_rows(t), tensor_cols(t));
    llmc_free(f);
    return st;
}

llmc_status llmc_s2s_load(const char *dir, llmc_s2s **out) { return llmc_s2s_load_as(dir, NULL, out); }

llmc_status llmc_s2s_load_as(const char *dir, const char *dtype, llmc_s2s **out) {
    *out = NULL;
    if (dtype && !*dtype) dtype = NULL;
    const int want = dtype ? dtype_type(dtype) : -1;
    if (dtype && want < 0)
        return llmc_fail(LLMC_ERR_INVALID, "dtype '%s' is not one llmc converts encoder-decoder weights to (f32, f16, "
                         "bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k)", dtype);
    char cpath[4096];
    llmc_json_doc *doc = NULL;
    llmc_status st = model_read_config(dir, &doc, cpath, sizeof cpath);
    if (st) return st;
    llmc_s2s_config c;
    st = s2s_parse_config(llmc_json_root(doc), cpath, &c);
    llmc_json_free(doc);
    if (st) return st;
    llmc_st *sf = NULL;
    if ((st = llmc_st_open_dir(dir, &sf))) return st;
    if (c.enc_layers + c.dec_layers > llmc_st_count(sf)) { /* before allocating per-layer tables */
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: %zu + %zu layers, but the checkpoint holds only %zu tensors", cpath,
                       c.enc_layers, c.dec_layers, llmc_st_count(sf));
        llmc_st_close(sf);
        return st;
    }
    const char *pre = c.arch == LLMC_S2S_BART ? "model." : "";
    char name[NAME_MAX_LEN];
    int has = 0;
    if (llmc_st_find(sf, "lm_head.weight")) has |= S2S_HAS_LM_HEAD;
    if (llmc_st_find(sf, "final_logits_bias")) has |= S2S_HAS_FLB;
    snprintf(name, sizeof name, "%sencoder.embed_tokens.weight", pre);
    if (llmc_st_find(sf, name)) has |= S2S_HAS_ENC_EMB;
    snprintf(name, sizeof name, "%sdecoder.embed_tokens.weight", pre);
    if (llmc_st_find(sf, name)) has |= S2S_HAS_DEC_EMB;
    llmc_s2s *m = NULL;
    if ((st = s2s_create(&c, has, &m))) {
        llmc_st_close(sf);
        return st;
    }
    m->sf = sf;
    int any_mapped = 0;
    for (size_t i = 0; i < m->n_t && !st; i++) {
        tensor_spec *t = &m->t[i];
        const llmc_st_tensor *x = llmc_st_find(sf, t->name);
        if (!x) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: missing tensor '%s' (needed by this %s config)", dir, t->name,
                           arch_name(c.arch));
            break;
        }
        int mapped = 0;
        if ((st = load_one(t, x, want, &mapped))) break;
        if (mapped) any_mapped = 1;
        else llmc_st_release(x); /* converted or copied: its file pages leave the resident set */
    }
    if (st) {
        llmc_s2s_free(m);
        return st;
    }
    if (!any_mapped) {
        llmc_st_close(sf);
        m->sf = NULL;
    }
    s2s_finish(m);
    *out = m;
    return LLMC_OK;
}

llmc_status llmc_s2s_init(const char *config_json, size_t len, uint64_t seed, llmc_s2s **out) {
    *out = NULL;
    llmc_json_doc *doc = NULL;
    llmc_status st = llmc_json_parse(config_json, len, "config", &doc);
    if (st) return st;
    llmc_s2s_config c;
    st = s2s_parse_config(llmc_json_root(doc), "config", &c);
    llmc_json_free(doc);
    if (st) return st;
    llmc_s2s *m;
    if ((st = s2s_create(&c, 0, &m))) return st;
    uint64_t s = seed;
    for (size_t i = 0; i < m->n_t; i++) {
        tensor_spec *t = &m->t[i];
        t->type = LLMC_TYPE_F32;
        t->nbytes = t->numel * sizeof(float);
        if (!(t->data = llmc_malloc(t->nbytes ? t->nbytes : 1, "seq2seq weights (fp32)"))) {
            llmc_s2s_free(m);
            return LLMC_ERR_NOMEM;
        }
        t->owned = 1;
        float *w = t->data;
        for (size_t j = 0; j < t->numel; j++) {
            if (t->init == INIT_ONES) w[j] = 1.0f;
            else if (t->init == INIT_ZEROS) w[j] = 0.0f;
            else {
                w[j] = (float)(0.02 * llmc_rand_normal(&s));
            }
        }
    }
    s2s_finish(m);
    *out = m;
    return LLMC_OK;
}
