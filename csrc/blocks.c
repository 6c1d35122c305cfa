/* blocks.c: the forward pass: one function per block type (gpt2, llama family, bert), the embeddings, the final
 * norm, and the stack over a chunk of tokens appended to a session. latent_fire() marks the hook points of the named
 * activations (latent.c, docs/latent.md): with no hook attached each is one integer test. */
#include <math.h>
#include <string.h>

#include "blas.h"
#include "latent.h"
#include "model_internal.h"

/* ---------------------------------------------------------------- building blocks */
/* y = beta * y + x @ W^T, W: (out, in) of any type: the one dispatch point of every linear layer (quant_matmul.c
 * picks BLAS for F32, integer dot products for decoding quantized weights, dequantized tiles + sgemm for prefill).
 * x: (T, in), y: (T, out) */
static llmc_status matmul_w(const float *x, const wmat *w, float *y, size_t T, size_t in, size_t out, float beta) {
    if (!w->in_out) return llmc_matmul_typed(w->type, w->data, x, y, T, in, out, beta);
    /* an F32 GPT-2 Conv1D weight kept as the checkpoint stores it, W: (in, out): y = x @ W. One token is a
     * matrix-vector product (sgemv streams W once, where sgemm would pack it first). */
    const float *wf = w->data;
    if (T != 1) return llmc_sgemm(0, 0, T, out, in, 1.0f, x, in, wf, out, beta, y, out);
    return llmc_sgemv(1, in, out, 1.0f, wf, out, x, beta, y); /* y (out,) = W^T @ x */
}

/* y = x @ W^T + b, W: (out, in) of any type. x: (T, in), y: (T, out), b: (out,) or NULL */
static llmc_status linear(const float *x, const wmat *w, const float *b, float *y, size_t T, size_t in, size_t out) {
    if (b)
        for (size_t t = 0; t < T; t++) memcpy(y + t * out, b, out * sizeof(float)); /* beta = 1 adds x @ W^T onto b */
    return matmul_w(x, w, y, T, in, out, b ? 1.0f : 0.0f);
}

