/* interrupt.c: lets a long C call stop early when its caller asks (Ctrl-C in Python).
 *
 * The caller installs a poll function for the current thread (llmc_set_poll) before a long call. Long loops call
 * llmc_interrupted() at convenient points (between merges, layers, chunks of text); it calls the poll function at
 * most every LLMC_POLL_INTERVAL_MS, and once the poll says stop it keeps saying so until the next llmc_set_poll,
 * so every level of the call unwinds with LLMC_ERR_INTERRUPTED. The state is per thread (like the error message):
 * OpenMP worker threads have no poll function and never stop on their own; loops check on the calling thread. */
#include <time.h>

#include "internal.h"

#define LLMC_POLL_INTERVAL_MS 20

typedef struct {
    llmc_poll_fn fn;
    void *ctx;
    int stopped;
    long long last_ms;
} poll_state;

static _Thread_local poll_state tls_poll;

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void llmc_set_poll(llmc_poll_fn fn, void *ctx) {
    tls_poll.fn = fn;
    tls_poll.ctx = ctx;
    tls_poll.stopped = 0;
    tls_poll.last_ms = now_ms();
}

int llmc_interrupted(void) {
    poll_state *p = &tls_poll;
    if (p->stopped) return 1;
    if (!p->fn) return 0;
    long long t = now_ms();
    if (t - p->last_ms < LLMC_POLL_INTERVAL_MS) return 0;
    p->last_ms = t;
    if (p->fn(p->ctx)) {
        p->stopped = 1;
        llmc_fail(LLMC_ERR_INTERRUPTED, "interrupted");
    }
    return p->stopped;
}
