/* train.c: self-supervised training of the gpt2 and llama architectures: a forward pass that keeps the
 * activations the backward pass needs, the full backward pass, and the loss (next-token cross-entropy).
 *
 * Weights are not owned here: the caller passes one pointer per tensor, in the order llmc_train_tensor_info()
 * gives (the checkpoint's own names), so the same buffers serve inference and training. Gradients accumulate
 * (+=) into caller buffers of the same shapes. All activations live in one allocation sized at creation for at most
 * (B, T) tokens; a step allocates nothing itself.
 *
 * Shapes: N = B * T token rows; d = d_model; Hq, Hkv heads of size hd; ff = MLP width; V = vocab. Per-layer
 * activations are kept as rows (N, .) for the matmuls and as heads (B, H, T, hd) for attention. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <omp.h>

#include "blas.h"
#include "internal.h"
#include "simd.h"

struct llmc_trainer {
    llmc_train_config c;
    size_t B, T; /* capacity */
    float *mem;
    /* per layer (index l): saved activations */
    float **x_in, **xn1, **q, **k, **v, **att_t, **x_mid, **xn2, **ff_a, **ff_b, **ff_c;
    float *x_last, *xf, *logits;
    /* scratch */
    float *qkv, *att, *dres, *dxn, *dqkv, *dq, *dk, *dv, *datt, *datt_t, *dff_a, *dff_b, *dff_c, *att_scratch;
    int64_t *pos, *neg_pos;
    size_t scratch_threads; /* att_scratch holds 2 * T * T floats for each of this many threads */
};

/* ---------------------------------------------------------------- tensor layout */
static size_t per_layer(const llmc_train_config *c) { return c->arch == LLMC_TRAIN_GPT2 ? 12 : 9; }
static size_t first_layer(const llmc_train_config *c) { return c->arch == LLMC_TRAIN_GPT2 ? 2 : 1; }

size_t llmc_train_n_tensors(const llmc_train_config *c) {
    size_t n = first_layer(c) + per_layer(c) * c->n_layers;
    if (c->arch == LLMC_TRAIN_GPT2) return n + 2;  /* ln_f weight, bias (lm_head tied to wte) */
    return n + 1 + (c->tied ? 0 : 1);              /* norm, lm_head */
}

llmc_status llmc_train_tensor_info(const llmc_train_config *c, size_t i, char *name, size_t cap, size_t shape[2],
                                   int *ndim) {
    const size_t d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, ff = c->d_ff;
    const size_t n = llmc_train_n_tensors(c), L0 = first_layer(c), P = per_layer(c);
    if (i >= n) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, n);
    shape[1] = 0;
    *ndim = 2;
