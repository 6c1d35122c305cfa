/* quant_dot.c: the portable dot products of one weight row with one activation row, the reference that every
 * vector kernel (quant_simd_*.c) is tested against.
 *
 * The weight row stays in its block format; the activation row was quantized once to the weight type's
 * vec_dot_type (Q8_0, Q8_1 or Q8_K; fp32 for F16/BF16/F32). Per block the integer products are summed exactly in
 * int32 and scaled once: sum_b d_w[b] * d_x[b] * sum_j qw[j] * qx[j] (+ the min terms of the asymmetric formats).
 * Only the fp32 accumulation across blocks can differ (in rounding) between these and the vector kernels. */
#include "quant.h"

static inline int16_t i16_get(const uint8_t *p) {
    int16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline float f32_get(const uint8_t *p) {
    float v;
    memcpy(&v, p, 4);
    return v;
}

// w: (n,) f32, x: (n,) f32
float llmc_vec_dot_f32(size_t n, const void *w, const void *x) {
    const float *a = w, *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

// w: (n,) f16, x: (n,) f32
float llmc_vec_dot_f16(size_t n, const void *w, const void *x) {
    const uint8_t *a = w;
    const float *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += f16_get(a + 2 * i) * b[i];
    return s;
}

// w: (n,) bf16, x: (n,) f32
float llmc_vec_dot_bf16(size_t n, const void *w, const void *x) {
    const uint8_t *a = w;
    const float *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += llmc_bf16_decode((uint16_t)(a[2 * i] | (a[2 * i + 1] << 8))) * b[i];
    return s;
}

// w: n / 32 Q4_0 blocks, x: n / 32 Q8_0 blocks
float llmc_vec_dot_q4_0(size_t n, const void *w, const void *x) {
    const block_q4_0 *a = w;
    const block_q8_0 *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += ((a[i].qs[j] & 0xF) - 8) * b[i].qs[j] + ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + QK / 2];
        s += (float)sumi * (f16_get(a[i].d) * f16_get(b[i].d));
    }
    return s;
}

// w: Q4_1, x: Q8_1. sum (d_w q_w + m)(d_x q_x) = d_w d_x sum q_w q_x + m * (d_x sum q_x), the last factor is s.
float llmc_vec_dot_q4_1(size_t n, const void *w, const void *x) {
    const block_q4_1 *a = w;
    const block_q8_1 *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++)
            sumi += (a[i].qs[j] & 0xF) * b[i].qs[j] + (a[i].qs[j] >> 4) * b[i].qs[j + QK / 2];
        s += (float)sumi * (f16_get(a[i].d) * f16_get(b[i].d)) + f16_get(a[i].m) * f16_get(b[i].s);
    }
    return s;
}

