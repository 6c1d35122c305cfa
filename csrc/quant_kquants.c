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
 * Non-finite input: ggml's searches are undefined on NaN / inf. llmc defines a super-block holding a NaN or +-inf
 * to quantize to an all-zero block with NaN scales, so every one of its 256 values dequantizes to NaN. */
#include <math.h>

#include "quant.h"

#define GROUP_MAX_EPS 1e-15f /* ggml: a sub-block whose max |x| is below this is all zeros */
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define MIN(a, b) ((a) < (b) ? (a) : (b))

/* round to nearest (ties to even) for |f| <= 2^22: adding 1.5 * 2^23 puts the integer in the low mantissa bits */
static inline int nearest_int(float f) {
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

/* Symmetric scale for x: (n,) with levels l in [-nmax, nmax - 1], stored in L as l + nmax. rmse_type 1 weighs
 * each value by x^2 and tries 18 scales around nmax / max|x|, keeping the one with the least weighted error. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    /* only rmse_type 1 (weights x^2) is used by the K-quants */
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * x[i]);
        l = MAX(-nmax, MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f; /* least-squares scale for these levels */
    float best = scale * sumlx;                 /* = sumlx^2 / suml2: larger is a smaller error */
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * x[i]);
            l = MAX(-nmax, MIN(nmax - 1, l));
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + MAX(-nmax, MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's symmetric scale: levels in [-nmax, nmax - 1], then (do_rmse) up to 5 passes moving single values to the
 * level that lowers the x^2-weighted error. L gets l + nmax. */
static float make_q3_quants(int n, int nmax, const float *x, int8_t *L, int do_rmse) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
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

/* Asymmetric scale and min for x: (n,) with levels in [0, nmax]: x ~ scale * L - the_min. Starts from the
 * min/max fit, then tries nstep + 1 scales (nmax + rmin + rdelta * is) / (max - min), each refined by weighted
 * least squares for scale and min, keeping the least weighted error (|diff| if use_mad, else diff^2). */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)MAX(0, MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += weights[i] * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = nearest_int(iscale * (x[i] - min));
            l = MAX(0, MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        /* weighted least squares of x ~ this_scale * l + this_min: the 2x2 normal equations' determinant */
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) { /* the format stores a subtracted min >= 0: refit the scale alone */
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += weights[i] * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ---------------------------------------------------------------- Q2_K */
// x: (n,) -> n / 256 blocks. 2-bit values: element e of the block is bits 2 * (e % 128 / 32) of qs[e / 128 * 32 + e % 32]
void llmc_quantize_row_q2_K(const float *x, void *dst, size_t n) {
    block_q2_K *y = dst;
    const float q4scale = 15.f;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, y[i].dmin);
            continue;
        }
        uint8_t L[QK_K], Laux[16];
        float weights[16], mins[QK_K / 16], scales[QK_K / 16];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < QK_K / 16; ++j) {
            for (int l = 0; l < 16; ++l) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, 1);
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
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
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
        for (int j = 0; j < QK_K; j += 128)
            for (int l = 0; l < 32; ++l)
                y[i].qs[j / 4 + l] =
                    (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
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
static void quantize_k4_levels(const float *x, uint8_t *d_out, uint8_t *dmin_out, uint8_t *scales_out, uint8_t *L,
                               int nmax, float rmin, int nstep) {
    uint8_t Laux[32];
    float weights[32], mins[QK_K / 32], scales[QK_K / 32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]); /* favour the larger values */
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, 0);
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
void llmc_quantize_row_q4_K(const float *x, void *dst, size_t n) {
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
void llmc_quantize_row_q5_K(const float *x, void *dst, size_t n) {
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
void llmc_quantize_row_q6_K(const float *x, void *dst, size_t n) {
    block_q6_K *y = dst;
    for (size_t i = 0; i < n / QK_K; i++, x += QK_K) {
        if (!all_finite(x, QK_K)) {
            nan_block(&y[i], sizeof y[i], y[i].d, NULL);
            continue;
        }
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < QK_K / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) {
                max_abs_scale = fabsf(scale);
                max_scale = scale;
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
                L[16 * j + ii] = (int8_t)(MAX(-32, MIN(31, l)) + 32);
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
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; ++j) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
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