#define SET(fmt, r, cc)                                                                                                \
    do {                                                                                                               \
        snprintf(name, cap, fmt, l);                                                                                   \
        shape[0] = (r);                                                                                                \
        shape[1] = (cc);                                                                                               \
        *ndim = ((cc) != 0) ? 2 : 1;                                                                                   \
    } while (0)
    size_t l = 0;
    if (c->arch == LLMC_TRAIN_GPT2) {
        if (i == 0) { snprintf(name, cap, "transformer.wte.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
        if (i == 1) { snprintf(name, cap, "transformer.wpe.weight"); shape[0] = c->n_positions; shape[1] = d; return LLMC_OK; }
        if (i >= L0 + P * c->n_layers) {
            snprintf(name, cap, i == n - 2 ? "transformer.ln_f.weight" : "transformer.ln_f.bias");
            shape[0] = d; *ndim = 1;
            return LLMC_OK;
        }
        l = (i - L0) / P;
        switch ((i - L0) % P) {
        case 0: SET("transformer.h.%zu.ln_1.weight", d, 0); break;
        case 1: SET("transformer.h.%zu.ln_1.bias", d, 0); break;
        case 2: SET("transformer.h.%zu.attn.c_attn.weight", d, 3 * d); break; /* Conv1D: (in, out) */
        case 3: SET("transformer.h.%zu.attn.c_attn.bias", 3 * d, 0); break;
        case 4: SET("transformer.h.%zu.attn.c_proj.weight", d, d); break;
        case 5: SET("transformer.h.%zu.attn.c_proj.bias", d, 0); break;
        case 6: SET("transformer.h.%zu.ln_2.weight", d, 0); break;
        case 7: SET("transformer.h.%zu.ln_2.bias", d, 0); break;
        case 8: SET("transformer.h.%zu.mlp.c_fc.weight", d, ff); break;
        case 9: SET("transformer.h.%zu.mlp.c_fc.bias", ff, 0); break;
        case 10: SET("transformer.h.%zu.mlp.c_proj.weight", ff, d); break;
        default: SET("transformer.h.%zu.mlp.c_proj.bias", d, 0); break;
        }
        return LLMC_OK;
    }
    if (i == 0) { snprintf(name, cap, "model.embed_tokens.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
    if (i == L0 + P * c->n_layers) { snprintf(name, cap, "model.norm.weight"); shape[0] = d; *ndim = 1; return LLMC_OK; }
    if (i == L0 + P * c->n_layers + 1) { snprintf(name, cap, "lm_head.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
    l = (i - L0) / P;
    switch ((i - L0) % P) {
    case 0: SET("model.layers.%zu.input_layernorm.weight", d, 0); break;
    case 1: SET("model.layers.%zu.self_attn.q_proj.weight", qd, d); break; /* nn.Linear: (out, in) */
    case 2: SET("model.layers.%zu.self_attn.k_proj.weight", kvd, d); break;
    case 3: SET("model.layers.%zu.self_attn.v_proj.weight", kvd, d); break;
    case 4: SET("model.layers.%zu.self_attn.o_proj.weight", d, qd); break;
    case 5: SET("model.layers.%zu.post_attention_layernorm.weight", d, 0); break;
    case 6: SET("model.layers.%zu.mlp.gate_proj.weight", ff, d); break;
    case 7: SET("model.layers.%zu.mlp.up_proj.weight", ff, d); break;
    default: SET("model.layers.%zu.mlp.down_proj.weight", d, ff); break;
    }
#undef SET
    return LLMC_OK;
}

/* ---------------------------------------------------------------- create / free */
static llmc_status check_config(const llmc_train_config *c) {
    if (c->arch != LLMC_TRAIN_GPT2 && c->arch != LLMC_TRAIN_LLAMA)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "training supports the gpt2 and llama architectures (got arch %d)", c->arch);
    if (!c->n_layers || !c->d_model || !c->n_heads || !c->n_kv_heads || !c->head_dim || !c->d_ff || !c->vocab)
        return llmc_fail(LLMC_ERR_INVALID, "training config has a zero size (layers %zu, d_model %zu, heads %zu/%zu, "
                         "head_dim %zu, d_ff %zu, vocab %zu)", c->n_layers, c->d_model, c->n_heads, c->n_kv_heads,
                         c->head_dim, c->d_ff, c->vocab);
    if (c->n_heads % c->n_kv_heads)
        return llmc_fail(LLMC_ERR_INVALID, "n_heads (%zu) must be a multiple of n_kv_heads (%zu)", c->n_heads, c->n_kv_heads);
    if (c->arch == LLMC_TRAIN_GPT2 && (c->n_heads != c->n_kv_heads || c->n_heads * c->head_dim != c->d_model))
        return llmc_fail(LLMC_ERR_INVALID, "gpt2 needs n_heads * head_dim == d_model and no grouped-query heads");
    if (c->arch == LLMC_TRAIN_LLAMA && c->head_dim % 2)
        return llmc_fail(LLMC_ERR_INVALID, "RoPE needs an even head_dim, got %zu", c->head_dim);
    return LLMC_OK;
}

llmc_status llmc_trainer_create(const llmc_train_config *c, size_t B, size_t T, llmc_trainer **out) {
    *out = NULL;
    llmc_status st = check_config(c);
    if (st) return st;
    if (!B || !T) return llmc_fail(LLMC_ERR_INVALID, "batch size and sequence length must be >= 1 (got %zu, %zu)", B, T);
    /* gpt2 has a learned position table of n_positions rows; llama's RoPE could rotate any position, but the
     * model is only trained (and, by transformers, only run) within max_position_embeddings: honour it for both */
    if (T > c->n_positions)
        return llmc_fail(LLMC_ERR_INVALID, "sequence length %zu exceeds the model's context window of %zu positions "
                         "(%s)", T, c->n_positions, c->arch == LLMC_TRAIN_GPT2 ? "n_positions" : "max_position_embeddings");
    const size_t L = c->n_layers, d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const size_t ff = c->d_ff, V = c->vocab, W3 = qd + 2 * kvd;
    size_t N;
    if (!llmc_mul_ok(B, T, &N)) return llmc_fail(LLMC_ERR_NOMEM, "B * T overflows");
    /* floats per layer and in total, overflow-checked: every term is N * (a width) */
    size_t widths_layer = 4 * d + qd + 2 * kvd + qd + 3 * ff; /* x_in xn1 x_mid xn2 | q k v | att_t | 3 ff */
    size_t widths_global = 2 * d + V + W3 + qd + 2 * d + W3 + qd + 2 * kvd + 2 * qd + 3 * ff;
    const size_t nthr = (size_t)llmc_threads(); /* attention backward runs one (sequence, KV head) per thread */
    size_t per, total, fl, tt;
    if (!llmc_mul_ok(N, widths_layer, &per) || !llmc_mul_ok(per, L, &total) || !llmc_mul_ok(N, widths_global, &fl) ||
        !llmc_add_ok(total, fl, &total) || !llmc_size3(T, T, 2 * nthr, 1, &tt) || !llmc_add_ok(total, tt, &total) ||
        !llmc_mul_ok(total, sizeof(float), &total))
        return llmc_fail(LLMC_ERR_NOMEM, "training activations for B=%zu, T=%zu overflow size_t", B, T);
    llmc_trainer *t = llmc_calloc(1, sizeof *t, "trainer");
    if (!t) return LLMC_ERR_NOMEM;
    t->c = *c;
    t->B = B;
    t->T = T;
    float ***lists[] = {&t->x_in, &t->xn1, &t->q, &t->k, &t->v, &t->att_t, &t->x_mid, &t->xn2, &t->ff_a, &t->ff_b, &t->ff_c};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (!(*lists[i] = llmc_calloc(L, sizeof(float *), "trainer tables"))) goto nomem;
    t->mem = llmc_malloc(total, "training activations");
    t->pos = llmc_malloc(2 * T * sizeof(int64_t), "positions");
    if (!t->mem || !t->pos) goto nomem;
    float *p = t->mem;
#define TAKE(dst, n) (dst = p, p += (n))
    for (size_t l = 0; l < L; l++) {
        TAKE(t->x_in[l], N * d); TAKE(t->xn1[l], N * d); TAKE(t->x_mid[l], N * d); TAKE(t->xn2[l], N * d);
        TAKE(t->q[l], N * qd); TAKE(t->k[l], N * kvd); TAKE(t->v[l], N * kvd); TAKE(t->att_t[l], N * qd);
        TAKE(t->ff_a[l], N * ff); TAKE(t->ff_b[l], N * ff); TAKE(t->ff_c[l], N * ff);
    }
    TAKE(t->x_last, N * d); TAKE(t->xf, N * d); TAKE(t->logits, N * V); TAKE(t->qkv, N * W3); TAKE(t->att, N * qd);
    TAKE(t->dres, N * d); TAKE(t->dxn, N * d); TAKE(t->dqkv, N * W3); TAKE(t->dq, N * qd); TAKE(t->dk, N * kvd);
    TAKE(t->dv, N * kvd); TAKE(t->datt, N * qd); TAKE(t->datt_t, N * qd); TAKE(t->dff_a, N * ff);
    TAKE(t->dff_b, N * ff); TAKE(t->dff_c, N * ff); TAKE(t->att_scratch, 2 * T * T * nthr);
    t->scratch_threads = nthr;
#undef TAKE
    t->neg_pos = t->pos + T;
    for (size_t i = 0; i < T; i++) {
        t->pos[i] = (int64_t)i;
        t->neg_pos[i] = -(int64_t)i; /* rotating back by -angle is RoPE's backward */
    }
    *out = t;
    return LLMC_OK;
nomem:
    llmc_trainer_free(t);
    return LLMC_ERR_NOMEM;
}

void llmc_trainer_free(llmc_trainer *t) {
    if (!t) return;
    llmc_free(t->mem);
    llmc_free(t->pos);
    float **lists[] = {t->x_in, t->xn1, t->q, t->k, t->v, t->att_t, t->x_mid, t->xn2, t->ff_a, t->ff_b, t->ff_c};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) llmc_free(lists[i]);
    llmc_free(t);
}

/* ---------------------------------------------------------------- building blocks */
/* y (N, out) [row stride ldy] = beta * y + x (N, in) [row stride ldx] @ W^T (+ b).
 * w_in_out = 0: W is (out, in) (nn.Linear); 1: W is (in, out) (GPT-2's Conv1D, y = x @ W). */
static llmc_status lin_fwd(const float *x, size_t ldx, const float *w, const float *b, float *y, size_t ldy, size_t N,
                           size_t in, size_t out, int w_in_out, float beta) {
    llmc_status st = w_in_out ? llmc_sgemm(0, 0, N, out, in, 1.0f, x, ldx, w, out, beta, y, ldy)
                              : llmc_sgemm(0, 1, N, out, in, 1.0f, x, ldx, w, in, beta, y, ldy);
    if (!st && b)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(y + n * ldy, 1.0f, b, out);
    return st;
}

/* Gradients of lin_fwd: dx (N, in) = dx_beta * dx + dy @ W (or W^T); dW += dy^T x (or x^T dy); db += sum dy. */
static llmc_status lin_bwd(const float *dy, size_t lddy, const float *x, size_t ldx, const float *w, float *dx,
                           float dx_beta, float *dw, float *db, size_t N, size_t in, size_t out, int w_in_out) {
    llmc_status st;
    if (w_in_out) {
        if ((st = llmc_sgemm(0, 1, N, in, out, 1.0f, dy, lddy, w, out, dx_beta, dx, in))) return st;
        if ((st = llmc_sgemm(1, 0, in, out, N, 1.0f, x, ldx, dy, lddy, 1.0f, dw, out))) return st;
    } else {
        if ((st = llmc_sgemm(0, 0, N, in, out, 1.0f, dy, lddy, w, in, dx_beta, dx, in))) return st;
        if ((st = llmc_sgemm(1, 0, out, in, N, 1.0f, dy, lddy, x, ldx, 1.0f, dw, in))) return st;
    }
    if (db)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(db, 1.0f, dy + n * lddy, out);
    return LLMC_OK;
}

/* rows (B*T, W3) holding [q heads | k heads | v heads] <-> packed heads q: (B, Hq, T, hd), k, v: (B, Hkv, T, hd).
 * to_heads = 1 splits rows into heads, 0 merges heads back into rows (overwriting them). */
static void heads_rows(float *rows, float *q, float *k, float *v, size_t B, size_t T, size_t Hq, size_t Hkv,
                       size_t hd, int to_heads) {
    const size_t W3 = (Hq + 2 * Hkv) * hd;
#pragma omp parallel for num_threads(llmc_threads_for(B * T * W3)) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float *row = rows + (b * T + t) * W3;
            for (size_t h = 0; h < Hq + 2 * Hkv; h++) {
                float *head;
                if (h < Hq) head = q + ((b * Hq + h) * T + t) * hd;
                else if (h < Hq + Hkv) head = k + ((b * Hkv + (h - Hq)) * T + t) * hd;
                else head = v + ((b * Hkv + (h - Hq - Hkv)) * T + t) * hd;
                if (to_heads) memcpy(head, row + h * hd, hd * sizeof(float));
                else memcpy(row + h * hd, head, hd * sizeof(float));
            }
        }
}

/* att heads (B, H, T, hd) <-> rows (B*T, H*hd) */
static void att_rows(float *heads, float *rows, size_t B, size_t T, size_t H, size_t hd, int to_rows) {
#pragma omp parallel for num_threads(llmc_threads_for(B * T * H * hd)) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++) {
                float *hp = heads + ((b * H + h) * T + t) * hd, *rp = rows + (b * T + t) * H * hd + h * hd;
                if (to_rows) memcpy(rp, hp, hd * sizeof(float));
                else memcpy(hp, rp, hd * sizeof(float));
            }
}

/* ---------------------------------------------------------------- forward */
static llmc_status forward(llmc_trainer *t, float *const *P, const int64_t *ids, size_t B, size_t T) {
    const llmc_train_config *c = &t->c;
    const int gpt2 = c->arch == LLMC_TRAIN_GPT2;
    const size_t N = B * T, d = c->d_model, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    const size_t qd = Hq * hd, kvd = Hkv * hd, W3 = qd + 2 * kvd, ff = c->d_ff, L0 = first_layer(c), PL = per_layer(c);
    llmc_status st;
    /* embeddings: x = wte[ids] (+ wpe[t] for gpt2) */
    float *x = c->n_layers ? t->x_in[0] : t->x_last;
    if ((st = llmc_embedding(P[0], c->vocab, d, ids, N, x))) return st;
    if (gpt2)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(x + n * d, 1.0f, P[1] + (n % T) * d, d);
    for (size_t l = 0; l < c->n_layers; l++) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* Ctrl-C: stop before any weight changes */
        float *const *w = P + L0 + PL * l;
        float *xin = t->x_in[l], *xout = l + 1 < c->n_layers ? t->x_in[l + 1] : t->x_last;
        /* attention sub-block: xn1 = norm(x); q, k, v projections; (RoPE); causal attention; output projection */
        if (gpt2) {
            if ((st = llmc_layer_norm(xin, w[0], w[1], t->xn1[l], N, d, c->eps))) return st;
            if ((st = lin_fwd(t->xn1[l], d, w[2], w[3], t->qkv, W3, N, d, W3, 1, 0.0f))) return st;
        } else {
            if ((st = llmc_rms_norm(xin, w[0], t->xn1[l], N, d, c->eps))) return st;
            if ((st = lin_fwd(t->xn1[l], d, w[1], NULL, t->qkv, W3, N, d, qd, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn1[l], d, w[2], NULL, t->qkv + qd, W3, N, d, kvd, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn1[l], d, w[3], NULL, t->qkv + qd + kvd, W3, N, d, kvd, 0, 0.0f))) return st;
        }
        heads_rows(t->qkv, t->q[l], t->k[l], t->v[l], B, T, Hq, Hkv, hd, 1);
        if (!gpt2) { /* rotate q and k in place; the saved q, k are the rotated ones attention saw */
            if ((st = llmc_apply_rope(t->q[l], t->q[l], B * Hq, T, hd, t->pos, c->rope_theta, LLMC_ROPE_HALF))) return st;
            if ((st = llmc_apply_rope(t->k[l], t->k[l], B * Hkv, T, hd, t->pos, c->rope_theta, LLMC_ROPE_HALF))) return st;
        }
        llmc_attention_args a = {0};
        a.q = t->q[l]; a.k = t->k[l]; a.v = t->v[l]; a.out = t->att;
        a.B = B; a.Hq = Hq; a.Hkv = Hkv; a.Tq = T; a.Tk = T; a.d = hd;
        a.impl = LLMC_ATTN_FLASH; a.causal = 1; a.scale = 1.0f / sqrtf((float)hd);
        if ((st = llmc_attention(&a))) return st;
        att_rows(t->att, t->att_t[l], B, T, Hq, hd, 1);
        memcpy(t->x_mid[l], xin, N * d * sizeof(float)); /* residual: x_mid = x + proj(att) */
        if ((st = lin_fwd(t->att_t[l], qd, w[gpt2 ? 4 : 4], gpt2 ? w[5] : NULL, t->x_mid[l], d, N, qd, d, gpt2, 1.0f)))
            return st;
        /* MLP sub-block */
        memcpy(xout, t->x_mid[l], N * d * sizeof(float));
        if (gpt2) {
            /* ff_a = fc pre-activation, ff_b = gelu(ff_a); out += ff_b @ W_proj + b */
            if ((st = llmc_layer_norm(t->x_mid[l], w[6], w[7], t->xn2[l], N, d, c->eps))) return st;
            if ((st = lin_fwd(t->xn2[l], d, w[8], w[9], t->ff_a[l], ff, N, d, ff, 1, 0.0f))) return st;
            if ((st = llmc_gelu(t->ff_a[l], t->ff_b[l], N * ff, 1))) return st;
            if ((st = lin_fwd(t->ff_b[l], ff, w[10], w[11], xout, d, N, ff, d, 1, 1.0f))) return st;
        } else {
            /* ff_a = gate, ff_b = up, ff_c = silu(gate) * up (SwiGLU); out += ff_c @ W_down^T */
            if ((st = llmc_rms_norm(t->x_mid[l], w[5], t->xn2[l], N, d, c->eps))) return st;
            if ((st = lin_fwd(t->xn2[l], d, w[6], NULL, t->ff_a[l], ff, N, d, ff, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn2[l], d, w[7], NULL, t->ff_b[l], ff, N, d, ff, 0, 0.0f))) return st;
            if ((st = llmc_silu(t->ff_a[l], t->ff_c[l], N * ff))) return st;
            for (size_t i = 0; i < N * ff; i++) t->ff_c[l][i] *= t->ff_b[l][i];
            if ((st = lin_fwd(t->ff_c[l], ff, w[8], NULL, xout, d, N, ff, d, 0, 1.0f))) return st;
        }
    }
    /* final norm and tied / untied head */
    const size_t fn = L0 + PL * c->n_layers;
    if (gpt2) st = llmc_layer_norm(t->x_last, P[fn], P[fn + 1], t->xf, N, d, c->eps);
    else st = llmc_rms_norm(t->x_last, P[fn], t->xf, N, d, c->eps);
    if (st) return st;
    const float *head = (gpt2 || c->tied) ? P[0] : P[fn + 1];
    return lin_fwd(t->xf, d, head, NULL, t->logits, c->vocab, N, d, c->vocab, 0, 0.0f);
}

