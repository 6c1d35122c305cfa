/* quant_ref.c: the reference (portable) quantize / dequantize rows of the float and legacy block formats
 * (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1), byte-identical to ggml's quantize_row_*_ref and to gguf-py.
 *
 * The arithmetic order is the reference's (d = max / -8, id = 1 / d, q = trunc(x * id + 8.5)), in fp32, so the
 * rounding is the same bit for bit. Non-finite inputs follow gguf-py (the test oracle), whose NumPy casts turn a
 * NaN or infinite quantity into the integer 0: a block holding a NaN gets a NaN scale (every value dequantizes to
 * NaN); a block holding +-inf gets an infinite scale (values dequantize to NaN or +-inf). ggml's C leaves these
 * cases to undefined float-to-int casts; llmc defines them (docs/quantization.md). */
#include <math.h>

#include "quant.h"

/* ---------------------------------------------------------------- fp16 */
uint16_t llmc_fp16_encode(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff)); /* NaN: quiet, payload truncated */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);                         /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                                          /* normal half (>= 2^-14) */
        uint32_t h = (a - 0x38000000u) >> 13;                                        /* rebias 127 -> 15 */
        uint32_t rem = a & 0x1fff;
        if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* round half to even; a carry bumps the exponent */
        return (uint16_t)(sign | h);
    }
    if (a <= 0x33000000u) return sign; /* <= 2^-25: rounds to zero (2^-25 is a tie, 0 is even) */
    /* subnormal half: round(f * 2^24) with ties to even; f = m * 2^(e - 150) */
    uint32_t e = a >> 23, m = (a & 0x7fffff) | 0x800000, shift = 126 - e;
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* NumPy's float -> uint8 cast as gguf-py uses it (x86): NaN, +-inf and values outside int32 become 0, others are
 * truncated to int32 and wrap to their low 8 bits. */
static inline uint8_t np_u8(float v) {
    if (!(fabsf(v) < 2147483648.0f)) return 0;
    return (uint8_t)(uint32_t)(int32_t)v;
}

/* the block's value of largest magnitude, signed (first one on ties); NaN if the block holds a NaN (NumPy's
 * argmax of |x| stops at the first NaN). Starting from x[0] (gguf-py's argmax) rather than ggml's +0 differs only
 * for an all-zero block starting with -0.0: gguf-py writes d = +0, ggml d = -0 (both dequantize to zeros). */
static float signed_absmax(const float *x, size_t n) {
    if (isnan(x[0])) return x[0];
    float amax = fabsf(x[0]), max = x[0];
    for (size_t j = 1; j < n; j++) {
        if (isnan(x[j])) return x[j];
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    return max;
}

/* min and max of the block; NaN for both if it holds a NaN */
static void min_max(const float *x, size_t n, float *mn, float *mx) {
    float lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < n; j++) {
        if (isnan(x[j])) {
            *mn = *mx = NAN; /* NumPy's min / max return the default (positive, quiet) NaN */
            return;
        }
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

/* ---------------------------------------------------------------- F32, F16, BF16 */
void llmc_quantize_row_f32(const float *x, void *dst, size_t n) { memcpy(dst, x, n * sizeof(float)); }
void llmc_dequantize_row_f32(const void *src, float *y, size_t n) { memcpy(y, src, n * sizeof(float)); }

void llmc_quantize_row_f16(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++) f16_put(p + 2 * i, x[i]);
}
void llmc_dequantize_row_f16(const void *src, float *y, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) y[i] = f16_get(p + 2 * i);
}

