/* rows_in_out_avx2.c: the few-row fp32 product against a weight stored (in, out) (simd.h rows_in_out, AVX2 + FMA):
 * y (T, n) (+)= x (T, k) @ W (k, n), for GPT-2's Conv1D weights, which llmc keeps as the checkpoint stores them.
 * batch.c calls it per chunk of k rows of W and per thread's range of columns (the caller's blocking).
 *
 * A strip of 24 columns of W (k rows x 96 bytes: L1) is loaded once per k and multiplied into four activation rows
 * at a time: a 4 x 24 tile of 12 accumulators, per k 3 weight loads, 4 broadcasts and 12 FMAs. The strip stays in
 * L1 while every group of 4 rows passes over it, so W is read from memory once per call whatever T. Each output
 * lane is one column: a plain FMA chain over k in order (no horizontal sum), the same for any T, any place of the
 * row in x and the column in W. Compiled function by function for AVX2; simd.c installs it only on CPUs with AVX2
 * and FMA (the AVX2 and AVX-512 tables). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "simd.h"

#define TGT __attribute__((target("avx2,fma")))
#define INLINE TGT static inline __attribute__((always_inline))

/* lanes 0..n-1 of 8 set (n in 0..8) */
INLINE __m256i lanes(size_t n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), idx);
}

/* NX (1..4, a constant at each call) rows of x against columns [0, 24) of w (masks m0..m2 keep the columns that
 * exist when `masked`): y[t][c] = (acc ? y[t][c] : 0) + sum_p x[t][p] * w[p][c] */
INLINE void tile4x24(const float *x, size_t ldx, size_t NX, size_t k, const float *w, size_t ldw, float *y,
                     size_t ldy, int acc, int masked, __m256i m0, __m256i m1, __m256i m2) {
    __m256 a[4][3];
    for (size_t t = 0; t < NX; t++)
        for (size_t i = 0; i < 3; i++) a[t][i] = _mm256_setzero_ps();
    for (size_t p = 0; p < k; p++) {
        const float *wp = w + p * ldw;
        const __m256 b0 = masked ? _mm256_maskload_ps(wp, m0) : _mm256_loadu_ps(wp),
                     b1 = masked ? _mm256_maskload_ps(wp + 8, m1) : _mm256_loadu_ps(wp + 8),
                     b2 = masked ? _mm256_maskload_ps(wp + 16, m2) : _mm256_loadu_ps(wp + 16);
        for (size_t t = 0; t < NX; t++) { /* x[t][p] broadcast, times 24 weights */
            const __m256 xt = _mm256_broadcast_ss(x + t * ldx + p);
            a[t][0] = _mm256_fmadd_ps(xt, b0, a[t][0]);
            a[t][1] = _mm256_fmadd_ps(xt, b1, a[t][1]);
            a[t][2] = _mm256_fmadd_ps(xt, b2, a[t][2]);
        }
    }
    for (size_t t = 0; t < NX; t++) {
        float *yt = y + t * ldy;
        if (masked) {
            const __m256i m[3] = {m0, m1, m2};
            for (size_t i = 0; i < 3; i++) {
                __m256 v = a[t][i];
                if (acc) v = _mm256_add_ps(_mm256_maskload_ps(yt + 8 * i, m[i]), v);
                _mm256_maskstore_ps(yt + 8 * i, m[i], v);
            }
        } else {
            for (size_t i = 0; i < 3; i++) {
                __m256 v = a[t][i];
                if (acc) v = _mm256_add_ps(_mm256_loadu_ps(yt + 8 * i), v);
                _mm256_storeu_ps(yt + 8 * i, v);
            }
        }
    }
}

/* one strip of columns (24, or fewer when masked) against all T rows, four at a time */
INLINE void strip(const float *x, size_t ldx, size_t T, size_t k, const float *w, size_t ldw, float *y, size_t ldy,
                  int acc, int masked, __m256i m0, __m256i m1, __m256i m2) {
    for (size_t t0 = 0; t0 < T; t0 += 4) {
        const float *xt = x + t0 * ldx;
        float *yt = y + t0 * ldy;
        switch (T - t0 < 4 ? T - t0 : 4) { /* constant row counts: each its own register-allocated kernel */
        case 4: tile4x24(xt, ldx, 4, k, w, ldw, yt, ldy, acc, masked, m0, m1, m2); break;
        case 3: tile4x24(xt, ldx, 3, k, w, ldw, yt, ldy, acc, masked, m0, m1, m2); break;
        case 2: tile4x24(xt, ldx, 2, k, w, ldw, yt, ldy, acc, masked, m0, m1, m2); break;
        default: tile4x24(xt, ldx, 1, k, w, ldw, yt, ldy, acc, masked, m0, m1, m2); break;
        }
    }
}

// x: (T, k) row stride ldx; w: (k, n) row stride ldw; y: (T, n) row stride ldy = (accumulate ? y : 0) + x @ w
TGT void llmc_rows_in_out_avx2(const float *x, size_t ldx, size_t T, size_t k, const float *w, size_t ldw, size_t n,
                               float *y, size_t ldy, int accumulate) {
    const __m256i all = _mm256_set1_epi32(-1);
    size_t c = 0;
    for (; c + 24 <= n; c += 24) strip(x, ldx, T, k, w + c, ldw, y + c, ldy, accumulate, 0, all, all, all);
    if (c < n) { /* the last n % 24 columns through lane masks */
        const size_t r = n - c;
        strip(x, ldx, T, k, w + c, ldw, y + c, ldy, accumulate, 1, lanes(r), lanes(r > 8 ? r - 8 : 0),
              lanes(r > 16 ? r - 16 : 0));
    }
}
#endif
