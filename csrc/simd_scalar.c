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
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
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

const llmc_simd_kernels llmc_simd_scalar = {
    "scalar", s_dot, s_axpy, s_scale, s_max, s_sum, s_sumsq, s_sq_dev_sum, s_exp_shift_sum, s_shift_scale_add,
    s_norm_affine, s_silu, s_gelu_tanh,
};
