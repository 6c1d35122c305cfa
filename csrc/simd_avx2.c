/* simd_avx2.c: AVX2 + FMA versions of the vector primitives (8 floats per register).
 * Built with per-function target attributes so the file compiles on any x86-64 compiler flags; simd.c only
 * installs this table when the CPU reports avx2 and fma. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "simd.h"

#define TGT __attribute__((target("avx2,fma")))

TGT static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
TGT static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x) for 8 lanes: x = n ln2 + r with |r| <= ln2/2, e^r by a degree-7 polynomial (Cephes' expf coefficients),
 * then 2^n built in the exponent bits. Relative error ~2 ulp on [-87.3, 88.3]; below that 0, above 88.72 +inf. */
TGT static inline __m256 exp8(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-87.3f);
    __m256 over = _mm256_cmp_ps(x, _mm256_set1_ps(88.72283935546875f), _CMP_GT_OQ);
    __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654475f), _CMP_LT_OQ);
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    /* r = x - n ln2, with ln2 split in two so n * ln2_hi is exact */
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n: (n + 127) << 23 is the IEEE bit pattern of 2^n for n in [-126, 127] */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    return _mm256_andnot_ps(under, y);
}

/* mask of the first `rem` lanes (rem in 0..7), for loads and stores of a row's tail */
TGT static inline __m256i tail_mask8(size_t rem) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)rem), idx);
}

TGT static float v_dot(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    if (i < n) {
        __m256i m = tail_mask8(n - i);
        s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
    }
    return hsum8(_mm256_add_ps(s0, s1));
}

TGT static void v_axpy(float *y, float a, const float *x, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

TGT static void v_scale(float *y, float a, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] *= a;
}

TGT static float v_max(const float *x, size_t n) {
    __m256 m = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    size_t i = 0;
    /* max_ps(v, m) returns m when v is NaN, so NaN lanes are noted separately: a NaN anywhere makes the max NaN */
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        m = _mm256_max_ps(v, m);
    }
    if (_mm256_movemask_ps(nan)) return NAN;
    float r = hmax8(m);
    for (; i < n; i++) {
        if (isnan(x[i])) return NAN;
        r = x[i] > r ? x[i] : r;
    }
    return r;
}

TGT static float v_sum(const float *x, size_t n) {
    __m256 s = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) s = _mm256_add_ps(s, _mm256_loadu_ps(x + i));
    float r = hsum8(s);
    for (; i < n; i++) r += x[i];
    return r;
}

TGT static float v_sumsq(const float *x, size_t n) {
    __m256 s = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        s = _mm256_fmadd_ps(v, v, s);
    }
    float r = hsum8(s);
    for (; i < n; i++) r += x[i] * x[i];
    return r;
}

TGT static float v_sq_dev_sum(const float *x, float mean, size_t n) {
    __m256 s = _mm256_setzero_ps(), vm = _mm256_set1_ps(mean);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        s = _mm256_fmadd_ps(d, d, s);
    }
    float r = hsum8(s);
    for (; i < n; i++) r += (x[i] - mean) * (x[i] - mean);
    return r;
}

TGT static float v_exp_shift_sum(const float *x, float *out, float shift, float mul, size_t n) {
    __m256 s = _mm256_setzero_ps(), vs = _mm256_set1_ps(shift), vm = _mm256_set1_ps(mul);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), vm));
        _mm256_storeu_ps(out + i, e);
        s = _mm256_add_ps(s, e);
    }
    if (i < n) {
        __m256i m = tail_mask8(n - i);
        __m256 e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(out + i, m, e);
        s = _mm256_add_ps(s, e);
    }
    return hsum8(s);
}

TGT static void v_shift_scale_add(const float *x, float *out, float shift, float mul, float add, size_t n) {
    __m256 vs = _mm256_set1_ps(shift), vm = _mm256_set1_ps(mul), va = _mm256_set1_ps(add);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), vm, va));
    for (; i < n; i++) out[i] = (x[i] - shift) * mul + add;
}

TGT static void v_norm_affine(const float *x, float *out, float mean, float rstd, const float *w, const float *b,
                              size_t n) {
    __m256 vmean = _mm256_set1_ps(mean), vr = _mm256_set1_ps(rstd);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vr), _mm256_loadu_ps(w + i));
        if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + i));
        _mm256_storeu_ps(out + i, v);
    }
    for (; i < n; i++) out[i] = (x[i] - mean) * rstd * w[i] + (b ? b[i] : 0.0f);
}

TGT static void v_silu(const float *x, float *out, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), v)); /* e^-x */
        _mm256_storeu_ps(out + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) out[i] = x[i] / (1.0f + expf(-x[i]));
}

