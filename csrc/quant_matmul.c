/* quant_matmul.c: llmc_matmul_typed, the one dispatch point that multiplies activations by a weight of any type.
 *
 *   y: (T, out) = beta * y + x: (T, in) @ W^T,   W: (out, in) stored as `out` rows of `in` values of `type`
 *
 * Four paths:
 *  - F32 weights, one row: BLAS sgemv. 2..LLMC_F32_ROWS_MAX_T rows (a batch of decode steps, beams, an expert's
 *    tokens): the few-row kernel (simd.h rows_dot, matmul_rows below), which reads W in place, block by block, and
 *    multiplies every weight row into all rows of x while it is in cache; sgemm would first pack all of W, a copy as
 *    large as the weights, which costs more than the product for a few rows. More rows: BLAS sgemm.
 *  - Decode (few rows T): each activation row is quantized once to the weight type's vec_dot_type (Q8_0 / Q8_1 /
 *    Q8_K; kept fp32 for F16 / BF16), then every output is one integer dot product of a weight row with it, the
 *    weight row read straight from its blocks. Decode is memory-bound: the weight bytes are the cost, so fewer
 *    bits per weight is directly faster. Threads split the output rows (one parallel region per call).
 *  - Prefill (many rows T): each thread dequantizes a tile of weight rows into an L2-sized fp32 buffer and runs a
 *    single-threaded sgemm of all T rows against it, so the (compute-bound) product runs at BLAS speed and the
 *    dequantization cost (in * out) is amortised over T rows.
 * The SIMD level's kernel table (quant_simd.c) supplies the vector dot products; its scalar entries are the
 * portable reference of quant_dot.c. */
#include <omp.h>
#include <string.h>

#include "blas.h"
#include "internal.h"
#include "quant.h"
#include "simd.h"

/* Rows of T at or below which the integer-dot path wins over dequantize + sgemm (see docs/quantization.md). */
#define DECODE_MAX_T 8
/* fp32 bytes of weight rows one prefill tile holds: about half a core's L2 */
#define TILE_BYTES (256 * 1024)

/* fp32 bytes of the weight rows one block of the few-row path holds: they stay in L2 while the groups of activation
 * rows pass over them */
#define ROWS_BLOCK_BYTES (192 * 1024)

static inline void store(float *y, float v, float beta) { *y = beta == 0.0f ? v : beta * *y + v; }

/* Activation rows per pass and weight rows per block of the dot path: 8 quantized activation rows of a 4096-wide
 * layer (8 x 4.6 KB of Q8_K) stay in L1 while a block of 16 weight rows (L2) is multiplied against them, so the
 * integer path scales linearly in T instead of streaming all T activation rows from L2 for every weight row. */
#define DOT_T_BLOCK 8
#define DOT_ROW_BLOCK 16

/* Integer dots: xq holds T activation rows of xrb bytes each in the vec_dot type. */
static void matmul_dot(llmc_vec_dot_fn dot, const uint8_t *w, size_t wrb, const uint8_t *xq, size_t xrb, float *y,
                       size_t T, size_t in, size_t out, float beta, int nt) {
    /* contiguous row ranges (multiples of 4 rows) per thread keep each thread streaming its own slice of W */
    size_t chunk = (out + (size_t)nt - 1) / (size_t)nt;
    chunk = (chunk + 3) / 4 * 4;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int th = 0; th < nt; th++) {
        size_t lo = (size_t)th * chunk, hi = lo + chunk < out ? lo + chunk : out;
        for (size_t r0 = lo; r0 < hi; r0 += DOT_ROW_BLOCK) {
            size_t r1 = r0 + DOT_ROW_BLOCK < hi ? r0 + DOT_ROW_BLOCK : hi;
            for (size_t t0 = 0; t0 < T; t0 += DOT_T_BLOCK) {
                size_t t1 = t0 + DOT_T_BLOCK < T ? t0 + DOT_T_BLOCK : T;
                for (size_t r = r0; r < r1; r++) {
                    const uint8_t *wr = w + r * wrb; /* W row r: read from memory once, then from cache */
                    for (size_t t = t0; t < t1; t++) store(y + t * out + r, dot(in, wr, xq + t * xrb), beta);
                }
            }
        }
    }
}

/* F32 few rows: y (T, out) = beta * y + x (T, in) @ W^T, W: (out, in) cut into blocks of nb rows (a multiple of
 * 3, rows_dot's tile) of about ROWS_BLOCK_BYTES; threads take contiguous ranges of blocks. Each output is rows_dot's
 * one fixed sum, so the result does not depend on the thread count or on the other rows. */
