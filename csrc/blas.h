/* blas.h: the few BLAS entry points llmc uses, declared here so any OpenBLAS build works.
 *
 * The pip wheel `scipy-openblas32` prefixes every symbol with `scipy_`; a system OpenBLAS has no prefix.
 * setup.py defines LLMC_BLAS_PREFIX accordingly (see README "Building against a system OpenBLAS"), and
 * LLMC_BLAS(name) pastes it on. blasint is 32-bit in both (the "32" in scipy-openblas32 = 32-bit integers). */
#ifndef LLMC_BLAS_H
#define LLMC_BLAS_H

#ifndef LLMC_BLAS_PREFIX
#define LLMC_BLAS_PREFIX scipy_
/* One single-threaded sgemm, safe to call from inside a parallel region (dimensions must fit BLAS's int). */
void llmc_sgemm1(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc);
#endif
#define LLMC_BLAS_CAT2(a, b) a##b
#define LLMC_BLAS_CAT(a, b) LLMC_BLAS_CAT2(a, b)
#define LLMC_BLAS(name) LLMC_BLAS_CAT(LLMC_BLAS_PREFIX, name)

typedef int llmc_blasint;
enum { LLMC_CblasRowMajor = 101 };
enum { LLMC_CblasNoTrans = 111, LLMC_CblasTrans = 112 };

void LLMC_BLAS(cblas_sgemm)(int order, int transa, int transb, llmc_blasint m, llmc_blasint n, llmc_blasint k,
                            float alpha, const float *a, llmc_blasint lda, const float *b, llmc_blasint ldb,
                            float beta, float *c, llmc_blasint ldc);
void LLMC_BLAS(cblas_sgemv)(int order, int trans, llmc_blasint m, llmc_blasint n, float alpha, const float *a,
                            llmc_blasint lda, const float *x, llmc_blasint incx, float beta, float *y,
                            llmc_blasint incy);
void LLMC_BLAS(openblas_set_num_threads)(int n);
int LLMC_BLAS(openblas_get_num_threads)(void);
char *LLMC_BLAS(openblas_get_config)(void);

/* Row-major C(m,n) = alpha * op(A) @ op(B) + beta * C, with each dimension checked to fit BLAS's int. A large
 * product is one threaded OpenBLAS call whose jobs run on llmc's OpenMP threads (threads.c); from inside a parallel
 * region it is one single-threaded call. */
#include "llmc.h"
llmc_status llmc_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* y = alpha op(A) x + beta y for row-major A (rows, cols), contiguous x and y; split over threads like sgemm. */
llmc_status llmc_sgemv(int trans, size_t rows, size_t cols, float alpha, const float *a, size_t lda, const float *x,
                       float beta, float *y);

/* One single-threaded sgemm, safe to call from inside a parallel region (dimensions must fit BLAS's int). */
void llmc_sgemm1(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* Outputs [lo, hi) of llmc_sgemv on the calling thread (one single-threaded sgemv): rows of A when trans = 0,
 * columns of A when trans = 1. For callers that share the outputs out over their own team. */
void llmc_sgemv_rows(int trans, size_t rows, size_t cols, float alpha, const float *a, size_t lda, const float *x,
                     float beta, float *y, size_t lo, size_t hi);
#endif
