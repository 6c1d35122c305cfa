/* fuzz_gguf.c: libFuzzer target for the GGUF reader (csrc/gguf.c): header, metadata and tensor-table validation,
 * then reading every value and every tensor byte it accepted, and the model mapping of gguf_arch.c. */
#include "fuzz_common.h"
#include "../csrc/gguf.h"
#include "../csrc/gguf_arch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd;
    if (memfile(data, size, path, sizeof path, &fd)) return 0;
    llmc_gguf *g = NULL;
    llmc_status s = llmc_gguf_open(path, &g);
    if (s == LLMC_OK) {
        volatile unsigned sum = 0;
        for (size_t i = 0; i < llmc_gguf_n_kv(g); i++) {
            const llmc_gguf_kv *kv = llmc_gguf_kv_at(g, i);
            if (kv->type == LLMC_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->len; j++) sum += kv->data[j];
            } else if (kv->type == LLMC_GGUF_ARRAY && kv->elem_type == LLMC_GGUF_STRING) {
                for (uint64_t j = 0; j < kv->count; j++) {
                    const char *str;
                    uint64_t n;
                    llmc_gguf_arr_str(kv, j, &str, &n);
                    for (uint64_t k = 0; k < n; k++) sum += (unsigned char)str[k];
                }
            } else if (kv->type == LLMC_GGUF_ARRAY) {
                size_t bytes = (size_t)kv->count * llmc_gguf_value_size(kv->elem_type);
                for (size_t j = 0; j < bytes; j++) sum += kv->data[j];
            } else {
                sum += (unsigned)llmc_gguf_scalar_u64(kv->type, kv->data);
            }
            if (llmc_gguf_find_kv(g, kv->key) == NULL) abort();
        }
        for (size_t i = 0; i < llmc_gguf_n_tensors(g); i++) {
            const llmc_gguf_tensor *t = llmc_gguf_tensor_at(g, i);
            for (size_t j = 0; j < t->nbytes; j += 61) sum += t->data[j];
            if (t->nbytes) sum += t->data[t->nbytes - 1];
            if (llmc_gguf_find_tensor(g, t->name) != t) abort();
        }
        llmc_model_config c;
        int gelu = 0;
        if (llmc_gguf_model_config(g, &c, &gelu) != LLMC_OK) check_message();
        llmc_gguf_close(g);
    } else {
        check_message();
    }
    close(fd);
    return 0;
}