/* rows ids of an embedding table (vocab, dim) of any type -> out: (n, dim); a quantized row is dequantized */
static llmc_status embed_rows(const wmat *table, size_t vocab, size_t dim, const int64_t *ids, size_t n, float *out) {
    if (table->type == LLMC_TYPE_F32) return llmc_embedding(table->data, vocab, dim, ids, n, out);
    size_t rb;
    llmc_status st = llmc_type_row_bytes(table->type, dim, &rb);
    for (size_t i = 0; i < n && !st; i++) {
        if (ids[i] < 0 || (uint64_t)ids[i] >= vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, vocab);
        st = llmc_dequantize(table->type, (const char *)table->data + (size_t)ids[i] * rb, out + i * dim, 1, dim);
    }
    return st;
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

static void clamp(float *x, size_t n, float lim) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < -lim ? -lim : x[i] > lim ? lim : x[i];
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* x += in @ W^T (+ b), the sublayer output (T, D) written to the residual stream x. Without bias and hooks BLAS adds
 * it in place; otherwise it goes through tmp, where the hook point `act` sees it first. */
static llmc_status project_add(llmc_session *s, int act, size_t l, const float *in, const wmat *w, const float *b,
                               float *x, float *tmp, size_t T, size_t n_in, size_t D) {
    if (!b && !s->n_hooks) return matmul_w(in, w, x, T, n_in, D, 1.0f);
    llmc_status st = linear(in, w, b, tmp, T, n_in, D);
    if (st || (st = latent_fire(s, act, l, tmp, T, T))) return st;
    add_inplace(x, tmp, T * D);
    return LLMC_OK;
}

/* the hook points of q, k, v (k and v are read in the cache, at rows n .. n+T-1) and where the pattern goes */
static llmc_status fire_qkv(llmc_session *s, size_t l, float *qh, size_t T, float **probs) {
    const size_t hd = s->m->c.head_dim;
    llmc_status st;
    if (!s->n_hooks) return LLMC_OK;
    if ((st = latent_fire(s, LLMC_ACT_ATTN_Q, l, qh, T, T)) ||
        (st = latent_fire(s, LLMC_ACT_ATTN_K, l, cache_k(s, l) + s->n * hd, s->cap, T)) ||
        (st = latent_fire(s, LLMC_ACT_ATTN_V, l, cache_v(s, l) + s->n * hd, s->cap, T)))
        return st;
    return *probs ? LLMC_OK : latent_pattern(s, l, T, probs);
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
    if ((st = latent_fire(s, LLMC_ACT_RESID_PRE, l, a->x, T, T)) ||
        (st = llmc_rms_norm(a->x, L->ln1_w, a->h, T, D, c->norm_eps)))
        return st;
    // q: (T, H, hd); k, v: (T, Hk, hd)
    if ((st = linear(a->h, &L->wq, L->bq, a->q, T, D, H * hd)) || (st = linear(a->h, &L->wk, L->bk, a->k, T, D, Hk * hd)) ||
        (st = linear(a->h, &L->wv, L->bv, a->v, T, D, Hk * hd)))
        return st;
    if (L->q_norm && c->qk_norm_full) { /* olmoe: RMSNorm over the whole projection of each token */
        if ((st = llmc_rms_norm(a->q, L->q_norm, a->q, T, H * hd, c->norm_eps)) ||
            (st = llmc_rms_norm(a->k, L->k_norm, a->k, T, Hk * hd, c->norm_eps)))
            return st;
    } else if (L->q_norm) { /* qwen3: RMSNorm over each head vector before RoPE */
        if ((st = llmc_rms_norm(a->q, L->q_norm, a->q, T * H, hd, c->norm_eps)) ||
            (st = llmc_rms_norm(a->k, L->k_norm, a->k, T * Hk, hd, c->norm_eps)))
            return st;
    }
    if (c->clip_qkv > 0) { /* olmoe: q, k, v clamped to [-clip, clip] */
        clamp(a->q, T * H * hd, c->clip_qkv);
        clamp(a->k, T * Hk * hd, c->clip_qkv);
        clamp(a->v, T * Hk * hd, c->clip_qkv);
    }
    rope_rows(a->q, T, H, hd, a->cs, a->sn);
    rope_rows(a->k, T, Hk, hd, a->cs, a->sn);
    // qh: (H, T, hd); new keys/values go to cache rows n .. n+T-1
    to_heads(a->q, a->qh, T, H, hd, T, 0);
    to_heads(a->k, cache_k(s, l), T, Hk, hd, s->cap, s->n);
    to_heads(a->v, cache_v(s, l), T, Hk, hd, s->cap, s->n);
    // ah: (H, T, hd) -> a: (T, H*hd)
    if ((st = fire_qkv(s, l, a->qh, T, &probs)) ||
        (st = attend(s, a->qh, cache_k(s, l), cache_v(s, l), T, s->n + T, a->ah, probs)) ||
        (st = latent_fire(s, LLMC_ACT_ATTN_Z, l, a->ah, T, T)))
        return st;
    from_heads(a->ah, a->a, T, H, hd);
    // x += a @ Wo^T
    if ((st = project_add(s, LLMC_ACT_ATTN_OUT, l, a->a, &L->wo, NULL, a->x, a->h, T, H * hd, D)) ||
        (st = latent_fire(s, LLMC_ACT_RESID_MID, l, a->x, T, T)))
        return st;
    if (L->moe) { /* a sparse mixture of experts in place of the MLP (moe.c) */
        if ((st = llmc_rms_norm(a->x, L->ln2_w, a->h, T, D, c->norm_eps)) || (st = moe_block_forward(s, l, a->h, a->x, T)))
            return st;
        return latent_fire(s, LLMC_ACT_RESID_POST, l, a->x, T, T);
    }
    // SwiGLU MLP: f1 = silu(h Wg^T) * (h Wu^T): (T, F)
    if ((st = llmc_rms_norm(a->x, L->ln2_w, a->h, T, D, c->norm_eps)) || (st = linear(a->h, &L->w_gate, NULL, a->f1, T, D, F)) ||
        (st = latent_fire(s, LLMC_ACT_MLP_PRE, l, a->f1, T, T)) ||
        (st = linear(a->h, &L->w_up, NULL, a->f2, T, D, F)) || (st = llmc_silu(a->f1, a->f1, T * F)))
        return st;
    for (size_t i = 0; i < T * F; i++) a->f1[i] *= a->f2[i];
    if ((st = latent_fire(s, LLMC_ACT_MLP_POST, l, a->f1, T, T)) ||
        (st = project_add(s, LLMC_ACT_MLP_OUT, l, a->f1, &L->w_down, NULL, a->x, a->h, T, F, D)))
        return st;
    return latent_fire(s, LLMC_ACT_RESID_POST, l, a->x, T, T);
}

/* GPT-2 block, in place on x: (T, D); Conv1D weights are (in, out) in F32, transposed to (out, in) otherwise.
 *   x += c_proj(attn(split(c_attn(ln_1(x)))));  x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x)))) */
static llmc_status block_gpt2(llmc_session *s, size_t l, acts *a, size_t T, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const size_t D = c->d_model, H = c->n_heads, hd = c->head_dim, F = c->d_ff;
    llmc_status st;
    if ((st = latent_fire(s, LLMC_ACT_RESID_PRE, l, a->x, T, T)) ||
        (st = llmc_layer_norm(a->x, L->ln1_w, L->ln1_b, a->h, T, D, c->norm_eps)))
        return st;
    // qkv: (T, 3D) = [q | k | v], each (T, H, hd) with row stride 3D
    if ((st = linear(a->h, &L->wqkv, L->bqkv, a->q, T, D, 3 * D))) return st;
    float *kc = cache_k(s, l), *vc = cache_v(s, l);
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < T; t++) {
            const float *row = a->q + t * 3 * D + h * hd;
            memcpy(a->qh + (h * T + t) * hd, row, hd * sizeof(float));
            memcpy(kc + (h * s->cap + s->n + t) * hd, row + D, hd * sizeof(float));
            memcpy(vc + (h * s->cap + s->n + t) * hd, row + 2 * D, hd * sizeof(float));
        }
    if ((st = fire_qkv(s, l, a->qh, T, &probs)) || (st = attend(s, a->qh, kc, vc, T, s->n + T, a->ah, probs)) ||
        (st = latent_fire(s, LLMC_ACT_ATTN_Z, l, a->ah, T, T)))
        return st;
    from_heads(a->ah, a->a, T, H, hd);
    // x += a @ Wproj + b
    if ((st = project_add(s, LLMC_ACT_ATTN_OUT, l, a->a, &L->wo, L->bo, a->x, a->h, T, D, D)) ||
        (st = latent_fire(s, LLMC_ACT_RESID_MID, l, a->x, T, T)))
        return st;
    if ((st = llmc_layer_norm(a->x, L->ln2_w, L->ln2_b, a->h, T, D, c->norm_eps)) ||
        (st = linear(a->h, &L->w_fc, L->b_fc, a->f1, T, D, F)) || (st = latent_fire(s, LLMC_ACT_MLP_PRE, l, a->f1, T, T)) ||
        (st = llmc_gelu(a->f1, a->f1, T * F, 1)) || (st = latent_fire(s, LLMC_ACT_MLP_POST, l, a->f1, T, T)) ||
        (st = project_add(s, LLMC_ACT_MLP_OUT, l, a->f1, &L->w_proj, L->b_proj, a->x, a->h, T, F, D)))
        return st;
    return latent_fire(s, LLMC_ACT_RESID_POST, l, a->x, T, T);
}

