/* quant.c: the type-traits table (one row per weight type, as ggml's type_traits) and the public API over it:
 * names, block sizes, row sizes, quantize and dequantize of whole matrices (threaded over rows). */
#include <string.h>

#include "internal.h"
#include "quant.h"
#include "simd.h"

#define ROW(id, nm, bs, bb, sfx, dot, dot_type)                                                                    \
    [id] = {nm, bs, bb, llmc_dequantize_row_##sfx, llmc_quantize_row_##sfx, dot, dot_type}

/* ggml's type ids index the table; rows left empty are types llmc does not know. */
static const llmc_type_traits traits[LLMC_TYPE_COUNT] = {
    ROW(LLMC_TYPE_F32, "f32", 1, 4, f32, llmc_vec_dot_f32, LLMC_TYPE_F32),
    ROW(LLMC_TYPE_F16, "f16", 1, 2, f16, llmc_vec_dot_f16, LLMC_TYPE_F32),
    ROW(LLMC_TYPE_BF16, "bf16", 1, 2, bf16, llmc_vec_dot_bf16, LLMC_TYPE_F32),
    ROW(LLMC_TYPE_Q4_0, "q4_0", QK, sizeof(block_q4_0), q4_0, llmc_vec_dot_q4_0, LLMC_TYPE_Q8_0),
    ROW(LLMC_TYPE_Q4_1, "q4_1", QK, sizeof(block_q4_1), q4_1, llmc_vec_dot_q4_1, LLMC_TYPE_Q8_1),
    ROW(LLMC_TYPE_Q5_0, "q5_0", QK, sizeof(block_q5_0), q5_0, llmc_vec_dot_q5_0, LLMC_TYPE_Q8_0),
    ROW(LLMC_TYPE_Q5_1, "q5_1", QK, sizeof(block_q5_1), q5_1, llmc_vec_dot_q5_1, LLMC_TYPE_Q8_1),
    ROW(LLMC_TYPE_Q8_0, "q8_0", QK, sizeof(block_q8_0), q8_0, llmc_vec_dot_q8_0, LLMC_TYPE_Q8_0),
    /* Q8_1 and Q8_K are activation formats: no integer dot as weights, the matmul dequantizes them */
    ROW(LLMC_TYPE_Q8_1, "q8_1", QK, sizeof(block_q8_1), q8_1, NULL, LLMC_TYPE_F32),
    ROW(LLMC_TYPE_Q2_K, "q2_k", QK_K, sizeof(block_q2_K), q2_K, llmc_vec_dot_q2_K, LLMC_TYPE_Q8_K),
    ROW(LLMC_TYPE_Q3_K, "q3_k", QK_K, sizeof(block_q3_K), q3_K, llmc_vec_dot_q3_K, LLMC_TYPE_Q8_K),
    ROW(LLMC_TYPE_Q4_K, "q4_k", QK_K, sizeof(block_q4_K), q4_K, llmc_vec_dot_q4_K, LLMC_TYPE_Q8_K),
    ROW(LLMC_TYPE_Q5_K, "q5_k", QK_K, sizeof(block_q5_K), q5_K, llmc_vec_dot_q5_K, LLMC_TYPE_Q8_K),
    ROW(LLMC_TYPE_Q6_K, "q6_k", QK_K, sizeof(block_q6_K), q6_K, llmc_vec_dot_q6_K, LLMC_TYPE_Q8_K),
    ROW(LLMC_TYPE_Q8_K, "q8_k", QK_K, sizeof(block_q8_K), q8_K, NULL, LLMC_TYPE_F32),
};

_Static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q5_0) == 22 &&
                   sizeof(block_q5_1) == 24 && sizeof(block_q8_0) == 34 && sizeof(block_q8_1) == 36,
               "legacy block sizes must match ggml");
_Static_assert(sizeof(block_q2_K) == 84 && sizeof(block_q3_K) == 110 && sizeof(block_q4_K) == 144 &&
                   sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210 && sizeof(block_q8_K) == 292,
               "K-quant block sizes must match ggml");

const llmc_type_traits *llmc_type_traits_of(int type) {
    if (type < 0 || type >= LLMC_TYPE_COUNT || !traits[type].name) return NULL;
    return &traits[type];
}

int llmc_type_valid(int type) { return llmc_type_traits_of(type) != NULL; }