/* ---------------------------------------------------------------- backward */
static llmc_status backward(llmc_trainer *t, float *const *P, float *const *G, const int64_t *ids, size_t B, size_t T) {
    const llmc_train_config *c = &t->c;
    const int gpt2 = c->arch == LLMC_TRAIN_GPT2;
    const size_t N = B * T, d = c->d_model, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    const size_t qd = Hq * hd, kvd = Hkv * hd, W3 = qd + 2 * kvd, ff = c->d_ff, L0 = first_layer(c), PL = per_layer(c);
    const size_t fn = L0 + PL * c->n_layers;
    llmc_status st;
    /* t->logits holds dloss/dlogits. Head: dxf = dlogits @ W_head; dW_head += dlogits^T xf */
    const int tied = gpt2 || c->tied;
    if ((st = lin_bwd(t->logits, c->vocab, t->xf, d, tied ? P[0] : P[fn + 1], t->dxn, 0.0f, tied ? G[0] : G[fn + 1],
                      NULL, N, d, c->vocab, 0)))
        return st;
    memset(t->dres, 0, N * d * sizeof(float));
    if (gpt2) st = llmc_layer_norm_backward(t->dxn, t->x_last, P[fn], t->dres, G[fn], G[fn + 1], N, d, c->eps);
    else st = llmc_rms_norm_backward(t->dxn, t->x_last, P[fn], t->dres, G[fn], N, d, c->eps);
    if (st) return st;
    for (size_t li = c->n_layers; li-- > 0;) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* gradients are partial: the caller zeroes them */
        float *const *w = P + L0 + PL * li;
        float *const *g = G + L0 + PL * li;
        /* dres = d(layer output). MLP: out = x_mid + mlp(norm(x_mid)) */
        if (gpt2) {
            /* dff_b = d gelu output = dres @ W_proj^T; then through gelu into dff_a */
            if ((st = lin_bwd(t->dres, d, t->ff_b[li], ff, w[10], t->dff_b, 0.0f, g[10], g[11], N, ff, d, 1))) return st;
            memset(t->dff_a, 0, N * ff * sizeof(float));
            if ((st = llmc_gelu_backward(t->dff_b, t->ff_a[li], t->dff_a, N * ff, 1))) return st;
            if ((st = lin_bwd(t->dff_a, ff, t->xn2[li], d, w[8], t->dxn, 0.0f, g[8], g[9], N, d, ff, 1))) return st;
            if ((st = llmc_layer_norm_backward(t->dxn, t->x_mid[li], w[6], t->dres, g[6], g[7], N, d, c->eps))) return st;
        } else {
            /* dff_c = d(silu(gate) * up) = dres @ W_down */
            if ((st = lin_bwd(t->dres, d, t->ff_c[li], ff, w[8], t->dff_c, 0.0f, g[8], NULL, N, ff, d, 0))) return st;
            /* d up = dff_c * silu(gate) (into dff_b); d gate = silu'(gate) * (dff_c * up) (into dff_a) */
            if ((st = llmc_silu(t->ff_a[li], t->dff_b, N * ff))) return st;
            for (size_t i = 0; i < N * ff; i++) {
                t->dff_b[i] *= t->dff_c[i];
                t->dff_c[i] *= t->ff_b[li][i];
            }
            memset(t->dff_a, 0, N * ff * sizeof(float));
            if ((st = llmc_silu_backward(t->dff_c, t->ff_a[li], t->dff_a, N * ff))) return st;
            if ((st = lin_bwd(t->dff_a, ff, t->xn2[li], d, w[6], t->dxn, 0.0f, g[6], NULL, N, d, ff, 0))) return st;
            if ((st = lin_bwd(t->dff_b, ff, t->xn2[li], d, w[7], t->dxn, 1.0f, g[7], NULL, N, d, ff, 0))) return st;
            if ((st = llmc_rms_norm_backward(t->dxn, t->x_mid[li], w[5], t->dres, g[5], N, d, c->eps))) return st;
        }
        /* dres = d x_mid. Attention: x_mid = x_in + proj(att) */
        if ((st = lin_bwd(t->dres, d, t->att_t[li], qd, w[4], t->datt_t, 0.0f, g[4], gpt2 ? g[5] : NULL, N, qd, d, gpt2)))
            return st;
        att_rows(t->datt, t->datt_t, B, T, Hq, hd, 0);
        memset(t->dq, 0, N * qd * sizeof(float));
        memset(t->dk, 0, N * kvd * sizeof(float));
        memset(t->dv, 0, N * kvd * sizeof(float));
        /* one task per (sequence, KV head): it owns dk, dv of that head and dq of its G query heads, so tasks
         * never write the same memory; the GEMMs inside run single-threaded (we are in a parallel region) */
        const size_t G = Hq / Hkv, tasks = B * Hkv;
        const int nt = (int)(tasks < t->scratch_threads ? tasks : t->scratch_threads);
        llmc_status att_st = LLMC_OK;
#pragma omp parallel for num_threads(nt) schedule(dynamic)
        for (size_t task = 0; task < tasks; task++) {
            const size_t b = task / Hkv, g = task % Hkv;
            const size_t oq = (b * Hq + g * G) * T * hd, okv = (b * Hkv + g) * T * hd;
            float *scratch = t->att_scratch + (size_t)omp_get_thread_num() * 2 * T * T;
            llmc_status s1 = llmc_attention_backward_ws(t->q[li] + oq, t->k[li] + okv, t->v[li] + okv, t->datt + oq,
                                                        t->dq + oq, t->dk + okv, t->dv + okv, G, 1, T, hd,
                                                        1.0f / sqrtf((float)hd), 1, scratch);
            if (s1) {
#pragma omp critical(llmc_train_att)
                att_st = s1;
            }
        }
        if (att_st) return llmc_fail(att_st, "attention backward failed in layer %zu", li);
        if (!gpt2) { /* through RoPE: rotate the gradients back */
            if ((st = llmc_apply_rope(t->dq, t->dq, B * Hq, T, hd, t->neg_pos, c->rope_theta, LLMC_ROPE_HALF))) return st;
            if ((st = llmc_apply_rope(t->dk, t->dk, B * Hkv, T, hd, t->neg_pos, c->rope_theta, LLMC_ROPE_HALF))) return st;
        }
        heads_rows(t->dqkv, t->dq, t->dk, t->dv, B, T, Hq, Hkv, hd, 0);
        if (gpt2) {
            if ((st = lin_bwd(t->dqkv, W3, t->xn1[li], d, w[2], t->dxn, 0.0f, g[2], g[3], N, d, W3, 1))) return st;
            if ((st = llmc_layer_norm_backward(t->dxn, t->x_in[li], w[0], t->dres, g[0], g[1], N, d, c->eps))) return st;
        } else {
            if ((st = lin_bwd(t->dqkv, W3, t->xn1[li], d, w[1], t->dxn, 0.0f, g[1], NULL, N, d, qd, 0))) return st;
            if ((st = lin_bwd(t->dqkv + qd, W3, t->xn1[li], d, w[2], t->dxn, 1.0f, g[2], NULL, N, d, kvd, 0))) return st;
            if ((st = lin_bwd(t->dqkv + qd + kvd, W3, t->xn1[li], d, w[3], t->dxn, 1.0f, g[3], NULL, N, d, kvd, 0)))
                return st;
            if ((st = llmc_rms_norm_backward(t->dxn, t->x_in[li], w[0], t->dres, g[0], N, d, c->eps))) return st;
        }
    }
    /* embeddings */
    if ((st = llmc_embedding_backward(t->dres, ids, N, d, G[0], c->vocab))) return st;
    if (gpt2)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(G[1] + (n % T) * d, 1.0f, t->dres + n * d, d);
    return LLMC_OK;
}

