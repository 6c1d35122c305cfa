/* quant_kquants.c: the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) and their activation partner Q8_K: reference
 * quantize and dequantize rows, byte-identical to ggml's quantize_row_*_K_ref.
 *
 * A K-quant super-block holds 256 values in sub-blocks of 16 or 32. Each sub-block gets its own scale (and, for
 * the "asymmetric" Q2_K / Q4_K / Q5_K, its own min); the sub-block scales are themselves quantized to 4-8 bits
 * against one fp16 super-scale d (and dmin). ggml searches each sub-block's scale and min by a small grid search
 * that minimises a weighted squared error (make_qkx2_quants) or the weighted error of a symmetric scale
 * (make_qx_quants, make_q3_quants); the searches below follow that arithmetic step for step, in fp32, so the
 * bytes match llama.cpp's.
 *
 * Speed: the searches run on 8 sub-blocks at once, lane j of every array holding sub-block j (values transposed to
 * (n, 8)). Each lane does exactly the per-block arithmetic, in the same order, so the bytes do not change; the
 * lanes let the compiler put 8 sub-blocks in one vector register. The row quantizers are compiled twice from one
 * body: for the baseline x86-64 / any CPU, and with target("avx2") (same C, wider vectors, no FMA: no contraction
 * can change a rounding), chosen at run time by llmc_simd_get_level().
 *
 * Non-finite input: ggml's searches are undefined on NaN / inf. llmc defines a super-block holding a NaN or +-inf
 * to quantize to an all-zero block with NaN scales, so every one of its 256 values dequantizes to NaN. */
#include <math.h>

#include "quant.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a sub-block whose max |x| is below this is all zeros */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define LANES 8                                             /* sub-blocks searched at once */
#define INLINE static inline __attribute__((always_inline)) /* inlined into both compilations of a row quantizer */

/* round to nearest (ties to even) for |f| <= 2^22: adding 1.5 * 2^23 puts the integer in the low mantissa bits */
INLINE int nearest_int(float f) {
    float v = f + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

/* the NaN block: zero bytes, then the fp16 NaN written into each scale field */
static void nan_block(void *blk, size_t bytes, uint8_t *d, uint8_t *dmin) {
    memset(blk, 0, bytes);
    d[0] = 0x00, d[1] = 0x7e;
    if (dmin) dmin[0] = 0x00, dmin[1] = 0x7e;
}

/* the value of largest magnitude (the first one on ties), signed; 0 for an all-zero x */
static float signed_absmax(const float *x, int n) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    return max;
}

/* Q3_K's symmetric scale: levels in [-nmax, nmax - 1], then (do_rmse) up to 5 passes moving single values to the
 * level that lowers the x^2-weighted error. L gets l + nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L, int do_rmse) {
    const float max = signed_absmax(x, n);
    if (fabsf(max) < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (do_rmse) {
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            L[i] = (int8_t)l;
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; ++itry) {
            int n_changed = 0;
            for (int i = 0; i < n; ++i) {
                float w = x[i] * x[i];
                float slx = sumlx - w * x[i] * L[i]; /* the sums without value i */
                if (slx > 0) {
                    float sl2 = suml2 - w * L[i] * L[i];
                    int new_l = nearest_int(x[i] * sl2 / slx);
                    new_l = MAX(-nmax, MIN(nmax - 1, new_l));
                    if (new_l != L[i]) {
                        slx += w * x[i] * new_l;
                        sl2 += w * new_l * new_l;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = (int8_t)new_l;
                            sumlx = slx;
                            suml2 = sl2;
                            ++n_changed;
                        }
                    }
                }
            }
            if (!n_changed) break;
        }
        for (int i = 0; i < n; ++i) L[i] = (int8_t)(L[i] + nmax);
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
    }
    return 1 / iscale;
}

