/* fuzz_safetensors.c: libFuzzer target for the safetensors reader (csrc/safetensors.c): header parsing and
 * validation, then converting every tensor it accepted to float32. */
#include "fuzz_common.h"
#include "../csrc/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd;
    if (memfile(data, size, path, sizeof path, &fd)) return 0;
    llmc_st *st = NULL;
    llmc_status s = llmc_st_open(path, &st);
    if (s == LLMC_OK) {
        for (size_t i = 0; i < llmc_st_count(st); i++) {
            const llmc_st_tensor *t = llmc_st_at(st, i);
            if (t->numel > ((size_t)1 << 20)) continue; /* valid but large: not worth the time */
            float *out = malloc((t->numel ? t->numel : 1) * sizeof(float));
            if (out && llmc_st_to_f32(t, out) != LLMC_OK) check_message();
            free(out);
        }
        llmc_st_close(st);
    } else {
        check_message();
    }
    close(fd);
    return 0;
}
