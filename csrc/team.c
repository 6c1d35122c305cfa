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
#include <time.h>

#include "internal.h"

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

/* How long a thread spins on a step before it sleeps. A chunk is ~10-50 us of work, so on a quiet machine the wait
 * at a step's end is shorter than this and never sleeps (a sleep and wake-up cost ~50 us). On a busy machine the
 * thread we wait for may have been preempted for a whole time slice; a spinning waiter would then burn the CPU
 * share that thread needs (the scheduler may put both on one core), so it sleeps until the step is done. */
#define SPIN_NS 30000

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void llmc_team_init(llmc_team *t, llmc_team_step *steps, size_t n_steps) {
    t->steps = steps;
    t->n_steps = n_steps;
    for (size_t i = 0; i < n_steps; i++) {
        atomic_init(&steps[i].claimed, 0);
        atomic_init(&steps[i].done, 0);
        atomic_init(&steps[i].sleepers, 0);
    }
    atomic_init(&t->stop, 0);
}

uint32_t llmc_team_claim(llmc_team *t, size_t step, uint32_t n_chunks) {
    llmc_team_step *s = &t->steps[step];
    /* cheap test first: a late thread must not keep bumping a finished step's counter */
    if (atomic_load_explicit(&s->claimed, memory_order_relaxed) >= n_chunks) return n_chunks;
    uint32_t c = atomic_fetch_add_explicit(&s->claimed, 1, memory_order_relaxed);
    return c < n_chunks ? c : n_chunks;
}

void llmc_team_done(llmc_team *t, size_t step, uint32_t n_chunks) {
    llmc_team_step *s = &t->steps[step];
    /* seq_cst: what the chunk wrote is published, and the sleeper test below cannot be ordered before the count
     * (a waiter counts itself a sleeper before it reads `done` again: one of the two sees the other) */
    if (atomic_fetch_add(&s->done, 1) + 1 == n_chunks && atomic_load(&s->sleepers)) {
#ifdef __linux__
        syscall(SYS_futex, (uint32_t *)&s->done, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#endif
    }
}

void llmc_team_wait(llmc_team *t, size_t step, uint32_t n_chunks) {
    llmc_team_step *s = &t->steps[step];
    long long t0 = 0;
    for (unsigned spin = 0; atomic_load_explicit(&s->done, memory_order_acquire) < n_chunks; spin++) {
        cpu_relax();
        if (spin % 64 != 63) continue;
        long long now = now_ns(); /* vDSO: ~20 ns, every 64 pauses */
        if (!t0) t0 = now;
        else if (now - t0 > SPIN_NS) break;
    }
    if (atomic_load(&s->done) >= n_chunks) return;
    atomic_fetch_add(&s->sleepers, 1);
    for (uint32_t d; (d = atomic_load(&s->done)) < n_chunks;) {
#ifdef __linux__
        /* sleeps only while done still equals d: a count that moved on wakes it at once */
        syscall(SYS_futex, (uint32_t *)&s->done, FUTEX_WAIT_PRIVATE, d, NULL, NULL, 0);
#else
        sched_yield();
#endif
    }
}