/* ---------------------------------------------------------------- the searches, 8 sub-blocks at a time */
/* A vector of LANES floats (or int32s), lane j holding sub-block j: GCC / Clang vector types, so the C below is
 * the per-block arithmetic written once for 8 blocks, compiled to SSE2 pairs or one AVX2 register. Comparisons
 * give masks (-1 / 0 per lane), used to select. */
typedef float vf __attribute__((vector_size(4 * LANES)));
typedef int32_t vi __attribute__((vector_size(4 * LANES)));

/* The helpers are macros, not functions: a 32-byte vector passed by value to a function compiled for the baseline
 * CPU draws a (harmless) ABI note from GCC on every build. */
#define SPLAT(f) ((vf){(f), (f), (f), (f), (f), (f), (f), (f)})
#define SPLAT_I(v) ((vi){(v), (v), (v), (v), (v), (v), (v), (v)})
#define SEL(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m)))) /* m ? a : b, per lane */
#define SEL_I(m, a, b) (((a) & (m)) | ((b) & ~(m)))
#define ABS_F(x) ((vf)((vi)(x) & SPLAT_I(0x7fffffff)))
#define TO_F(l) __builtin_convertvector((l), vf)
/* nearest_int, lane by lane (the same bits for every input) */
#define NEAREST_I(f) ((((vi)((f) + SPLAT(12582912.f))) & SPLAT_I(0x007fffff)) - SPLAT_I(0x00400000))
/* MAX(lo, MIN(hi, l)) per lane, into l */
#define CLAMP_I(l, lo, hi)                                 \
    do {                                                   \
        (l) = SEL_I((l) > SPLAT_I(hi), SPLAT_I(hi), (l));  \
        (l) = SEL_I((l) < SPLAT_I(lo), SPLAT_I(lo), (l));  \
    } while (0)

/* Sub-blocks j0 .. j0 + LANES - 1 of a super-block x, each of n values, transposed: xt[i][j] = x[n * (j0 + j) + i] */
INLINE void transpose_in(const float *x, int n, int j0, vf *xt) {
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < LANES; ++j) xt[i][j] = x[n * (j0 + j) + i];
}

/* lane j's n levels back to sub-block j0 + j of L: (QK_K,) */
INLINE void transpose_out(const vi *Lt, int n, int j0, uint8_t *L) {
    for (int j = 0; j < LANES; ++j)
        for (int i = 0; i < n; ++i) L[n * (j0 + j) + i] = (uint8_t)Lt[i][j];
}

/* Asymmetric scale and min of LANES sub-blocks of n values with levels in [0, nmax]: x ~ scale * L - the_min.
 * Lane j is ggml's make_qkx2_quants on sub-block j, step for step: start from the min/max fit, then try
 * nstep + 1 scales (nmax + rmin + rdelta * is) / (max - min), each refined by weighted least squares for scale and
 * min, keeping the least weighted error (|diff| if use_mad, else diff^2). As in ggml, an accepted step moves min,
 * which the later steps start from.
 * xt, wt: (n,) vectors of values and weights; L: (n,) levels out; scale, the_min: out. */
