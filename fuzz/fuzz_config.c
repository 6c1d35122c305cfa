/* fuzz_config.c: libFuzzer target for config.json validation (csrc/model_config.c): the JSON reader, then every
 * field check. A config that passes must describe sizes the loaders can compute without overflow. */
#include "fuzz_common.h"
#include "../csrc/json.h"
#include "../csrc/model_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llmc_json_doc *doc = NULL;
    if (llmc_json_parse((const char *)data, size, "config.json", &doc) != LLMC_OK) {
        check_message();
        return 0;
    }
    llmc_model_config c;
    int gelu_tanh = 0;
    if (model_parse_config(llmc_json_root(doc), "config.json", &c, &gelu_tanh) == LLMC_OK) {
        if (c.head_dim == 0 || c.n_heads == 0 || c.n_kv_heads == 0 || c.n_heads % c.n_kv_heads || c.vocab == 0)
            abort(); /* accepted a config the forward pass cannot run */
    } else {
        check_message();
    }
    llmc_json_free(doc);
    return 0;
}
