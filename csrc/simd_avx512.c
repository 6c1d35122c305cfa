/* simd_avx512.c: AVX-512F versions of the vector primitives (16 floats per register; row tails use lane masks).
 * Same algorithms as simd_avx2.c; simd.c only installs this table when the CPU reports avx512f. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "simd.h"

#define TGT __attribute__((target("avx512f")))

/* mask of the first `rem` lanes, rem in 0..16 */
TGT static inline __mmask16 tail16(size_t rem) { return (__mmask16)((1u << rem) - 1u); }

/* exp(x) for 16 lanes; see exp8 in simd_avx2.c for the method and its range. */
TGT static inline __m512 exp16(__m512 x) {
    __mmask16 over = _mm512_cmp_ps_mask(x, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ);
    __mmask16 under = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654475f), _CMP_LT_OQ);
    __m512 xc = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 y = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(INFINITY));
    return _mm512_maskz_mov_ps((__mmask16)~under, y);
}

/* exp(x) for x <= 0 only (the online softmax's shifted scores), as 2^t with t = x log2(e): t = n + f with n an
 * integer and |f| <= 1/2, 2^f by its degree-6 Taylor polynomial (coefficients ln2^k / k!; truncation error
 * < 1.3e-7 relative), and vscalefps for p * 2^n. Fewer operations than exp16 (no Cody-Waite reduction, no overflow
 * branch); the rounding of t matters only where exp(x) is already tiny. t <= -125 (including -inf) gives exactly 0,
 * so masked scores contribute nothing and no denormals reach the later products. */
TGT static inline __m512 exp16_nonpos(__m512 x) {
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __mmask16 keep = _mm512_cmp_ps_mask(t, _mm512_set1_ps(-125.0f), _CMP_GT_OQ);
    t = _mm512_max_ps(t, _mm512_set1_ps(-125.0f)); /* finite, so -inf cannot turn into NaN below */
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n); /* exact */
    __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_maskz_scalef_ps(keep, p, n); /* p * 2^n */
}

TGT static float w_dot(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    }
    for (; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

TGT static void w_axpy(float *y, float a, const float *x, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
        _mm512_mask_storeu_ps(y + i, m, v);
    }
}

TGT static void w_scale(float *y, float a, size_t n) {
    __m512 va = _mm512_set1_ps(a);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(va, _mm512_maskz_loadu_ps(m, y + i)));
    }
}

TGT static float w_max(const float *x, size_t n) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        /* masked-off lanes keep mx; max_ps skips NaN lanes (it returns its second operand), so they are noted
         * separately: a NaN anywhere makes the max NaN */
        nan |= _mm512_mask_cmp_ps_mask(m, v, v, _CMP_UNORD_Q);
        mx = _mm512_mask_max_ps(mx, m, v, mx);
    }
    return nan ? NAN : _mm512_reduce_max_ps(mx);
}

TGT static float w_sum(const float *x, size_t n) {
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, x + i));
    }
    return _mm512_reduce_add_ps(s);
}

TGT static float w_sumsq(const float *x, size_t n) {
    __m512 s = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        s = _mm512_fmadd_ps(v, v, s);
    }
    return _mm512_reduce_add_ps(s);
}

TGT static float w_sq_dev_sum(const float *x, float mean, size_t n) {
    __m512 s = _mm512_setzero_ps(), vm = _mm512_set1_ps(mean);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 d = _mm512_maskz_sub_ps(m, _mm512_maskz_loadu_ps(m, x + i), vm);
        s = _mm512_fmadd_ps(d, d, s);
    }
    return _mm512_reduce_add_ps(s);
}

TGT static float w_exp_shift_sum(const float *x, float *out, float shift, float mul, size_t n) {
    __m512 s = _mm512_setzero_ps(), vs = _mm512_set1_ps(shift), vm = _mm512_set1_ps(mul);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 e = exp16(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vm));
        _mm512_mask_storeu_ps(out + i, m, e);
        s = _mm512_mask_add_ps(s, m, s, e);
    }
    return _mm512_reduce_add_ps(s);
}

TGT static void w_shift_scale_add(const float *x, float *out, float shift, float mul, float add, size_t n) {
    __m512 vs = _mm512_set1_ps(shift), vm = _mm512_set1_ps(mul), va = _mm512_set1_ps(add);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_fmadd_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs), vm, va);
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

TGT static void w_norm_affine(const float *x, float *out, float mean, float rstd, const float *w, const float *b,
                              size_t n) {
    __m512 vmean = _mm512_set1_ps(mean), vr = _mm512_set1_ps(rstd);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), vr);
        v = _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i));
        if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i));
        _mm512_mask_storeu_ps(out + i, m, v);
    }
}