INLINE void qkx2_lanes(int n, int nmax, const vf *xt, const vf *wt, vi *L, vf *scale_out, vf *the_min, float rmin,
                       float rdelta, int nstep, int use_mad) {
    vf min = xt[0], max = xt[0], sum_w = wt[0], sum_x = sum_w * xt[0];
    for (int i = 1; i < n; ++i) {
        min = SEL(xt[i] < min, xt[i], min);
        max = SEL(xt[i] > max, xt[i], max);
        sum_w += wt[i];
        sum_x += wt[i] * xt[i];
    }
    min = SEL(min > 0, SPLAT(0), min);
    const vf min0 = min;
    vf iscale = SPLAT((float)nmax) / (max - min); /* max == min (a flat lane) is finished at the end */
    vf scale = 1 / iscale, best = SPLAT(0);
    for (int i = 0; i < n; ++i) {
        vi l = NEAREST_I(iscale * (xt[i] - min));
        CLAMP_I(l, 0, nmax);
        vf diff = scale * TO_F(l) + min - xt[i];
        diff = use_mad ? ABS_F(diff) : diff * diff;
        best += wt[i] * diff;
    }
    /* the levels kept so far are clamp(nearest_int(L_iscale * (x - L_min))): recomputed once at the end */
    vf L_iscale = iscale, L_min = min;
    vi Laux[32];
    for (int is = 0; nstep >= 1 && is <= nstep; ++is) {
        iscale = SPLAT(rmin + rdelta * is + nmax) / (max - min);
        vf sum_l = SPLAT(0), sum_l2 = SPLAT(0), sum_xl = SPLAT(0);
        for (int i = 0; i < n; ++i) {
            Laux[i] = NEAREST_I(iscale * (xt[i] - min));
            CLAMP_I(Laux[i], 0, nmax);
            const vf l = TO_F(Laux[i]), w = wt[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * xt[i];
        }
        /* weighted least squares of x ~ this_scale * l + this_min: the 2x2 normal equations' determinant */
        const vf D = sum_w * sum_l2 - sum_l * sum_l;
        const vf ts = (sum_w * sum_xl - sum_x * sum_l) / D; /* D <= 0: the step is skipped, these are never used */
        const vf tm = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        /* the format stores a subtracted min >= 0: a positive fitted min is refit with the scale alone */
        const vf this_min = SEL(tm > 0, SPLAT(0), tm), this_scale = SEL(tm > 0, sum_xl / sum_l2, ts);
        vf err = SPLAT(0);
        for (int i = 0; i < n; ++i) {
            vf diff = this_scale * TO_F(Laux[i]) + this_min - xt[i];
            diff = use_mad ? ABS_F(diff) : diff * diff;
            err += wt[i] * diff;
        }
        const vi ok = (D > 0) & (err < best);
        best = SEL(ok, err, best);
        scale = SEL(ok, this_scale, scale);
        L_iscale = SEL(ok, iscale, L_iscale); /* this step's levels, from the min it started with */
        L_min = SEL(ok, min, L_min);
        min = SEL(ok, this_min, min);
    }
    const vi flat = max == min0; /* ggml returns at once: all levels 0, scale 0, the_min -min */
    *the_min = SEL(flat, -min0, -min);
    *scale_out = SEL(flat, SPLAT(0), scale);
    for (int i = 0; i < n; ++i) {
        vi l = NEAREST_I(L_iscale * (xt[i] - L_min));
        CLAMP_I(l, 0, nmax);
        L[i] = SEL_I(flat, SPLAT_I(0), l);
    }
}

/* For the levels l = clamp(nearest_int(iscale * x), -nmax, nmax - 1) of each lane, with weights w = x^2:
 * sumlx = sum w x l and suml2 = sum w l^2 (ggml's make_qx_quants sums, in its order) */
INLINE void qx_sums(int n, int nmax, const vf *xt, const vf *iscale, vf *sumlx, vf *suml2) {
    vf slx = SPLAT(0), sl2 = SPLAT(0);
    for (int i = 0; i < n; ++i) {
        vi li = NEAREST_I(*iscale * xt[i]);
        CLAMP_I(li, -nmax, nmax - 1);
        const vf l = TO_F(li), w = xt[i] * xt[i];
        slx += w * xt[i] * l;
        sl2 += w * l * l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

/* Symmetric scale of LANES sub-blocks of n values with levels l in [-nmax, nmax - 1] (L gets l + nmax). Lane j is
 * ggml's make_qx_quants(rmse_type 1) on sub-block j: weigh each value by x^2, try 18 scales around nmax / max|x|,
 * keep the one with the least weighted error. A lane whose max |x| is below GROUP_MAX_EPS gets levels 0, scale 0.
 * xt: (n,) vectors of values; L: (n,) out. */
INLINE void qx_lanes(int n, int nmax, const vf *xt, vi *L, vf *scale_out) {
    vf max = SPLAT(0), amax = SPLAT(0);
    for (int i = 0; i < n; ++i) {
        const vf ax = ABS_F(xt[i]);
        const vi bigger = ax > amax;
        max = SEL(bigger, xt[i], max);
        amax = SEL(bigger, ax, amax);
    }
    /* the levels kept so far are clamp(nearest_int(L_iscale * x)) + nmax: recomputed once at the end */
    vf iscale = SPLAT((float)-nmax) / max, L_iscale = iscale, sumlx, suml2;
    qx_sums(n, nmax, xt, &iscale, &sumlx, &suml2);
    vf scale = SEL(suml2 != 0, sumlx / suml2, SPLAT(0)); /* least-squares scale for these levels */
    vf best = scale * sumlx;                              /* = sumlx^2 / suml2: larger is a smaller error */
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = SPLAT(-(nmax + 0.1f * is)) / max;
        qx_sums(n, nmax, xt, &iscale, &sumlx, &suml2);
        const vi ok = (suml2 > 0) & (sumlx * sumlx > best * suml2);
        scale = SEL(ok, sumlx / suml2, scale);
        best = SEL(ok, scale * sumlx, best);
        L_iscale = SEL(ok, iscale, L_iscale);
    }
    const vi zero = amax < GROUP_MAX_EPS;
    *scale_out = SEL(zero, SPLAT(0), scale);
    for (int i = 0; i < n; ++i) {
        vi l = NEAREST_I(L_iscale * xt[i]);
        CLAMP_I(l, -nmax, nmax - 1);
        L[i] = SEL_I(zero, SPLAT_I(0), l + nmax);
    }
}

/* ---------------------------------------------------------------- Q2_K */
/* 2-bit levels L: (QK_K,) in [0, 3] -> qs: (QK_K / 4,) bytes: element e is bits 2 * (e % 128 / 32) of
 * qs[e / 128 * 32 + e % 32] (Q2_K, and the low bits of Q3_K) */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < QK_K; j += 128)
        for (int l = 0; l < 32; ++l)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

// x: (n,) -> n / 256 blocks. 2-bit values: element e of the block is bits 2 * (e % 128 / 32) of qs[e / 128 * 32 + e % 32]
INLINE void q2_K_body(const float *x, void *dst, size_t n) {
    block_q2_K *y = dst;
    const float q4scale = 15.f;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, y[i].dmin);
            continue;
        }
        uint8_t L[QK_K];
        float mins[QK_K / 16], scales[QK_K / 16];
        for (int j0 = 0; j0 < QK_K / 16; j0 += LANES) { /* 16 sub-blocks of 16: two groups of lanes */
            vf xt[16], wt[16], sc, mn;
            vi Lt[16];
            transpose_in(x, 16, j0, xt);
            for (int i = 0; i < 16; ++i) wt[i] = ABS_F(xt[i]);
            qkx2_lanes(16, 3, xt, wt, Lt, &sc, &mn, -0.5f, 0.1f, 15, 1);
            transpose_out(Lt, 16, j0, L);
            memcpy(scales + j0, &sc, sizeof sc);
            memcpy(mins + j0, &mn, sizeof mn);
        }
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
            f16_put(y[i].d, max_scale / q4scale);
        } else {
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] = 0;
            f16_put(y[i].d, 0.f);
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < QK_K / 16; ++j) y[i].scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
            f16_put(y[i].dmin, max_min / q4scale);
        } else {
            f16_put(y[i].dmin, 0.f);
        }
        /* requantize every value against the scales as stored (fp16 d times the 4-bit sub-scale) */
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = f16_get(y[i].d) * (y[i].scales[j] & 0xF);
            if (!d) continue;
            const float dm = f16_get(y[i].dmin) * (y[i].scales[j] >> 4);
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int((x[16 * j + ii] + dm) / d);
                L[16 * j + ii] = (uint8_t)MAX(0, MIN(3, l));
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