const char *llmc_type_name(int type) {
    const llmc_type_traits *t = llmc_type_traits_of(type);
    return t ? t->name : "unknown";
}

int llmc_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < LLMC_TYPE_COUNT; i++) {
        if (!traits[i].name) continue;
        /* case-insensitive: "Q4_K" (ggml's spelling) and "q4_k" both name it */
        const char *a = traits[i].name, *b = name;
        while (*a && *b && (*a == *b || (*b >= 'A' && *b <= 'Z' && *b + 32 == *a))) a++, b++;
        if (!*a && !*b) return i;
    }
    return -1;
}

size_t llmc_type_block_size(int type) {
    const llmc_type_traits *t = llmc_type_traits_of(type);
    return t ? t->block_size : 0;
}

size_t llmc_type_block_bytes(int type) {
    const llmc_type_traits *t = llmc_type_traits_of(type);
    return t ? t->block_bytes : 0;
}

llmc_status llmc_type_row_bytes(int type, size_t n, size_t *bytes) {
    const llmc_type_traits *t = llmc_type_traits_of(type);
    if (!t) return llmc_fail(LLMC_ERR_INVALID, "unknown tensor type id %d", type);
    if (n % t->block_size)
        return llmc_fail(LLMC_ERR_INVALID, "a row of %zu values is not a whole number of %s blocks (%zu values each)",
                         n, t->name, t->block_size);
    if (!llmc_mul_ok(n / t->block_size, t->block_bytes, bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "a %s row of %zu values overflows size_t", t->name, n);
    return LLMC_OK;
}

/* the checks quantize and dequantize share: type, row length, total size */
static llmc_status check_matrix(int type, size_t rows, size_t n, size_t *row_bytes, const llmc_type_traits **t) {
    llmc_status st = llmc_type_row_bytes(type, n, row_bytes);
    if (st) return st;
    size_t total;
    if (!llmc_mul_ok(rows, *row_bytes, &total) || !llmc_size3(rows, n, 1, sizeof(float), &total))
        return llmc_fail(LLMC_ERR_NOMEM, "a (%zu, %zu) %s matrix overflows size_t", rows, n, llmc_type_name(type));
    *t = llmc_type_traits_of(type);
    return LLMC_OK;
}

/* rows are independent: worth threads once there are a few hundred thousand values (K-quant search is ~100x
 * slower per value than a copy, so the threshold is the same for all types to keep it simple) */
static int threads_for_rows(size_t rows, size_t n) {
    if (rows < 2) return 1;
    int nt = llmc_threads_for(rows * n);
    return (size_t)nt > rows ? (int)rows : nt;
}

// x: (rows, n) -> dst: rows * row_bytes(n)
llmc_status llmc_quantize(int type, const float *x, void *dst, size_t rows, size_t n) {
    size_t rb;
    const llmc_type_traits *t = NULL;
    llmc_status st = check_matrix(type, rows, n, &rb, &t);
    if (st) return st;
    if (rows == 0 || n == 0) return LLMC_OK;
    if (!x || !dst) return llmc_fail(LLMC_ERR_INVALID, "llmc_quantize: NULL pointer for a (%zu, %zu) matrix", rows, n);
    int nt = threads_for_rows(rows, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t r = 0; r < rows; r++) t->from_float(x + r * n, (uint8_t *)dst + r * rb, n);
    return LLMC_OK;
}

// src: rows * row_bytes(n) -> y: (rows, n)
llmc_status llmc_dequantize(int type, const void *src, float *y, size_t rows, size_t n) {
    size_t rb;
    const llmc_type_traits *t = NULL;
    llmc_status st = check_matrix(type, rows, n, &rb, &t);
    if (st) return st;
    if (rows == 0 || n == 0) return LLMC_OK;
    if (!src || !y) return llmc_fail(LLMC_ERR_INVALID, "llmc_dequantize: NULL pointer for a (%zu, %zu) matrix", rows, n);
    /* the SIMD level's row (bit-identical to the reference) where it has one */
    const llmc_quant_kernels *qk = llmc_quant_kernels_for(llmc_simd_get_level());
    const llmc_to_float_fn to_float = qk->to_float[type] ? qk->to_float[type] : t->to_float;
    int nt = threads_for_rows(rows, n);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (size_t r = 0; r < rows; r++) to_float((const uint8_t *)src + r * rb, y + r * n, n);
    return LLMC_OK;
}
