/* seq2seq.c: encoder-decoder forward passes (T5, BART): the encoder, the cross-attention keys/values computed once
 * per source, and the decoder state that appends tokens to n beams at once (one matrix product per weight per step
 * for all beams) with per-beam self-attention caches.
 *
 * T5 block (pre-norm, RMS without mean or bias, no biases anywhere):
 *   x += o(attn(rms(x)) + position bias);  [decoder: x += o(cross(rms(x), enc))];  x += ffn(rms(x))
 *   ffn = wo(act(wi h))  (v1.0, ReLU)  or  wo(act(wi_0 h) * wi_1 h)  (v1.1 / flan, gated GELU-tanh)
 *   encoder output = rms(x); logits = lm_head(rms(x) * out_scale) with out_scale = d_model^-0.5 for tied heads.
 * BART block (post-norm LayerNorm with bias, biases everywhere, scores scaled by hd^-0.5):
 *   x = LN(x + o(attn(x)));  [decoder: x = LN(x + o(cross(x, enc)))];  x = LN(x + fc2(act(fc1 x)))
 *   input x = LN_emb(embed(ids) * embed_scale + pos[position + 2]); logits = lm_head(x) + final_logits_bias. */
#include <math.h>
#include <string.h>

#include "seq2seq.h"

/* ---------------------------------------------------------------- activation buffers */
typedef struct {
    float *x, *h, *q, *k, *v, *qh, *kh, *vh, *ah, *a, *f1, *f2, *rel, *tile;
} s2s_acts;

/* Lay out the buffers for R rows of Tq queries per beam over up to Tk keys (heads H, head dim hd, d_ff F) from
 * base; returns the floats needed (0 on overflow). base == NULL only measures. */
static size_t carve(const llmc_s2s_config *c, float *base, size_t R, size_t Tq, size_t Tk, s2s_acts *a) {
    const size_t D = c->d_model;
    const size_t Hd = c->enc_heads * c->enc_head_dim > c->dec_heads * c->dec_head_dim ? c->enc_heads * c->enc_head_dim
                                                                                      : c->dec_heads * c->dec_head_dim;
    const size_t F = c->enc_ff > c->dec_ff ? c->enc_ff : c->dec_ff, H = c->enc_heads > c->dec_heads ? c->enc_heads
                                                                                                   : c->dec_heads;
    size_t off = 0, n, tile;
    int ok = llmc_mul_ok((size_t)llmc_threads(), s2s_biased_scratch(Tk), &tile);
#define TAKE(field, rows, width)                                                                                     \
    do {                                                                                                             \
        a->field = base ? base + off : NULL;                                                                         \
        ok = ok && llmc_mul_ok((rows), (width), &n) && llmc_add_ok(n, 15, &n) && llmc_add_ok(off, n / 16 * 16, &off); \
    } while (0)
    TAKE(x, R, D);          // x: (R, D) residual stream
    TAKE(h, R, D);          // h: (R, D) normed input / sublayer output
    TAKE(q, R, Hd);         // q, k, v: (R, H*hd) token-major projections
    const size_t kr = R > Tk ? R : Tk;
    TAKE(k, kr, Hd);        // (decoder: R rows; encoder: its Tk = T rows)
    TAKE(v, kr, Hd);
    TAKE(qh, R, Hd);        // qh: (B, H, Tq, hd) queries head-major
    TAKE(kh, Tk, Hd);       // kh, vh: (H, Tk, hd) encoder keys / values head-major
    TAKE(vh, Tk, Hd);
    TAKE(ah, R, Hd);        // ah: attention output head-major
    TAKE(a, R, Hd);         // a: (R, H*hd) attention output token-major
    TAKE(f1, R, F);         // f1, f2: (R, F) feed-forward hidden
    TAKE(f2, R, F);
    TAKE(rel, H, Tq + Tk);  // rel: (H, Tq + Tk - 1) T5 bias by relative distance
    TAKE(tile, tile, 1);    // per-thread score tiles of the biased attention
#undef TAKE
    return ok ? off : 0;
}

