/* threads.c: the one place that decides how many threads llmc uses, and the BLAS glue.
 *
 * One thread pool: llmc's OpenMP threads. A large product is ONE OpenBLAS call that OpenBLAS itself splits into
 * jobs (its threaded sgemm shares the packed panels between the jobs), and OpenBLAS hands those jobs to
 * blas_threads() below, which runs them on llmc's OpenMP threads (openblas_set_threads_callback_function,
 * OpenBLAS >= 0.3.27). OpenBLAS's own pthread pool is never woken, so two pools never spin-wait in turn and fight
 * over the cores (on a busy 2-core machine that made a training step 2-5x slower with 2 threads than with 1).
 * OpenBLAS's thread count is a process-wide setting: it stays 1, so the single-threaded BLAS calls llmc makes from
 * inside its own parallel regions (attention heads, quantized tiles) never thread, and llmc_sgemm raises it to
 * llmc's count only around one top-level call. If a BLAS call still reaches blas_threads() from inside a parallel
 * region (two user threads racing on that setting), its jobs run on short-lived threads of their own: OpenBLAS's
 * jobs wait for each other, so they must run concurrently, never one after another on one thread.
 * An OpenBLAS without the callback (an older system library) gets the former scheme: each thread runs a
 * single-threaded sgemm on its block of rows or columns. */
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "blas.h"
#include "internal.h"

static _Atomic int num_threads = 0; /* 0 = not set: the default below. Atomic: any thread may set it */

/* The default thread count, fixed once when llmc loads (before any llmc call can run, so never written afterwards):
 * OMP_NUM_THREADS when it is set to a positive count (its first entry, as OpenMP reads a list like "4,2"), else
 * every core this process may run on. torch, NumPy's OpenBLAS and libgomp honour the variable the same way. */
static int default_threads = 0;

