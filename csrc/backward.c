/* backward.c: gradients of the ops the gpt2 and llama architectures are built from.
 *
 * Convention (as in llm.c): every function ACCUMULATES into its gradient outputs (dx += ..., dw += ...), so
 * gradients of shared weights and of gradient-accumulation steps add up; zero the buffers before the first use.
 * Any gradient output may be NULL when it is not wanted. */
#include <math.h>
#include <string.h>

#include "blas.h"
#include "internal.h"
#include "simd.h"

/* ---------------------------------------------------------------- linear: y = x @ W^T + b */
// dy: (N, out), x: (N, in), w: (out, in); dx: (N, in), dw: (out, in), db: (out,)
llmc_status llmc_linear_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, float *db,
                                 size_t N, size_t in, size_t out) {
    llmc_status st;
    /* dx += dy @ W */
    if (dx && (st = llmc_sgemm(0, 0, N, in, out, 1.0f, dy, out, w, in, 1.0f, dx, in))) return st;
    /* dW += dy^T @ x */
    if (dw && (st = llmc_sgemm(1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in))) return st;
    /* db += column sums of dy */
    if (db)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(db, 1.0f, dy + n * out, out);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- norms */
// dy, x, dx: (rows, cols); w, dw, db: (cols,)
llmc_status llmc_layer_norm_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, float *db,
                                     size_t rows, size_t cols, float eps) {
    if (cols == 0) return LLMC_OK;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float mean = llmc_k->sum(xr, cols) / (float)cols;
        float rstd = 1.0f / sqrtf(llmc_k->sq_dev_sum(xr, mean, cols) / (float)cols + eps);
        /* with xhat = (x - mean) * rstd and g = dy * w:
         * dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) */
        float g_mean = 0.0f, gx_mean = 0.0f;
        for (size_t c = 0; c < cols; c++) {
            float xhat = (xr[c] - mean) * rstd, g = dyr[c] * w[c];
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= (float)cols;
        gx_mean /= (float)cols;
        for (size_t c = 0; c < cols; c++) {
            float xhat = (xr[c] - mean) * rstd;
            if (dx) dx[r * cols + c] += rstd * (dyr[c] * w[c] - g_mean - xhat * gx_mean);
            if (dw) dw[c] += dyr[c] * xhat;
            if (db) db[c] += dyr[c];
        }
    }
    return LLMC_OK;
}

// dy, x, dx: (rows, cols); w, dw: (cols,)
llmc_status llmc_rms_norm_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, size_t rows,
                                   size_t cols, float eps) {
    if (cols == 0) return LLMC_OK;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * cols, *dyr = dy + r * cols;
        float rstd = 1.0f / sqrtf(llmc_k->sumsq(xr, cols) / (float)cols + eps);
        /* y = x * rstd * w; dx = rstd * (g - x * rstd^2 * mean(g * x)) with g = dy * w */
        float gx_mean = 0.0f;
        for (size_t c = 0; c < cols; c++) gx_mean += dyr[c] * w[c] * xr[c];
        gx_mean /= (float)cols;
        for (size_t c = 0; c < cols; c++) {
            if (dx) dx[r * cols + c] += rstd * (dyr[c] * w[c] - xr[c] * rstd * rstd * gx_mean);
            if (dw) dw[c] += dyr[c] * xr[c] * rstd;
        }
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- activations */
/* The exponentials go through the SIMD table's exp (exp_shift_sum) a chunk at a time into a stack buffer; the rest
 * is plain arithmetic the compiler vectorises. (Scalar tanhf / expf per element cost ~10% of a GPT-2 step.) */
#define ACT_CHUNK 512

// dy, x, dx: (n,)
llmc_status llmc_gelu_backward(const float *dy, const float *x, float *dx, size_t n, int tanh_approximation) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    if (!tanh_approximation) {
        for (size_t i = 0; i < n; i++) { /* d/dx x Phi(x) = Phi(x) + x phi(x) */
            float v = x[i];
            dx[i] += dy[i] * (0.5f * erfcf(-v * 0.70710678118654752f) + v * 0.3989422804014327f * expf(-0.5f * v * v));
        }
        return LLMC_OK;
    }
    const size_t chunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for num_threads(llmc_threads_for(n * 8)) schedule(static)
    for (size_t ci = 0; ci < chunks; ci++) {
        float e[ACT_CHUNK];
        const size_t i0 = ci * ACT_CHUNK, m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        const float *xs = x + i0;
        for (size_t i = 0; i < m; i++) e[i] = c * (xs[i] + 0.044715f * xs[i] * xs[i] * xs[i]); /* u */
        llmc_k->exp_shift_sum(e, e, 0.0f, 2.0f, m);                                             /* e^(2u) */
        for (size_t i = 0; i < m; i++) {
            /* t = tanh(u) = 1 - 2 / (e^(2u) + 1) (inf -> 1, 0 -> -1); d/dx 0.5 x (1 + t) = 0.5 (1 + t) +
             * 0.5 x (1 - t^2) u' with u' = c (1 + 3 * 0.044715 x^2) */
            float v = xs[i], t = 1.0f - 2.0f / (e[i] + 1.0f);
            float tail = 0.5f * v * (1.0f - t * t) * c * (1.0f + 3.0f * 0.044715f * v * v);
            float d = 0.5f * (1.0f + t) + (t * t < 1.0f ? tail : 0.0f); /* saturated: tail is 0 (not 0 * inf) */
            d = v == v ? d : v;                                          /* NaN in, NaN out (exp clamps NaN) */
            dx[i0 + i] += dy[i0 + i] * d;
        }
    }
    return LLMC_OK;
}