static float *alloc_acts(const llmc_s2s_config *c, size_t R, size_t Tq, size_t Tk, s2s_acts *a) {
    size_t n = carve(c, NULL, R, Tq, Tk, a), bytes;
    if (!n || !llmc_mul_ok(n, sizeof(float), &bytes)) {
        llmc_fail(LLMC_ERR_NOMEM, "activations for %zu rows over %zu keys overflow", R, Tk);
        return NULL;
    }
    float *p = llmc_malloc(bytes, "seq2seq activations");
    if (p) carve(c, p, R, Tq, Tk, a);
    return p;
}

/* ---------------------------------------------------------------- building blocks */
/* y (R, out) = beta * y + x (R, in) @ W^T, W: (out, in) of any type. Beam search multiplies every weight by a
 * handful of rows (one per beam): llmc_matmul_typed's few-row path streams an F32 weight once for all of them. */
static llmc_status matmul(const wmat *w, const float *x, float *y, size_t R, size_t in, size_t out, float beta) {
    return llmc_matmul_typed(w->type, w->data, x, y, R, in, out, beta);
}

/* y (R, out) = x (R, in) @ W^T (+ b), W: (out, in) of any type */
static llmc_status linear(const float *x, const wmat *w, const float *b, float *y, size_t R, size_t in, size_t out) {
    if (b)
        for (size_t r = 0; r < R; r++) memcpy(y + r * out, b, out * sizeof(float));
    return matmul(w, x, y, R, in, out, b ? 1.0f : 0.0f);
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* x (B, T, H, hd) token-major -> dst (B, H, rows, hd) at row r0 of each head (rows: the destination's row count) */
static void to_heads(const float *x, float *dst, size_t B, size_t T, size_t H, size_t hd, size_t rows, size_t r0,
                     size_t dst_sb) {
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++)
                memcpy(dst + b * dst_sb + (h * rows + r0 + t) * hd, x + ((b * T + t) * H + h) * hd, hd * sizeof(float));
}

/* x (B, H, T, hd) -> dst (B, T, H*hd) */
static void from_heads(const float *x, float *dst, size_t B, size_t T, size_t H, size_t hd) {
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++)
                memcpy(dst + ((b * T + t) * H + h) * hd, x + ((b * H + h) * T + t) * hd, hd * sizeof(float));
}

static llmc_status activation(const llmc_s2s_config *c, float *x, size_t n) {
    switch (c->act) {
    case LLMC_FN_RELU:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        return LLMC_OK;
    case LLMC_FN_GELU: return llmc_gelu(x, x, n, 0);
    case LLMC_FN_GELU_TANH: return llmc_gelu(x, x, n, 1);
    default: return llmc_silu(x, x, n);
    }
}

/* The feed-forward of layer L on h (R, D) -> y (R, D): y = wff(act(wi h + bi) [* wi1 h]) + bff; y is overwritten
 * (beta 0) or added to (add = 1, T5's residual). */
static llmc_status feed_forward(const llmc_s2s_config *c, const s2s_layer *L, size_t F, s2s_acts *a, const float *h,
                                float *y, size_t R, int add) {
    const size_t D = c->d_model;
    llmc_status st;
    if ((st = linear(h, &L->wi, L->bi, a->f1, R, D, F))) return st;
    if ((st = activation(c, a->f1, R * F))) return st;
    if (c->gated) { // f1 = act(wi_0 h) * (wi_1 h): (R, F)
        if ((st = linear(h, &L->wi1, NULL, a->f2, R, D, F))) return st;
        for (size_t i = 0; i < R * F; i++) a->f1[i] *= a->f2[i];
    }
    if (add && !L->bff) return matmul(&L->wff, a->f1, y, R, F, D, 1.0f);
    return linear(a->f1, &L->wff, L->bff, y, R, F, D);
}