llmc_status llmc_trainer_step(llmc_trainer *t, float *const *params, float *const *grads, const int64_t *inputs,
                              const int64_t *targets, size_t B, size_t T, float grad_scale, double *loss_mean) {
    if (B == 0 || T == 0 || T > t->T || B * T > t->B * t->T)
        return llmc_fail(LLMC_ERR_INVALID, "batch (%zu, %zu) does not fit the trainer's (%zu, %zu)", B, T, t->B, t->T);
    const size_t N = B * T, V = t->c.vocab;
    for (size_t i = 0; i < N; i++)
        if (targets[i] < 0 || (uint64_t)targets[i] >= V)
            return llmc_fail(LLMC_ERR_INVALID, "target %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)targets[i], i, V);
    llmc_status st = forward(t, params, inputs, B, T);
    if (st) return st;
    /* the logits buffer becomes dloss/dlogits; grad_scale is usually 1 / (N * accumulation steps) */
    double sum = llmc_cross_entropy_grad_inplace(t->logits, targets, N, V, grad_scale);
    if (loss_mean) *loss_mean = sum / (double)N;
    if (!grads) return LLMC_OK;
    return backward(t, params, grads, inputs, B, T);
}

/* ---------------------------------------------------------------- batches */
// out: (n,) window starts in [0, max_start]
void llmc_random_starts(uint64_t seed, uint64_t step, size_t n, size_t max_start, int64_t *out) {
    /* a counter-based stream (splitmix64 of seed, step, i): the batch of step s does not depend on how many batches
     * were drawn before, so a resumed run sees exactly the batches an uninterrupted one would */
    for (size_t i = 0; i < n; i++) {
        uint64_t z = seed * 0x9E3779B97F4A7C15ull + step * 0xD1B54A32D192ED03ull + (uint64_t)i * 0x8CB92BA72F3D8DD7ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        /* multiply-shift maps 64 random bits onto [0, max_start] without modulo bias worth noticing */
        out[i] = (int64_t)(((unsigned __int128)z * ((unsigned __int128)max_start + 1)) >> 64);
    }
}