void llmc_dequantize_row_q2_K(const void *src, float *y, size_t n) {
    const block_q2_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float d = f16_get(b[i].d), dmin = f16_get(b[i].dmin);
        for (int e = 0; e < QK_K; e++, y++) {
            const uint8_t sc = b[i].scales[e / 16];
            const int q = (b[i].qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3;
            *y = d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

/* ---------------------------------------------------------------- Q3_K */
/* the signed 6-bit scale of sub-block j (0..15): low 4 bits in scales[0..7], high 2 bits in scales[8..11] */
static inline int q3_scale(const uint8_t *s, int j) {
    int lo = j < 8 ? s[j] & 0xF : s[j - 8] >> 4;
    int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

void llmc_quantize_row_q3_K(const float *x, void *dst, size_t n) {
    block_q3_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, NULL);
            continue;
        }
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, amax = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            scales[j] = make_q3_quants(16, 4, x + 16 * j, L + 16 * j, 1);
            float scale = fabsf(scales[j]);
            if (scale > amax) {
                amax = scale;
                max_scale = scales[j];
            }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale) {
            float iscale = -32.f / max_scale;
            for (int j = 0; j < QK_K / 16; ++j) {
                int8_t l = (int8_t)nearest_int(iscale * scales[j]);
                l = (int8_t)(MAX(-32, MIN(31, l)) + 32);
                if (j < 8) y[i].scales[j] = (uint8_t)(l & 0xF);
                else y[i].scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
                l >>= 4;
                y[i].scales[j % 4 + 8] |= (uint8_t)(l << (2 * (j / 4)));
            }
            f16_put(y[i].d, 1 / iscale);
        } else {
            f16_put(y[i].d, 0.f);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            const float d = f16_get(y[i].d) * q3_scale(y[i].scales, j);
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(MAX(-4, MIN(3, l)) + 4);
            }
        }
        /* the high bit of value e goes to bit e / 32 of hmask[e % 32]; the low two bits as Q2_K */
        memset(y[i].hmask, 0, QK_K / 8);
        for (int e = 0; e < QK_K; e++) {
            if (L[e] > 3) {
                y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
                L[e] = (int8_t)(L[e] - 4);
            }
        }
        pack_2bit((const uint8_t *)L, y[i].qs);
    }
}