/* token embeddings of R ids from table (V, D), times scale: x (R, D); F16/BF16 tables are decoded row by row */
static llmc_status embed(const llmc_s2s *m, const wmat *table, const int64_t *ids, size_t R, float *x) {
    const size_t D = m->c.d_model, V = m->c.vocab;
    llmc_status st = LLMC_OK;
    if (table->type == LLMC_TYPE_F32) st = llmc_embedding(table->data, V, D, ids, R, x);
    else {
        size_t rb;
        st = llmc_type_row_bytes(table->type, D, &rb);
        for (size_t r = 0; r < R && !st; r++)
            st = llmc_dequantize(table->type, (const char *)table->data + (size_t)ids[r] * rb, x + r * D, 1, D);
    }
    if (!st && m->c.embed_scale != 1.0f)
        for (size_t i = 0; i < R * D; i++) x[i] *= m->c.embed_scale;
    return st;
}

/* BART: x (B, T, D) += pos[(n + t) + 2], then x = LN_emb(x) */
static llmc_status bart_positions(const llmc_s2s *m, const float *pos, const float *w, const float *b, float *x,
                                  size_t B, size_t T, size_t n) {
    const size_t D = m->c.d_model;
    for (size_t bt = 0; bt < B * T; bt++) add_inplace(x + bt * D, pos + (n + bt % T + 2) * D, D);
    return llmc_layer_norm(x, w, b, x, B * T, D, m->c.eps);
}

static llmc_status check_ids(const llmc_s2s *m, const int64_t *ids, size_t n, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= m->c.vocab)
            return llmc_fail(LLMC_ERR_INVALID, "%s token id %lld at index %zu is outside the vocabulary [0, %zu)", what,
                             (long long)ids[i], i, m->c.vocab);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- encoder */
/* One encoder layer in place on a->x: (T, D). probs: (H, T, T) or NULL. */
static llmc_status encoder_layer(const llmc_s2s *m, const s2s_layer *L, s2s_acts *a, size_t T, int attn,
                                 float *probs) {
    const llmc_s2s_config *c = &m->c;
    const size_t D = c->d_model, H = c->enc_heads, hd = c->enc_head_dim, Hd = H * hd;
    const int t5 = c->arch == LLMC_S2S_T5;
    llmc_status st;
    const float *in = a->x;
    if (t5) {
        if ((st = llmc_rms_norm(a->x, L->ln1_w, a->h, T, D, c->eps))) return st;
        in = a->h;
    }
    // q, k, v: (T, H*hd) -> qh, kh, vh: (H, T, hd)
    if ((st = linear(in, &L->wq, L->bq, a->q, T, D, Hd)) || (st = linear(in, &L->wk, L->bk, a->k, T, D, Hd)) ||
        (st = linear(in, &L->wv, L->bv, a->v, T, D, Hd)))
        return st;
    to_heads(a->q, a->qh, 1, T, H, hd, T, 0, 0);
    to_heads(a->k, a->kh, 1, T, H, hd, T, 0, 0);
    to_heads(a->v, a->vh, 1, T, H, hd, T, 0, 0);
    if (t5) {
        st = s2s_biased_attention(a->qh, a->kh, a->vh, 0, T * hd, a->ah, 1, H, T, T, hd, a->rel, 0, probs, a->tile);
    } else {
        llmc_attention_args aa;
        memset(&aa, 0, sizeof aa);
        aa.q = a->qh, aa.k = a->kh, aa.v = a->vh, aa.out = a->ah;
        aa.B = 1, aa.Hq = aa.Hkv = H, aa.Tq = aa.Tk = T, aa.d = hd;
        aa.impl = probs ? LLMC_ATTN_STANDARD : attn;
        aa.scale = 1.0f / sqrtf((float)hd);
        aa.weights = probs;
        st = llmc_attention(&aa);
    }
    if (st) return st;
    from_heads(a->ah, a->a, 1, T, H, hd);
    if (t5) {
        // x += a @ Wo^T; x += ffn(rms(x))
        if ((st = matmul(&L->wo, a->a, a->x, T, Hd, D, 1.0f)) ||
            (st = llmc_rms_norm(a->x, L->ln2_w, a->h, T, D, c->eps)))
            return st;
        return feed_forward(c, L, c->enc_ff, a, a->h, a->x, T, 1);
    }
    // x = LN(x + a Wo^T + bo); x = LN(x + ffn(x))
    if ((st = linear(a->a, &L->wo, L->bo, a->h, T, Hd, D))) return st;
    add_inplace(a->h, a->x, T * D);
    if ((st = llmc_layer_norm(a->h, L->ln1_w, L->ln1_b, a->x, T, D, c->eps)) ||
        (st = feed_forward(c, L, c->enc_ff, a, a->x, a->h, T, 0)))
        return st;
    add_inplace(a->h, a->x, T * D);
    return llmc_layer_norm(a->h, L->ln2_w, L->ln2_b, a->x, T, D, c->eps);
}

