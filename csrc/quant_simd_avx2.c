/* quant_simd_avx2.c: AVX2 dot products of quantized weight rows with Q8 activation rows (and of F16 / BF16 rows
 * with fp32 ones), the kernels decode runs. Built with per-function target attributes (never -march=native);
 * quant_simd.c installs them only when the CPU reports AVX2, FMA and F16C.
 *
 * Every kernel takes one weight row of n values (n a multiple of its block size) and one activation row in the
 * weight type's vec_dot_type. The weight bytes are unpacked to bytes in registers, multiplied with the int8
 * activations by vpmaddubsw (unsigned x signed bytes, adjacent pairs summed to int16) and vpmaddwd against ones
 * (pairs of int16 summed to int32): exact integer sums per block, then one fp32 scale per block (or super-block).
 * vpmaddubsw saturates at int16, which these products never reach (the largest pair is 2 * 128 * 127 = 32512:
 * |weight| <= 128 for a Q8_0 from any file, |activation| <= 127 as llmc quantizes them).
 *
 * The scalar reference is quant_dot.c; tests/test_quant.py checks every kernel against it. AVX-512 (VNNI's
 * vpdpbusd would replace the vpmaddubsw + vpmaddwd pair) is not written: no machine this was developed on has it,
 * and untested kernels are not shipped. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "quant.h"

#define TGT __attribute__((target("avx2,fma,f16c")))

/* an fp16 scale (two little-endian bytes at any address) -> fp32 with F16C's vcvtph2ps, exact and inlined */
TGT static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

TGT static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
TGT static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e)); /* swap 64-bit halves */
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)); /* swap neighbours */
    return _mm_cvtsi128_si32(s);
}

/* u: 32 unsigned bytes, s: 32 signed bytes -> 8 int32: lane k = sum_{i<4} u[4k+i] * s[4k+i] */
TGT static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* signed x signed bytes: |a| * (b with a's sign) keeps the products and makes the left operand unsigned */
TGT static inline __m256i dot_s8s8(__m256i a, __m256i b) {
    return dot_u8s8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles (values 0..15) then high nibbles (values 16..31) */
TGT static inline __m256i unpack_nibbles(const uint8_t *p) {
    const __m128i b = _mm_loadu_si128((const __m128i *)p);
    const __m128i m = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), m), _mm_and_si128(b, m));
}

/* the 32 bits of qh (little-endian bytes) -> 32 bytes, 0x10 where bit j is set (the fifth bit of value j) */
TGT static inline __m256i bit4_from_qh(const uint8_t *qh_bytes) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    /* byte j takes source byte j / 8 of the broadcast word (each 128-bit lane holds the 4 bytes again) */
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL); /* byte j selects bit j % 8 */
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit); /* 0xFF where set */
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* One block of each 32-value format: acc + (d_w d_x) * (the 8 int32 lanes of q_w . q_x, as floats). The row loops
 * below keep two accumulators, so consecutive blocks' multiply-adds do not wait on each other's latency. */
