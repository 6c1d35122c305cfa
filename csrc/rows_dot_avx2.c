/* rows_dot_avx2.c: the few-row fp32 product (simd.h rows_dot) with AVX2 + FMA: y = beta * y + x @ W^T for a block
 * of weight rows W and a few activation rows x (2-64: a batch of decode steps, the beams of one step, the tokens an
 * expert got). llmc_matmul_typed's F32 path (quant_matmul.c) cuts W into L2-sized blocks and calls this per block.
 *
 * Why not sgemm: sgemm first packs all of W (a copy as large as the weights) on every call, which for a few rows
 * costs more than the product. Here W is read in place: three weight rows and four activation rows meet in a
 * 3 x 4 tile of 8-lane accumulators (12 of the 16 ymm registers), so per 8 values of `in` the kernel makes
 * 3 + 4 loads and 12 FMAs; the four activation rows stay in L1 while the block's weight rows stream past them from
 * L2. Each output is one fixed sequence of operations (8-lane FMA chain over in / 8 * 8 values, the same horizontal
 * sum, the in % 8 tail added in order), whatever T, the row's place in x or the weight row's place in the tile: a
 * sequence decoded in a batch gets the same numbers as in any other batch.
 *
 * Compiled function by function for AVX2 (target attributes, never -march=native); simd.c installs it in the AVX2
 * table (and the AVX-512 one: such CPUs have AVX2 + FMA) only when the CPU reports avx2 and fma. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "simd.h"

#define TGT __attribute__((target("avx2,fma")))
#define INLINE TGT static inline __attribute__((always_inline))

INLINE float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

INLINE void put(float *y, float v, float beta) { *y = beta == 0.0f ? v : beta * *y + v; }

/* Weight rows w[0..2] (in values each) against NX activation rows x[0..NX-1], NX in 1..4 (a compile-time constant
 * at every call, so the accumulators are registers): y[t * ldy + r] (+)= dot(w[r], x[t]) for r < nr (1..3; rows
 * past nr repeat row 0 and are dropped). */
INLINE void tile3(const float *const w[3], size_t nr, const float *x, size_t NX, size_t in, float *y, size_t ldy,
                  float beta, const float **pf, const float *pf_end, int two) {
    __m256 acc[3][4];
    for (size_t r = 0; r < 3; r++)
        for (size_t t = 0; t < NX; t++) acc[r][t] = _mm256_setzero_ps();
    const size_t in8 = in & ~(size_t)7;
    for (size_t p = 0; p < in8; p += 8) {
        if (*pf < pf_end) { /* cache lines of the next block towards L2 (see llmc_rows_dot_avx2) */
            _mm_prefetch((const char *)*pf, _MM_HINT_T1);
            if (two) _mm_prefetch((const char *)(*pf + 16), _MM_HINT_T1);
            *pf += two ? 32 : 16;
        }
        const __m256 w0 = _mm256_loadu_ps(w[0] + p), w1 = _mm256_loadu_ps(w[1] + p), w2 = _mm256_loadu_ps(w[2] + p);
        for (size_t t = 0; t < NX; t++) { /* one activation load feeds three FMAs */
            const __m256 u = _mm256_loadu_ps(x + t * in + p);
            acc[0][t] = _mm256_fmadd_ps(w0, u, acc[0][t]);
            acc[1][t] = _mm256_fmadd_ps(w1, u, acc[1][t]);
            acc[2][t] = _mm256_fmadd_ps(w2, u, acc[2][t]);
        }
    }
    for (size_t r = 0; r < nr; r++)
        for (size_t t = 0; t < NX; t++) {
            float s = hsum8(acc[r][t]);
            for (size_t p = in8; p < in; p++) s += w[r][p] * x[t * in + p]; /* the last in % 8 values */
            put(y + t * ldy + r, s, beta);
        }
}

// w: (nw, in), x: (T, in), y: (T, ldy) with y[t * ldy + j] = beta * y[...] + dot(w[j], x[t]) (beta 0: overwritten)
TGT void llmc_rows_dot_avx2(const float *w, size_t nw, size_t in, const float *x, size_t T, float *y, size_t ldy,
                            float beta) {
    /* While this block is multiplied, the nw * in values after it (the caller's next block: quant_matmul.c walks
     * consecutive blocks) are prefetched into L2, a line per step, so that from 5 rows of x on the next block's
     * memory reads overlap this block's FMAs instead of stalling them (measured: 15-40% more throughput at 4-16
     * rows on weights that come from memory). A prefetch never faults, past the end of W included. */
    const float *pf = w + nw * in, *pf_end = pf + nw * in;
    const int two = T <= 4; /* one pass over the block: two lines per step to cover the next block in time */
    for (size_t t0 = 0; t0 < T; t0 += 4) { /* four activation rows (L1) against every weight row of the block (L2) */
        const size_t nx = T - t0 < 4 ? T - t0 : 4;
        const float *xt = x + t0 * in;
        float *yt = y + t0 * ldy;
        for (size_t j = 0; j < nw; j += 3) {
            const size_t nr = nw - j < 3 ? nw - j : 3;
            const float *wr[3] = {w + j * in, w + (j + (nr > 1)) * in, w + (j + 2 * (nr > 2)) * in};
            switch (nx) { /* constant row counts: each case is its own register-allocated kernel */
            case 4: tile3(wr, nr, xt, 4, in, yt + j, ldy, beta, &pf, pf_end, two); break;
            case 3: tile3(wr, nr, xt, 3, in, yt + j, ldy, beta, &pf, pf_end, two); break;
            case 2: tile3(wr, nr, xt, 2, in, yt + j, ldy, beta, &pf, pf_end, two); break;
            default: tile3(wr, nr, xt, 1, in, yt + j, ldy, beta, &pf, pf_end, two); break;
            }
        }
    }
}
#endif
