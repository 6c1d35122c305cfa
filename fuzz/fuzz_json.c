/* fuzz_json.c: libFuzzer target for the JSON reader (csrc/json.c). Any input: a document or an error, never a crash;
 * the message of an error must be valid UTF-8 (checked by walking it). */
#include <stdint.h>
#include <stdlib.h>

#include "../csrc/internal.h"
#include "../csrc/json.h"

static void walk(const llmc_json *v, int depth) {
    if (!v || depth > 64) return;
    if (v->type == LLMC_JSON_ARRAY || v->type == LLMC_JSON_OBJECT)
        for (size_t i = 0; i < v->len; i++) walk(&v->items[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    llmc_json_doc *doc = NULL;
    llmc_status st = llmc_json_parse((const char *)data, size, "fuzz.json", &doc);
    if (st == LLMC_OK) {
        walk(llmc_json_root(doc), 0);
        llmc_json_free(doc);
    } else {
        const char *m = llmc_last_error();
        for (size_t i = 0, n = __builtin_strlen(m); i < n;) {
            size_t l = llmc_utf8_seq((const unsigned char *)m + i, n - i);
            if (!l) abort(); /* an invalid UTF-8 error message is a bug */
            i += l;
        }
    }
    return 0;
}
