/* batch_dot_avx2.c: the product of a few activation rows with F32 weight rows (AVX2 + FMA), for batched decoding.
 * batch.c calls it only when the CPU has AVX2 (llmc_simd_get_level), so this file is compiled for AVX2 function by
 * function, like simd_avx2.c.
 *
 * Decoding B sequences multiplies B rows by each weight: memory-bound, every weight byte should be read once and
 * used B times. Two weight rows are streamed 8 floats at a time against up to 4 activation rows (kept in L1), with
 * the 2 x 4 partial sums in 8 registers; each output is then one horizontal sum. Per 16 weights: 2 weight loads,
 * 4 activation loads, 8 FMAs. */
#include <immintrin.h>

#include "batch_kernels.h"

#define TGT __attribute__((target("avx2,fma")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 2 weight rows w0, w1 against 4 activation rows x0..x3 (in values each): out[r][t] = dot(w_r, x_t) */
TGT static void dot_2x4(const float *w0, const float *w1, const float *x0, const float *x1, const float *x2,
                        const float *x3, size_t in, float out[2][4]) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    size_t p = 0;
    for (; p + 8 <= in; p += 8) {
        const __m256 v0 = _mm256_loadu_ps(w0 + p), v1 = _mm256_loadu_ps(w1 + p);
        __m256 u = _mm256_loadu_ps(x0 + p);
        a00 = _mm256_fmadd_ps(v0, u, a00);
        a10 = _mm256_fmadd_ps(v1, u, a10);
        u = _mm256_loadu_ps(x1 + p);
        a01 = _mm256_fmadd_ps(v0, u, a01);
        a11 = _mm256_fmadd_ps(v1, u, a11);
        u = _mm256_loadu_ps(x2 + p);
        a02 = _mm256_fmadd_ps(v0, u, a02);
        a12 = _mm256_fmadd_ps(v1, u, a12);
        u = _mm256_loadu_ps(x3 + p);
        a03 = _mm256_fmadd_ps(v0, u, a03);
        a13 = _mm256_fmadd_ps(v1, u, a13);
    }
    out[0][0] = hsum8(a00), out[0][1] = hsum8(a01), out[0][2] = hsum8(a02), out[0][3] = hsum8(a03);
    out[1][0] = hsum8(a10), out[1][1] = hsum8(a11), out[1][2] = hsum8(a12), out[1][3] = hsum8(a13);
    for (; p < in; p++) { /* the last in % 8 values */
        out[0][0] += w0[p] * x0[p], out[0][1] += w0[p] * x1[p], out[0][2] += w0[p] * x2[p], out[0][3] += w0[p] * x3[p];
        out[1][0] += w1[p] * x0[p], out[1][1] += w1[p] * x1[p], out[1][2] += w1[p] * x2[p], out[1][3] += w1[p] * x3[p];
    }
}

// W: (nb, in); x: (T, in); y[t * ldy + j] = (accumulate ? y : 0) + dot(W[j], x[t])
TGT void llmc_batch_dots_avx2(const float *W, size_t nb, size_t in, const float *x, size_t T, float *y, size_t ldy,
                              int accumulate) {
    for (size_t t0 = 0; t0 < T; t0 += 4) {
        const size_t tb = T - t0 < 4 ? T - t0 : 4;
        /* rows past T repeat the last one (their sums are dropped): the kernel always takes 4 */
        const float *xr[4];
        for (size_t t = 0; t < 4; t++) xr[t] = x + (t0 + (t < tb ? t : tb - 1)) * in;
        for (size_t j = 0; j < nb; j += 2) {
            const float *w0 = W + j * in, *w1 = j + 1 < nb ? w0 + in : w0; /* an odd last row pairs with itself */
            float o[2][4];
            dot_2x4(w0, w1, xr[0], xr[1], xr[2], xr[3], in, o);
            for (size_t r = 0; r < 2 && j + r < nb; r++)
                for (size_t t = 0; t < tb; t++) {
                    float *yo = y + (t0 + t) * ldy + j + r;
                    *yo = accumulate ? *yo + o[r][t] : o[r][t];
                }
        }
    }
}