TGT static inline __m256 blk_q8_0(const block_q8_0 *a, const block_q8_0 *b, __m256 acc) {
    const __m256i qa = _mm256_loadu_si256((const __m256i *)a->qs), qb = _mm256_loadu_si256((const __m256i *)b->qs);
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(a->d) * h2f(b->d)), _mm256_cvtepi32_ps(dot_s8s8(qa, qb)), acc);
}
TGT static inline __m256 blk_q4_0(const block_q4_0 *a, const block_q8_0 *b, __m256 acc) {
    const __m256i qa = _mm256_sub_epi8(unpack_nibbles(a->qs), _mm256_set1_epi8(8)); /* q - 8 in [-8, 7] */
    const __m256i p = dot_s8s8(qa, _mm256_loadu_si256((const __m256i *)b->qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(a->d) * h2f(b->d)), _mm256_cvtepi32_ps(p), acc);
}
TGT static inline __m256 blk_q4_1(const block_q4_1 *a, const block_q8_1 *b, __m256 acc) {
    const __m256i qa = unpack_nibbles(a->qs); /* unsigned 0..15 */
    const __m256i p = dot_u8s8(qa, _mm256_loadu_si256((const __m256i *)b->qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(a->d) * h2f(b->d)), _mm256_cvtepi32_ps(p), acc);
}
TGT static inline __m256 blk_q5_0(const block_q5_0 *a, const block_q8_0 *b, __m256 acc) {
    __m256i qa = _mm256_or_si256(unpack_nibbles(a->qs), bit4_from_qh(a->qh));
    qa = _mm256_sub_epi8(qa, _mm256_set1_epi8(16)); /* q - 16 in [-16, 15] */
    const __m256i p = dot_s8s8(qa, _mm256_loadu_si256((const __m256i *)b->qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(a->d) * h2f(b->d)), _mm256_cvtepi32_ps(p), acc);
}
TGT static inline __m256 blk_q5_1(const block_q5_1 *a, const block_q8_1 *b, __m256 acc) {
    const __m256i qa = _mm256_or_si256(unpack_nibbles(a->qs), bit4_from_qh(a->qh)); /* unsigned 0..31 */
    const __m256i p = dot_u8s8(qa, _mm256_loadu_si256((const __m256i *)b->qs));
    return _mm256_fmadd_ps(_mm256_set1_ps(h2f(a->d) * h2f(b->d)), _mm256_cvtepi32_ps(p), acc);
}

/* the row loop over nb blocks of a (weights) and b (activations) with two accumulators, into float `out` */
#define ROW_LOOP(BLK, a, b, nb, out)                                                                               \
    do {                                                                                                           \
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                                             \
        size_t i_ = 0;                                                                                             \
        for (; i_ + 2 <= (nb); i_ += 2) {                                                                          \
            acc0 = BLK(&(a)[i_], &(b)[i_], acc0);                                                                  \
            acc1 = BLK(&(a)[i_ + 1], &(b)[i_ + 1], acc1);                                                          \
        }                                                                                                          \
        if (i_ < (nb)) acc0 = BLK(&(a)[i_], &(b)[i_], acc0);                                                       \
        (out) = hsum_ps(_mm256_add_ps(acc0, acc1));                                                                \
    } while (0)

// w: Q8_0 blocks, x: Q8_0 blocks
TGT static float dot_q8_0(size_t n, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    float s;
    ROW_LOOP(blk_q8_0, a, b, n / QK, s);
    return s;
}

// w: Q4_0 blocks, x: Q8_0 blocks
TGT static float dot_q4_0(size_t n, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    float s;
    ROW_LOOP(blk_q4_0, a, b, n / QK, s);
    return s;
}

/* sum over blocks of m_w * s_x: the min term of Q4_1 / Q5_1 (s_x = d_x sum q_x) */
#define MIN_TERMS(a, b, nb, out)                                                                                   \
    do {                                                                                                           \
        float m_ = 0.0f;                                                                                           \
        for (size_t i_ = 0; i_ < (nb); i_++) m_ += h2f((a)[i_].m) * h2f((b)[i_].s);                                 \
        (out) = m_;                                                                                                \
    } while (0)

// w: Q4_1 blocks, x: Q8_1 blocks. sum = d_w d_x sum q_w q_x + m_w s_x
TGT static float dot_q4_1(size_t n, const void *w, const void *x) {
    const block_q4_1 *a = w;
    const block_q8_1 *b = x;
    float s, mins;
    ROW_LOOP(blk_q4_1, a, b, n / QK, s);
    MIN_TERMS(a, b, n / QK, mins);
    return s + mins;
}

// w: Q5_0 blocks, x: Q8_0 blocks
TGT static float dot_q5_0(size_t n, const void *w, const void *x) {
    const block_q5_0 *a = w;
    const block_q8_0 *b = x;
    float s;
    ROW_LOOP(blk_q5_0, a, b, n / QK, s);
    return s;
}