static int threads_from_env(void) {
    const char *v = getenv("OMP_NUM_THREADS");
    if (!v) return 0;
    char *end;
    long n = strtol(v, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (end == v || (*end != '\0' && *end != ',') || n < 1) return 0; /* not a count: ignored, as libgomp does */
    return n > 256 ? 256 : (int)n;
}

/* ---------------------------------------------------------------- OpenBLAS jobs on llmc's OpenMP threads */
typedef void (*blas_dojob_fn)(int thread_num, void *job, int dojob_data);
typedef void (*blas_threads_fn)(int sync, blas_dojob_fn dojob, int n_jobs, size_t job_size, void *jobs, int dojob_data);
/* weak: absent from OpenBLAS before 0.3.27 (a system library), then NULL and llmc_sgemm splits the work itself */
extern void LLMC_BLAS(openblas_set_threads_callback_function)(blas_threads_fn fn) __attribute__((weak));

typedef struct {
    blas_dojob_fn dojob;
    void *job;
    int index, dojob_data;
} blas_job;

static void *blas_job_thread(void *arg) {
    blas_job *j = arg;
    j->dojob(j->index, j->job, j->dojob_data);
    return NULL;
}

/* Runs OpenBLAS's n_jobs jobs (an array of job_size-byte records) at the same time, job i as thread i. */
static void blas_threads(int sync, blas_dojob_fn dojob, int n_jobs, size_t job_size, void *jobs, int dojob_data) {
    (void)sync; /* OpenBLAS always waits for the jobs: they are done when this returns */
    char *base = jobs;
    int team = 0;
    if (!omp_in_parallel()) {
#pragma omp parallel num_threads(n_jobs)
        {
            /* all or nothing: a smaller team than asked (OMP_THREAD_LIMIT, OMP_DYNAMIC) cannot run the jobs */
            int got = omp_get_num_threads(), me = omp_get_thread_num();
            if (got == n_jobs) dojob(me, base + (size_t)me * job_size, dojob_data);
            if (me == 0) team = got;
        }
    }
    if (team == n_jobs) return;
    /* nested in a parallel region (or a short team): threads of our own, job 0 on this one */
    enum { MAX_JOBS = 256 };
    pthread_t tid[MAX_JOBS];
    blas_job arg[MAX_JOBS];
    if (n_jobs > MAX_JOBS) {
        fprintf(stderr, "llmc: OpenBLAS asked for %d concurrent jobs (at most %d)\n", n_jobs, MAX_JOBS);
        abort(); /* cannot happen: llmc never sets more threads than MAX_JOBS (see llmc_set_num_threads) */
    }
    for (int i = 0; i < n_jobs; i++) arg[i] = (blas_job){dojob, base + (size_t)i * job_size, i, dojob_data};
    for (int i = 1; i < n_jobs; i++)
        if (pthread_create(&tid[i], NULL, blas_job_thread, &arg[i]) != 0) {
            /* the jobs wait for each other: without this thread they would hang. libgomp aborts the same way. */
            fprintf(stderr, "llmc: could not create a thread for an OpenBLAS job\n");
            abort();
        }
    blas_job_thread(&arg[0]);
    for (int i = 1; i < n_jobs; i++) pthread_join(tid[i], NULL);
}

__attribute__((constructor)) static void llmc_threads_init(void) {
    default_threads = threads_from_env();
    LLMC_BLAS(openblas_set_num_threads)(1); /* raised around top-level products only, see llmc_sgemm */
    if (LLMC_BLAS(openblas_set_threads_callback_function))
        LLMC_BLAS(openblas_set_threads_callback_function)(blas_threads);
}

int llmc_blas_one_pool(void) { return LLMC_BLAS(openblas_set_threads_callback_function) != NULL; }

void llmc_set_num_threads(int n) {
    if (n > 256) n = 256; /* blas_threads' limit; far beyond any core count that helps these kernels */
    num_threads = n < 1 ? 0 : n; /* < 1: back to the default */
}

int llmc_get_num_threads(void) {
    int n = num_threads;
    if (n > 0) return n;
    return default_threads > 0 ? default_threads : omp_get_num_procs();
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

/* OpenBLAS's thread count is one process-wide number, and its result bits depend on how many jobs a product is cut
 * into. So that every call is cut the same way whatever other threads do, a top-level threaded call holds this lock
 * for writing while the count is raised, and every single-threaded call holds it for reading (readers run
 * concurrently; no lock is held across anything that takes it again, so it cannot deadlock). */
static pthread_rwlock_t blas_count_lock;

__attribute__((constructor)) static void llmc_blas_lock_init(void) {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
#ifdef __GLIBC__ /* writers first: a stream of short single-threaded calls must not starve a top-level product */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
    pthread_rwlock_init(&blas_count_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
}

static void sgemm_call(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                       const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    LLMC_BLAS(cblas_sgemm)(LLMC_CblasRowMajor, ta ? LLMC_CblasTrans : LLMC_CblasNoTrans,
                           tb ? LLMC_CblasTrans : LLMC_CblasNoTrans, (llmc_blasint)m, (llmc_blasint)n,
                           (llmc_blasint)k, alpha, a, (llmc_blasint)(lda ? lda : 1), b, (llmc_blasint)(ldb ? ldb : 1),
                           beta, c, (llmc_blasint)(ldc ? ldc : 1));
}

/* one single-threaded sgemm (dimensions already checked) */
void llmc_sgemm1(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    pthread_rwlock_rdlock(&blas_count_lock);
    sgemm_call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    pthread_rwlock_unlock(&blas_count_lock);
}
#define sgemm1 llmc_sgemm1

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
    if (llmc_blas_one_pool()) {
        /* one threaded call: OpenBLAS splits it into nt jobs, blas_threads runs them on llmc's threads */
        pthread_rwlock_wrlock(&blas_count_lock);
        LLMC_BLAS(openblas_set_num_threads)(nt);
        sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        LLMC_BLAS(openblas_set_num_threads)(1);
        pthread_rwlock_unlock(&blas_count_lock);
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

/* outputs [lo, hi) of y (m,) = alpha op(A) x + beta y on this thread (one single-threaded sgemv); see llmc_sgemv */
void llmc_sgemv_rows(int trans, size_t rows, size_t cols, float alpha, const float *a, size_t lda, const float *x,
                     float beta, float *y, size_t lo, size_t hi) {
    if (lo >= hi) return;
    pthread_rwlock_rdlock(&blas_count_lock); /* single-threaded, see blas_count_lock */
    if (!trans) /* outputs are rows of A */
        LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasNoTrans, (llmc_blasint)(hi - lo), (llmc_blasint)cols,
                               alpha, a + lo * lda, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
    else /* outputs are columns of A */
        LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasTrans, (llmc_blasint)rows, (llmc_blasint)(hi - lo),
                               alpha, a + lo, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
    pthread_rwlock_unlock(&blas_count_lock);
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
        llmc_sgemv_rows(trans, rows, cols, alpha, a, lda, x, beta, y, lo, hi);
    }
    return LLMC_OK;
}
