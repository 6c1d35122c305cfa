/* error.c: per-thread error messages and checked allocation. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local char tls_message[1024];

/* Length of the valid UTF-8 sequence starting at s (n bytes available), or 0 if it is not one: no overlong forms,
 * no surrogates, nothing above U+10FFFF (RFC 3629). */
size_t llmc_utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, min = 0x10000;
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

/* Copy src into dst (cap bytes) so that the result is always valid UTF-8: bytes that are not part of a valid
 * sequence (raw bytes echoed from a file, a name cut mid-character by the formatter) become the text \xNN, and a
 * message too long for dst is cut at a character boundary, ending in "...". Python turns the message into a str,
 * and an invalid one would raise UnicodeDecodeError in place of the real error. */
static void utf8_sanitize(char *dst, size_t cap, const char *src, size_t n) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0, room = cap - 4; /* keep space for "..." and the terminator */
    for (size_t i = 0; i < n;) {
        size_t len = llmc_utf8_seq(s + i, n - i);
        if (len && o + len <= room) {
            memcpy(dst + o, s + i, len);
            o += len;
            i += len;
        } else if (!len && o + 4 <= room) {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[s[i] >> 4];
            dst[o++] = hex[s[i] & 15];
            i++;
        } else {
            memcpy(dst + o, "...", 3);
            o += 3;
            break;
        }
    }
    dst[o] = '\0';
}

llmc_status llmc_fail(llmc_status status, const char *fmt, ...) {
    char raw[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    /* a message longer than raw was cut by vsnprintf, possibly mid-character; the sanitizer escapes that tail */
    utf8_sanitize(tls_message, sizeof tls_message, raw, (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1);
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
    size_t now = atomic_fetch_add(&mem_current, bytes) + bytes;
    size_t peak = atomic_load(&mem_peak);
    while (now > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, now)) { /* peak reloaded on failure */
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