llmc_status llmc_s2s_encode(const llmc_s2s *m, const int64_t *ids, size_t T, int attn, float *out,
                            size_t probs_layer, float *probs) {
    const llmc_s2s_config *c = &m->c;
    const size_t D = c->d_model;
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "the source is empty: the encoder needs at least one token");
    if (c->arch == LLMC_S2S_BART && T > c->max_positions)
        return llmc_fail(LLMC_ERR_INVALID, "the source has %zu tokens, more than BART's %zu positions "
                         "(max_position_embeddings)", T, c->max_positions);
    if (probs && probs_layer >= c->enc_layers)
        return llmc_fail(LLMC_ERR_INVALID, "layer %zu out of range: the encoder has %zu layers", probs_layer,
                         c->enc_layers);
    if (attn != LLMC_ATTN_STANDARD && attn != LLMC_ATTN_FLASH)
        return llmc_fail(LLMC_ERR_INVALID, "unknown attention implementation %d", attn);
    llmc_status st = check_ids(m, ids, T, "source");
    if (st) return st;
    s2s_acts a;
    float *buf = alloc_acts(c, T, T, T, &a);
    if (!buf) return LLMC_ERR_NOMEM;
    if ((st = embed(m, &m->enc_emb, ids, T, a.x))) goto done;
    if (c->arch == LLMC_S2S_BART && (st = bart_positions(m, m->enc_pos, m->enc_lne_w, m->enc_lne_b, a.x, 1, T, 0)))
        goto done;
    if (c->arch == LLMC_S2S_T5) s2s_rel_table(c, m->enc_rel, c->enc_heads, T, T, 1, a.rel);
    for (size_t l = 0; l < c->enc_layers && !st; l++) {
        if (llmc_interrupted()) st = LLMC_ERR_INTERRUPTED;
        else st = encoder_layer(m, &m->enc[l], &a, T, attn, probs && l == probs_layer ? probs : NULL);
    }
    if (st) goto done;
    if (c->arch == LLMC_S2S_T5) st = llmc_rms_norm(a.x, m->enc_final, out, T, D, c->eps);
    else memcpy(out, a.x, T * D * sizeof(float));
    ((llmc_s2s *)m)->encoder_runs++; /* atomic: a statistic that concurrent encodes may bump */
done:
    llmc_free(buf);
    return st;
}

/* ---------------------------------------------------------------- decoder state */
static inline float *self_k(const llmc_s2s_dec *d, size_t l) { // (B, H, cap, hd)
    const llmc_s2s_config *c = &d->m->c;
    return d->kv + l * 2 * d->B * c->dec_heads * d->cap * c->dec_head_dim;
}
static inline float *self_v(const llmc_s2s_dec *d, size_t l) {
    return self_k(d, l) + d->B * d->m->c.dec_heads * d->cap * d->m->c.dec_head_dim;
}
static inline float *cross_k(const llmc_s2s_dec *d, size_t l) { // (H, T_in, hd)
    const llmc_s2s_config *c = &d->m->c;
    return d->cross + l * 2 * c->dec_heads * d->T_in * c->dec_head_dim;
}
static inline float *cross_v(const llmc_s2s_dec *d, size_t l) {
    return cross_k(d, l) + d->m->c.dec_heads * d->T_in * d->m->c.dec_head_dim;
}