TGT static void w_silu(const float *x, float *out, size_t n) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 e = exp16(_mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_mask_storeu_ps(out + i, m, _mm512_div_ps(v, _mm512_add_ps(one, e)));
    }
}

TGT static void w_gelu_tanh(const float *x, float *out, size_t n) {
    const __m512 c = _mm512_set1_ps(0.7978845608028654f), k = _mm512_set1_ps(0.044715f);
    const __m512 one = _mm512_set1_ps(1.0f), two = _mm512_set1_ps(2.0f), half = _mm512_set1_ps(0.5f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tail16(n - i);
        __m512 v = _mm512_maskz_loadu_ps(m, x + i);
        __m512 u = _mm512_mul_ps(c, _mm512_fmadd_ps(_mm512_mul_ps(k, v), _mm512_mul_ps(v, v), v));
        __m512 t = _mm512_sub_ps(one, _mm512_div_ps(two, _mm512_add_ps(exp16(_mm512_mul_ps(two, u)), one)));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(half, v), _mm512_add_ps(one, t)));
    }
}

/* One register tile of c: MR rows x 32 columns (two zmm per row; m0/m1 mask the columns that exist), accumulated
 * over k in 2*MR registers. MR is a constant after inlining, so the arrays below live in registers. */
#define GEMM_MR 8
TGT __attribute__((always_inline)) static inline void w_gemm_rows(size_t MR, size_t k, const float *a, size_t a_rs,
                                                                  size_t a_cs, const float *b, size_t ldb, float *c,
                                                                  size_t ldc, __mmask16 m0, __mmask16 m1,
                                                                  int accumulate) {
    __m512 c0[GEMM_MR], c1[GEMM_MR];
    for (size_t r = 0; r < MR; r++) {
        c0[r] = accumulate ? _mm512_maskz_loadu_ps(m0, c + r * ldc) : _mm512_setzero_ps();
        c1[r] = accumulate ? _mm512_maskz_loadu_ps(m1, c + r * ldc + 16) : _mm512_setzero_ps();
    }
    for (size_t p = 0; p < k; p++) {
        /* one row of b (32 columns), times MR broadcast entries of column p of a */
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b + p * ldb), b1 = _mm512_maskz_loadu_ps(m1, b + p * ldb + 16);
        for (size_t r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r * a_rs + p * a_cs]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
    }
    for (size_t r = 0; r < MR; r++) {
        _mm512_mask_storeu_ps(c + r * ldc, m0, c0[r]);
        _mm512_mask_storeu_ps(c + r * ldc + 16, m1, c1[r]);
    }
}

/* The wide tile for full 64-column panels: MR <= 6 rows x 64 columns (four zmm per row) = 24 accumulators, so each
 * step of k does 4 loads of b + MR broadcasts for 4 * MR FMAs (vs 2 + 8 for 16 in the 8 x 32 tile); measured ~30 %
 * faster on 64 x 64 x 64 products. */
#define GEMM_MR64 6
TGT __attribute__((always_inline)) static inline void w_gemm_rows64(size_t MR, size_t k, const float *a, size_t a_rs,
                                                                    size_t a_cs, const float *b, size_t ldb, float *c,
                                                                    size_t ldc, int accumulate) {
    __m512 c0[GEMM_MR64], c1[GEMM_MR64], c2[GEMM_MR64], c3[GEMM_MR64];
    for (size_t r = 0; r < MR; r++) {
        const float *cr = c + r * ldc;
        c0[r] = accumulate ? _mm512_loadu_ps(cr) : _mm512_setzero_ps();
        c1[r] = accumulate ? _mm512_loadu_ps(cr + 16) : _mm512_setzero_ps();
        c2[r] = accumulate ? _mm512_loadu_ps(cr + 32) : _mm512_setzero_ps();
        c3[r] = accumulate ? _mm512_loadu_ps(cr + 48) : _mm512_setzero_ps();
    }
    for (size_t p = 0; p < k; p++) {
        /* one row of b (64 columns), times MR broadcast entries of column p of a */
        const float *bp = b + p * ldb;
        __m512 b0 = _mm512_loadu_ps(bp), b1 = _mm512_loadu_ps(bp + 16);
        __m512 b2 = _mm512_loadu_ps(bp + 32), b3 = _mm512_loadu_ps(bp + 48);
        for (size_t r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r * a_rs + p * a_cs]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
            c2[r] = _mm512_fmadd_ps(ar, b2, c2[r]);
            c3[r] = _mm512_fmadd_ps(ar, b3, c3[r]);
        }
    }
    for (size_t r = 0; r < MR; r++) {
        float *cr = c + r * ldc;
        _mm512_storeu_ps(cr, c0[r]);
        _mm512_storeu_ps(cr + 16, c1[r]);
        _mm512_storeu_ps(cr + 32, c2[r]);
        _mm512_storeu_ps(cr + 48, c3[r]);
    }
}