// w: Q5_1 blocks, x: Q8_1 blocks
TGT static float dot_q5_1(size_t n, const void *w, const void *x) {
    const block_q5_1 *a = w;
    const block_q8_1 *b = x;
    float s, mins;
    ROW_LOOP(blk_q5_1, a, b, n / QK, s);
    MIN_TERMS(a, b, n / QK, mins);
    return s + mins;
}

/* ---------------------------------------------------------------- K-quants against Q8_K */
static inline int16_t bsum(const block_q8_K *b, int j) {
    int16_t v;
    memcpy(&v, b->bsums + 2 * j, 2);
    return v;
}
static inline float q8k_d(const block_q8_K *b) {
    float v;
    memcpy(&v, b->d, 4);
    return v;
}
/* 8 int32 lanes: lanes 0-3 hold sums over the first 16 values of a 32-value group, lanes 4-7 the second: scale
 * them by two sub-block scales */
TGT static inline __m256i scale2(__m256i p, int s_lo, int s_hi) {
    return _mm256_mullo_epi32(p, _mm256_set_epi32(s_hi, s_hi, s_hi, s_hi, s_lo, s_lo, s_lo, s_lo));
}

/* The 6-bit scales and mins of a K-quant super-block (12 bytes q): sc[j] = q[j] & 63, mn[j] = q[j+4] & 63 for j < 4;
 * sc[j] = (q[j+4] & 15) | (q[j-4] >> 6) << 4, mn[j] = (q[j+4] >> 4) | (q[j] >> 6) << 4 for j >= 4 (ggml's layout,
 * llmc_kq_scale_min). Done on 32-bit words: bytes j of *sc / *mn (uint64) are sc[j] / mn[j]. */
static inline void kq_scales8(const uint8_t *q, uint64_t *sc, uint64_t *mn) {
    uint32_t u[3];
    memcpy(u, q, 12);
    const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, mn_lo = u[1] & 0x3f3f3f3fu;
    const uint32_t sc_hi = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 6) & 0x03030303u) << 4; /* bits 6-7 stay in their byte */
    const uint32_t mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 6) & 0x03030303u) << 4;
    *sc = (uint64_t)sc_hi << 32 | sc_lo;
    *mn = (uint64_t)mn_hi << 32 | mn_lo;
}

// w: Q4_K, x: Q8_K
TGT static float dot_q4_K(size_t n, const void *w, const void *x) {
    const block_q4_K *a = w;
    const block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    /* mins[j] repeated for bsums 2j and 2j + 1 */
    const __m128i dup = _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (size_t i = 0; i < n / QK_K; i++) {
        uint64_t sc, mn;
        kq_scales8(a[i].scales, &sc, &mn);
        /* min term: sum_j mn[j] (bsum[2j] + bsum[2j+1]), 8 int32 lanes from one vpmaddwd */
        const __m256i mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_cvtsi64_si128((long long)mn), dup));
        const __m256i pm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)b[i].bsums), mins16);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) { /* 64 values: sub-blocks 2c (low nibbles) and 2c + 1 (high nibbles) */
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            const __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            /* 16 int16 pair sums (|.| <= 2 * 15 * 128: no saturation), then x scale and pairs summed: int32 */
            const __m256i plo = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c)));
            const __m256i phi = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32)));
            const int s_lo = (int)(sc >> (16 * c)) & 0xFF, s_hi = (int)(sc >> (16 * c + 8)) & 0xFF;
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(plo, _mm256_set1_epi16((short)s_lo)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(phi, _mm256_set1_epi16((short)s_hi)));
        }
        const float dx = q8k_d(&b[i]);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(a[i].d)), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dx * h2f(a[i].dmin)), _mm256_cvtepi32_ps(pm), accm);
    }
    return hsum_ps(_mm256_sub_ps(acc, accm));
}

