/* fuzz_common.h: helpers shared by the fuzz targets. */
#ifndef LLMC_FUZZ_COMMON_H
#define LLMC_FUZZ_COMMON_H
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../csrc/internal.h"

/* abort() when the last error message is not valid UTF-8 (it becomes a Python str) */
static inline void check_message(void) {
    const char *m = llmc_last_error();
    for (size_t i = 0, n = strlen(m); i < n;) {
        size_t l = llmc_utf8_seq((const unsigned char *)m + i, n - i);
        if (!l) abort();
        i += l;
    }
}

/* data in an in-memory file, named by a path the loaders can open (/proc/self/fd/N); *fd to close */
static inline int memfile(const uint8_t *data, size_t size, char *path, size_t n, int *fd) {
    *fd = memfd_create("fuzz", 0);
    if (*fd < 0) return -1;
    if (size && write(*fd, data, size) != (ssize_t)size) {
        close(*fd);
        return -1;
    }
    snprintf(path, n, "/proc/self/fd/%d", *fd);
    return 0;
}
/* decode ids (int32, as encode gives them) back to bytes */
static inline void decode_back(const llmc_tokenizer *t, const int32_t *ids, size_t n) {
    int64_t *wide = malloc((n ? n : 1) * sizeof(int64_t));
    if (!wide) return;
    for (size_t i = 0; i < n; i++) wide[i] = ids[i];
    char *out = NULL;
    size_t m = 0;
    if (llmc_tokenizer_decode(t, wide, n, &out, &m) == LLMC_OK) llmc_tokenizer_free_buffer(out);
    else check_message();
    free(wide);
}
#endif
