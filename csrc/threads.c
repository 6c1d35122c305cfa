/* threads.c: the one place that decides how many threads llmc's kernels and OpenBLAS use, and the BLAS glue. */
#include <omp.h>

#include "blas.h"
#include "internal.h"

static int num_threads = 0; /* 0 = not set yet: use all cores */

void llmc_set_num_threads(int n) {
    if (n < 1) n = omp_get_num_procs();
    num_threads = n;
    LLMC_BLAS(openblas_set_num_threads)(n);
}

int llmc_get_num_threads(void) { return num_threads > 0 ? num_threads : omp_get_num_procs(); }

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

llmc_status llmc_sgemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                       size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    const size_t lim = 2147483647u; /* BLAS takes 32-bit ints */
    if (m > lim || n > lim || k > lim || lda > lim || ldb > lim || ldc > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "matrix dimension too large for 32-bit BLAS (m=%zu, n=%zu, k=%zu)",
                         m, n, k);
    if (m == 0 || n == 0) return LLMC_OK;
    LLMC_BLAS(cblas_sgemm)(LLMC_CblasRowMajor, trans_a ? LLMC_CblasTrans : LLMC_CblasNoTrans,
                           trans_b ? LLMC_CblasTrans : LLMC_CblasNoTrans, (llmc_blasint)m, (llmc_blasint)n,
                           (llmc_blasint)k, alpha, a, (llmc_blasint)(lda ? lda : 1), b, (llmc_blasint)(ldb ? ldb : 1),
                           beta, c, (llmc_blasint)(ldc ? ldc : 1));
    return LLMC_OK;
}
