/* seq2seq_matmul.c: y = beta * y + x @ W^T for a few rows of x (the beams of one decoding step), fp32 weights.
 *
 * sgemm packs the whole weight matrix before multiplying; for 2-8 rows that packing costs several times the
 * product (measured on t5-small's 32128 x 512 head with 4 rows: 4x more time in OpenBLAS's copy routine than in its
 * kernel). Here every weight row is read from memory once and multiplied into all input rows while it sits in
 * registers: the step streams the weights once, whatever the number of beams. The AVX2 kernel keeps 2 x 4
 * accumulators (4 input rows, two 8-float halves) so the FMAs of different rows overlap; the portable path is a
 * dot product per (weight row, input row). Chosen with the active SIMD table (llmc_simd_set_level switches it). */
#include <string.h>

#include "seq2seq.h"
#include "simd.h"

/* weight rows [o0, o1): y[r][o] = beta * y[r][o] + W[o] . x[r] */
static void rows_portable(const float *w, const float *x, float *y, size_t R, size_t in, size_t out, float beta,
                          size_t o0, size_t o1) {
    for (size_t o = o0; o < o1; o++)
        for (size_t r = 0; r < R; r++) {
            const float d = llmc_k->dot(w + o * in, x + r * in, in);
            y[r * out + o] = beta == 0.0f ? d : beta * y[r * out + o] + d;
        }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TGT __attribute__((target("avx2,fma")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* weight rows [o0, o1), input rows in groups of up to 4: w (out, in), x (R, in), y (R, out) */
TGT static void rows_avx2(const float *w, const float *x, float *y, size_t R, size_t in, size_t out, float beta,
                          size_t o0, size_t o1) {
    const size_t in16 = in / 16 * 16;
    for (size_t o = o0; o < o1; o++) {
        const float *wo = w + o * in;
        for (size_t r0 = 0; r0 < R; r0 += 4) {
            const size_t nr = R - r0 < 4 ? R - r0 : 4;
            const float *x0 = x + r0 * in, *x1 = x0 + (nr > 1 ? in : 0), *x2 = x0 + (nr > 2 ? 2 * in : 0),
                        *x3 = x0 + (nr > 3 ? 3 * in : 0); /* missing rows repeat row 0; their sums are dropped */
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            size_t i = 0;
            for (; i < in16; i += 16) { // 16 weights loaded once, multiplied into 4 rows, two chains each
                const __m256 wa = _mm256_loadu_ps(wo + i), wb = _mm256_loadu_ps(wo + i + 8);
                a0 = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x0 + i), a0);
                a1 = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x1 + i), a1);
                a2 = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x2 + i), a2);
                a3 = _mm256_fmadd_ps(wa, _mm256_loadu_ps(x3 + i), a3);
                b0 = _mm256_fmadd_ps(wb, _mm256_loadu_ps(x0 + i + 8), b0);
                b1 = _mm256_fmadd_ps(wb, _mm256_loadu_ps(x1 + i + 8), b1);
                b2 = _mm256_fmadd_ps(wb, _mm256_loadu_ps(x2 + i + 8), b2);
                b3 = _mm256_fmadd_ps(wb, _mm256_loadu_ps(x3 + i + 8), b3);
            }
            float s[4] = {hsum8(_mm256_add_ps(a0, b0)), hsum8(_mm256_add_ps(a1, b1)), hsum8(_mm256_add_ps(a2, b2)),
                          hsum8(_mm256_add_ps(a3, b3))};
            const float *xs[4] = {x0, x1, x2, x3};
            for (; i < in; i++) // the tail of a row whose length is not a multiple of 16
                for (size_t k = 0; k < 4; k++) s[k] += wo[i] * xs[k][i];
            for (size_t k = 0; k < nr; k++) {
                float *yo = y + (r0 + k) * out + o;
                *yo = beta == 0.0f ? s[k] : beta * *yo + s[k];
            }
        }
    }
}
#endif

void s2s_matmul_few_rows(const float *w, const float *x, float *y, size_t R, size_t in, size_t out, float beta) {
#if defined(__x86_64__) || defined(__i386__)
    const int avx2 = llmc_k == &llmc_simd_avx2 || llmc_k == &llmc_simd_avx512; /* avx512 CPUs have avx2 + fma */
#else
    const int avx2 = 0;
#endif
    const size_t chunk = 64; /* weight rows per task */
    const size_t tasks = (out + chunk - 1) / chunk;
    const int nt = llmc_threads_for(out * in * R);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t t = 0; t < tasks; t++) {
        const size_t o0 = t * chunk, o1 = o0 + chunk < out ? o0 + chunk : out;
#if defined(__x86_64__) || defined(__i386__)
        if (avx2) {
            rows_avx2(w, x, y, R, in, out, beta, o0, o1);
            continue;
        }
#endif
        rows_portable(w, x, y, R, in, out, beta, o0, o1);
    }
    (void)avx2;
}
