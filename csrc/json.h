/* json.h: a small, strict JSON reader (RFC 8259) for config.json, tokenizer.json and safetensors headers.
 *
 * The whole document is parsed into a tree of llmc_json nodes that live in one arena owned by the
 * llmc_json_doc; strings are unescaped to UTF-8 (\u escapes incl. surrogate pairs) and may contain NUL bytes,
 * so always use .len. Nesting deeper than LLMC_JSON_MAX_DEPTH is an error, not a stack overflow. */
#ifndef LLMC_JSON_H
#define LLMC_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "llmc.h"

#define LLMC_JSON_MAX_DEPTH 256

typedef enum { LLMC_JSON_NULL, LLMC_JSON_BOOL, LLMC_JSON_NUMBER, LLMC_JSON_STRING, LLMC_JSON_ARRAY, LLMC_JSON_OBJECT } llmc_json_type;

typedef struct llmc_json llmc_json;
struct llmc_json {
    llmc_json_type type;
    int boolean;          /* LLMC_JSON_BOOL */
    double number;        /* LLMC_JSON_NUMBER */
    int is_integer;       /* NUMBER written without fraction/exponent and fits int64: then `integer` is exact */
    int64_t integer;
    const char *str;      /* STRING: NUL-terminated UTF-8, but may contain NULs: use len */
    size_t len;           /* STRING: byte length; ARRAY/OBJECT: number of items */
    llmc_json *items;     /* ARRAY: len values; OBJECT: len values, in file order */
    const char **keys;    /* OBJECT: len keys (NUL-terminated) */
    size_t *key_lens;     /* OBJECT: key byte lengths */
};

typedef struct llmc_json_doc llmc_json_doc;

/* Parse text[0..len). On error returns LLMC_ERR_FORMAT with "<what>: <problem> at line L column C", where `what`
 * names the source (a file name) for the message. */
llmc_status llmc_json_parse(const char *text, size_t len, const char *what, llmc_json_doc **out);
const llmc_json *llmc_json_root(const llmc_json_doc *doc);
void llmc_json_free(llmc_json_doc *doc);

/* Object member by key (NULL if obj is not an object or has no such key; the last duplicate wins). */
const llmc_json *llmc_json_get(const llmc_json *obj, const char *key);
/* 1 if v is non-NULL and of type t. */
int llmc_json_is(const llmc_json *v, llmc_json_type t);

#endif