static void matmul_rows(const float *w, const float *x, float *y, size_t T, size_t in, size_t out, float beta,
                        int nt) {
    const llmc_simd_kernels *k = llmc_k;
    size_t nb = ROWS_BLOCK_BYTES / (in * sizeof(float)) / 3 * 3;
    if (nb < 3) nb = 3;
    const size_t n_blk = (out + nb - 1) / nb;
    if ((size_t)nt > n_blk) nt = (int)n_blk;
    llmc_flops_note(T, out, in); /* counted as the sgemm it replaces (llmc.scaling.count_flops) */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t b = 0; b < n_blk; b++) {
        const size_t j0 = b * nb, rows = out - j0 < nb ? out - j0 : nb;
        // y[:, j0:j0+rows] (T, rows) = beta * y[...] + x (T, in) @ W[j0:j0+rows]^T
        k->rows_dot(w + j0 * in, rows, in, x, T, y + j0, out, beta);
    }
}

/* Prefill: tiles of `tile` weight rows dequantized into buf (nt * tile * in floats), then sgemm. */
static void matmul_tiles(llmc_to_float_fn to_float, const uint8_t *w, size_t wrb, const float *x, float *y, size_t T,
                         size_t in, size_t out, float beta, int nt, size_t tile, float *buf) {
    size_t n_tiles = (out + tile - 1) / tile;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *wt = buf + (size_t)omp_get_thread_num() * tile * in; /* this thread's (tile, in) fp32 rows */
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < n_tiles; k++) {
            size_t r0 = k * tile, rows = r0 + tile <= out ? tile : out - r0;
            for (size_t r = 0; r < rows; r++) to_float(w + (r0 + r) * wrb, wt + r * in, in);
            // y[:, r0:r0+rows] (T, rows) = x (T, in) @ wt^T (in, rows) + beta * y[:, r0:r0+rows]
            llmc_sgemm1(0, 1, T, rows, in, 1.0f, x, in, wt, in, beta, y + r0, out);
        }
    }
}

llmc_status llmc_matmul_typed(int type, const void *w, const float *x, float *y, size_t T, size_t in, size_t out,
                              float beta) {
    return llmc_matmul_typed_path(type, w, x, y, T, in, out, beta, LLMC_MATMUL_AUTO);
}

llmc_status llmc_matmul_typed_path(int type, const void *w, const float *x, float *y, size_t T, size_t in, size_t out,
                                   float beta, int path) {
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    if (!tt) return llmc_fail(LLMC_ERR_INVALID, "llmc_matmul_typed: unknown weight type id %d", type);
    size_t wrb, total;
    llmc_status st = llmc_type_row_bytes(type, in, &wrb);
    if (st) return st;
    if (!llmc_mul_ok(wrb, out, &total) || !llmc_size3(T, in > out ? in : out, 1, sizeof(float), &total))
        return llmc_fail(LLMC_ERR_NOMEM, "llmc_matmul_typed: (%zu, %zu) @ (%zu, %zu)^T overflows size_t", T, in, out,
                         in);
    const size_t lim = 2147483647u; /* BLAS and the kernels take 32-bit dimensions */
    if (T > lim || in > lim || out > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "llmc_matmul_typed: dimension too large (T=%zu, in=%zu, out=%zu)", T,
                         in, out);
    if (T == 0 || out == 0) return LLMC_OK;
    if (!w || !x || !y) return llmc_fail(LLMC_ERR_INVALID, "llmc_matmul_typed: NULL pointer");
    if (in == 0) { /* an empty sum: y = beta * y */
        for (size_t i = 0; i < T * out; i++) y[i] = beta == 0.0f ? 0.0f : beta * y[i];
        return LLMC_OK;
    }
    if (path < LLMC_MATMUL_AUTO || path > LLMC_MATMUL_ROWS)
        return llmc_fail(LLMC_ERR_INVALID, "llmc_matmul_typed_path: unknown path %d (0 auto, 1 dot, 2 tiles, 3 rows)",
                         path);
    if (path == LLMC_MATMUL_ROWS && type != LLMC_TYPE_F32)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "llmc_matmul_typed_path: the few-row path takes f32 weights, not %s",
                         tt->name);
    int nt = llmc_threads();
    if (omp_in_parallel()) nt = 1; /* called from a parallel region: the caller already splits the work */
    if (type == LLMC_TYPE_F32 && (path == LLMC_MATMUL_ROWS || path == LLMC_MATMUL_AUTO)) {
        if (path == LLMC_MATMUL_ROWS || (T > 1 && T <= LLMC_F32_ROWS_MAX_T)) {
            if (2.0 * (double)T * (double)in * (double)out < 4e6) nt = 1; /* too small to split */
            matmul_rows((const float *)w, x, y, T, in, out, beta, nt);
            return LLMC_OK;
        }
        if (T > 1) return llmc_sgemm(0, 1, T, out, in, 1.0f, x, in, (const float *)w, in, beta, y, out);
        if (beta == 0.0f) memset(y, 0, out * sizeof(float)); /* so a NaN in y cannot survive 0 * y */
        return llmc_sgemv(0, out, in, 1.0f, (const float *)w, in, x, beta, y); /* sgemm with one row is slow */
    }

    const llmc_quant_kernels *qk = llmc_quant_kernels_for(llmc_simd_get_level());
    llmc_vec_dot_fn dot = qk->vec_dot[type] ? qk->vec_dot[type] : tt->vec_dot;

    if (path == LLMC_MATMUL_DOT && !dot)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "llmc_matmul_typed_path: %s weights have no integer-dot kernel",
                         tt->name);
    if (dot && (path == LLMC_MATMUL_DOT || (path == LLMC_MATMUL_AUTO && T <= DECODE_MAX_T))) {
        /* each thread should get a few hundred KB of weights or the fork/join dominates */
        size_t per = (out * wrb) / (128 * 1024);
        if ((size_t)nt > per) nt = per < 1 ? 1 : (int)per;
        const llmc_type_traits *xt = llmc_type_traits_of(tt->vec_dot_type);
        if (tt->vec_dot_type == LLMC_TYPE_F32) {
            matmul_dot(dot, w, wrb, (const uint8_t *)x, in * sizeof(float), y, T, in, out, beta, nt);
            return LLMC_OK;
        }
        size_t xrb;
        if ((st = llmc_type_row_bytes(tt->vec_dot_type, in, &xrb))) return st; /* in is a multiple of its block */
        uint8_t *xq = llmc_malloc(T * xrb, "quantized activations");
        if (!xq) return LLMC_ERR_NOMEM;
        for (size_t t = 0; t < T; t++) xt->from_float(x + t * in, xq + t * xrb, in);
        matmul_dot(dot, w, wrb, xq, xrb, y, T, in, out, beta, nt);
        llmc_free(xq);
        return LLMC_OK;
    }

    /* tile rows: as many as fit TILE_BYTES in fp32, a multiple of 16 (whole SIMD panels for sgemm), >= 16 */
    size_t tile = TILE_BYTES / (in * sizeof(float));
    tile = tile < 16 ? 16 : tile / 16 * 16;
    if (tile > out) tile = out;
    size_t n_tiles = (out + tile - 1) / tile;
    if ((size_t)nt > n_tiles) nt = (int)n_tiles;
    if (2.0 * (double)T * (double)in * (double)out < 4e6) nt = 1; /* too small to split */
    float *buf = llmc_malloc((size_t)nt * tile * in * sizeof(float), "dequantized weight tiles");
    if (!buf) return LLMC_ERR_NOMEM;
    matmul_tiles(qk->to_float[type] ? qk->to_float[type] : tt->to_float, w, wrb, x, y, T, in, out, beta, nt, tile,
                 buf);
    llmc_free(buf);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- one activation row on a caller's team (decode.c)
 * The same products as llmc_matmul_typed with T = 1, cut so that a caller running its own team can share out the
 * output rows: the activation row is put in the weight's dot format once (llmc_matvec_prepare), then any thread
 * computes any range of rows (llmc_matvec_rows). Every row is one dot product (one sgemv for F32), so the result
 * does not depend on how the rows are shared out. */

