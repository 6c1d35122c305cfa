/* simd.h: the vector primitives llmc's kernels are built from, one table per instruction set.
 *
 * simd_scalar.c is the portable reference; simd_avx2.c and simd_avx512.c are compiled with per-function target
 * attributes (never -march=native) and chosen once at start-up from what the CPU reports (simd.c).
 * Every entry works for any n (including 0) and unaligned pointers. */
#ifndef LLMC_SIMD_H
#define LLMC_SIMD_H

#include <stddef.h>

typedef struct {
    const char *name;
    float (*dot)(const float *a, const float *b, size_t n);                  /* sum a[i] * b[i] */
    void (*axpy)(float *y, float a, const float *x, size_t n);               /* y += a * x */
    void (*scale)(float *y, float a, size_t n);                              /* y *= a */
    float (*max)(const float *x, size_t n);                                  /* max (-inf if n == 0; NaN if any is NaN) */
    float (*sum)(const float *x, size_t n);                                  /* sum x */
    float (*sumsq)(const float *x, size_t n);                                /* sum x^2 */
    float (*sq_dev_sum)(const float *x, float mean, size_t n);               /* sum (x - mean)^2 */
    /* out[i] = exp((x[i] - shift) * mul); returns the sum of out. out may equal x. */
    float (*exp_shift_sum)(const float *x, float *out, float shift, float mul, size_t n);
    /* out[i] = (x[i] - shift) * mul + add. out may equal x. */
    void (*shift_scale_add)(const float *x, float *out, float shift, float mul, float add, size_t n);
    /* out[i] = (x[i] - mean) * rstd * w[i] + (b ? b[i] : 0) */
    void (*norm_affine)(const float *x, float *out, float mean, float rstd, const float *w, const float *b, size_t n);
    void (*silu)(const float *x, float *out, size_t n);                      /* x * sigmoid(x) */
    void (*gelu_tanh)(const float *x, float *out, size_t n);                 /* GELU, tanh approximation */
    /* Small in-cache matrix product (attention's tiles; never threads):
     * c (m, n; row stride ldc) = (accumulate ? c : 0) + a @ b, with a: (m, k) read as a[i * a_rs + p * a_cs] (so a
     * transposed operand needs no copy) and b: (k, n) with row stride ldb and unit column stride. */
    void (*gemm_tile)(size_t m, size_t n, size_t k, const float *a, size_t a_rs, size_t a_cs, const float *b,
                      size_t ldb, float *c, size_t ldc, int accumulate);
    /* One online-softmax step over the columns of s: (rows, cols; row stride lds), in place. For each column c:
     * m_new = max(m[c], max_r s[r][c]); alpha[c] = exp(m[c] - m_new); s[r][c] = exp(s[r][c] - m_new);
     * l[c] = l[c] * alpha[c] + sum_r s[r][c]; m[c] = m_new. -inf entries become 0; while a column has seen only
     * -inf its shift is 0 instead of -inf (so no NaN), its alpha is 0 and its l stays 0. m, l, alpha: (cols,). */
    void (*softmax_cols_online)(float *s, size_t rows, size_t cols, size_t lds, float *m, float *l, float *alpha);
    /* The few-row product of llmc_matmul_typed's F32 path (one L2-sized block of weight rows; never threads):
     * y[t * ldy + j] = beta * y[t * ldy + j] + dot(w[j], x[t]) for j < nw, t < T, with w: (nw, in) and x: (T, in)
     * row-major; beta == 0 overwrites y (a NaN there does not survive). Each output is the same sum whatever T and
     * the places of j and t, so a row's result never depends on the other rows. */
    void (*rows_dot)(const float *w, size_t nw, size_t in, const float *x, size_t T, float *y, size_t ldy,
                     float beta);
    /* The same few-row product for a weight stored (in, out) (GPT-2's F32 Conv1D; never threads): y (T, n) with row
     * stride ldy = (accumulate ? y : 0) + x (T, k; row stride ldx) @ w (k, n; row stride ldw). Each output is a
     * sum over k in order, the same whatever T and the places of its row and column. */
    void (*rows_in_out)(const float *x, size_t ldx, size_t T, size_t k, const float *w, size_t ldw, size_t n,
                        float *y, size_t ldy, int accumulate);
} llmc_simd_kernels;

/* The active table (set at start-up to the best level; tests may switch it with llmc_simd_set_level). */
/* The table in use: chosen once at load time, changed only by llmc_simd_set_level (tests). Atomic, so a thread that
 * switches levels while others run kernels is no data race: each read sees one whole table. */
extern _Atomic(const llmc_simd_kernels *) llmc_k;

extern const llmc_simd_kernels llmc_simd_scalar;
extern const llmc_simd_kernels llmc_simd_avx2;
extern const llmc_simd_kernels llmc_simd_avx512;

/* rows_dot_avx2.c, rows_in_out_avx2.c (x86 only): the AVX2 + FMA few-row kernels, shared by the AVX2 and AVX-512
 * tables */
void llmc_rows_dot_avx2(const float *w, size_t nw, size_t in, const float *x, size_t T, float *y, size_t ldy,
                        float beta);
void llmc_rows_in_out_avx2(const float *x, size_t ldx, size_t T, size_t k, const float *w, size_t ldw, size_t n,
                           float *y, size_t ldy, int accumulate);

#endif
