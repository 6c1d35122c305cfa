/* fuzz_spm.c: libFuzzer target for SentencePiece .model files (csrc/spm_proto.c's protobuf reader,
 * csrc/tokenizer_spm.c, the charsmap of csrc/spm_charsmap.c, Unigram and BPE encoding): load, then encode and
 * decode a fixed text, with and without <s>, with the result. */
#include "fuzz_common.h"

static const char TEXT[] = "  Hello   world! It's 2024: ünïcødé ＡＢ① ﬁ, 中文, emoji 🙂 <user> LORD\r\n\tand \xff\xfe bytes.  ";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llmc_tokenizer *t = NULL;
    if (llmc_tokenizer_from_sentencepiece((const char *)data, size, "x.model", &t) != LLMC_OK) {
        check_message();
        return 0;
    }
    for (int add = 0; add < 2; add++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (llmc_tokenizer_encode(t, TEXT, sizeof TEXT - 1, NULL, add, &ids, &n) == LLMC_OK) {
            decode_back(t, ids, n);
            llmc_tokenizer_free_buffer(ids);
        } else {
            check_message();
        }
    }
    int64_t all[64]; /* every id of a small vocabulary, in order: control, unk and byte pieces decode too */
    size_t k = 0;
    for (size_t i = 0; i < llmc_tokenizer_n_vocab(t) && k < 64; i++) all[k++] = (int64_t)i;
    char *out = NULL;
    size_t m = 0;
    if (llmc_tokenizer_decode(t, all, k, &out, &m) == LLMC_OK) llmc_tokenizer_free_buffer(out);
    llmc_tokenizer_free(t);
    return 0;
}
