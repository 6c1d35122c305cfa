/* simd_scalar.c: the portable versions of the vector primitives (the reference the SIMD ones are tested against). */
#include <math.h>

#include "simd.h"

static float s_dot(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static void s_axpy(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
static void s_scale(float *y, float a, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] *= a;
}
static float s_max(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) return NAN; /* NaN propagates, like numpy.max */
        m = x[i] > m ? x[i] : m;
    }
    return m;
}
static float s_sum(const float *x, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}
static float s_sumsq(const float *x, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}
static float s_sq_dev_sum(const float *x, float mean, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += (x[i] - mean) * (x[i] - mean);
    return s;
}
static float s_exp_shift_sum(const float *x, float *out, float shift, float mul, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        out[i] = expf((x[i] - shift) * mul);
        s += out[i];
    }
    return s;
}
static void s_shift_scale_add(const float *x, float *out, float shift, float mul, float add, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (x[i] - shift) * mul + add;
}
static void s_norm_affine(const float *x, float *out, float mean, float rstd, const float *w, const float *b,
                          size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (x[i] - mean) * rstd * w[i] + (b ? b[i] : 0.0f);
}
static void s_silu(const float *x, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}
static void s_gelu_tanh(const float *x, float *out, size_t n) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(c * (v + 0.044715f * v * v * v)));
    }
}

// a: (m, k) at a[i * a_rs + p * a_cs]; b: (k, n) row stride ldb; c: (m, n) row stride ldc
static void s_gemm_tile(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs, const float *b,
                        size_t ldb, float *c, size_t ldc, int accumulate) {
    for (size_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (!accumulate)
            for (size_t j = 0; j < n; j++) ci[j] = 0.0f;
        for (size_t p = 0; p < k; p++) {
            const float aip = a[i * a_rs + p * a_cs], *bp = b + p * ldb;
            for (size_t j = 0; j < n; j++) ci[j] += aip * bp[j];
        }
    }
}

// s: (rows, cols) row stride lds; m, l, alpha: (cols,)
static void s_softmax_cols_online(float *s, size_t rows, size_t cols, size_t lds, float *m, float *l, float *alpha) {
    for (size_t c = 0; c < cols; c++) alpha[c] = m[c]; /* alpha holds the new max until step 2 */
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) alpha[c] = s[r * lds + c] > alpha[c] ? s[r * lds + c] : alpha[c];
    for (size_t c = 0; c < cols; c++) {
        float m_new = alpha[c];
        float shift = m_new == -INFINITY ? 0.0f : m_new; /* a column with nothing visible yet: exp(-inf - 0) = 0 */
        alpha[c] = expf(m[c] - shift);                   /* rescales what was summed under the old max */
        l[c] *= alpha[c];
        m[c] = m_new;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float shift = m[c] == -INFINITY ? 0.0f : m[c];
            float e = expf(s[r * lds + c] - shift);
            s[r * lds + c] = e;
            l[c] += e;
        }
}

// w: (nw, in), x: (T, in), y[t * ldy + j] = beta * y[t * ldy + j] + dot(w[j], x[t]); the portable reference
static void s_rows_dot(const float *w, size_t nw, size_t in, const float *x, size_t T, float *y, size_t ldy,
                       float beta) {
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < nw; j++) {
            const float d = s_dot(w + j * in, x + t * in, in);
            float *yo = y + t * ldy + j;
            *yo = beta == 0.0f ? d : beta * *yo + d;
        }
}

// x: (T, k) row stride ldx; w: (k, n) row stride ldw; y: (T, n) row stride ldy = (accumulate ? y : 0) + x @ w
static void s_rows_in_out(const float *x, size_t ldx, size_t T, size_t k, const float *w, size_t ldw, size_t n,
                          float *y, size_t ldy, int accumulate) {
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < n; c++) {
            float s = 0.0f;
            for (size_t p = 0; p < k; p++) s += x[t * ldx + p] * w[p * ldw + c];
            y[t * ldy + c] = accumulate ? y[t * ldy + c] + s : s;
        }
}

const llmc_simd_kernels llmc_simd_scalar = {
    "scalar", s_dot, s_axpy, s_scale, s_max, s_sum, s_sumsq, s_sq_dev_sum, s_exp_shift_sum, s_shift_scale_add,
    s_norm_affine, s_silu, s_gelu_tanh, s_gemm_tile, s_softmax_cols_online, s_rows_dot, s_rows_in_out,
};