void llmc_quantize_row_bf16(const float *x, void *dst, size_t n) {
    uint8_t *p = dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = llmc_bf16_encode(x[i]);
        p[2 * i] = (uint8_t)h;
        p[2 * i + 1] = (uint8_t)(h >> 8);
    }
}
void llmc_dequantize_row_bf16(const void *src, float *y, size_t n) {
    const uint8_t *p = src;
    for (size_t i = 0; i < n; i++) y[i] = llmc_bf16_decode((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
}

/* ---------------------------------------------------------------- Q4_0, Q4_1 */
// x: (n,) -> n / 32 blocks
void llmc_quantize_row_q4_0(const float *x, void *dst, size_t n) {
    block_q4_0 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        const float max = signed_absmax(x, QK);
        const float d = max / -8; /* the extreme value maps to q = 0 exactly, the other side gets 8 steps */
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        f16_put(y[i].d, d);
        for (int j = 0; j < QK / 2; j++) {
            uint8_t q0 = np_u8(x[j] * id + 8.5f), q1 = np_u8(x[j + QK / 2] * id + 8.5f); /* trunc(v + .5): round */
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void llmc_dequantize_row_q4_0(const void *src, float *y, size_t n) {
    const block_q4_0 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)((b[i].qs[j] & 0xF) - 8);
            y[j + QK / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
        }
    }
}

void llmc_quantize_row_q4_1(const float *x, void *dst, size_t n) {
    block_q4_1 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float mn, mx;
        min_max(x, QK, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        f16_put(y[i].d, d);
        f16_put(y[i].m, mn);
        for (int j = 0; j < QK / 2; j++) {
            uint8_t q0 = np_u8((x[j] - mn) * id + 0.5f), q1 = np_u8((x[j + QK / 2] - mn) * id + 0.5f);
            q0 = q0 < 15 ? q0 : 15;
            q1 = q1 < 15 ? q1 : 15;
            y[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void llmc_dequantize_row_q4_1(const void *src, float *y, size_t n) {
    const block_q4_1 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d), m = f16_get(b[i].m);
        for (int j = 0; j < QK / 2; j++) {
            y[j] = d * (float)(b[i].qs[j] & 0xF) + m;
            y[j + QK / 2] = d * (float)(b[i].qs[j] >> 4) + m;
        }
    }
}

/* ---------------------------------------------------------------- Q5_0, Q5_1 */
/* pack 32 5-bit values: low nibbles as Q4_0, bit 4 of value j into bit j of qh (little-endian u32) */
static void pack5(const uint8_t q[QK], uint8_t qs[QK / 2], uint8_t qh_bytes[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < QK / 2; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | (q[j + QK / 2] << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + QK / 2] >> 4) & 1) << (j + QK / 2);
    }
    for (int k = 0; k < 4; k++) qh_bytes[k] = (uint8_t)(qh >> (8 * k));
}

/* the 32 5-bit values of a Q5 block */
static void unpack5(const uint8_t qs[QK / 2], const uint8_t qh_bytes[4], int q[QK]) {
    uint32_t qh = (uint32_t)qh_bytes[0] | (uint32_t)qh_bytes[1] << 8 | (uint32_t)qh_bytes[2] << 16 |
                  (uint32_t)qh_bytes[3] << 24;
    for (int j = 0; j < QK / 2; j++) {
        q[j] = (qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
        q[j + QK / 2] = (qs[j] >> 4) | (int)(((qh >> (j + QK / 2)) & 1) << 4);
    }
}

void llmc_quantize_row_q5_0(const float *x, void *dst, size_t n) {
    block_q5_0 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        const float max = signed_absmax(x, QK);
        const float d = max / -16;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        f16_put(y[i].d, d);
        uint8_t q[QK];
        for (int j = 0; j < QK; j++) {
            q[j] = np_u8(x[j] * id + 16.5f);
            if (q[j] > 31) q[j] = 31;
        }
        pack5(q, y[i].qs, y[i].qh);
    }
}

void llmc_dequantize_row_q5_0(const void *src, float *y, size_t n) {
    const block_q5_0 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d);
        int q[QK];
        unpack5(b[i].qs, b[i].qh, q);
        for (int j = 0; j < QK; j++) y[j] = d * (float)(q[j] - 16);
    }
}

void llmc_quantize_row_q5_1(const float *x, void *dst, size_t n) {
    block_q5_1 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        float mn, mx;
        min_max(x, QK, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        f16_put(y[i].d, d);
        f16_put(y[i].m, mn);
        uint8_t q[QK];
        for (int j = 0; j < QK; j++) {
            q[j] = np_u8((x[j] - mn) * id + 0.5f);
            if (q[j] > 31) q[j] = 31;
        }
        pack5(q, y[i].qs, y[i].qh);
    }
}

void llmc_dequantize_row_q5_1(const void *src, float *y, size_t n) {
    const block_q5_1 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d), m = f16_get(b[i].m);
        int q[QK];
        unpack5(b[i].qs, b[i].qh, q);
        for (int j = 0; j < QK; j++) y[j] = d * (float)q[j] + m;
    }
}

/* ---------------------------------------------------------------- Q8_0, Q8_1 */
/* max |x| of the block, NaN if it holds a NaN */
static float absmax(const float *x, size_t n) {
    float amax = 0.0f;
    for (size_t j = 0; j < n; j++) {
        if (isnan(x[j])) return fabsf(x[j]);
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]);
    }
    return amax;
}

/* scale and 32 int8 values of a Q8 block: d = amax / 127, q = round(x / d) (half away from zero) */
static float q8_block(const float *x, int8_t qs[QK]) {
    const float d = absmax(x, QK) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) qs[j] = (int8_t)np_u8(roundf(x[j] * id));
    return d;
}

void llmc_quantize_row_q8_0(const float *x, void *dst, size_t n) {
    block_q8_0 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) f16_put(y[i].d, q8_block(x, y[i].qs));
}

void llmc_dequantize_row_q8_0(const void *src, float *y, size_t n) {
    const block_q8_0 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d);
        for (int j = 0; j < QK; j++) y[j] = (float)b[i].qs[j] * d;
    }
}

void llmc_quantize_row_q8_1(const float *x, void *dst, size_t n) {
    block_q8_1 *y = dst;
    for (size_t i = 0; i < n / QK; i++, x += QK) {
        const float d = q8_block(x, y[i].qs);
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += y[i].qs[j];
        f16_put(y[i].d, d);
        f16_put(y[i].s, (float)sum * d);
    }
}

void llmc_dequantize_row_q8_1(const void *src, float *y, size_t n) {
    const block_q8_1 *b = src;
    for (size_t i = 0; i < n / QK; i++, y += QK) {
        const float d = f16_get(b[i].d);
        for (int j = 0; j < QK; j++) y[j] = (float)b[i].qs[j] * d;
    }
}