// a: (m, k) at a[i * a_rs + p * a_cs]; b: (k, n) row stride ldb; c: (m, n) row stride ldc
TGT static void w_gemm_tile(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs, const float *b,
                            size_t ldb, float *c, size_t ldc, int accumulate) {
    size_t j0 = 0;
    for (; j0 + 64 <= n; j0 += 64) { /* full 64-column panels: the wide tile */
        size_t i = 0;
        for (; i + 6 <= m; i += 6)
            w_gemm_rows64(6, k, a + i * a_rs, a_rs, a_cs, b + j0, ldb, c + i * ldc + j0, ldc, accumulate);
        const float *ai = a + i * a_rs, *bj = b + j0;
        float *cij = c + i * ldc + j0;
        switch (m - i) { /* the last m % 6 rows, each count with its own unrolled tile */
        case 5: w_gemm_rows64(5, k, ai, a_rs, a_cs, bj, ldb, cij, ldc, accumulate); break;
        case 4: w_gemm_rows64(4, k, ai, a_rs, a_cs, bj, ldb, cij, ldc, accumulate); break;
        case 3: w_gemm_rows64(3, k, ai, a_rs, a_cs, bj, ldb, cij, ldc, accumulate); break;
        case 2: w_gemm_rows64(2, k, ai, a_rs, a_cs, bj, ldb, cij, ldc, accumulate); break;
        case 1: w_gemm_rows64(1, k, ai, a_rs, a_cs, bj, ldb, cij, ldc, accumulate); break;
        default: break;
        }
    }
    for (size_t j = j0; j < n; j += 32) { /* the remaining < 64 columns: 8 x 32 tiles with masked edges */
        size_t w = n - j < 32 ? n - j : 32;
        __mmask16 m0 = w >= 16 ? (__mmask16)0xFFFF : tail16(w), m1 = w > 16 ? tail16(w - 16) : 0;
        if (w == 32) m1 = (__mmask16)0xFFFF;
        size_t i = 0;
        for (; i + 8 <= m; i += 8)
            w_gemm_rows(8, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate);
        switch (m - i) { /* the last m % 8 rows, each count with its own unrolled tile */
        case 7: w_gemm_rows(7, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 6: w_gemm_rows(6, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 5: w_gemm_rows(5, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 4: w_gemm_rows(4, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 3: w_gemm_rows(3, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 2: w_gemm_rows(2, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        case 1: w_gemm_rows(1, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, m0, m1, accumulate); break;
        default: break;
        }
    }
}

// s: (rows, cols) row stride lds; m, l, alpha: (cols,). Same steps as s_softmax_cols_online, 16 columns at a time.
TGT static void w_softmax_cols_online(float *s, size_t rows, size_t cols, size_t lds, float *m, float *l,
                                      float *alpha) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (size_t c = 0; c < cols; c += 16) {
        __mmask16 k = cols - c >= 16 ? (__mmask16)0xFFFF : tail16(cols - c);
        __m512 m_old = _mm512_mask_loadu_ps(ninf, k, m + c), m_new = m_old;
        for (size_t r = 0; r < rows; r++) m_new = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, k, s + r * lds + c), m_new);
        /* shift = m_new, or 0 in columns that have seen only -inf (so exp gives 0, not NaN) */
        __m512 shift = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_NEQ_OQ), m_new);
        __m512 a = exp16_nonpos(_mm512_sub_ps(m_old, shift)); /* rescales what was summed under the old max */
        __m512 sum = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, l + c), a);
        for (size_t r = 0; r < rows; r++) {
            __m512 e = exp16_nonpos(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + r * lds + c), shift)); /* <= 0 */
            _mm512_mask_storeu_ps(s + r * lds + c, k, e);
            sum = _mm512_add_ps(sum, e);
        }
        _mm512_mask_storeu_ps(alpha + c, k, a);
        _mm512_mask_storeu_ps(l + c, k, sum);
        _mm512_mask_storeu_ps(m + c, k, m_new);
    }
}

const llmc_simd_kernels llmc_simd_avx512 = {
    "avx512", w_dot, w_axpy, w_scale, w_max, w_sum, w_sumsq, w_sq_dev_sum, w_exp_shift_sum, w_shift_scale_add,
    w_norm_affine, w_silu, w_gelu_tanh, w_gemm_tile, w_softmax_cols_online, llmc_rows_dot_avx2,
    llmc_rows_in_out_avx2,
};
#else
#include "simd.h"
const llmc_simd_kernels llmc_simd_avx512 = {0};
#endif