// dy, x, dx: (n,)
llmc_status llmc_silu_backward(const float *dy, const float *x, float *dx, size_t n) {
    const size_t chunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
#pragma omp parallel for num_threads(llmc_threads_for(n * 8)) schedule(static)
    for (size_t ci = 0; ci < chunks; ci++) {
        float e[ACT_CHUNK];
        const size_t i0 = ci * ACT_CHUNK, m = n - i0 < ACT_CHUNK ? n - i0 : ACT_CHUNK;
        llmc_k->exp_shift_sum(x + i0, e, 0.0f, -1.0f, m); /* e^-x */
        for (size_t i = 0; i < m; i++) {
            /* d/dx x s(x) = s(x) (1 + x (1 - s(x))), s = 1 / (1 + e^-x) */
            float v = x[i0 + i], sg = 1.0f / (1.0f + e[i]);
            dx[i0 + i] += dy[i0 + i] * sg * (1.0f + v * (1.0f - sg));
        }
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- embedding */
// dy: (n, dim), ids: (n,), dtable: (vocab, dim)
llmc_status llmc_embedding_backward(const float *dy, const int64_t *ids, size_t n, size_t dim, float *dtable,
                                    size_t vocab) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, vocab);
    for (size_t i = 0; i < n; i++) llmc_k->axpy(dtable + (size_t)ids[i] * dim, 1.0f, dy + i * dim, dim);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- RoPE */
// dy, dx: (outer, T, d); positions: (T,)
llmc_status llmc_apply_rope_backward(const float *dy, float *dx, size_t outer, size_t T, size_t d,
                                     const int64_t *positions, float theta, int layout) {
    /* a rotation's gradient is the inverse rotation: rotate dy by -angle, i.e. at the negated positions */
    size_t n;
    if (!llmc_size3(outer, T, d, sizeof(float), &n)) return llmc_fail(LLMC_ERR_NOMEM, "RoPE backward size overflows");
    float *tmp = llmc_malloc(n, "RoPE backward buffer");
    int64_t *neg = llmc_malloc(T * sizeof(int64_t) + 1, "RoPE backward positions");
    llmc_status st = LLMC_ERR_NOMEM;
    if (tmp && neg) {
        for (size_t t = 0; t < T; t++) neg[t] = -positions[t];
        st = llmc_apply_rope(dy, tmp, outer, T, d, neg, theta, layout);
        if (!st) llmc_k->axpy(dx, 1.0f, tmp, outer * T * d);
    }
    llmc_free(tmp);
    llmc_free(neg);
    return st;
}

/* ---------------------------------------------------------------- softmax + cross-entropy, fused */
// logits, dlogits: (T, V); targets: (T,)
llmc_status llmc_cross_entropy_backward(const float *logits, const int64_t *targets, size_t T, size_t V, float scale,
                                        float *dlogits, double *loss_sum) {
    for (size_t t = 0; t < T; t++)
        if (targets[t] < 0 || (uint64_t)targets[t] >= V)
            return llmc_fail(LLMC_ERR_INVALID, "target %lld at position %zu is outside the vocabulary [0, %zu)",
                             (long long)targets[t], t, V);
    double total = 0.0;
    const int nt = llmc_threads_for(T * V);
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *row = logits + t * V;
        float *drow = dlogits + t * V;
        float m = llmc_k->max(row, V);
        /* softmax computed in place of the gradient row, then d(-log p_target)/dlogits = p - onehot(target) */
        double s = 0.0;
        for (size_t i = 0; i < V; i++) s += exp((double)row[i] - m);
        total += log(s) + (double)m - (double)row[targets[t]];
        float inv = (float)(1.0 / s);
        for (size_t i = 0; i < V; i++) drow[i] += scale * expf(row[i] - m) * inv;
        drow[targets[t]] -= scale;
    }
    if (loss_sum) *loss_sum = total;
    return LLMC_OK;
}

