/* threads.c: the one place that decides how many threads llmc uses, and the BLAS glue.
 *
 * One thread pool: llmc's OpenMP threads. A large product is cut by llmc_sgemm into chunks of rows or columns that
 * llmc's threads claim one by one, each chunk a single-threaded OpenBLAS call (see sgemm_chunk). OpenBLAS's own
 * thread count stays 1 for the whole process, so its pthread pool never runs and the single-threaded BLAS calls
 * llmc makes from inside its parallel regions (attention heads, quantized tiles) never thread.
 * Why not one threaded OpenBLAS call: OpenBLAS's threaded sgemm shares packed panels between its jobs, so job i
 * must run on thread i and the jobs spin-wait for each other's panels. On a shared machine one descheduled or
 * late-waking thread then stalls the whole product while the other spins: measured here (2 cores, load ~8), a
 * 2-thread training step of the default model took 2.2-2.5 s that way against 0.94-1.1 s with claimed chunks, and
 * used twice the CPU time. Claimed chunks let the threads that run take a late thread's share.
 * As a safety net, OpenBLAS's caller-managed threading hook (openblas_set_threads_callback_function, OpenBLAS >=
 * 0.3.27; the pinned scipy-openblas32 wheel has it) is pointed at blas_threads() below: should anything raise
 * OpenBLAS's count, its jobs run on llmc's OpenMP threads, not on a second pool. If such a call reaches
 * blas_threads() from inside a parallel region, its jobs run on short-lived threads of their own: OpenBLAS's jobs
 * wait for each other, so they must run concurrently, never one after another on one thread. */
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

static void sgemm_call(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                       const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    LLMC_BLAS(cblas_sgemm)(LLMC_CblasRowMajor, ta ? LLMC_CblasTrans : LLMC_CblasNoTrans,
                           tb ? LLMC_CblasTrans : LLMC_CblasNoTrans, (llmc_blasint)m, (llmc_blasint)n,
                           (llmc_blasint)k, alpha, a, (llmc_blasint)(lda ? lda : 1), b, (llmc_blasint)(ldb ? ldb : 1),
                           beta, c, (llmc_blasint)(ldc ? ldc : 1));
}

/* one single-threaded sgemm (dimensions already checked; OpenBLAS's count stays 1, so it never threads) */
void llmc_sgemm1(int ta, int tb, size_t m, size_t n, size_t k, float alpha, const float *a, size_t lda,
                 const float *b, size_t ldb, float beta, float *c, size_t ldc) {
    sgemm_call(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* How a threaded product is cut: the larger output dimension (len) into chunks claimed dynamically by llmc's
 * threads, each chunk one single-threaded sgemm. Cutting the rows of C makes every chunk pack all of op(B) (k x n)
 * again, cutting its columns all of op(A) (m x k): cutting the larger of m, n repacks the smaller operand. Twice as
 * many chunks as threads, so a thread the OS has not scheduled (a busy machine) or that wakes late leaves its
 * second chunk to the others instead of holding up the product for a time slice; a multiple of 16 rows / columns
 * keeps the kernels' SIMD panels whole; at least 32 so a chunk's packing stays small next to its arithmetic.
 * The chunks depend only on (m, n, thread count), never on timing. */
static size_t sgemm_chunk(size_t len, int nt) {
    const size_t n_chunks = 2 * (size_t)nt;
    size_t chunk = (len + n_chunks - 1) / n_chunks;
    chunk = (chunk + 15) / 16 * 16;
    return chunk < 32 ? 32 : chunk;
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
    /* OpenBLAS's count must stay 1 (see the top of this file). A tool that sets the count of every BLAS library in
     * the process (threadpoolctl's threadpool_limits(user_api="blas"), which scikit-learn uses) raises llmc's too:
     * then every chunk below would be a threaded call of its own, its jobs on extra threads (measured: 3x the CPU
     * time per product). Put it back; outside a parallel region only, where no chunk of ours is running. */
    if (!omp_in_parallel() && LLMC_BLAS(openblas_get_num_threads)() != 1) LLMC_BLAS(openblas_set_num_threads)(1);
    /* small products, or a call from inside a parallel region (its caller already splits the work): one call */
    double flops = 2.0 * (double)m * (double)n * (double)k;
    const int by_rows = m >= n;
    const size_t len = by_rows ? m : n, chunk = sgemm_chunk(len, nt), n_chunks = (len + chunk - 1) / chunk;
    if (nt <= 1 || flops < 4e6 || omp_in_parallel() || n_chunks < 2) {
        llmc_sgemm1(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return LLMC_OK;
    }
    /* Rows [lo, hi) of op(A) start at a + lo * lda (A not transposed) or a + lo (transposed: they are columns of
     * A); columns [lo, hi) of op(B) start at b + lo (B not transposed) or b + lo * ldb. */
    const int team = (size_t)nt < n_chunks ? nt : (int)n_chunks;
#pragma omp parallel for num_threads(team) schedule(dynamic, 1)
    for (size_t i = 0; i < n_chunks; i++) {
        const size_t lo = i * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (by_rows)
            llmc_sgemm1(trans_a, trans_b, hi - lo, n, k, alpha, a + (trans_a ? lo : lo * lda), lda, b, ldb, beta,
                   c + lo * ldc, ldc);
        else
            llmc_sgemm1(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, b + (trans_b ? lo * ldb : lo), ldb, beta, c + lo,
                   ldc);
    }
    return LLMC_OK;
}

/* outputs [lo, hi) of y (m,) = alpha op(A) x + beta y on this thread (one single-threaded sgemv); see llmc_sgemv */
void llmc_sgemv_rows(int trans, size_t rows, size_t cols, float alpha, const float *a, size_t lda, const float *x,
                     float beta, float *y, size_t lo, size_t hi) {
    if (lo >= hi) return;
    if (!trans) /* outputs are rows of A */
        LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasNoTrans, (llmc_blasint)(hi - lo), (llmc_blasint)cols,
                               alpha, a + lo * lda, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
    else /* outputs are columns of A */
        LLMC_BLAS(cblas_sgemv)(LLMC_CblasRowMajor, LLMC_CblasTrans, (llmc_blasint)rows, (llmc_blasint)(hi - lo),
                               alpha, a + lo, (llmc_blasint)lda, x, 1, beta, y + lo, 1);
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
