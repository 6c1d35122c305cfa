/* threads.c: the one place that decides how many threads llmc uses, and the BLAS glue.
 *
 * One thread pool: llmc's OpenMP threads. OpenBLAS is kept single-threaded and llmc_sgemm splits a large product
 * into row (or column) blocks that OpenMP threads hand to single-threaded sgemm calls. Two pools (OpenMP's and
 * OpenBLAS's own pthreads) spin-wait for work in turn and fight over the cores whenever the machine has other
 * load: on a busy 2-core machine that made a training step 2-5x slower with 2 threads than with 1. */
#include <omp.h>

#include "blas.h"
#include "internal.h"

static _Atomic int num_threads = 0; /* 0 = not set yet: use all cores. Atomic: any thread may set it */

__attribute__((constructor)) static void llmc_threads_init(void) { LLMC_BLAS(openblas_set_num_threads)(1); }

void llmc_set_num_threads(int n) {
    if (n < 1) n = omp_get_num_procs();
    num_threads = n;
    LLMC_BLAS(openblas_set_num_threads)(1); /* BLAS calls are parallelised by llmc_sgemm, see above */
}

int llmc_get_num_threads(void) {
    int n = num_threads;
    return n > 0 ? n : omp_get_num_procs();
}

int llmc_threads(void) { return llmc_get_num_threads(); }

int llmc_threads_for(size_t work) {
    /* below ~32k elementwise operations the fork/join costs more than it saves */
    const size_t per_thread_min = 32768;
    int t = llmc_threads();
    if (work < per_thread_min * 2) return 1;
    size_t useful = work / per_thread_min;
    return useful < (size_t)t ? (int)useful : t;
}

const char *llmc_blas_info(void) { return LLMC_BLAS(openblas_get_config)(); }

static void sgemm1(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                   const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    LLMC_BLAS(cblas_sgemm)(LLMC_CblasRowMajor, ta ? LLMC_CblasTrans : LLMC_CblasNoTrans,
                           tb ? LLMC_CblasTrans : LLMC_CblasNoTrans, (llmc_blasint)m, (llmc_blasint)n,
                           (llmc_blasint)k, alpha, a, (llmc_blasint)(lda ? lda : 1), b, (llmc_blasint)(ldb ? ldb : 1),
                           beta, c, (llmc_blasint)(ldc ? ldc : 1));
}

// C (m, n) = alpha op(A) (m, k) @ op(B) (k, n) + beta C, all row-major
llmc_status llmc_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    const size_t lim = 2147483647u; /* BLAS takes 32-bit ints */
    if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "matrix dimension too large for 32-bit BLAS (m=%zu, n=%zu, k=%zu)",
                         m, n, k);
    if (m == 0 || n == 0) return LLMC_OK;
    llmc_flops_note(m, n, k);
    int nt = llmc_threads();
    /* small products, or a call from inside a parallel region (its caller already splits the work): one call */
    double flops = 2.0 * (double)m * (double)n * (double)k;
    if (nt <= 1 || flops < 4e6 || omp_in_parallel()) {
        sgemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return LLMC_OK;
    }
    /* split the larger output dimension into nt blocks (multiples of 16 rows / columns keep SIMD panels whole).
     * Rows [r0, r1) of op(A) start at a + r0 * lda (A not transposed) or a + r0 (transposed: they are columns of A);
     * columns [c0, c1) of op(B) start at b + c0 (B not transposed) or b + c0 * ldb. */
    const int by_rows = m >= n;
    const size_t len = by_rows ? m : n;
    size_t chunk = (len + (size_t)nt - 1) / (size_t)nt;
    chunk = (chunk + 15) / 16 * 16;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < nt; i++) {
        size_t lo = (size_t)i * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (lo >= hi) continue;
        if (by_rows)
            sgemm1(trans_a, trans_b, hi - lo, n, k, alpha, a + (trans_a ? lo : lo * lda), lda, b, ldb, beta,
                   c + lo * ldc, ldc);
        else
            sgemm1(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, b + (trans_b ? lo * ldb : lo), ldb, beta, c + lo,
                   ldc);
    }
    return LLMC_OK;
}

// y (m,) = alpha op(A) x + beta y; A: (rows, cols) row-major; op(A) is (m, kdim) with m = trans ? cols : rows
llmc_status llmc_sgemv(int trans, size_t rows, size_t cols, float alpha, const float *a, size_t lda, const float *x,
                       float beta, float *y) {
    const size_t lim = 2147483647u;
    if (rows > lim || cols > lim || lda > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "matrix dimension too large for 32-bit BLAS (%zu x %zu)", rows, cols);
    if (rows == 0 || cols == 0) return LLMC_OK;
    llmc_flops_note(rows, cols, 1);
    int nt = llmc_threads();
    const size_t m = trans ? cols : rows;
    if (nt <= 1 || (double)rows * (double)cols < 1e5 || omp_in_parallel() || m < 64) nt = 1;
    /* each thread computes a block of outputs: rows of A (no transpose) or columns of A (transposed) */
    size_t chunk = (m + (size_t)nt - 1) / (size_t)nt;
    chunk = (chunk + 15) / 16 * 16;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int i = 0; i < nt; i++) {
        size_t lo = (size_t)i * chunk, hi = lo + chunk < m ? lo + chunk : m;
        if (lo >= hi) continue;
        if (!trans)
            LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasNoTrans, (llmc_blasint)(hi - lo), (llmc_blasint)cols,
                                   alpha, a + lo * lda, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
        else
            LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasTrans, (llmc_blasint)rows, (llmc_blasint)(hi - lo),
                                   alpha, a + lo, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
    }
    return LLMC_OK;
}
