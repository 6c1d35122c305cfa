/* fuzz_tiktoken.c: libFuzzer target for .tiktoken loading (csrc/tokenizer.c): "base64 rank" lines, with one special
 * token, then encoding and decoding a fixed text. The text is encoded twice: alone (the merge loop) and as a batch
 * (the search encoder, csrc/bpe_backtrack.c); any vocabulary must give both the same ids. */
#include "fuzz_common.h"

static const char TEXT[] = "Hello world! It's 2024: ünïcødé, 中文  and\n\n <|endoftext|> tokens 12345. "
                           "Supercalifragilisticexpialidocious 中文字符日本語漢字中文字符日本語漢字";

static llmc_tokenizer *load(const uint8_t *data, size_t size) {
    const char *special[] = {"<|endoftext|>"};
    const size_t special_len[] = {13};
    const int64_t special_id[] = {100257};
    llmc_tokenizer *t = NULL;
    if (llmc_tokenizer_from_tiktoken((const char *)data, size, "cl100k", special, special_len, special_id, 1, &t) !=
        LLMC_OK) {
        check_message();
        return NULL;
    }
    return t;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llmc_tokenizer *t = load(data, size);
    if (!t) return 0;
    const uint8_t allow[1] = {1};
    int32_t *ids = NULL;
    size_t n = 0;
    if (llmc_tokenizer_encode(t, TEXT, sizeof TEXT - 1, allow, 0, &ids, &n) == LLMC_OK) {
        decode_back(t, ids, n);
        /* a second copy, so that no piece comes from the first one's memo of short pieces */
        llmc_tokenizer *t2 = load(data, size);
        const char *texts[1] = {TEXT};
        const size_t lens[1] = {sizeof TEXT - 1};
        int32_t *ids2 = NULL;
        size_t n2 = 0;
        if (!t2) abort(); /* it loaded once */
        if (llmc_tokenizer_encode_batch(t2, texts, lens, 1, allow, 0, 1, &ids2, &n2) == LLMC_OK) {
            if (n2 != n || (n && memcmp(ids, ids2, n * sizeof(int32_t)))) abort(); /* search != merge loop */
            llmc_tokenizer_free_buffer(ids2);
        } else {
            check_message();
        }
        llmc_tokenizer_free(t2);
        llmc_tokenizer_free_buffer(ids);
    } else {
        check_message();
    }
    llmc_tokenizer_free(t);
    return 0;
}