// w: Q5_K, x: Q8_K
TGT static float dot_q5_K(size_t n, const void *w, const void *x) {
    const block_q5_K *a = w;
    const block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        uint8_t sc[8], mn[8];
        int summs = 0;
        for (int j = 0; j < 8; j++) {
            llmc_kq_scale_min(j, a[i].scales, &sc[j], &mn[j]);
            summs += mn[j] * (bsum(&b[i], 2 * j) + bsum(&b[i], 2 * j + 1));
        }
        const __m256i qh = _mm256_loadu_si256((const __m256i *)a[i].qh); /* bit j of byte l: value 32 j + l */
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            /* bit 2c / 2c + 1 of each qh byte, moved to bit 4 (the 16s) */
            const __m256i hlo = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one), 4);
            const __m256i hhi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one), 4);
            const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4), hlo);
            const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), hhi);
            const __m256i plo = dot_u8s8(lo, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c)));
            const __m256i phi = dot_u8s8(hi, _mm256_loadu_si256((const __m256i *)(b[i].qs + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(plo, _mm256_set1_epi32(sc[2 * c])));
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(phi, _mm256_set1_epi32(sc[2 * c + 1])));
        }
        const float dx = q8k_d(&b[i]);
        s += dx * h2f(a[i].d) * (float)hsum_epi32(sumi) - dx * h2f(a[i].dmin) * (float)summs;
    }
    return s;
}

// w: Q6_K, x: Q8_K. q in [0, 63] unsigned: sum sc (q - 32) x = sum sc (q . x) - 32 sum sc bsum
TGT static float dot_q6_K(size_t n, const void *w, const void *x) {
    const block_q6_K *a = w;
    const block_q8_K *b = x;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(3);
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int offs = 0; /* 32 * sum_j sc_j bsum_j */
        for (int j = 0; j < 16; j++) offs += a[i].scales[j] * bsum(&b[i], j);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) { /* 128 values */
            const __m256i l0 = _mm256_loadu_si256((const __m256i *)(a[i].ql + 64 * c));
            const __m256i l1 = _mm256_loadu_si256((const __m256i *)(a[i].ql + 64 * c + 32));
            const __m256i h = _mm256_loadu_si256((const __m256i *)(a[i].qh + 32 * c));
            const __m256i lows[4] = {_mm256_and_si256(l0, m4), _mm256_and_si256(l1, m4),
                                     _mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                     _mm256_and_si256(_mm256_srli_epi16(l1, 4), m4)};
            for (int k = 0; k < 4; k++) { /* values 128 c + 32 k + l: high bits at 2k of qh */
                const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * k), m2), 4);
                const __m256i q = _mm256_or_si256(lows[k], hi);
                const __m256i p = dot_u8s8(q, _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * c + 32 * k)));
                const int j = 8 * c + 2 * k; /* sub-blocks of 16: j and j + 1 */
                sumi = _mm256_add_epi32(sumi, scale2(p, a[i].scales[j], a[i].scales[j + 1]));
            }
        }
        s += q8k_d(&b[i]) * h2f(a[i].d) * (float)(hsum_epi32(sumi) - 32 * offs);
    }
    return s;
}

// w: Q2_K, x: Q8_K
TGT static float dot_q2_K(size_t n, const void *w, const void *x) {
    const block_q2_K *a = w;
    const block_q8_K *b = x;
    const __m256i m2 = _mm256_set1_epi8(3);
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int summs = 0;
        for (int j = 0; j < 16; j++) summs += (a[i].scales[j] >> 4) * bsum(&b[i], j);
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i qs = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            for (int k = 0; k < 4; k++) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), m2);
                const __m256i p = dot_u8s8(q, _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * c + 32 * k)));
                const int j = 8 * c + 2 * k;
                sumi = _mm256_add_epi32(sumi, scale2(p, a[i].scales[j] & 0xF, a[i].scales[j + 1] & 0xF));
            }
        }
        const float dx = q8k_d(&b[i]);
        s += dx * h2f(a[i].d) * (float)hsum_epi32(sumi) - dx * h2f(a[i].dmin) * (float)summs;
    }
    return s;
}