// logits_to_grad: (T, V) overwritten with scale * (softmax - onehot); targets: (T,) already checked
double llmc_cross_entropy_grad_inplace(float *logits_to_grad, const int64_t *targets, size_t T, size_t V, float scale) {
    double total = 0.0;
    const int nt = llmc_threads_for(T * V);
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
    for (size_t t = 0; t < T; t++) {
        float *row = logits_to_grad + t * V;
        float m = llmc_k->max(row, V);
        float target_logit = row[targets[t]];
        float s = llmc_k->exp_shift_sum(row, row, m, 1.0f, V); /* row := exp(row - m) */
        total += log((double)s) + (double)m - (double)target_logit;
        llmc_k->scale(row, scale / s, V); /* scale * softmax */
        row[targets[t]] -= scale;
    }
    return total;
}

/* ---------------------------------------------------------------- self-attention (standard) */
/* The keys [*lo, *hi) query i of T may see: causal (j <= i), optionally within a sliding window W > 0 (causal:
 * i - W < j; non-causal: |j - i| < W), as llmc_attention masks them when Tq = Tk. */
static void key_range(size_t i, size_t T, int causal, size_t window, size_t *lo, size_t *hi) {
    *lo = window && i + 1 > window ? i + 1 - window : 0;
    *hi = causal ? i + 1 : (window && i + window < T ? i + window : T);
}

// q, dq, dout: (Hq, T, d); k, v, dk, dv: (Hkv, T, d); scratch: (2, T, T)
llmc_status llmc_attention_backward_ws(const float *q, const float *k, const float *v, const float *dout, float *dq,
                                       float *dk, float *dv, size_t Hq, size_t Hkv, size_t T, size_t d, float scale,
                                       int causal, size_t window, float *scratch) {
    if (Hkv == 0 || Hq % Hkv) return llmc_fail(LLMC_ERR_INVALID, "Hq (%zu) must be a multiple of Hkv (%zu)", Hq, Hkv);
    float *P = scratch, *dP = scratch + T * T;
    llmc_status st = LLMC_OK;
    const size_t group = Hq / Hkv;
    for (size_t h = 0; h < Hq && !st; h++) {
        const float *qh = q + h * T * d, *kh = k + (h / group) * T * d, *vh = v + (h / group) * T * d;
        const float *doh = dout + h * T * d;
        /* recompute P = softmax(scale * q k^T) over the keys each query sees; 0 elsewhere */
        if ((st = llmc_sgemm(0, 1, T, T, d, scale, qh, d, kh, d, 0.0f, P, T))) break;
        for (size_t i = 0; i < T; i++) {
            size_t lo, hi;
            key_range(i, T, causal, window, &lo, &hi);
            float *row = P + i * T;
            float m = llmc_k->max(row + lo, hi - lo);
            float s = llmc_k->exp_shift_sum(row + lo, row + lo, m, 1.0f, hi - lo);
            llmc_k->scale(row + lo, 1.0f / s, hi - lo);
            memset(row, 0, lo * sizeof(float));
            memset(row + hi, 0, (T - hi) * sizeof(float));
        }
        /* dV += P^T dO */
        if (dv && (st = llmc_sgemm(1, 0, T, d, T, 1.0f, P, T, doh, d, 1.0f, dv + (h / group) * T * d, d))) break;
        /* dP = dO V^T */
        if ((st = llmc_sgemm(0, 1, T, T, d, 1.0f, doh, d, vh, d, 0.0f, dP, T))) break;
        /* softmax backward per row: dS = P * (dP - sum_j P_j dP_j) (0 where P is masked) */
        for (size_t i = 0; i < T; i++) {
            float *p = P + i * T, *g = dP + i * T;
            float dot = llmc_k->dot(p, g, T);
            for (size_t j = 0; j < T; j++) g[j] = p[j] * (g[j] - dot);
        }
        /* dQ += scale dS K ; dK += scale dS^T Q */
        if (dq && (st = llmc_sgemm(0, 0, T, d, T, scale, dP, T, kh, d, 1.0f, dq + h * T * d, d))) break;
        if (dk && (st = llmc_sgemm(1, 0, T, d, T, scale, dP, T, qh, d, 1.0f, dk + (h / group) * T * d, d))) break;
    }
    return st;
}

llmc_status llmc_attention_backward(const float *q, const float *k, const float *v, const float *dout, float *dq,
                                    float *dk, float *dv, size_t Hq, size_t Hkv, size_t T, size_t d, float scale,
                                    int causal, size_t window) {
    size_t tt;
    if (!llmc_size3(T, T, 2, sizeof(float), &tt)) return llmc_fail(LLMC_ERR_NOMEM, "attention backward size overflows");
    float *scratch = llmc_malloc(tt, "attention backward scores");
    if (!scratch) return LLMC_ERR_NOMEM;
    llmc_status st =
        llmc_attention_backward_ws(q, k, v, dout, dq, dk, dv, Hq, Hkv, T, d, scale, causal, window, scratch);
    llmc_free(scratch);
    return st;
}
