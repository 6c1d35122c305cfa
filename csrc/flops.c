/* flops.c: an opt-in count of the floating-point work llmc hands to BLAS, for checking FLOP formulas
 * (llmc/scaling.py) against the products llmc really runs.
 *
 * llmc_sgemm adds 2 m n k (one multiply and one add per term of every output), llmc_sgemv adds 2 m k, before any
 * split over threads; the F32 few-row products that stand in for sgemm (quant_matmul.c matmul_rows, batch.c
 * conv1d_few_rows) add the same 2 m n k. Counting is process-wide: while at least one user has the counter switched on, every BLAS
 * product on every thread is counted. The state is three atomics (no lock, nothing two threads can corrupt); when
 * no user has it on, a product pays one relaxed atomic load. Readers take differences of the running totals, so
 * overlapping users each see all the work done while they were counting. */
#include <stdatomic.h>

#include "internal.h"

static atomic_int flop_users;              /* how many callers have the counter on */
static atomic_ullong flop_total, flop_calls; /* running totals, never reset */

void llmc_flop_counter_enable(int on) {
    if (on) atomic_fetch_add_explicit(&flop_users, 1, memory_order_relaxed);
    else if (atomic_load_explicit(&flop_users, memory_order_relaxed) > 0)
        atomic_fetch_sub_explicit(&flop_users, 1, memory_order_relaxed);
}

void llmc_flop_counter_read(uint64_t *flops, uint64_t *calls) {
    if (flops) *flops = atomic_load_explicit(&flop_total, memory_order_relaxed);
    if (calls) *calls = atomic_load_explicit(&flop_calls, memory_order_relaxed);
}

void llmc_flops_note(size_t m, size_t n, size_t k) {
    if (!atomic_load_explicit(&flop_users, memory_order_relaxed)) return;
    /* 2 FLOPs (multiply + add) for each of the m n k terms; sizes fit BLAS's 32-bit ints, so 2 m n k < 2^94 would
     * not fit 64 bits only for absurd products: saturate instead of wrapping */
    unsigned __int128 f = (unsigned __int128)2 * m * n * k;
    unsigned long long add = f > (unsigned __int128)UINT64_MAX ? UINT64_MAX : (unsigned long long)f;
    atomic_fetch_add_explicit(&flop_total, add, memory_order_relaxed);
    atomic_fetch_add_explicit(&flop_calls, 1, memory_order_relaxed);
}