int llmc_matvec_supported(int type) {
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    return tt && (type == LLMC_TYPE_F32 || tt->vec_dot);
}

size_t llmc_matvec_x_bytes(int type, size_t in) {
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    size_t xrb = 0;
    if (type == LLMC_TYPE_F32 || tt->vec_dot_type == LLMC_TYPE_F32) return 0; /* reads the fp32 row itself */
    return llmc_type_row_bytes(tt->vec_dot_type, in, &xrb) ? 0 : xrb;
}

// xq: llmc_matvec_x_bytes(type, in) bytes = x: (in,) in the weight's vec_dot format (nothing when that is fp32)
void llmc_matvec_prepare(int type, const float *x, void *xq, size_t in) {
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    if (type == LLMC_TYPE_F32 || tt->vec_dot_type == LLMC_TYPE_F32) return;
    llmc_type_traits_of(tt->vec_dot_type)->from_float(x, xq, in);
}

// y[lo:hi] = beta * y[lo:hi] + W[lo:hi] @ x,  W: (out, in) of `type`; x: (in,) fp32, xq: x prepared for the type
void llmc_matvec_rows(int type, const void *w, const float *x, const void *xq, float *y, size_t in, size_t out,
                      size_t lo, size_t hi, float beta) {
    if (lo >= hi) return;
    if (type == LLMC_TYPE_F32) { /* as llmc_matmul_typed's T = 1 path: sgemv, y zeroed first when beta = 0 */
        if (beta == 0.0f) memset(y + lo, 0, (hi - lo) * sizeof(float));
        llmc_sgemv_rows(0, out, in, 1.0f, w, in, x, beta, y, lo, hi);
        return;
    }
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    const llmc_quant_kernels *qk = llmc_quant_kernels_for(llmc_simd_get_level());
    llmc_vec_dot_fn dot = qk->vec_dot[type] ? qk->vec_dot[type] : tt->vec_dot;
    const void *xd = tt->vec_dot_type == LLMC_TYPE_F32 ? (const void *)x : xq;
    size_t wrb;
    (void)llmc_type_row_bytes(type, in, &wrb); /* checked when the weight was made */
    for (size_t r = lo; r < hi; r++) store(y + r, dot(in, (const uint8_t *)w + r * wrb, xd), beta);
}