// w: Q3_K, x: Q8_K. q = low2 + 4 hbit in [0, 7], value q - 4: sum sc (q . x) - 4 sum sc bsum
TGT static float dot_q3_K(size_t n, const void *w, const void *x) {
    const block_q3_K *a = w;
    const block_q8_K *b = x;
    const __m256i m2 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sc[16], offs = 0;
        for (int j = 0; j < 16; j++) {
            const int lo4 = j < 8 ? a[i].scales[j] & 0xF : a[i].scales[j - 8] >> 4;
            sc[j] = (lo4 | (((a[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            offs += sc[j] * bsum(&b[i], j);
        }
        const __m256i hm = _mm256_loadu_si256((const __m256i *)a[i].hmask); /* bit 4c + k of byte l */
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i qs = _mm256_loadu_si256((const __m256i *)(a[i].qs + 32 * c));
            for (int k = 0; k < 4; k++) {
                const __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * c + k), one);
                const __m256i q = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qs, 2 * k), m2),
                                                  _mm256_slli_epi16(hb, 2));
                const __m256i p = dot_u8s8(q, _mm256_loadu_si256((const __m256i *)(b[i].qs + 128 * c + 32 * k)));
                const int j = 8 * c + 2 * k;
                sumi = _mm256_add_epi32(sumi, scale2(p, sc[j], sc[j + 1]));
            }
        }
        s += q8k_d(&b[i]) * h2f(a[i].d) * (float)(hsum_epi32(sumi) - 4 * offs);
    }
    return s;
}

/* ---------------------------------------------------------------- F16 / BF16 weights, fp32 activations */
// w: (n,) f16 (F16C converts 8 halves exactly), x: (n,) f32
TGT static float dot_f16(size_t n, const void *w, const void *x) {
    const uint8_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i))), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(a + 2 * i + 16))),
                               _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += h2f(a + 2 * i) * b[i];
    return s;
}

/* 8 bf16 -> 8 fp32: zero-extend to 32 bits and shift into the high half (exact) */
TGT static inline __m256 bf16x8(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

// w: (n,) bf16, x: (n,) f32
TGT static float dot_bf16(size_t n, const void *w, const void *x) {
    const uint8_t *a = w;
    const float *b = x;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(bf16x8(a + 2 * i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(bf16x8(a + 2 * i + 16), _mm256_loadu_ps(b + i + 8), acc1);
    }
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += llmc_bf16_decode((uint16_t)(a[2 * i] | (a[2 * i + 1] << 8))) * b[i];
    return s;
}

const llmc_quant_kernels llmc_quant_avx2 = {
    .name = "avx2",
    .vec_dot =
        {
            [LLMC_TYPE_F16] = dot_f16,   [LLMC_TYPE_BF16] = dot_bf16, [LLMC_TYPE_Q4_0] = dot_q4_0,
            [LLMC_TYPE_Q4_1] = dot_q4_1, [LLMC_TYPE_Q5_0] = dot_q5_0, [LLMC_TYPE_Q5_1] = dot_q5_1,
            [LLMC_TYPE_Q8_0] = dot_q8_0, [LLMC_TYPE_Q2_K] = dot_q2_K, [LLMC_TYPE_Q3_K] = dot_q3_K,
            [LLMC_TYPE_Q4_K] = dot_q4_K, [LLMC_TYPE_Q5_K] = dot_q5_K, [LLMC_TYPE_Q6_K] = dot_q6_K,
        },
    .to_float =
        {
            [LLMC_TYPE_F16] = llmc_dequant_avx2_f16,   [LLMC_TYPE_BF16] = llmc_dequant_avx2_bf16,
            [LLMC_TYPE_Q8_0] = llmc_dequant_avx2_q8_0, [LLMC_TYPE_Q4_0] = llmc_dequant_avx2_q4_0,
            [LLMC_TYPE_Q4_1] = llmc_dequant_avx2_q4_1, [LLMC_TYPE_Q4_K] = llmc_dequant_avx2_q4_K,
            [LLMC_TYPE_Q5_K] = llmc_dequant_avx2_q5_K, [LLMC_TYPE_Q6_K] = llmc_dequant_avx2_q6_K,
        },
};
#endif