TGT static void v_gelu_tanh(const float *x, float *out, size_t n) {
    const __m256 c = _mm256_set1_ps(0.7978845608028654f), k = _mm256_set1_ps(0.044715f);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f), half = _mm256_set1_ps(0.5f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 u = _mm256_mul_ps(c, _mm256_fmadd_ps(_mm256_mul_ps(k, v), _mm256_mul_ps(v, v), v));
        /* tanh(u) = 1 - 2 / (e^{2u} + 1): saturates correctly to +-1 when e^{2u} is inf or 0 */
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(exp8(_mm256_mul_ps(two, u)), one)));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t)));
    }
    for (; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

/* One register tile of c: MR rows x 16 columns (two ymm per row; k0/k1 mask the columns that exist), accumulated
 * over k in 2*MR registers (MR <= 6 keeps 12 accumulators + 3 temporaries within the 16 ymm registers). */
#define GEMM_MR 6
TGT __attribute__((always_inline)) static inline void v_gemm_rows(size_t MR, size_t k, const float *a, size_t a_rs,
                                                                  size_t a_cs, const float *b, size_t ldb, float *c,
                                                                  size_t ldc, __m256i k0, __m256i k1, int accumulate) {
    __m256 c0[GEMM_MR], c1[GEMM_MR];
    for (size_t r = 0; r < MR; r++) {
        c0[r] = accumulate ? _mm256_maskload_ps(c + r * ldc, k0) : _mm256_setzero_ps();
        c1[r] = accumulate ? _mm256_maskload_ps(c + r * ldc + 8, k1) : _mm256_setzero_ps();
    }
    for (size_t p = 0; p < k; p++) {
        /* one row of b (16 columns), times MR broadcast entries of column p of a */
        __m256 b0 = _mm256_maskload_ps(b + p * ldb, k0), b1 = _mm256_maskload_ps(b + p * ldb + 8, k1);
        for (size_t r = 0; r < MR; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r * a_rs + p * a_cs);
            c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
            c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
        }
    }
    for (size_t r = 0; r < MR; r++) {
        _mm256_maskstore_ps(c + r * ldc, k0, c0[r]);
        _mm256_maskstore_ps(c + r * ldc + 8, k1, c1[r]);
    }
}

// a: (m, k) at a[i * a_rs + p * a_cs]; b: (k, n) row stride ldb; c: (m, n) row stride ldc
TGT static void v_gemm_tile(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs, const float *b,
                            size_t ldb, float *c, size_t ldc, int accumulate) {
    for (size_t j = 0; j < n; j += 16) {
        size_t w = n - j < 16 ? n - j : 16;
        __m256i k0 = tail_mask8(w >= 8 ? 8 : w), k1 = tail_mask8(w > 8 ? w - 8 : 0);
        size_t i = 0;
        for (; i + 6 <= m; i += 6)
            v_gemm_rows(6, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate);
        switch (m - i) { /* the last m % 6 rows, each count with its own unrolled tile */
        case 5: v_gemm_rows(5, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate); break;
        case 4: v_gemm_rows(4, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate); break;
        case 3: v_gemm_rows(3, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate); break;
        case 2: v_gemm_rows(2, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate); break;
        case 1: v_gemm_rows(1, k, a + i * a_rs, a_rs, a_cs, b + j, ldb, c + i * ldc + j, ldc, k0, k1, accumulate); break;
        default: break;
        }
    }
}

// s: (rows, cols) row stride lds; m, l, alpha: (cols,). Same steps as s_softmax_cols_online, 8 columns at a time.
TGT static void v_softmax_cols_online(float *s, size_t rows, size_t cols, size_t lds, float *m, float *l,
                                      float *alpha) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (size_t c = 0; c < cols; c += 8) {
        __m256i k = tail_mask8(cols - c >= 8 ? 8 : cols - c);
        __m256 kf = _mm256_castsi256_ps(k);
        /* lanes past the last column read as -inf (blendv picks ninf where the mask is 0) */
        __m256 m_old = _mm256_blendv_ps(ninf, _mm256_maskload_ps(m + c, k), kf), m_new = m_old;
        for (size_t r = 0; r < rows; r++)
            m_new = _mm256_max_ps(_mm256_blendv_ps(ninf, _mm256_maskload_ps(s + r * lds + c, k), kf), m_new);
        /* shift = m_new, or 0 in columns that have seen only -inf (so exp gives 0, not NaN) */
        __m256 shift = _mm256_and_ps(m_new, _mm256_cmp_ps(m_new, ninf, _CMP_NEQ_OQ));
        __m256 a = exp8(_mm256_sub_ps(m_old, shift)); /* rescales what was summed under the old max */
        __m256 sum = _mm256_mul_ps(_mm256_maskload_ps(l + c, k), a);
        for (size_t r = 0; r < rows; r++) {
            __m256 e = exp8(_mm256_sub_ps(_mm256_maskload_ps(s + r * lds + c, k), shift));
            _mm256_maskstore_ps(s + r * lds + c, k, e);
            sum = _mm256_add_ps(sum, e);
        }
        _mm256_maskstore_ps(alpha + c, k, a);
        _mm256_maskstore_ps(l + c, k, sum);
        _mm256_maskstore_ps(m + c, k, m_new);
    }
}

const llmc_simd_kernels llmc_simd_avx2 = {
    "avx2", v_dot, v_axpy, v_scale, v_max, v_sum, v_sumsq, v_sq_dev_sum, v_exp_shift_sum, v_shift_scale_add,
    v_norm_affine, v_silu, v_gelu_tanh, v_gemm_tile, v_softmax_cols_online, llmc_rows_dot_avx2,
    llmc_rows_in_out_avx2,
};
#else
#include "simd.h"
/* not an x86 CPU: the AVX2 table is the portable one and simd.c never selects it */
const llmc_simd_kernels llmc_simd_avx2 = {0};
#endif