void llmc_dequantize_row_q3_K(const void *src, float *y, size_t n) {
    const block_q3_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float d = f16_get(b[i].d);
        for (int e = 0; e < QK_K; e++, y++) {
            const int lo = (b[i].qs[e / 128 * 32 + e % 32] >> (2 * (e % 128 / 32))) & 3;
            const int q = lo - ((b[i].hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
            *y = d * (float)q3_scale(b[i].scales, e / 16) * (float)q;
        }
    }
}

/* ---------------------------------------------------------------- Q4_K, Q5_K */
/* Pack 8 sub-block scales and mins (6 bits each) into 12 bytes: j < 4 in the low 6 bits of bytes j and j + 4;
 * j >= 4 split into a nibble of byte j + 4 and the top 2 bits of bytes j - 4 and j. */
static void pack_scale_min_k4(const float *scales, const float *mins, float max_scale, float max_min, uint8_t *s) {
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        ls = MIN(63, ls);
        lm = MIN(63, lm);
        if (j < 4) {
            s[j] = ls;
            s[j + 4] = lm;
        } else {
            s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
            s[j - 4] |= (uint8_t)((ls >> 4) << 6);
            s[j - 0] |= (uint8_t)((lm >> 4) << 6);
        }
    }
}

/* Q4_K / Q5_K share everything but nmax (15 / 31), the search grid and the bit packing: L gets levels 0..nmax. */
INLINE void quantize_k4_levels(const float *x, uint8_t *d_out, uint8_t *dmin_out, uint8_t *scales_out, uint8_t *L,
                               int nmax, float rmin, int nstep) {
    vf xt[32], wt[32], sum_x2 = SPLAT(0), av_x = SPLAT(0), sc, mn;
    vi Lt[32];
    transpose_in(x, 32, 0, xt); /* the 8 sub-blocks of 32: one group of lanes */
    for (int i = 0; i < 32; ++i) sum_x2 += xt[i] * xt[i];
    for (int j = 0; j < LANES; ++j) av_x[j] = sqrtf(sum_x2[j] / 32);
    for (int i = 0; i < 32; ++i) wt[i] = av_x + ABS_F(xt[i]); /* favour the larger values */
    qkx2_lanes(32, nmax, xt, wt, Lt, &sc, &mn, rmin, 0.1f, nstep, 0);
    transpose_out(Lt, 32, 0, L);
    float mins[QK_K / 32], scales[QK_K / 32];
    memcpy(scales, &sc, sizeof sc);
    memcpy(mins, &mn, sizeof mn);
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    pack_scale_min_k4(scales, mins, max_scale, max_min, scales_out);
    f16_put(d_out, max_scale / 63.f);
    f16_put(dmin_out, max_min / 63.f);
    for (int j = 0; j < QK_K / 32; ++j) {
        uint8_t sc, m;
        llmc_kq_scale_min(j, scales_out, &sc, &m);
        const float d = f16_get(d_out) * sc;
        if (!d) continue;
        const float dm = f16_get(dmin_out) * m;
        for (int ii = 0; ii < 32; ++ii) {
            int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)MAX(0, MIN(nmax, l));
        }
    }
}

