/* team.c: the steps of one parallel region, shared out chunk by chunk.
 *
 * A region that runs many dependent steps (decoding one token: ~6 matrix-vector products, attention and norms per
 * layer) forks its team once and walks the steps in the same order on every thread. Each step is cut into chunks;
 * a thread claims the next unclaimed chunk of its current step (one atomic add), runs it, counts it done, and when
 * none is left waits until every chunk of the step is done before its next step. So:
 *  - no thread waits for a thread that is not working: a worker the OS has not scheduled yet (a busy machine, or a
 *    worker still waking up) claims nothing, and the others do its share; only a chunk already claimed is waited
 *    for, which is short. A static split would wait a whole time slice for the preempted thread.
 *  - which thread runs a chunk never changes what the chunk computes, so results do not depend on the thread
 *    count or on timing.
 *  - a late thread finds its steps' chunks all claimed and catches up at once.
 * Every step has its own counters (zeroed before the region), so no counter is reused while a late thread might
 * still look at it. */
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

void llmc_team_init(llmc_team *t, llmc_team_step *steps, size_t n_steps) {
    t->steps = steps;
    t->n_steps = n_steps;
    for (size_t i = 0; i < n_steps; i++) {
        atomic_init(&steps[i].claimed, 0);
        atomic_init(&steps[i].done, 0);
    }
    atomic_init(&t->stop, 0);
}

size_t llmc_team_claim(llmc_team *t, size_t step, size_t n_chunks) {
    llmc_team_step *s = &t->steps[step];
    /* cheap test first: a late thread must not keep bumping a finished step's counter */
    if (atomic_load_explicit(&s->claimed, memory_order_relaxed) >= n_chunks) return n_chunks;
    size_t c = atomic_fetch_add_explicit(&s->claimed, 1, memory_order_relaxed);
    return c < n_chunks ? c : n_chunks;
}

void llmc_team_done(llmc_team *t, size_t step) {
    /* release: what the chunk wrote is visible to whoever sees the count */
    atomic_fetch_add_explicit(&t->steps[step].done, 1, memory_order_release);
}

void llmc_team_wait(llmc_team *t, size_t step, size_t n_chunks) {
    const _Atomic size_t *done = &t->steps[step].done;
    /* spin briefly (a claimed chunk is a few microseconds of work), then give the core away while waiting: on a
     * shared machine the thread we wait for may need this very core */
    for (unsigned spin = 0; atomic_load_explicit(done, memory_order_acquire) < n_chunks; spin++)
        if (spin < 4096) cpu_relax();
        else sched_yield();
}