void llmc_s2s_dec_free(llmc_s2s_dec *d) {
    if (!d) return;
    llmc_free(d->cross);
    llmc_free(d->kv);
    llmc_free(d->tmp);
    llmc_free(d->tokens);
    llmc_free(d->scratch);
    llmc_free(d);
}

size_t llmc_s2s_dec_n_tokens(const llmc_s2s_dec *d) { return d->n; }
void llmc_s2s_dec_reset(llmc_s2s_dec *d) { d->n = 0; }

/* scratch for R rows of T queries per beam over up to cap keys (kept; grown only for a longer chunk) */
static llmc_status dec_scratch(llmc_s2s_dec *d, size_t R, size_t T, s2s_acts *a) {
    const size_t Tk = d->cap > d->T_in ? d->cap : d->T_in;
    if (R > d->scratch_rows || T > d->scratch_keys) {
        const size_t nR = R > d->scratch_rows ? R : d->scratch_rows, nT = T > d->scratch_keys ? T : d->scratch_keys;
        s2s_acts probe;
        float *p = alloc_acts(&d->m->c, nR, nT, Tk, &probe);
        if (!p) return LLMC_ERR_NOMEM;
        llmc_free(d->scratch);
        d->scratch = p;
        d->scratch_rows = nR;
        d->scratch_keys = nT; /* the queries per beam the rel table was sized for */
    }
    carve(&d->m->c, d->scratch, d->scratch_rows, d->scratch_keys, Tk, a);
    return LLMC_OK;
}

llmc_status llmc_s2s_dec_new(const llmc_s2s *m, const float *enc, size_t T_in, size_t n_beams, size_t capacity,
                             int attn, llmc_s2s_dec **out) {
    *out = NULL;
    const llmc_s2s_config *c = &m->c;
    const size_t D = c->d_model, H = c->dec_heads, hd = c->dec_head_dim, Hd = H * hd, L = c->dec_layers;
    if (T_in == 0) return llmc_fail(LLMC_ERR_INVALID, "the encoder output is empty (T_in = 0)");
    if (n_beams == 0) return llmc_fail(LLMC_ERR_INVALID, "n_beams must be >= 1, got 0");
    if (capacity == 0) return llmc_fail(LLMC_ERR_INVALID, "the decoder capacity must be >= 1, got 0");
    if (c->arch == LLMC_S2S_BART && capacity > c->max_positions)
        return llmc_fail(LLMC_ERR_INVALID, "decoder capacity %zu exceeds BART's %zu positions "
                         "(max_position_embeddings)", capacity, c->max_positions);
    if (attn != LLMC_ATTN_STANDARD && attn != LLMC_ATTN_FLASH)
        return llmc_fail(LLMC_ERR_INVALID, "unknown attention implementation %d", attn);
    llmc_s2s_dec *d = llmc_calloc(1, sizeof *d, "decoder state");
    if (!d) return LLMC_ERR_NOMEM;
    d->m = m;
    d->B = n_beams;
    d->cap = capacity;
    d->T_in = T_in;
    d->attn = attn;
    size_t ncross, nkv, ntmp, ntok;
    llmc_status st = LLMC_OK;
    if (!llmc_size3(L * 2, Hd, T_in, sizeof(float), &ncross) || !llmc_size3(L * 2 * n_beams, Hd, capacity,
                                                                           sizeof(float), &nkv) ||
        !llmc_size3(n_beams, Hd < 2 ? 2 : Hd, capacity, sizeof(float), &ntmp) || /* also holds (B, cap) int64 */
        !llmc_size3(n_beams, capacity, 1, sizeof(int64_t), &ntok))
        st = llmc_fail(LLMC_ERR_NOMEM, "decoder caches for %zu beams of %zu tokens over %zu source tokens overflow",
                       n_beams, capacity, T_in);
    else if (!(d->cross = llmc_malloc(ncross, "cross-attention keys/values")) ||
             !(d->kv = llmc_malloc(nkv, "decoder KV cache")) || !(d->tmp = llmc_malloc(ntmp, "beam reorder buffer")) ||
             !(d->tokens = llmc_malloc(ntok, "decoder tokens")))
        st = LLMC_ERR_NOMEM;
    s2s_acts a;
    if (!st) st = dec_scratch(d, n_beams, 1, &a); /* one token per beam: decoding allocates nothing after this */
    // cross K/V of every decoder layer, once: k = enc @ Wk^T (+ bk): (T_in, H*hd) -> (H, T_in, hd)
    float *kv_rows = NULL;
    if (!st && !(kv_rows = llmc_malloc(T_in * Hd * sizeof(float), "cross-attention projections"))) st = LLMC_ERR_NOMEM;
    for (size_t l = 0; l < L && !st; l++) {
        const s2s_layer *Ly = &m->dec[l];
        if ((st = linear(enc, &Ly->xk, Ly->bxk, kv_rows, T_in, D, Hd))) break;
        to_heads(kv_rows, cross_k(d, l), 1, T_in, H, hd, T_in, 0, 0);
        if ((st = linear(enc, &Ly->xv, Ly->bxv, kv_rows, T_in, D, Hd))) break;
        to_heads(kv_rows, cross_v(d, l), 1, T_in, H, hd, T_in, 0, 0);
    }
    llmc_free(kv_rows);
    if (st) {
        llmc_s2s_dec_free(d);
        return st;
    }
    *out = d;
    return LLMC_OK;
}

