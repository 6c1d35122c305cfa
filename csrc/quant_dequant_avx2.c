/* quant_dequant_avx2.c: AVX2 dequantize rows for the prefill path (dequantized weight tiles feed sgemm). Each
 * computes exactly the reference's fp32 operations in the same order (d * q, then - m; separate multiply and
 * subtract, never fused), so its output is bit-identical to quant_ref.c / quant_kquants.c; tests/test_quant.py
 * checks that at every SIMD level. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "quant.h"

#define TGT __attribute__((target("avx2,fma,f16c")))

TGT static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 8 signed bytes -> 8 floats */
TGT static inline __m256 i8x8_ps(const int8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
/* 8 unsigned bytes -> 8 floats */
TGT static inline __m256 u8x8_ps(const uint8_t *p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

// src: n / 32 Q8_0 blocks -> y: (n,)
TGT void llmc_dequant_avx2_q8_0(const void *src, float *y, size_t n) {
    const block_q8_0 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const __m256 d = _mm256_set1_ps(h2f(b[i].d));
        for (int j = 0; j < QK; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(i8x8_ps(b[i].qs + j), d));
    }
}

// src: n / 32 Q4_0 blocks -> y: (n,)
TGT void llmc_dequant_avx2_q4_0(const void *src, float *y, size_t n) {
    const block_q4_0 *b = src;
    const __m128i m4 = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const __m256 d = _mm256_set1_ps(h2f(b[i].d));
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        int8_t v[QK]; /* q - 8: low nibbles are values 0..15, high nibbles 16..31 */
        _mm_storeu_si128((__m128i *)v, _mm_sub_epi8(_mm_and_si128(q, m4), eight));
        _mm_storeu_si128((__m128i *)(v + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), eight));
        for (int j = 0; j < QK; j += 8) _mm256_storeu_ps(y + j, _mm256_mul_ps(d, i8x8_ps(v + j)));
    }
}

// src: n / 32 Q4_1 blocks -> y: (n,)
TGT void llmc_dequant_avx2_q4_1(const void *src, float *y, size_t n) {
    const block_q4_1 *b = src;
    const __m128i m4 = _mm_set1_epi8(0x0F);
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const __m256 d = _mm256_set1_ps(h2f(b[i].d)), m = _mm256_set1_ps(h2f(b[i].m));
        const __m128i q = _mm_loadu_si128((const __m128i *)b[i].qs);
        uint8_t v[QK];
        _mm_storeu_si128((__m128i *)v, _mm_and_si128(q, m4));
        _mm_storeu_si128((__m128i *)(v + 16), _mm_and_si128(_mm_srli_epi16(q, 4), m4));
        for (int j = 0; j < QK; j += 8) _mm256_storeu_ps(y + j, _mm256_add_ps(_mm256_mul_ps(d, u8x8_ps(v + j)), m));
    }
}

/* Q4_K / Q5_K: 8 sub-blocks of 32 with value d * sc * q - dmin * m; v holds the 256 q's in order */
TGT static void k4_out(const uint8_t *scales, float d, float dmin, const uint8_t *v, float *y) {
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        llmc_kq_scale_min(j, scales, &sc, &m);
        const __m256 d1 = _mm256_set1_ps(d * sc), m1 = _mm256_set1_ps(dmin * m);
        for (int l = 0; l < 32; l += 8)
            _mm256_storeu_ps(y + 32 * j + l, _mm256_sub_ps(_mm256_mul_ps(d1, u8x8_ps(v + 32 * j + l)), m1));
    }
}

// src: n / 256 Q4_K blocks -> y: (n,)
TGT void llmc_dequant_avx2_q4_K(const void *src, float *y, size_t n) {
    const block_q4_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t v[QK_K];
        for (int c = 0; c < 4; c++) { /* 32 bytes -> sub-blocks 2c (low nibbles) and 2c + 1 (high) */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            _mm256_storeu_si256((__m256i *)(v + 64 * c), _mm256_and_si256(q, m4));
            _mm256_storeu_si256((__m256i *)(v + 64 * c + 32), _mm256_and_si256(_mm256_srli_epi16(q, 4), m4));
        }
        k4_out(b[i].scales, h2f(b[i].d), h2f(b[i].dmin), v, y);
    }
}

// src: n / 256 Q5_K blocks -> y: (n,)
TGT void llmc_dequant_avx2_q5_K(const void *src, float *y, size_t n) {
    const block_q5_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        uint8_t v[QK_K];
        const __m256i qh = _mm256_loadu_si256((const __m256i *)b[i].qh); /* bit j of byte l: value 32 j + l */
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(b[i].qs + 32 * c));
            const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
            const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
            _mm256_storeu_si256((__m256i *)(v + 64 * c), _mm256_or_si256(_mm256_and_si256(q, m4), hlo));
            _mm256_storeu_si256((__m256i *)(v + 64 * c + 32),
                                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi));
        }
        k4_out(b[i].scales, h2f(b[i].d), h2f(b[i].dmin), v, y);
    }
}

// src: n / 256 Q6_K blocks -> y: (n,); value = (d * sc) * (q - 32)
TGT void llmc_dequant_avx2_q6_K(const void *src, float *y, size_t n) {
    const block_q6_K *b = src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3), k32 = _mm256_set1_epi8(32);
    for (size_t i = 0; i < n / QK_K; i++, y += QK_K) {
        int8_t v[QK_K];
        for (int c = 0; c < 2; c++) {
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(b[i].ql + 64 * c));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(b[i].ql + 64 * c + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(b[i].qh + 32 * c));
            const __m256i lows[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                                     _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                     _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
            for (int k = 0; k < 4; k++) {
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), m2), 4);
                _mm256_storeu_si256((__m256i *)(v + 128 * c + 32 * k), _mm256_sub_epi8(_mm256_or_si256(lows[k], hi), k32));
            }
        }
        const float d = h2f(b[i].d);
        for (int j = 0; j < QK_K / 16; j++) {
            const __m256 ds = _mm256_set1_ps(d * (float)b[i].scales[j]);
            _mm256_storeu_ps(y + 16 * j, _mm256_mul_ps(ds, i8x8_ps(v + 16 * j)));
            _mm256_storeu_ps(y + 16 * j + 8, _mm256_mul_ps(ds, i8x8_ps(v + 16 * j + 8)));
        }
    }
}

// src: (n,) f16 -> y: (n,)
TGT void llmc_dequant_avx2_f16(const void *src, float *y, size_t n) {
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) y[i] = h2f(p + 2 * i);
}

// src: (n,) bf16 -> y: (n,)
TGT void llmc_dequant_avx2_bf16(const void *src, float *y, size_t n) {
    const uint8_t *p = src;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(u, 16)));
    }
    for (; i < n; i++) y[i] = llmc_bf16_decode((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}
#endif
