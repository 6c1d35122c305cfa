/* quant.h: ggml's block formats, byte for byte, and the type-traits table the typed matmul dispatches on.
 *
 * A quantized row of n values is n / block_size blocks laid end to end. Every block stores one or two scales
 * (fp16, or fp32 for Q8_K) and small integers; value = scale * q (- min). The layouts below are ggml's exactly
 * (ggml-common.h), so tensor bytes move between llmc and GGUF files unchanged. Multi-byte fields are little-endian
 * byte arrays read through f16_get / memcpy, so a block may sit at any address (GGUF rows of 18-byte Q4_0 blocks
 * are only 2-byte aligned). docs/quantization.md draws every layout. Not part of the public API. */
#ifndef LLMC_QUANT_H
#define LLMC_QUANT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "llmc.h"

#define QK 32    /* values per block of the legacy formats (Q4_0 ... Q8_1) */
#define QK_K 256 /* values per super-block of the K-quants */

/* Q4_0: value = d * (q - 8), q in [0, 15]. qs[j] holds value j (low nibble) and value j + 16 (high nibble). */
typedef struct { uint8_t d[2]; uint8_t qs[QK / 2]; } block_q4_0;                    /* 18 bytes */
/* Q4_1: value = d * q + m, q in [0, 15]; nibbles as Q4_0. */
typedef struct { uint8_t d[2], m[2]; uint8_t qs[QK / 2]; } block_q4_1;              /* 20 bytes */
/* Q5_0: value = d * (q - 16), q in [0, 31]: low 4 bits as Q4_0, bit 4 of value j is bit j of qh (LE u32). */
typedef struct { uint8_t d[2]; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;     /* 22 bytes */
/* Q5_1: value = d * q + m; bits as Q5_0. */
typedef struct { uint8_t d[2], m[2]; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1; /* 24 bytes */
/* Q8_0: value = d * q, q in [-127, 127]. */
typedef struct { uint8_t d[2]; int8_t qs[QK]; } block_q8_0;                         /* 34 bytes */
/* Q8_1: Q8_0 plus s = d * sum(q) (fp16): the activation partner of Q4_1 / Q5_1 (the min term needs sum(x)). */
typedef struct { uint8_t d[2], s[2]; int8_t qs[QK]; } block_q8_1;                   /* 36 bytes */

/* Q2_K: 16 sub-blocks of 16; scales[j] = scale (low 4 bits) | min (high 4 bits);
 * value = d * (scales & 15) * q - dmin * (scales >> 4), q in [0, 3]. qs: see quant_kquants.c. */
typedef struct { uint8_t scales[QK_K / 16]; uint8_t qs[QK_K / 4]; uint8_t d[2], dmin[2]; } block_q2_K; /* 84 */
/* Q3_K: 16 sub-blocks of 16 with 6-bit signed scales (stored + 32); value = d * scale * (q - 4), q in [0, 7]:
 * 2 low bits in qs, the high bit in hmask (set = +4). */
typedef struct { uint8_t hmask[QK_K / 8]; uint8_t qs[QK_K / 4]; uint8_t scales[12]; uint8_t d[2]; } block_q3_K; /* 110 */
/* Q4_K: 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes;
 * value = d * scale * q - dmin * min, q in [0, 15]. */
typedef struct { uint8_t d[2], dmin[2]; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K; /* 144 */
/* Q5_K: Q4_K with a fifth bit per value in qh. */
typedef struct { uint8_t d[2], dmin[2]; uint8_t scales[12]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K; /* 176 */
/* Q6_K: 16 sub-blocks of 16 with int8 scales; value = d * scale * (q - 32), q in [0, 63]: 4 low bits in ql,
 * 2 high bits in qh. */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint8_t d[2]; } block_q6_K; /* 210 */
/* Q8_K: the activation partner of the K-quants: fp32 d, q in [-127, 127], and the sums of each 16 q's (bsums, so
 * the K-quant dot products get sum(q8) per sub-block for their min terms without recomputing it). */
typedef struct { uint8_t d[4]; int8_t qs[QK_K]; uint8_t bsums[QK_K / 16 * 2]; } block_q8_K; /* 292 */

/* ---------------------------------------------------------------- scalars */
/* fp16 <-> fp32 (IEEE half; round to nearest even, overflow to inf, NaN stays NaN) */
uint16_t llmc_fp16_encode(float f);
static inline float llmc_fp16_decode(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf / NaN (payload kept) */
    } else if (exp != 0) {
        u = sign | ((exp + 112) << 23) | (man << 13); /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign; /* +-0 */
    } else {
        /* subnormal: man * 2^-24, exactly representable as a normal fp32 */
        float f = (float)man * 5.9604644775390625e-8f;
        memcpy(&u, &f, 4);
        u |= sign;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* bf16: the top 16 bits of an fp32, rounded to nearest even; NaN becomes a quiet NaN (ggml / gguf-py exactly). */
static inline float llmc_bf16_decode(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t llmc_bf16_encode(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN: keep sign, force quiet */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);                   /* round half to even */
}
static inline float f16_get(const uint8_t p[2]) { return llmc_fp16_decode((uint16_t)(p[0] | (p[1] << 8))); }
static inline void f16_put(uint8_t p[2], float f) {
    uint16_t h = llmc_fp16_encode(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* ---------------------------------------------------------------- type traits (quant.c) */
/* y (n,) += or = ... : every kernel works on one row of n values, n a multiple of the block size. */
typedef void (*llmc_to_float_fn)(const void *src, float *y, size_t n);      /* src: n / bs blocks -> y: (n,) */
typedef void (*llmc_from_float_fn)(const float *x, void *dst, size_t n);    /* x: (n,) -> dst: n / bs blocks */
/* sum_i w[i] * x[i] over n values: w a row of the weight type, x a row of its vec_dot_type */
typedef float (*llmc_vec_dot_fn)(size_t n, const void *w, const void *x);

typedef struct {
    const char *name;          /* "q4_k" */
    size_t block_size;         /* values per block */
    size_t block_bytes;        /* bytes per block */
    llmc_to_float_fn to_float;     /* dequantize */
    llmc_from_float_fn from_float; /* the reference quantizer (ggml's quantize_row_*_ref, byte-identical) */
    llmc_vec_dot_fn vec_dot;       /* the portable dot product against vec_dot_type (NULL: no integer path) */
    int vec_dot_type;              /* the type the activation row is quantized to for vec_dot */
} llmc_type_traits;

#define LLMC_TYPE_COUNT 31
/* The row of a valid type, else NULL. */
const llmc_type_traits *llmc_type_traits_of(int type);

/* ---------------------------------------------------------------- kernels per SIMD level (quant_simd_*.c) */
/* The vector kernels replace the portable vec_dot / to_float of some types; NULL entries fall back to the traits
 * table. */
typedef struct {
    const char *name;                           /* what simd_info reports, e.g. "avx2" */
    llmc_vec_dot_fn vec_dot[LLMC_TYPE_COUNT];   /* by weight type */
    llmc_to_float_fn to_float[LLMC_TYPE_COUNT]; /* bit-identical to the reference rows, faster */
} llmc_quant_kernels;

extern const llmc_quant_kernels llmc_quant_scalar;
/* quant_dequant_avx2.c */
void llmc_dequant_avx2_q8_0(const void *src, float *y, size_t n);
void llmc_dequant_avx2_q4_0(const void *src, float *y, size_t n);
void llmc_dequant_avx2_q4_1(const void *src, float *y, size_t n);
void llmc_dequant_avx2_q4_K(const void *src, float *y, size_t n);
void llmc_dequant_avx2_q5_K(const void *src, float *y, size_t n);
void llmc_dequant_avx2_q6_K(const void *src, float *y, size_t n);
void llmc_dequant_avx2_f16(const void *src, float *y, size_t n);
void llmc_dequant_avx2_bf16(const void *src, float *y, size_t n);
/* The kernels used at SIMD level `level` on this CPU (scalar entries where the level has none). */
const llmc_quant_kernels *llmc_quant_kernels_for(int level);

/* ---------------------------------------------------------------- reference rows (quant_ref.c, quant_kquants.c) */
void llmc_quantize_row_f32(const float *x, void *dst, size_t n);
void llmc_quantize_row_f16(const float *x, void *dst, size_t n);
void llmc_quantize_row_bf16(const float *x, void *dst, size_t n);
void llmc_quantize_row_q4_0(const float *x, void *dst, size_t n);
void llmc_quantize_row_q4_1(const float *x, void *dst, size_t n);
void llmc_quantize_row_q5_0(const float *x, void *dst, size_t n);
void llmc_quantize_row_q5_1(const float *x, void *dst, size_t n);
void llmc_quantize_row_q8_0(const float *x, void *dst, size_t n);
void llmc_quantize_row_q8_1(const float *x, void *dst, size_t n);
void llmc_quantize_row_q2_K(const float *x, void *dst, size_t n);
void llmc_quantize_row_q3_K(const float *x, void *dst, size_t n);
void llmc_quantize_row_q4_K(const float *x, void *dst, size_t n);
void llmc_quantize_row_q5_K(const float *x, void *dst, size_t n);
void llmc_quantize_row_q6_K(const float *x, void *dst, size_t n);
void llmc_quantize_row_q8_K(const float *x, void *dst, size_t n);

void llmc_dequantize_row_f32(const void *src, float *y, size_t n);
void llmc_dequantize_row_f16(const void *src, float *y, size_t n);
void llmc_dequantize_row_bf16(const void *src, float *y, size_t n);
void llmc_dequantize_row_q4_0(const void *src, float *y, size_t n);
void llmc_dequantize_row_q4_1(const void *src, float *y, size_t n);
void llmc_dequantize_row_q5_0(const void *src, float *y, size_t n);
void llmc_dequantize_row_q5_1(const void *src, float *y, size_t n);
void llmc_dequantize_row_q8_0(const void *src, float *y, size_t n);
void llmc_dequantize_row_q8_1(const void *src, float *y, size_t n);
void llmc_dequantize_row_q2_K(const void *src, float *y, size_t n);
void llmc_dequantize_row_q3_K(const void *src, float *y, size_t n);
void llmc_dequantize_row_q4_K(const void *src, float *y, size_t n);
void llmc_dequantize_row_q5_K(const void *src, float *y, size_t n);
void llmc_dequantize_row_q6_K(const void *src, float *y, size_t n);
void llmc_dequantize_row_q8_K(const void *src, float *y, size_t n);

/* ---------------------------------------------------------------- portable dot products (quant_dot.c) */
float llmc_vec_dot_f32(size_t n, const void *w, const void *x);
float llmc_vec_dot_f16(size_t n, const void *w, const void *x);  /* x: f32 */
float llmc_vec_dot_bf16(size_t n, const void *w, const void *x); /* x: f32 */
float llmc_vec_dot_q4_0(size_t n, const void *w, const void *x); /* x: q8_0 */
float llmc_vec_dot_q4_1(size_t n, const void *w, const void *x); /* x: q8_1 */
float llmc_vec_dot_q5_0(size_t n, const void *w, const void *x); /* x: q8_0 */
float llmc_vec_dot_q5_1(size_t n, const void *w, const void *x); /* x: q8_1 */
float llmc_vec_dot_q8_0(size_t n, const void *w, const void *x); /* x: q8_0 */
float llmc_vec_dot_q2_K(size_t n, const void *w, const void *x); /* x: q8_K */
float llmc_vec_dot_q3_K(size_t n, const void *w, const void *x); /* x: q8_K */
float llmc_vec_dot_q4_K(size_t n, const void *w, const void *x); /* x: q8_K */
float llmc_vec_dot_q5_K(size_t n, const void *w, const void *x); /* x: q8_K */
float llmc_vec_dot_q6_K(size_t n, const void *w, const void *x); /* x: q8_K */

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block's 12 packed bytes. */
static inline void llmc_kq_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* quant_matmul.c: llmc_matmul_typed for one activation row, cut for a caller's own team (decode.c). */
int llmc_matvec_supported(int type);               /* F32, or a type with an integer-dot kernel */
size_t llmc_matvec_x_bytes(int type, size_t in);   /* bytes of x in the type's dot format; 0: the fp32 row is read */
void llmc_matvec_prepare(int type, const float *x, void *xq, size_t in);
void llmc_matvec_rows(int type, const void *w, const float *x, const void *xq, float *y, size_t in, size_t out,
                      size_t lo, size_t hi, float beta);
#endif