llmc_status llmc_s2s_dec_reorder(llmc_s2s_dec *d, const int64_t *parents) {
    const llmc_s2s_config *c = &d->m->c;
    const size_t B = d->B, H = c->dec_heads, hd = c->dec_head_dim, blk = H * d->cap * hd;
    for (size_t b = 0; b < B; b++)
        if (parents[b] < 0 || (uint64_t)parents[b] >= B)
            return llmc_fail(LLMC_ERR_INVALID, "parent %lld of beam %zu is outside [0, %zu)", (long long)parents[b], b,
                             B);
    /* beams that change: stage their parents' rows first (a parent may itself be overwritten), then copy back */
    for (size_t l = 0; l < c->dec_layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            float *base = kv ? self_v(d, l) : self_k(d, l); // (B, H, cap, hd)
            for (size_t b = 0; b < B; b++)
                if ((size_t)parents[b] != b)
                    for (size_t h = 0; h < H; h++)
                        memcpy(d->tmp + b * blk + h * d->cap * hd, base + (size_t)parents[b] * blk + h * d->cap * hd,
                               d->n * hd * sizeof(float));
            for (size_t b = 0; b < B; b++)
                if ((size_t)parents[b] != b)
                    for (size_t h = 0; h < H; h++)
                        memcpy(base + b * blk + h * d->cap * hd, d->tmp + b * blk + h * d->cap * hd,
                               d->n * hd * sizeof(float));
        }
    int64_t *tk = (int64_t *)d->tmp; /* (B, n) token histories, staged the same way */
    for (size_t b = 0; b < B; b++)
        memcpy(tk + b * d->n, d->tokens + (size_t)parents[b] * d->cap, d->n * sizeof(int64_t));
    for (size_t b = 0; b < B; b++) memcpy(d->tokens + b * d->cap, tk + b * d->n, d->n * sizeof(int64_t));
    return LLMC_OK;
}