// 4-bit values: element e is the low (sub-block e / 32 even) or high nibble of qs[e / 64 * 32 + e % 32]
INLINE void q4_K_body(const float *x, void *dst, size_t n) {
    block_q4_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, y[i].dmin);
            continue;
        }
        uint8_t L[QK_K];
        quantize_k4_levels(x, y[i].d, y[i].dmin, y[i].scales, L, 15, -1.f, 20);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l) y[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

void llmc_dequantize_row_q4_K(const void *src, float *y, size_t n) {
    const block_q4_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float d = f16_get(b[i].d), dmin = f16_get(b[i].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            llmc_kq_scale_min(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            const uint8_t *q = b[i].qs + j / 2 * 32;
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((q[l] >> shift) & 0xF) - m1;
        }
    }
}

// 5-bit values: the low 4 bits as Q4_K, bit 4 of element e is bit e / 32 of qh[e % 32]
INLINE void q5_K_body(const float *x, void *dst, size_t n) {
    block_q5_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, y[i].dmin);
            continue;
        }
        uint8_t L[QK_K];
        quantize_k4_levels(x, y[i].d, y[i].dmin, y[i].scales, L, 31, -0.5f, 15);
        memset(y[i].qh, 0, QK_K / 8);
        for (int e = 0; e < QK_K; e++)
            if (L[e] > 15) y[i].qh[e % 32] |= (uint8_t)(1 << (e / 32));
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 2 + l] = (uint8_t)((L[j + l] & 0xF) | ((L[j + l + 32] & 0xF) << 4));
    }
}

void llmc_dequantize_row_q5_K(const void *src, float *y, size_t n) {
    const block_q5_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float d = f16_get(b[i].d), dmin = f16_get(b[i].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            llmc_kq_scale_min(j, b[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            const uint8_t *q = b[i].qs + j / 2 * 32;
            const int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++) {
                const int v = ((q[l] >> shift) & 0xF) | (((b[i].qh[l] >> j) & 1) << 4);
                *y++ = d1 * (float)v - m1;
            }
        }
    }
}

