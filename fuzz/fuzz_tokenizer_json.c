/* fuzz_tokenizer_json.c: libFuzzer target for Hugging Face tokenizer.json loading (csrc/tokenizer_hf.c and the
 * tokenizer it builds): load, then encode and decode a fixed text with the result. */
#include "fuzz_common.h"

static const char TEXT[] = "Hello world! It's 2024: ünïcødé, 中文, emoji 🙂 and  spaces\n\tand <|endoftext|> tokens.";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llmc_tokenizer *t = NULL;
    if (llmc_tokenizer_from_hf_json((const char *)data, size, "tokenizer.json", &t) != LLMC_OK) {
        check_message();
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    if (llmc_tokenizer_encode(t, TEXT, sizeof TEXT - 1, NULL, 1, &ids, &n) == LLMC_OK) {
        decode_back(t, ids, n);
        llmc_tokenizer_free_buffer(ids);
    } else {
        check_message();
    }
    llmc_tokenizer_free(t);
    return 0;
}