/* One decoder layer in place on a->x: (B*T, D) for T new tokens per beam at position d->n. */
static llmc_status decoder_layer(llmc_s2s_dec *d, size_t l, s2s_acts *a, size_t T, float *cross_probs) {
    const llmc_s2s *m = d->m;
    const llmc_s2s_config *c = &m->c;
    const s2s_layer *L = &m->dec[l];
    const size_t D = c->d_model, H = c->dec_heads, hd = c->dec_head_dim, Hd = H * hd, B = d->B, R = B * T;
    const size_t Tk = d->n + T, kh_stride = d->cap * hd, kb_stride = H * d->cap * hd;
    const int t5 = c->arch == LLMC_S2S_T5;
    const float scale = t5 ? 1.0f : 1.0f / sqrtf((float)hd);
    llmc_status st;
    /* ---- self-attention over each beam's cache */
    const float *in = a->x;
    if (t5) {
        if ((st = llmc_rms_norm(a->x, L->ln1_w, a->h, R, D, c->eps))) return st;
        in = a->h;
    }
    if ((st = linear(in, &L->wq, L->bq, a->q, R, D, Hd)) || (st = linear(in, &L->wk, L->bk, a->k, R, D, Hd)) ||
        (st = linear(in, &L->wv, L->bv, a->v, R, D, Hd)))
        return st;
    // qh: (B, H, T, hd); the new keys/values go to cache rows n .. n+T-1 of each beam
    to_heads(a->q, a->qh, B, T, H, hd, T, 0, Hd * T);
    to_heads(a->k, self_k(d, l), B, T, H, hd, d->cap, d->n, kb_stride);
    to_heads(a->v, self_v(d, l), B, T, H, hd, d->cap, d->n, kb_stride);
    if (t5) {
        st = s2s_biased_attention(a->qh, self_k(d, l), self_v(d, l), kb_stride, kh_stride, a->ah, B, H, T, Tk, hd,
                                  a->rel, 1, NULL, a->tile);
    } else {
        llmc_attention_args aa;
        memset(&aa, 0, sizeof aa);
        aa.q = a->qh, aa.k = self_k(d, l), aa.v = self_v(d, l), aa.out = a->ah;
        aa.B = B, aa.Hq = aa.Hkv = H, aa.Tq = T, aa.Tk = Tk, aa.d = hd;
        aa.k_sb = aa.v_sb = kb_stride, aa.k_sh = aa.v_sh = kh_stride;
        aa.impl = d->attn, aa.causal = 1, aa.scale = scale;
        st = llmc_attention(&aa);
    }
    if (st) return st;
    from_heads(a->ah, a->a, B, T, H, hd);
    if (t5) {
        if ((st = matmul(&L->wo, a->a, a->x, R, Hd, D, 1.0f)) ||
            (st = llmc_rms_norm(a->x, L->lnx_w, a->h, R, D, c->eps)))
            return st;
        in = a->h;
    } else {
        if ((st = linear(a->a, &L->wo, L->bo, a->h, R, Hd, D))) return st;
        add_inplace(a->h, a->x, R * D);
        if ((st = llmc_layer_norm(a->h, L->ln1_w, L->ln1_b, a->x, R, D, c->eps))) return st;
        in = a->x;
    }
    /* ---- cross-attention: all B*T rows are queries over the same source keys, so one call covers every beam */
    if ((st = linear(in, &L->xq, L->bxq, a->q, R, D, Hd))) return st;
    to_heads(a->q, a->qh, 1, R, H, hd, R, 0, 0); // qh: (H, R, hd)
    llmc_attention_args ca;
    memset(&ca, 0, sizeof ca);
    ca.q = a->qh, ca.k = cross_k(d, l), ca.v = cross_v(d, l), ca.out = a->ah;
    ca.B = 1, ca.Hq = ca.Hkv = H, ca.Tq = R, ca.Tk = d->T_in, ca.d = hd;
    ca.impl = cross_probs ? LLMC_ATTN_STANDARD : d->attn, ca.scale = scale, ca.weights = cross_probs;
    if ((st = llmc_attention(&ca))) return st;
    from_heads(a->ah, a->a, 1, R, H, hd); // a: (R, H*hd)
    if (t5) {
        if ((st = matmul(&L->xo, a->a, a->x, R, Hd, D, 1.0f)) ||
            (st = llmc_rms_norm(a->x, L->ln2_w, a->h, R, D, c->eps)))
            return st;
        return feed_forward(c, L, c->dec_ff, a, a->h, a->x, R, 1);
    }
    if ((st = linear(a->a, &L->xo, L->bxo, a->h, R, Hd, D))) return st;
    add_inplace(a->h, a->x, R * D);
    if ((st = llmc_layer_norm(a->h, L->lnx_w, L->lnx_b, a->x, R, D, c->eps)) ||
        (st = feed_forward(c, L, c->dec_ff, a, a->x, a->h, R, 0)))
        return st;
    add_inplace(a->h, a->x, R * D);
    return llmc_layer_norm(a->h, L->ln2_w, L->ln2_b, a->x, R, D, c->eps);
}