/* BERT encoder block (post-LN), in place on x: (T, D); weights (out, in).
 *   x = LN(x + dense(attn(q(x), k(x), v(x))));  x = LN(x + out(gelu(intermediate(x)))) */
static llmc_status block_bert(llmc_session *s, size_t l, acts *a, size_t T, float *probs) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const size_t D = c->d_model, H = c->n_heads, hd = c->head_dim, F = c->d_ff;
    llmc_status st;
    if ((st = latent_fire(s, LLMC_ACT_RESID_PRE, l, a->x, T, T)) ||
        (st = linear(a->x, &L->wq, L->bq, a->q, T, D, D)) || (st = linear(a->x, &L->wk, L->bk, a->k, T, D, D)) ||
        (st = linear(a->x, &L->wv, L->bv, a->v, T, D, D)))
        return st;
    to_heads(a->q, a->qh, T, H, hd, T, 0);
    to_heads(a->k, cache_k(s, l), T, H, hd, s->cap, s->n);
    to_heads(a->v, cache_v(s, l), T, H, hd, s->cap, s->n);
    if ((st = fire_qkv(s, l, a->qh, T, &probs)) ||
        (st = attend(s, a->qh, cache_k(s, l), cache_v(s, l), T, s->n + T, a->ah, probs)) ||
        (st = latent_fire(s, LLMC_ACT_ATTN_Z, l, a->ah, T, T)))
        return st;
    from_heads(a->ah, a->a, T, H, hd);
    // post-LN: x = LN(x + attn_out); x = LN(x + mlp_out)
    if ((st = linear(a->a, &L->wo, L->bo, a->h, T, D, D)) || (st = latent_fire(s, LLMC_ACT_ATTN_OUT, l, a->h, T, T)))
        return st;
    add_inplace(a->h, a->x, T * D);
    if ((st = llmc_layer_norm(a->h, L->ln1_w, L->ln1_b, a->x, T, D, c->norm_eps)) ||
        (st = latent_fire(s, LLMC_ACT_RESID_MID, l, a->x, T, T)) ||
        (st = linear(a->x, &L->w_fc, L->b_fc, a->f1, T, D, F)) || (st = latent_fire(s, LLMC_ACT_MLP_PRE, l, a->f1, T, T)) ||
        (st = llmc_gelu(a->f1, a->f1, T * F, m->gelu_tanh)) || (st = latent_fire(s, LLMC_ACT_MLP_POST, l, a->f1, T, T)) ||
        (st = linear(a->f1, &L->w_proj, L->b_proj, a->h, T, F, D)) || (st = latent_fire(s, LLMC_ACT_MLP_OUT, l, a->h, T, T)))
        return st;
    add_inplace(a->h, a->x, T * D);
    if ((st = llmc_layer_norm(a->h, L->ln2_w, L->ln2_b, a->x, T, D, c->norm_eps))) return st;
    return latent_fire(s, LLMC_ACT_RESID_POST, l, a->x, T, T);
}