/* ---------------------------------------------------------------- Q6_K */
// 6-bit values: element e = 128 c + 32 k + l: low 4 bits in ql[64 c + l + 32 (k & 1)] (high nibble if k >= 2),
// high 2 bits at bit 2k of qh[32 c + l]; sub-block scale scales[e / 16]
INLINE void q6_K_body(const float *x, void *dst, size_t n) {
    block_q6_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, NULL);
            continue;
        }
        uint8_t L[QK_K];
        float scales[QK_K / 16];
        for (int j0 = 0; j0 < QK_K / 16; j0 += LANES) { /* 16 sub-blocks of 16: two groups of lanes */
            vf xt[16], sc;
            vi Lt[16];
            transpose_in(x, 16, j0, xt);
            qx_lanes(16, 32, xt, Lt, &sc);
            transpose_out(Lt, 16, j0, L);
            memcpy(scales + j0, &sc, sizeof sc);
        }
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -128.f / max_scale;
        f16_put(y[i].d, 1 / iscale);
        for (int ib = 0; ib < QK_K / 16; ++ib) y[i].scales[ib] = (int8_t)MIN(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < QK_K / 16; ++j) {
            float d = f16_get(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (uint8_t)(MAX(-32, MIN(31, l)) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

void llmc_dequantize_row_q6_K(const void *src, float *y, size_t n) {
    const block_q6_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        const float d = f16_get(b[i].d);
        for (int e = 0; e < QK_K; e++, y++) {
            const int c = e / 128, k = e % 128 / 32, l = e % 32;
            const int lo = (b[i].ql[64 * c + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 0xF;
            const int hi = (b[i].qh[32 * c + l] >> (2 * k)) & 3;
            *y = d * (float)b[i].scales[e / 16] * (float)((lo | (hi << 4)) - 32);
        }
    }
}

/* ---------------------------------------------------------------- the row quantizers, compiled twice */
/* One body, two compilations: the exported row quantizer runs the copy built for AVX2 when the SIMD level allows
 * it (the CPU has AVX2 and no lower level was forced), else the baseline one. Both do the same fp32 operations in
 * the same order (no FMA is enabled, so nothing can be contracted): the same bytes at every level. */
#if defined(__x86_64__) || defined(__i386__)
#define KQ_AVX2 1
#define TARGET_AVX2 __attribute__((target("avx2")))
#else
#define KQ_AVX2 0
#define TARGET_AVX2
#endif
#define ROW_QUANTIZER(sfx)                                                                                             \
    TARGET_AVX2 static void sfx##_avx2(const float *x, void *dst, size_t n) { sfx##_body(x, dst, n); }                \
    void llmc_quantize_row_##sfx(const float *x, void *dst, size_t n) {                                                \
        if (KQ_AVX2 && llmc_simd_get_level() >= LLMC_SIMD_AVX2) sfx##_avx2(x, dst, n);                                 \
        else sfx##_body(x, dst, n);                                                                                    \
    }
ROW_QUANTIZER(q2_K)
ROW_QUANTIZER(q4_K)
ROW_QUANTIZER(q5_K)
ROW_QUANTIZER(q6_K)

/* ---------------------------------------------------------------- Q8_K */
void llmc_quantize_row_q8_K(const float *x, void *dst, size_t n) {
    block_q8_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            memset(&y[i], 0, sizeof y[i]);
            const float nan = NAN;
            memcpy(y[i].d, &nan, 4);
            continue;
        }
        const float max = signed_absmax(x, QK_K);
        if (!max) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const float iscale = -127.f / max; /* ggml: -127 (not -128) so every level fits int8 symmetrically */
        for (int j = 0; j < QK_K; ++j) {
            int v = nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)MIN(127, v);
        }
        for (int j = 0; j < QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            int16_t s = (int16_t)sum;
            memcpy(y[i].bsums + 2 * j, &s, 2);
        }
        const float d = 1 / iscale;
        memcpy(y[i].d, &d, 4);
    }
}

void llmc_dequantize_row_q8_K(const void *src, float *y, size_t n) {
    const block_q8_K *b = src;
    for (size_t i = 0; i < n / QK_K; i++) {
        float d;
        memcpy(&d, b[i].d, 4);
        for (int j = 0; j < QK_K; j++) *y++ = d * (float)b[i].qs[j];
    }
}