/* logits (rows, V) of normed states h (rows, D) */
static llmc_status readout(const llmc_s2s *m, const float *h, size_t rows, float *logits) {
    const size_t V = m->c.vocab;
    llmc_status st = matmul(&m->lm_head, h, logits, rows, m->c.d_model, V, 0.0f);
    if (!st && m->final_logits_bias)
        for (size_t r = 0; r < rows; r++) add_inplace(logits + r * V, m->final_logits_bias, V);
    return st;
}

llmc_status llmc_s2s_dec_append(llmc_s2s_dec *d, const int64_t *ids, size_t T, float *logits, int all_logits,
                                size_t probs_layer, float *cross_probs) {
    const llmc_s2s *m = d->m;
    const llmc_s2s_config *c = &m->c;
    const size_t D = c->d_model, B = d->B, R = B * T;
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "append needs at least one decoder token");
    if (d->n + T > d->cap)
        return llmc_fail(LLMC_ERR_INVALID, "decoder capacity exceeded: %zu cached + %zu new tokens > %zu", d->n, T,
                         d->cap);
    if (cross_probs && (B != 1 || probs_layer >= c->dec_layers))
        return llmc_fail(LLMC_ERR_INVALID, "cross-attention weights need one beam and a layer in [0, %zu), got %zu "
                         "beams and layer %zu", c->dec_layers, B, probs_layer);
    size_t R_chk;
    if (!llmc_mul_ok(B, T, &R_chk)) return llmc_fail(LLMC_ERR_NOMEM, "%zu beams x %zu tokens overflow", B, T);
    llmc_status st = check_ids(m, ids, R, "decoder");
    if (st) return st;
    s2s_acts a;
    if ((st = dec_scratch(d, R, T, &a))) return st;
    if ((st = embed(m, &m->dec_emb, ids, R, a.x))) return st;
    if (c->arch == LLMC_S2S_BART && (st = bart_positions(m, m->dec_pos, m->dec_lne_w, m->dec_lne_b, a.x, B, T, d->n)))
        return st;
    if (c->arch == LLMC_S2S_T5) s2s_rel_table(c, m->dec_rel, c->dec_heads, T, d->n + T, 0, a.rel);
    for (size_t l = 0; l < c->dec_layers; l++) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED;
        if ((st = decoder_layer(d, l, &a, T, cross_probs && l == probs_layer ? cross_probs : NULL))) return st;
    }
    if (logits) {
        /* the rows to read out: all of them, or each beam's last */
        const size_t rows = all_logits ? R : B;
        if (!all_logits)
            for (size_t b = 0; b < B; b++) memmove(a.x + b * D, a.x + (b * T + T - 1) * D, D * sizeof(float));
        if (c->arch == LLMC_S2S_T5) {
            if ((st = llmc_rms_norm(a.x, m->dec_final, a.h, rows, D, c->eps))) return st;
            if (c->out_scale != 1.0f)
                for (size_t i = 0; i < rows * D; i++) a.h[i] *= c->out_scale;
            st = readout(m, a.h, rows, logits);
        } else {
            st = readout(m, a.x, rows, logits);
        }
        if (st) return st;
    }
    for (size_t b = 0; b < B; b++) memcpy(d->tokens + b * d->cap + d->n, ids + b * T, T * sizeof(int64_t));
    d->n += T;
    return LLMC_OK;
}
