/* internal.h: helpers shared by the C core's files; not part of the public API. */
#ifndef LLMC_INTERNAL_H
#define LLMC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "llmc.h"

/* Set this thread's error message (printf-style) and return status, so callers can `return llmc_fail(...)`. */
llmc_status llmc_fail(llmc_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void llmc_clear_error(void);

/* Overflow-checked size arithmetic: return 0 and leave *out untouched on overflow. */
static inline int llmc_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int llmc_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* a * b * c elements of `elem` bytes each; 0 on overflow. */
int llmc_size3(size_t a, size_t b, size_t c, size_t elem, size_t *out);

/* Allocation that records a clear error on failure (64-byte aligned, free with llmc_free). */
void *llmc_malloc(size_t bytes, const char *what);
void *llmc_calloc(size_t count, size_t size, const char *what);
void llmc_free(void *p);


/* The thread count our OpenMP loops use. */
int llmc_threads(void);
/* Threads worth using for `work` units of roughly-equal cost (1 for small jobs, to skip the fork/join). */
int llmc_threads_for(size_t work);

#endif
