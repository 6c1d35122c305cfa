/* stubs.c: the fuzz targets link the file-format parsers without threads.c (which needs OpenBLAS): one thread. */
#include <stddef.h>

int llmc_threads(void) { return 1; }
int llmc_threads_for(size_t work) {
    (void)work;
    return 1;
}
