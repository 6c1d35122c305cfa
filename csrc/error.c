/* error.c: per-thread error messages and checked allocation. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char tls_message[1024];

llmc_status llmc_fail(llmc_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tls_message, sizeof tls_message, fmt, ap);
    va_end(ap);
    return status;
}

void llmc_clear_error(void) { tls_message[0] = '\0'; }

const char *llmc_last_error(void) { return tls_message; }

int llmc_size3(size_t a, size_t b, size_t c, size_t elem, size_t *out) {
    size_t t;
    if (!llmc_mul_ok(a, b, &t) || !llmc_mul_ok(t, c, &t) || !llmc_mul_ok(t, elem, &t)) return 0;
    *out = t;
    return 1;
}

/* Allocation accounting: each block carries a 64-byte header holding its size, so llmc_free knows what to
 * subtract. The counters are atomic because kernels may allocate from several threads. */
#define LLMC_ALIGN 64
static _Atomic size_t mem_current;
static _Atomic size_t mem_peak;

void *llmc_malloc(size_t bytes, const char *what) {
    size_t total;
    if (!llmc_add_ok(bytes, LLMC_ALIGN, &total)) {
        llmc_fail(LLMC_ERR_NOMEM, "cannot allocate %s: size %zu bytes overflows", what, bytes);
        return NULL;
    }
    total = (total + LLMC_ALIGN - 1) / LLMC_ALIGN * LLMC_ALIGN;
    char *p = aligned_alloc(LLMC_ALIGN, total);
    if (!p) {
        llmc_fail(LLMC_ERR_NOMEM, "out of memory allocating %s (%zu bytes = %.2f MiB)", what, bytes,
                  bytes / 1048576.0);
        return NULL;
    }
    *(size_t *)p = bytes;
    size_t now = (mem_current += bytes);
    size_t peak = mem_peak;
    while (now > peak && !__atomic_compare_exchange_n(&mem_peak, &peak, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return p + LLMC_ALIGN;
}

void *llmc_calloc(size_t count, size_t size, const char *what) {
    size_t bytes;
    if (!llmc_mul_ok(count, size, &bytes)) {
        llmc_fail(LLMC_ERR_NOMEM, "cannot allocate %s: %zu x %zu bytes overflows", what, count, size);
        return NULL;
    }
    void *p = llmc_malloc(bytes, what);
    if (p) memset(p, 0, bytes);
    return p;
}

void llmc_free(void *p) {
    if (!p) return;
    char *base = (char *)p - LLMC_ALIGN;
    mem_current -= *(size_t *)base;
    free(base);
}

size_t llmc_mem_current(void) { return mem_current; }
size_t llmc_mem_peak(void) { return mem_peak; }
void llmc_mem_reset_peak(void) { mem_peak = (size_t)mem_current; }

int llmc_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2; /* doubling: amortised O(1) per appended item */
    size_t bytes;
    if (!llmc_mul_ok(nc, elem, &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "%s: size overflows", what), -1;
    void *q = llmc_malloc(bytes, what);
    if (!q) return -1;
    if (*p) memcpy(q, *p, *cap * elem);
    llmc_free(*p);
    *p = q;
    *cap = nc;
    return 0;
}