/* token (+ position, + type) embeddings of T tokens at positions n .. n+T-1 -> x: (T, D) */
static llmc_status embed_tokens(llmc_session *s, const int64_t *ids, const int64_t *types, size_t T, acts *a) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model;
    llmc_status st = embed_rows(&m->wte, c->vocab, D, ids, T, a->x);
    if (st) return st;
    if (m->wpe.data) /* position and token-type tables are always fp32 */
        for (size_t t = 0; t < T; t++) add_inplace(a->x + t * D, (const float *)m->wpe.data + (s->n + t) * D, D);
    if (m->wtt.data) {
        for (size_t t = 0; t < T; t++) {
            int64_t ty = types ? types[t] : 0;
            if (ty < 0 || (uint64_t)ty >= c->type_vocab)
                return llmc_fail(LLMC_ERR_INVALID, "token type id %lld at index %zu is outside [0, %zu)",
                                 (long long)ty, t, c->type_vocab);
            add_inplace(a->x + t * D, (const float *)m->wtt.data + (size_t)ty * D, D);
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
    llmc_status st = session_ensure_scratch(s, Tc);
    if (st) return st;
    acts a;
    session_carve(c, s->scratch, Tc, &a);
    if ((st = embed_tokens(s, ids, types, Tc, &a)) || (st = latent_fire(s, LLMC_ACT_EMBED, 0, a.x, Tc, Tc))) return st;
    if (c->rope_theta > 0) rope_table(m, s->n, Tc, a.cs, a.sn);
    if (hidden) memcpy(hidden + r0 * D, a.x, Tc * D * sizeof(float));
    /* one token and nothing to show from inside: the layers on one team of threads (decode.c), same results */
    const int one = Tc == 1 && !hidden && !last && !probs && decode_eligible(s);
    if (one && (st = decode_token(s, &a, !logits ? NULL : all_logits ? logits + r0 * c->vocab
                                                     : want_last_logits ? logits : NULL)))
        return st;
    for (size_t l = 0; !one && l < c->n_layers; l++) {
        /* Ctrl-C (interrupt.c): the caller rolls the session back to its earlier tokens */
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED;
        float *p = probs && l == probs_layer ? probs : NULL;
        st = c->arch == LLMC_ARCH_GPT2 ? block_gpt2(s, l, &a, Tc, p)
             : c->arch == LLMC_ARCH_BERT ? block_bert(s, l, &a, Tc, p)
                                         : block_llama(s, l, &a, Tc, p);
        if (st) return st;
        if (hidden && l + 1 < c->n_layers) memcpy(hidden + ((l + 1) * Tall + r0) * D, a.x, Tc * D * sizeof(float));
    }
    // the final hidden state: all rows when asked for (or hooked), else only the last (for next-token logits)
    const int need_all = hidden || last || (logits && all_logits) || s->n_hooks;
    if (!one && (need_all || (logits && want_last_logits))) {
        const size_t f0 = need_all ? 0 : Tc - 1;
        if ((st = final_norm(m, a.x + f0 * D, a.h + f0 * D, Tc - f0)) ||
            (c->arch != LLMC_ARCH_BERT && (st = latent_fire(s, LLMC_ACT_LN_FINAL, 0, a.h, Tc, Tc))))
            return st;
        if (hidden) memcpy(hidden + (c->n_layers * Tall + r0) * D, a.h, Tc * D * sizeof(float));
        if (last) memcpy(last + r0 * D, a.h, Tc * D * sizeof(float));
        if (logits && all_logits) // logits rows r0 .. r0+Tc-1 = h @ lm_head^T, lm_head (V, D)
            st = matmul_w(a.h, &m->lm_head, logits + r0 * c->vocab, Tc, D, c->vocab, 0.0f);
        else if (logits && want_last_logits)
            st = matmul_w(a.h + (Tc - 1) * D, &m->lm_head, logits, 1, D, c->vocab, 0.0f);
        if (st) return st;
    }
    memmove(s->tokens + s->n, ids, Tc * sizeof(int64_t));
    s->n += Tc;
    return LLMC_OK;
}

llmc_status llmc_model_readout(const llmc_model *m, const float *x, size_t rows, float *logits) {
    const llmc_model_config *c = &m->c;
    if (!m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    if (rows == 0) return LLMC_OK;
    size_t bytes;
    if (!llmc_size3(rows, c->d_model, 1, sizeof(float), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "%zu rows overflow", rows);
    float *h = llmc_malloc(bytes, "normed rows");
    if (!h) return LLMC_ERR_NOMEM;
    // logits (rows, V) = final_norm(x) @ lm_head^T
    llmc_status st = final_norm(m, x, h, rows);
    if (!st) st = matmul_w(h, &m->lm_head, logits, rows, c->d_model, c->vocab, 0.0f);
    llmc_free(h);
    return st;
}

/* Prompts are processed in chunks of this many tokens: the activations stay a few MiB whatever the prompt length
 * (causal attention lets a chunk attend to the cached keys of the earlier ones; BERT needs all tokens at once). */
#define PREFILL_CHUNK 256

/* The whole stack over T new tokens (see model_internal.h) */
llmc_status model_forward_tokens(llmc_session *s, const int64_t *ids, const int64_t *types, size_t T, float *logits,
                                 int all_logits, float *hidden, float *last, size_t probs_layer, float *probs) {
    const llmc_model *m = s->m;
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "need at least one token");
    if (s->n + T > s->cap) return llmc_fail(LLMC_ERR_INTERNAL, "forward past the cache capacity");
    if (logits && !m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    const int whole = probs || !m->c.causal || (s->n_hooks && latent_needs_whole(s->hooks, s->n_hooks));
    const size_t n0 = s->n, chunk = whole ? T : PREFILL_CHUNK;
    llmc_status st = LLMC_OK;
    for (size_t r0 = 0; r0 < T && !st; r0 += chunk) {
        const size_t Tc = T - r0 < chunk ? T - r0 : chunk;
        st = forward_chunk(s, ids + r0, types ? types + r0 : NULL, Tc, T, r0, logits, all_logits, r0 + Tc == T,
                           hidden, last, probs_layer, probs);
    }
    if (st) s->n = n0; /* cache rows past n are unused, so this undoes the partial call */
    return st;
}

/* ---------------------------------------------------------------- the building blocks batch.c shares */
llmc_status model_matmul_w(const float *x, const wmat *w, float *y, size_t T, size_t in, size_t out, float beta) {
    return matmul_w(x, w, y, T, in, out, beta);
}
llmc_status model_embed_rows(const wmat *table, size_t vocab, size_t dim, const int64_t *ids, size_t n, float *out) {
    return embed_rows(table, vocab, dim, ids, n, out);
}
void model_rope_rows(float *x, size_t T, size_t nh, size_t hd, const float *cs, const float *sn) {
    rope_rows(x, T, nh, hd, cs, sn);
}
llmc_status model_final_norm(const llmc_model *m, const float *in, float *out, size_t rows) {
    return final_norm(m, in, out, rows);
}