static inline uint32_t u32_get(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

// w: Q5_0, x: Q8_0
float llmc_vec_dot_q5_0(size_t n, const void *w, const void *x) {
    const block_q5_0 *a = w;
    const block_q8_0 *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK; i++) {
        const uint32_t qh = u32_get(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = ((a[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4)) - 16;
            const int q1 = ((a[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4)) - 16;
            sumi += q0 * b[i].qs[j] + q1 * b[i].qs[j + QK / 2];
        }
        s += (float)sumi * (f16_get(a[i].d) * f16_get(b[i].d));
    }
    return s;
}

// w: Q5_1, x: Q8_1
float llmc_vec_dot_q5_1(size_t n, const void *w, const void *x) {
    const block_q5_1 *a = w;
    const block_q8_1 *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK; i++) {
        const uint32_t qh = u32_get(a[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++) {
            const int q0 = (a[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            const int q1 = (a[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            sumi += q0 * b[i].qs[j] + q1 * b[i].qs[j + QK / 2];
        }
        s += (float)sumi * (f16_get(a[i].d) * f16_get(b[i].d)) + f16_get(a[i].m) * f16_get(b[i].s);
    }
    return s;
}

// w: Q8_0, x: Q8_0
float llmc_vec_dot_q8_0(size_t n, const void *w, const void *x) {
    const block_q8_0 *a = w, *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK; i++) {
        int sumi = 0;
        for (int j = 0; j < QK; j++) sumi += a[i].qs[j] * b[i].qs[j];
        s += (float)sumi * (f16_get(a[i].d) * f16_get(b[i].d));
    }
    return s;
}

/* ---------------------------------------------------------------- K-quants against Q8_K */
// w: Q2_K, x: Q8_K. value = d sc q - dmin m: sum = d d_x sum_j sc_j (q . q8)_j - dmin d_x sum_j m_j bsum_j
float llmc_vec_dot_q2_K(size_t n, const void *w, const void *x) {
    const block_q2_K *a = w;
    const block_q8_K *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float dx = f32_get(b[i].d);
        int summs = 0, sumi = 0;
        for (int j = 0; j < 16; j++) {
            summs += (a[i].scales[j] >> 4) * i16_get(b[i].bsums + 2 * j);
            int sub = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++)
                sub += ((a[i].qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3) * b[i].qs[e];
            sumi += (a[i].scales[j] & 0xF) * sub;
        }
        s += dx * f16_get(a[i].d) * (float)sumi - dx * f16_get(a[i].dmin) * (float)summs;
    }
    return s;
}

// w: Q3_K, x: Q8_K
float llmc_vec_dot_q3_K(size_t n, const void *w, const void *x) {
    const block_q3_K *a = w;
    const block_q8_K *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            const int lo4 = j < 8 ? a[i].scales[j] & 0xF : a[i].scales[j - 8] >> 4;
            const int sc = (lo4 | (((a[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            int sub = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                const int lo = (a[i].qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3;
                sub += (lo - ((a[i].hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4)) * b[i].qs[e];
            }
            sumi += sc * sub;
        }
        s += f32_get(b[i].d) * f16_get(a[i].d) * (float)sumi;
    }
    return s;
}

// w: Q4_K, x: Q8_K
float llmc_vec_dot_q4_K(size_t n, const void *w, const void *x) {
    const block_q4_K *a = w;
    const block_q8_K *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            llmc_kq_scale_min(j, a[i].scales, &sc, &m);
            summs += m * (i16_get(b[i].bsums + 4 * j) + i16_get(b[i].bsums + 4 * j + 2)); /* two bsums per 32 */
            const uint8_t *q = a[i].qs + j / 2 * 32;
            const int shift = 4 * (j & 1);
            int sub = 0;
            for (int l = 0; l < 32; l++) sub += ((q[l] >> shift) & 0xF) * b[i].qs[32 * j + l];
            sumi += sc * sub;
        }
        const float dx = f32_get(b[i].d);
        s += dx * f16_get(a[i].d) * (float)sumi - dx * f16_get(a[i].dmin) * (float)summs;
    }
    return s;
}

// w: Q5_K, x: Q8_K
float llmc_vec_dot_q5_K(size_t n, const void *w, const void *x) {
    const block_q5_K *a = w;
    const block_q8_K *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0, summs = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            llmc_kq_scale_min(j, a[i].scales, &sc, &m);
            summs += m * (i16_get(b[i].bsums + 4 * j) + i16_get(b[i].bsums + 4 * j + 2));
            const uint8_t *q = a[i].qs + j / 2 * 32;
            const int shift = 4 * (j & 1);
            int sub = 0;
            for (int l = 0; l < 32; l++)
                sub += (((q[l] >> shift) & 0xF) | (((a[i].qh[l] >> j) & 1) << 4)) * b[i].qs[32 * j + l];
            sumi += sc * sub;
        }
        const float dx = f32_get(b[i].d);
        s += dx * f16_get(a[i].d) * (float)sumi - dx * f16_get(a[i].dmin) * (float)summs;
    }
    return s;
}

// w: Q6_K, x: Q8_K
float llmc_vec_dot_q6_K(size_t n, const void *w, const void *x) {
    const block_q6_K *a = w;
    const block_q8_K *b = x;
    float s = 0.0f;
    for (size_t i = 0; i < n / QK_K; i++) {
        int sumi = 0;
        for (int j = 0; j < 16; j++) {
            int sub = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) {
                const int c = e / 128, k = e % 128 / 32, l = e % 32;
                const int lo = (a[i].ql[64 * c + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
                const int hi = (a[i].qh[32 * c + l] >> (2 * k)) & 3;
                sub += ((lo | (hi << 4)) - 32) * b[i].qs[e];
            }
            sumi += a[i].scales[j] * sub;
        }
        s += f32_get(b[i].d) * f16_get(a[i].d) * (float)sumi;
    }
    return s;
}
