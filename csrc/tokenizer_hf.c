/* tokenizer_hf.c: load a Hugging Face tokenizer.json into an llmc_tokenizer.
 *
 * Supported: model BPE, either byte-level (GPT-2 / Llama 3 / Qwen: the vocabulary is written through GPT-2's
 * bytes_to_unicode map, which we invert so tokens are raw bytes) or SentencePiece-style (Llama 2: characters with
 * U+2581 for spaces, byte fallback <0xNN>, unk); normalizers NFC and Sequence[Prepend(U+2581), Replace(' ', U+2581)];
 * pre-tokenizers ByteLevel, Split(<a known regex>, Isolated) and their Sequence; decoders ByteLevel and the Llama 2
 * Sequence[Replace, ByteFallback, Fuse, Strip]; post-processors ByteLevel and TemplateProcessing; added tokens.
 * Anything else is LLMC_ERR_UNSUPPORTED naming the part. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "regex.h"
#include "tok_internal.h"
#include "unicode.h"

static const uint8_t META[3] = {0xE2, 0x96, 0x81}; /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space */

static int str_is(const llmc_json *v, const char *s) {
    return llmc_json_is(v, LLMC_JSON_STRING) && v->len == strlen(s) && !memcmp(v->str, s, v->len);
}

static const char *type_of(const llmc_json *v) {
    const llmc_json *ty = llmc_json_get(v, "type");
    return llmc_json_is(ty, LLMC_JSON_STRING) ? ty->str : "?";
}

static int is_type(const llmc_json *v, const char *t) { return str_is(llmc_json_get(v, "type"), t); }

static int get_bool(const llmc_json *v, const char *key, int dflt) {
    const llmc_json *b = llmc_json_get(v, key);
    return llmc_json_is(b, LLMC_JSON_BOOL) ? b->boolean : dflt;
}

/* GPT-2's bytes_to_unicode, inverted: code point -> byte (or -1). */
static void byte_level_inverse(int *inv /* (324,) */) {
    for (int i = 0; i < 324; i++) inv[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        inv[printable ? b : 256 + n++] = b; /* the others map to 256, 257, ... in byte order */
    }
}

/* Map a byte-level vocabulary string to raw bytes; -1 if a character is outside the map. */
static long unmap_bytes(const int *inv, const char *s, size_t n, uint8_t *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = llmc_utf8_next((const uint8_t *)s + i, n - i, &l);
        if (cp >= 324 || inv[cp] < 0) return -1;
        out[o++] = (uint8_t)inv[cp];
        i += l;
    }
    return (long)o;
}

typedef struct {
    llmc_tokenizer *t;
    int byte_level;
    int inv[324];
    uint8_t *buf; /* scratch for unmapped strings */
    size_t cap;
    const char *what;
    size_t vocab_count; /* entries in the model's vocabulary (HF's get_vocab_size, where added ids start) */
} loader;

static llmc_status unsupported(loader *L, const char *part, const char *detail) {
    return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: %s is not supported by llmc (%s)", L->what, part, detail);
}

static llmc_status need_buf(loader *L, size_t n) {
    if (n <= L->cap) return LLMC_OK;
    llmc_free(L->buf);
    L->cap = n * 2 + 64;
    L->buf = llmc_malloc(L->cap, "tokenizer.json scratch");
    return L->buf ? LLMC_OK : LLMC_ERR_NOMEM;
}

/* The raw bytes of a vocabulary string (byte-level: unmapped; else as is) in L->buf; -1 when unmappable. */
static long vocab_bytes(loader *L, const char *s, size_t n) {
    if (need_buf(L, n + 1)) return -2;
    if (L->byte_level) return unmap_bytes(L->inv, s, n, L->buf);
    memcpy(L->buf, s, n);
    return (long)n;
}

/* Standard base64 (padding optional) of s[0..n) into a new llmc_malloc buffer. */
static llmc_status b64_decode_alloc(const char *s, size_t n, uint8_t **out, size_t *out_len) {
    uint8_t *o = llmc_malloc(n / 4 * 3 + 4, "base64 data");
    if (!o) return LLMC_ERR_NOMEM;
    uint32_t acc = 0;
    int bits = 0;
    size_t k = 0, i = 0;
    for (; i < n && s[i] != '='; i++) {
        int v = -1;
        char c = s[i];
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '+') v = 62;
        else if (c == '/') v = 63;
        if (v < 0) {
            llmc_free(o);
            return llmc_fail(LLMC_ERR_FORMAT, "invalid base64 character 0x%02X at %zu", (unsigned char)c, i);
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (uint8_t)(acc >> bits);
        }
    }
    for (; i < n; i++)
        if (s[i] != '=') {
            llmc_free(o);
            return llmc_fail(LLMC_ERR_FORMAT, "base64 data continues after its padding at %zu", i);
        }
    *out = o;
    *out_len = k;
    return LLMC_OK;
}

static llmc_status add_norm_step(loader *L, llmc_norm_step ns) {
    llmc_tokenizer *t = L->t;
    size_t cap = t->n_norm_steps;
    if (llmc_grow((void **)&t->norm_steps, &cap, t->n_norm_steps + 1, sizeof *t->norm_steps, "normalizer steps")) {
        llmc_regex_free(ns.re);
        llmc_free(ns.pat);
        llmc_free(ns.rep);
        llmc_charsmap_free(ns.cm);
        return LLMC_ERR_NOMEM;
    }
    t->norm_steps[t->n_norm_steps++] = ns;
    return LLMC_OK;
}

static llmc_status dup_str(const llmc_json *v, uint8_t **out, size_t *len) {
    if (!(*out = llmc_malloc(v->len + 1, "normalizer string"))) return LLMC_ERR_NOMEM;
    memcpy(*out, v->str, v->len);
    *len = v->len;
    return LLMC_OK;
}

/* One normalizer of a (possibly nested) Sequence, as steps. */
static llmc_status load_norm_step(loader *L, const llmc_json *nz, int depth) {
    llmc_norm_step ns = {0};
    llmc_status st;
    if (is_type(nz, "NFC")) ns.kind = LLMC_NZ_NFC;
    else if (is_type(nz, "NFD")) ns.kind = LLMC_NZ_NFD;
    else if (is_type(nz, "NFKC")) ns.kind = LLMC_NZ_NFKC;
    else if (is_type(nz, "NFKD")) ns.kind = LLMC_NZ_NFKD;
    else if (is_type(nz, "Lowercase")) ns.kind = LLMC_NZ_LOWERCASE;
    else if (is_type(nz, "Strip")) {
        ns.kind = LLMC_NZ_STRIP;
        ns.left = get_bool(nz, "strip_left", 1);
        ns.right = get_bool(nz, "strip_right", 1);
    } else if (is_type(nz, "Prepend")) {
        const llmc_json *pre = llmc_json_get(nz, "prepend");
        if (!llmc_json_is(pre, LLMC_JSON_STRING)) return llmc_fail(LLMC_ERR_FORMAT, "%s: Prepend lacks 'prepend'", L->what);
        ns.kind = LLMC_NZ_PREPEND;
        if ((st = dup_str(pre, &ns.rep, &ns.rep_len))) return st;
    } else if (is_type(nz, "Replace")) {
        const llmc_json *pat = llmc_json_get(nz, "pattern"), *con = llmc_json_get(nz, "content");
        const llmc_json *re = llmc_json_get(pat, "Regex"), *lit = llmc_json_get(pat, "String");
        if (!llmc_json_is(con, LLMC_JSON_STRING) || (!llmc_json_is(re, LLMC_JSON_STRING) && !llmc_json_is(lit, LLMC_JSON_STRING)))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: Replace normalizer needs a pattern {String | Regex} and a content",
                             L->what);
        if ((st = dup_str(con, &ns.rep, &ns.rep_len))) return st;
        if (llmc_json_is(lit, LLMC_JSON_STRING)) {
            ns.kind = LLMC_NZ_REPLACE_STRING;
            if ((st = dup_str(lit, &ns.pat, &ns.pat_len))) {
                llmc_free(ns.rep);
                return st;
            }
        } else {
            ns.kind = LLMC_NZ_REPLACE_REGEX;
            if ((st = llmc_regex_compile(re->str, re->len, LLMC_REGEX_ONIG, &ns.re))) {
                char msg[512];
                snprintf(msg, sizeof msg, "%s", llmc_last_error());
                llmc_free(ns.rep);
                return llmc_fail(st, "%s: Replace normalizer: %s", L->what, msg);
            }
        }
    } else if (is_type(nz, "Precompiled")) {
        const llmc_json *cm = llmc_json_get(nz, "precompiled_charsmap");
        if (!llmc_json_is(cm, LLMC_JSON_STRING))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: Precompiled normalizer lacks a precompiled_charsmap string", L->what);
        uint8_t *blob = NULL;
        size_t bl = 0;
        if ((st = b64_decode_alloc(cm->str, cm->len, &blob, &bl))) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", llmc_last_error());
            return llmc_fail(st, "%s: precompiled_charsmap: %s", L->what, msg);
        }
        ns.kind = LLMC_NZ_PRECOMPILED;
        st = llmc_charsmap_parse(blob, bl, &ns.cm);
        llmc_free(blob);
        if (st) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", llmc_last_error());
            return llmc_fail(st, "%s: %s", L->what, msg);
        }
    } else if (is_type(nz, "Sequence")) {
        const llmc_json *list = llmc_json_get(nz, "normalizers");
        if (!llmc_json_is(list, LLMC_JSON_ARRAY)) return llmc_fail(LLMC_ERR_FORMAT, "%s: bad normalizer Sequence", L->what);
        if (depth > 8) return unsupported(L, "normalizer Sequence", "nested more than 8 deep");
        for (size_t i = 0; i < list->len; i++)
            if ((st = load_norm_step(L, &list->items[i], depth + 1))) return st;
        return LLMC_OK;
    } else {
        return unsupported(L, depth ? "normalizer in a Sequence" : "normalizer", type_of(nz));
    }
    return add_norm_step(L, ns);
}

static llmc_status load_normalizer(loader *L, const llmc_json *nz) {
    if (!nz || nz->type == LLMC_JSON_NULL) return LLMC_OK;
    if (is_type(nz, "NFC")) {
        L->t->normalizer = LLMC_NORM_NFC;
        return LLMC_OK;
    }
    if (is_type(nz, "BertNormalizer")) {
        int lc = get_bool(nz, "lowercase", 1), f = lc ? LLMC_BERT_LOWERCASE : 0;
        if (get_bool(nz, "clean_text", 1)) f |= LLMC_BERT_CLEAN;
        if (get_bool(nz, "handle_chinese_chars", 1)) f |= LLMC_BERT_CHINESE;
        if (get_bool(nz, "strip_accents", lc)) f |= LLMC_BERT_STRIP_ACCENTS; /* null: follows lowercase */
        L->t->normalizer = LLMC_NORM_BERT;
        L->t->bert_norm = f;
        return LLMC_OK;
    }
    if (is_type(nz, "Sequence")) { /* Llama 2: [Prepend("▁"), Replace(" ", "▁")] has a fast path */
        const llmc_json *list = llmc_json_get(nz, "normalizers");
        if (llmc_json_is(list, LLMC_JSON_ARRAY) && list->len == 2 && is_type(&list->items[0], "Prepend") &&
            str_is(llmc_json_get(&list->items[0], "prepend"), "\xE2\x96\x81") &&
            is_type(&list->items[1], "Replace") &&
            str_is(llmc_json_get(llmc_json_get(&list->items[1], "pattern"), "String"), " ") &&
            str_is(llmc_json_get(&list->items[1], "content"), "\xE2\x96\x81")) {
            L->t->normalizer = LLMC_NORM_METASPACE;
            return LLMC_OK;
        }
    }
    L->t->normalizer = LLMC_NORM_STEPS;
    return load_norm_step(L, nz, 0);
}

static llmc_status add_step(loader *L, llmc_pretok_step st) {
    llmc_tokenizer *t = L->t;
    size_t cap = t->n_steps;
    if (llmc_grow((void **)&t->steps, &cap, t->n_steps + 1, sizeof *t->steps, "pre-tokenizer steps")) {
        llmc_regex_free(st.re);
        llmc_free(st.lit);
        return LLMC_ERR_NOMEM;
    }
    t->steps[t->n_steps++] = st;
    return LLMC_OK;
}

/* HF's SplitDelimiterBehavior name -> LLMC_SPLIT_*, or -1 */
static int behavior_of(const llmc_json *b, int dflt) {
    if (!b || b->type == LLMC_JSON_NULL) return dflt;
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int k = 0; k < 5; k++)
        if (str_is(b, names[k])) return k;
    return -1;
}

/* Split{pattern: {Regex | String}, behavior, invert}: a known regex runs on its hand-written scanner, any other
 * regex on the regex engine (llmc.UnsupportedError naming a construct outside its subset). */
static llmc_status load_split(loader *L, const llmc_json *sp) {
    const llmc_json *pat = llmc_json_get(sp, "pattern");
    const llmc_json *re = llmc_json_get(pat, "Regex"), *lit = llmc_json_get(pat, "String");
    llmc_pretok_step st = {0};
    st.behavior = behavior_of(llmc_json_get(sp, "behavior"), -1);
    if (st.behavior < 0) return unsupported(L, "Split pre-tokenizer", "behavior must be Removed, Isolated, "
                                                "MergedWithPrevious, MergedWithNext or Contiguous");
    st.invert = get_bool(sp, "invert", 0);
    if (llmc_json_is(re, LLMC_JSON_STRING)) {
        int kind = llmc_pretok_from_regex(re->str, re->len);
        if (kind >= 0) {
            st.kind = LLMC_STEP_KNOWN;
            st.known = kind;
        } else {
            st.kind = LLMC_STEP_REGEX;
            llmc_status rc = llmc_regex_compile(re->str, re->len, LLMC_REGEX_ONIG, &st.re);
            if (rc) {
                char msg[512]; /* the message is rewritten below: copy it first */
                snprintf(msg, sizeof msg, "%s", llmc_last_error());
                return llmc_fail(rc, "%s: Split pre-tokenizer: %s", L->what, msg);
            }
        }
    } else if (llmc_json_is(lit, LLMC_JSON_STRING)) {
        st.kind = LLMC_STEP_STRING;
        if (!(st.lit = llmc_malloc(lit->len + 1, "Split string"))) return LLMC_ERR_NOMEM;
        memcpy(st.lit, lit->str, lit->len);
        st.lit_len = lit->len;
    } else {
        return llmc_fail(LLMC_ERR_FORMAT, "%s: Split pre-tokenizer needs a pattern {\"Regex\": ...} or {\"String\": ...}",
                         L->what);
    }
    return add_step(L, st);
}

/* ByteLevel{add_prefix_space, use_regex}: byte-level vocabulary; with use_regex the GPT-2 regex splits (Isolated).
 * add_prefix_space puts ' ' before each piece that reaches it: supported when it is the first step (then it acts
 * on each segment between added tokens, like HF). */
static llmc_status load_byte_level_pre(loader *L, const llmc_json *bl) {
    L->byte_level = 1;
    if (get_bool(bl, "add_prefix_space", 0)) {
        if (L->t->n_steps) return unsupported(L, "ByteLevel(add_prefix_space=true) after another pre-tokenizer",
                                              "a prefix space on every piece");
        L->t->prefix_space = 1;
    }
    if (get_bool(bl, "use_regex", 1)) {
        llmc_pretok_step st = {0};
        st.kind = LLMC_STEP_KNOWN;
        st.known = LLMC_PRE_GPT2;
        st.behavior = LLMC_SPLIT_ISOLATED;
        return add_step(L, st);
    }
    return LLMC_OK;
}

static llmc_status pred_step(loader *L, int pred, int behavior) {
    llmc_pretok_step st = {0};
    st.kind = LLMC_STEP_PRED;
    st.pred = pred;
    st.behavior = behavior;
    return add_step(L, st);
}

/* Metaspace{replacement: "▁", prepend_scheme: always|first|never (or the older add_prefix_space), split} */
static llmc_status load_metaspace(loader *L, const llmc_json *pt) {
    const llmc_json *rep = llmc_json_get(pt, "replacement"), *sch = llmc_json_get(pt, "prepend_scheme");
    if (rep && !str_is(rep, "\xE2\x96\x81")) return unsupported(L, "Metaspace pre-tokenizer", "only the replacement '▁'");
    int scheme;
    if (str_is(sch, "always")) scheme = 1;
    else if (str_is(sch, "first")) scheme = 2;
    else if (str_is(sch, "never")) scheme = 0;
    else if (!sch || sch->type == LLMC_JSON_NULL) scheme = get_bool(pt, "add_prefix_space", 1); /* older files */
    else return unsupported(L, "Metaspace prepend_scheme", sch->str ? sch->str : "?");
    L->t->ms_pre = 1 + scheme;
    L->t->ms_split = get_bool(pt, "split", 1);
    return LLMC_OK;
}

/* One pre-tokenizer of a (possibly nested) Sequence, as steps. */
static llmc_status load_pre_step(loader *L, const llmc_json *pt, int depth) {
    if (is_type(pt, "ByteLevel")) return load_byte_level_pre(L, pt);
    if (is_type(pt, "Split")) return load_split(L, pt);
    if (is_type(pt, "Digits")) /* Rust's char::is_numeric, each digit alone or runs of them */
        return pred_step(L, LLMC_PRED_NUMERIC, get_bool(pt, "individual_digits", 0) ? LLMC_SPLIT_ISOLATED
                                                                                        : LLMC_SPLIT_CONTIGUOUS);
    if (is_type(pt, "Punctuation")) {
        int b = behavior_of(llmc_json_get(pt, "behavior"), LLMC_SPLIT_ISOLATED);
        if (b < 0) return unsupported(L, "Punctuation pre-tokenizer", "this behavior");
        return pred_step(L, LLMC_PRED_PUNCT, b);
    }
    if (is_type(pt, "WhitespaceSplit")) return pred_step(L, LLMC_PRED_WHITESPACE, LLMC_SPLIT_REMOVED);
    if (is_type(pt, "BertPreTokenizer")) { /* whitespace split, then punctuation isolated */
        llmc_status st = pred_step(L, LLMC_PRED_WHITESPACE, LLMC_SPLIT_REMOVED);
        return st ? st : pred_step(L, LLMC_PRED_PUNCT, LLMC_SPLIT_ISOLATED);
    }
    if (is_type(pt, "Whitespace")) { /* HF: the matches of \w+|[^\w\s]+ (Rust's regex crate) kept, the rest removed */
        static const char ws_re[] = "\\w+|[^\\w\\s]+";
        llmc_pretok_step st = {0};
        st.kind = LLMC_STEP_REGEX;
        st.behavior = LLMC_SPLIT_REMOVED;
        st.invert = 1;
        llmc_status rc = llmc_regex_compile(ws_re, sizeof ws_re - 1, LLMC_REGEX_RUST, &st.re);
        return rc ? rc : add_step(L, st);
    }
    if (is_type(pt, "Sequence")) {
        const llmc_json *list = llmc_json_get(pt, "pretokenizers");
        if (!llmc_json_is(list, LLMC_JSON_ARRAY)) return llmc_fail(LLMC_ERR_FORMAT, "%s: bad Sequence", L->what);
        if (depth > 8) return unsupported(L, "pre-tokenizer Sequence", "nested more than 8 deep");
        for (size_t i = 0; i < list->len; i++) {
            llmc_status st = load_pre_step(L, &list->items[i], depth + 1);
            if (st) return st;
        }
        return LLMC_OK;
    }
    if (is_type(pt, "Metaspace")) { /* it rewrites the text: only before every other step */
        if (L->t->n_steps || L->t->ms_pre)
            return unsupported(L, "Metaspace after another pre-tokenizer in a Sequence", "Metaspace first");
        return load_metaspace(L, pt);
    }
    return unsupported(L, "pre-tokenizer", type_of(pt));
}

static llmc_status load_pre(loader *L, const llmc_json *pt) {
    if (!pt || pt->type == LLMC_JSON_NULL) return LLMC_OK;
    if (is_type(pt, "BertPreTokenizer")) L->t->bert_pre = 1; /* WordPiece's own fast path (BPE uses the steps) */
    if (is_type(pt, "Metaspace")) return load_metaspace(L, pt);
    llmc_status st = load_pre_step(L, pt, 0);
    if (st) return st;
    llmc_tokenizer *t = L->t;
    if (t->ms_pre && t->ms_split && t->n_steps) { /* Metaspace(split) then more: its split becomes the first step */
        llmc_pretok_step ms = {0};
        ms.kind = LLMC_STEP_STRING;
        ms.behavior = LLMC_SPLIT_MERGED_NEXT;
        if (!(ms.lit = llmc_malloc(4, "Split string"))) return LLMC_ERR_NOMEM;
        memcpy(ms.lit, META, 3);
        ms.lit_len = 3;
        if ((st = add_step(L, ms))) return st;
        memmove(t->steps + 1, t->steps, (t->n_steps - 1) * sizeof *t->steps);
        t->steps[0] = ms;
        t->ms_split = 0;
    }
    /* one Isolated split by a known regex: the scanner alone (the fast path, chunkable across threads) */
    if (t->n_steps == 1 && t->steps[0].kind == LLMC_STEP_KNOWN && t->steps[0].behavior == LLMC_SPLIT_ISOLATED &&
        !t->steps[0].invert) {
        t->pretok = t->steps[0].known;
        llmc_pretok_steps_free(t->steps, t->n_steps);
        t->steps = NULL;
        t->n_steps = 0;
    }
    return LLMC_OK;
}

static llmc_status load_decoder(loader *L, const llmc_json *d, int *sp_decoder) {
    *sp_decoder = 0;
    if (!d || d->type == LLMC_JSON_NULL) { /* HF joins the tokens' strings with spaces */
        L->t->join_space = !L->byte_level;
        return LLMC_OK;
    }
    if (is_type(d, "Metaspace")) { /* U+2581 -> ' ', and the first token loses its leading space */
        const llmc_json *sch = llmc_json_get(d, "prepend_scheme");
        *sp_decoder = str_is(sch, "never") || (!sch && !get_bool(d, "add_prefix_space", 1)) ? 4 : 5;
        return LLMC_OK;
    }
    if (is_type(d, "WordPiece")) {
        const llmc_json *pre = llmc_json_get(d, "prefix");
        if (!str_is(pre, "##")) return unsupported(L, "WordPiece decoder", "only the prefix '##'");
        *sp_decoder = get_bool(d, "cleanup", 1) ? 3 : 2; /* built once the vocabulary is known */
        return LLMC_OK;
    }
    if (is_type(d, "ByteLevel")) {
        if (!L->byte_level) return unsupported(L, "ByteLevel decoder", "without a ByteLevel pre-tokenizer");
        return LLMC_OK;
    }
    if (is_type(d, "Sequence")) { /* SentencePiece-style: Replace('▁', ' ') [ByteFallback] [Fuse [Strip(' ', 1, 0)]] */
        const llmc_json *list = llmc_json_get(d, "decoders");
        size_t n = llmc_json_is(list, LLMC_JSON_ARRAY) ? list->len : 0, i = 0;
        int bytes = 0, fuse = 0, strip = 0, ok = n >= 1;
        if (ok && is_type(&list->items[0], "Replace") &&
            str_is(llmc_json_get(llmc_json_get(&list->items[0], "pattern"), "String"), "\xE2\x96\x81") &&
            str_is(llmc_json_get(&list->items[0], "content"), " "))
            i = 1;
        else
            ok = 0;
        if (ok && i < n && is_type(&list->items[i], "ByteFallback")) bytes = 1, i++;
        if (ok && i < n && is_type(&list->items[i], "Fuse")) fuse = 1, i++;
        if (ok && i < n && fuse && is_type(&list->items[i], "Strip")) {
            const llmc_json *sd = &list->items[i], *st = llmc_json_get(sd, "start"), *sp = llmc_json_get(sd, "stop");
            ok = str_is(llmc_json_get(sd, "content"), " ") && llmc_json_is(st, LLMC_JSON_NUMBER) &&
                 (st->integer == 0 || st->integer == 1) && llmc_json_is(sp, LLMC_JSON_NUMBER) && sp->integer == 0;
            strip = ok && st->integer == 1;
            i++;
        }
        if (ok && i == n) {
            /* 1: bytes + strip (Llama 2); 6: bytes; 7: strip; 8: Replace alone */
            *sp_decoder = bytes ? (strip ? 1 : 6) : (strip ? 7 : 8);
            return LLMC_OK;
        }
        return unsupported(L, "this decoder Sequence",
                           "only Replace('▁', ' '), then optionally ByteFallback, Fuse and Strip(' ', 1, 0)");
    }
    return unsupported(L, "decoder", type_of(d));
}

static llmc_status load_post(loader *L, const llmc_json *pp) {
    if (!pp || pp->type == LLMC_JSON_NULL || is_type(pp, "ByteLevel")) return LLMC_OK; /* ByteLevel: offsets only */
    if (is_type(pp, "BertProcessing") || is_type(pp, "RobertaProcessing")) { /* [cls] A [sep] */
        const llmc_json *cls = llmc_json_get(pp, "cls"), *sep = llmc_json_get(pp, "sep");
        if (!llmc_json_is(cls, LLMC_JSON_ARRAY) || cls->len != 2 || !llmc_json_is(sep, LLMC_JSON_ARRAY) || sep->len != 2 ||
            !llmc_json_is(&cls->items[1], LLMC_JSON_NUMBER) || !llmc_json_is(&sep->items[1], LLMC_JSON_NUMBER) ||
            !cls->items[1].is_integer || !sep->items[1].is_integer || cls->items[1].integer < 0 ||
            sep->items[1].integer < 0 || cls->items[1].integer >= INT32_MAX || sep->items[1].integer >= INT32_MAX)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: %s needs cls and sep as [token, id]", L->what, type_of(pp));
        L->t->prefix_ids = llmc_malloc(sizeof(int32_t), "template ids");
        L->t->suffix_ids = llmc_malloc(sizeof(int32_t), "template ids");
        if (!L->t->prefix_ids || !L->t->suffix_ids) return LLMC_ERR_NOMEM;
        L->t->prefix_ids[0] = (int32_t)cls->items[1].integer;
        L->t->suffix_ids[0] = (int32_t)sep->items[1].integer;
        L->t->n_prefix = L->t->n_suffix = 1;
        return LLMC_OK;
    }
    if (!is_type(pp, "TemplateProcessing")) return unsupported(L, "post-processor", type_of(pp));
    const llmc_json *single = llmc_json_get(pp, "single"), *sps = llmc_json_get(pp, "special_tokens");
    if (!llmc_json_is(single, LLMC_JSON_ARRAY) || !llmc_json_is(sps, LLMC_JSON_OBJECT))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: TemplateProcessing lacks 'single' or 'special_tokens'", L->what);
    llmc_tokenizer *t = L->t;
    int seen_a = 0;
    size_t cap = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    t->prefix_ids = t->suffix_ids = NULL;
    for (size_t i = 0; i <= single->len; i++) {
        const llmc_json *it = i < single->len ? &single->items[i] : NULL;
        const llmc_json *seq = it ? llmc_json_get(it, "Sequence") : NULL;
        if (!it || seq) { /* the sequence (or the end) closes the prefix / suffix */
            if (it && (seen_a || !str_is(llmc_json_get(seq, "id"), "A"))) {
                llmc_free(ids);
                return unsupported(L, "TemplateProcessing", "single must hold one Sequence A");
            }
            if (!it && !seen_a) {
                llmc_free(ids);
                return llmc_fail(LLMC_ERR_FORMAT, "%s: TemplateProcessing single has no Sequence", L->what);
            }
            if (!seen_a) {
                t->prefix_ids = ids;
                t->n_prefix = n;
            } else {
                t->suffix_ids = ids;
                t->n_suffix = n;
            }
            ids = NULL;
            n = cap = 0;
            seen_a = 1;
            continue;
        }
        const llmc_json *name = llmc_json_get(llmc_json_get(it, "SpecialToken"), "id");
        const llmc_json *spec = NULL;
        for (size_t k = 0; name && k < sps->len; k++) /* find the special by name */
            if (sps->key_lens[k] == name->len && !memcmp(sps->keys[k], name->str, name->len)) spec = &sps->items[k];
        const llmc_json *sid = llmc_json_get(spec, "ids");
        if (!llmc_json_is(sid, LLMC_JSON_ARRAY)) {
            llmc_free(ids);
            return llmc_fail(LLMC_ERR_FORMAT, "%s: TemplateProcessing names an unknown special token", L->what);
        }
        for (size_t k = 0; k < sid->len; k++) {
            if (!llmc_json_is(&sid->items[k], LLMC_JSON_NUMBER) || !sid->items[k].is_integer ||
                sid->items[k].integer < 0 || sid->items[k].integer >= INT32_MAX) {
                llmc_free(ids);
                return llmc_fail(LLMC_ERR_FORMAT, "%s: bad id in TemplateProcessing", L->what);
            }
            if (n == cap) {
                int32_t *nb = llmc_malloc((cap = cap * 2 + 4) * sizeof(int32_t), "template ids");
                if (!nb) {
                    llmc_free(ids);
                    return LLMC_ERR_NOMEM;
                }
                if (n) memcpy(nb, ids, n * sizeof(int32_t));
                llmc_free(ids);
                ids = nb;
            }
            ids[n++] = (int32_t)sid->items[k].integer;
        }
    }
    return LLMC_OK;
}

/* WordPiece: vocab, unk, "##" prefix, max_input_chars_per_word */
static llmc_status load_wordpiece(loader *L, const llmc_json *model) {
    llmc_tokenizer *t = L->t;
    if (!t->bert_pre) return unsupported(L, "WordPiece without BertPreTokenizer", "other pre-tokenizers");
    t->model = LLMC_MODEL_WORDPIECE;
    const llmc_json *vocab = llmc_json_get(model, "vocab"), *unk = llmc_json_get(model, "unk_token"),
                    *pre = llmc_json_get(model, "continuing_subword_prefix"),
                    *mx = llmc_json_get(model, "max_input_chars_per_word");
    if (!llmc_json_is(vocab, LLMC_JSON_OBJECT) || !vocab->len)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: WordPiece model lacks a 'vocab' object", L->what);
    size_t max_id = 0;
    llmc_status st;
    for (size_t i = 0; i < vocab->len; i++) {
        const llmc_json *v = &vocab->items[i];
        if (!llmc_json_is(v, LLMC_JSON_NUMBER) || !v->is_integer || v->integer < 0 || v->integer >= INT32_MAX)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: vocab entry '%.100s' has no valid id", L->what, vocab->keys[i]);
        if ((st = llmc_tok_set(t, v->integer, (const uint8_t *)vocab->keys[i], vocab->key_lens[i]))) return st;
        if ((size_t)v->integer > max_id) max_id = (size_t)v->integer;
    }
    if ((st = llmc_tok_build_map(t, max_id + 1))) return st;
    L->vocab_count = vocab->len;
    if (llmc_json_is(unk, LLMC_JSON_STRING)) t->unk_id = llmc_tok_lookup(t, (const uint8_t *)unk->str, unk->len);
    if (pre && pre->type != LLMC_JSON_NULL) {
        if (!llmc_json_is(pre, LLMC_JSON_STRING) || pre->len > sizeof t->wp_prefix)
            return unsupported(L, "WordPiece continuing_subword_prefix", "at most 16 bytes");
        memcpy(t->wp_prefix, pre->str, pre->len);
        t->wp_prefix_len = pre->len;
    } else {
        memcpy(t->wp_prefix, "##", 2);
        t->wp_prefix_len = 2;
    }
    t->wp_max_chars = llmc_json_is(mx, LLMC_JSON_NUMBER) && mx->is_integer && mx->integer > 0 ? (size_t)mx->integer : 100;
    return LLMC_OK;
}

/* Unigram: vocab [[piece, score], ...] (the id is the position), unk_id, byte_fallback */
static llmc_status load_unigram(loader *L, const llmc_json *model) {
    llmc_tokenizer *t = L->t;
    const llmc_json *vocab = llmc_json_get(model, "vocab"), *unk = llmc_json_get(model, "unk_id");
    if (!llmc_json_is(vocab, LLMC_JSON_ARRAY) || !vocab->len)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: Unigram model lacks a non-empty 'vocab' list", L->what);
    t->model = LLMC_MODEL_UNIGRAM;
    t->byte_fallback = get_bool(model, "byte_fallback", 0);
    size_t n = vocab->len;
    llmc_status st;
    if (!(t->uni_score = llmc_malloc(n * sizeof(double), "Unigram scores"))) return LLMC_ERR_NOMEM;
    double min_score = 1e300;
    for (size_t i = 0; i < n; i++) {
        const llmc_json *e = &vocab->items[i];
        if (!llmc_json_is(e, LLMC_JSON_ARRAY) || e->len != 2 || !llmc_json_is(&e->items[0], LLMC_JSON_STRING) ||
            !llmc_json_is(&e->items[1], LLMC_JSON_NUMBER))
            return llmc_fail(LLMC_ERR_FORMAT, "%s: Unigram vocab entry %zu is not [piece, score]", L->what, i);
        if (!e->items[0].len) return llmc_fail(LLMC_ERR_FORMAT, "%s: Unigram vocab entry %zu is empty", L->what, i);
        long b = vocab_bytes(L, e->items[0].str, e->items[0].len);
        if (b == -2) return LLMC_ERR_NOMEM;
        if (b < 0)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: byte-level vocab entry '%.100s' has a character outside the byte map",
                             L->what, e->items[0].str);
        if ((st = llmc_tok_set(t, (int64_t)i, L->buf, (size_t)b))) return st;
        double sc = e->items[1].number;
        t->uni_score[i] = sc;
        if (sc < min_score) min_score = sc; /* HF: over every piece */
    }
    t->uni_min_score = min_score;
    L->vocab_count = n;
    if ((st = llmc_tok_build_map(t, n))) return st;
    if (unk && unk->type != LLMC_JSON_NULL) {
        if (!llmc_json_is(unk, LLMC_JSON_NUMBER) || !unk->is_integer || unk->integer < 0 || (size_t)unk->integer >= n)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: Unigram unk_id is not an id of the vocab (%zu pieces)", L->what, n);
        t->unk_id = (int32_t)unk->integer;
    }
    if (t->byte_fallback)
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = llmc_tok_lookup(t, (const uint8_t *)name, 6);
        }
    return llmc_unigram_build(t, n);
}

static llmc_status load_model(loader *L, const llmc_json *model) {
    llmc_tokenizer *t = L->t;
    if (!llmc_json_is(model, LLMC_JSON_OBJECT)) return llmc_fail(LLMC_ERR_FORMAT, "%s: no 'model' object", L->what);
    if (is_type(model, "WordPiece")) return load_wordpiece(L, model);
    if (is_type(model, "Unigram")) return load_unigram(L, model);
    if (!is_type(model, "BPE")) {
        if (!llmc_json_get(model, "type") && llmc_json_get(model, "merges")) {
            /* old files omit the type; they are BPE */
        } else {
            return unsupported(L, "model", type_of(model));
        }
    }
    const llmc_json *dropout = llmc_json_get(model, "dropout");
    if (dropout && dropout->type != LLMC_JSON_NULL) return unsupported(L, "BPE dropout", "encoding is deterministic");
    const llmc_json *csp = llmc_json_get(model, "continuing_subword_prefix"),
                    *eow = llmc_json_get(model, "end_of_word_suffix");
    if ((llmc_json_is(csp, LLMC_JSON_STRING) && csp->len) || (llmc_json_is(eow, LLMC_JSON_STRING) && eow->len))
        return unsupported(L, "BPE continuing_subword_prefix / end_of_word_suffix", "non-empty affixes");
    t->whole_piece_first = get_bool(model, "ignore_merges", 0);
    t->fuse_unk = get_bool(model, "fuse_unk", 0);
    int byte_fallback = get_bool(model, "byte_fallback", 0);
    t->model = L->byte_level ? LLMC_MODEL_BYTE_BPE : LLMC_MODEL_CHAR_BPE;
    const llmc_json *vocab = llmc_json_get(model, "vocab"), *merges = llmc_json_get(model, "merges");
    if (!llmc_json_is(vocab, LLMC_JSON_OBJECT) || !llmc_json_is(merges, LLMC_JSON_ARRAY))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: model lacks a 'vocab' object or a 'merges' list", L->what);
    llmc_status st;
    size_t max_id = 0;
    for (size_t i = 0; i < vocab->len; i++) { /* iterate the object directly: llmc_json_get is linear */
        const llmc_json *v = &vocab->items[i];
        if (!llmc_json_is(v, LLMC_JSON_NUMBER) || !v->is_integer || v->integer < 0 || v->integer >= INT32_MAX)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: vocab entry '%.100s' has no valid id", L->what, vocab->keys[i]);
        long n = vocab_bytes(L, vocab->keys[i], vocab->key_lens[i]);
        if (n == -2) return LLMC_ERR_NOMEM;
        if (n < 0)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: byte-level vocab entry '%.100s' has a character outside the byte map",
                             L->what, vocab->keys[i]);
        if ((st = llmc_tok_set(t, v->integer, L->buf, (size_t)n))) return st;
        if ((size_t)v->integer > max_id) max_id = (size_t)v->integer;
    }
    if (!vocab->len) return llmc_fail(LLMC_ERR_FORMAT, "%s: empty vocab", L->what);
    L->vocab_count = vocab->len;
    if ((st = llmc_tok_build_map(t, max_id + 1))) return st;
    if (L->byte_level) {
        for (int b = 0; b < 256; b++) {
            uint8_t c = (uint8_t)b;
            t->byte_id[b] = llmc_tok_lookup(t, &c, 1); /* a missing byte is an error only when it is encoded */
        }
    } else if (byte_fallback) {
        for (int b = 0; b < 256; b++) {
            char name[8];
            snprintf(name, sizeof name, "<0x%02X>", b);
            t->byte_id[b] = llmc_tok_lookup(t, (const uint8_t *)name, 6);
        }
    }
    const llmc_json *unk = llmc_json_get(model, "unk_token");
    if (llmc_json_is(unk, LLMC_JSON_STRING)) {
        long n = vocab_bytes(L, unk->str, unk->len);
        if (n == -2) return LLMC_ERR_NOMEM;
        t->unk_id = n >= 0 ? llmc_tok_lookup(t, L->buf, (size_t)n) : -1;
    }
    /* merges: "left right" strings or [left, right] pairs; rank = position */
    for (size_t k = 0; k < merges->len; k++) {
        const llmc_json *m = &merges->items[k];
        const char *a, *b;
        size_t la, lb;
        if (llmc_json_is(m, LLMC_JSON_STRING)) {
            const char *sp = memchr(m->str, ' ', m->len);
            if (!sp || memchr(sp + 1, ' ', m->len - (size_t)(sp + 1 - m->str)))
                return llmc_fail(LLMC_ERR_FORMAT, "%s: merge %zu '%.100s' is not two tokens", L->what, k, m->str);
            a = m->str;
            la = (size_t)(sp - m->str);
            b = sp + 1;
            lb = m->len - la - 1;
        } else if (llmc_json_is(m, LLMC_JSON_ARRAY) && m->len == 2 && llmc_json_is(&m->items[0], LLMC_JSON_STRING) &&
                   llmc_json_is(&m->items[1], LLMC_JSON_STRING)) {
            a = m->items[0].str;
            la = m->items[0].len;
            b = m->items[1].str;
            lb = m->items[1].len;
        } else {
            return llmc_fail(LLMC_ERR_FORMAT, "%s: merge %zu is not a string or a pair of strings", L->what, k);
        }
        long na = vocab_bytes(L, a, la);
        if (na == -2) return LLMC_ERR_NOMEM;
        int32_t ia = na >= 0 ? llmc_tok_lookup(t, L->buf, (size_t)na) : -1;
        long nb = vocab_bytes(L, b, lb);
        if (nb == -2) return LLMC_ERR_NOMEM;
        int32_t ib = nb >= 0 ? llmc_tok_lookup(t, L->buf, (size_t)nb) : -1;
        /* the merged token: concatenation of the two raw byte strings */
        if (ia < 0 || ib < 0)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: merge %zu uses a token that is not in the vocab", L->what, k);
        size_t lm = (size_t)t->tok_len[ia] + t->tok_len[ib];
        if (need_buf(L, lm + 1)) return LLMC_ERR_NOMEM;
        memcpy(L->buf, t->blob + t->tok_off[ia], t->tok_len[ia]);
        memcpy(L->buf + t->tok_len[ia], t->blob + t->tok_off[ib], t->tok_len[ib]);
        int32_t im = llmc_tok_lookup(t, L->buf, lm);
        if (im < 0)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: merge %zu makes a token that is not in the vocab", L->what, k);
        if ((st = llmc_tok_add_pair(t, (uint32_t)ia, (uint32_t)ib, (uint32_t)k, (uint32_t)im))) return st;
    }
    return LLMC_OK;
}

/* The id HF gives an added token (AddedVocabulary::add_tokens): the id of an earlier added token with the same
 * content, else the model's id for the content (a vocabulary string), else one past the largest added id when that
 * is at least the model's vocabulary size, else that size. The "id" written in the file is not used. */
static int64_t hf_added_id(loader *L, const char *c, size_t n, const int64_t *ids, const llmc_json *const *cont,
                           size_t k, int64_t *max_added) {
    for (size_t q = 0; q < k; q++)
        if (cont[q]->len == n && !memcmp(cont[q]->str, c, n)) return ids[q];
    long b = vocab_bytes(L, c, n);
    int32_t v = b >= 0 ? llmc_tok_lookup(L->t, L->buf, (size_t)b) : -1;
    int64_t id = v >= 0 ? v : (*max_added >= (int64_t)L->vocab_count ? *max_added + 1 : (int64_t)L->vocab_count);
    if (id > *max_added) *max_added = id;
    return id;
}

static llmc_status load_added(loader *L, const llmc_json *added) {
    if (!added || added->type == LLMC_JSON_NULL) return LLMC_OK;
    if (!llmc_json_is(added, LLMC_JSON_ARRAY)) return llmc_fail(LLMC_ERR_FORMAT, "%s: added_tokens is not a list", L->what);
    size_t n_add = added->len;
    int64_t *ids = llmc_malloc((n_add + 1) * sizeof(int64_t), "added tokens");
    const llmc_json **cont = llmc_malloc((n_add + 1) * sizeof(*cont), "added tokens");
    llmc_status st = ids && cont ? LLMC_OK : LLMC_ERR_NOMEM;
    int64_t max_added = -1;
    for (size_t i = 0; !st && i < n_add; i++) {
        const llmc_json *a = &added->items[i], *c = llmc_json_get(a, "content");
        if (!llmc_json_is(c, LLMC_JSON_STRING) || !c->len) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: added token %zu lacks a content string", L->what, i);
        } else {
            if (need_buf(L, c->len + 1)) st = LLMC_ERR_NOMEM;
            else ids[i] = hf_added_id(L, c->str, c->len, ids, cont, i, &max_added);
            cont[i] = c;
        }
    }
    for (size_t i = 0; !st && i < n_add; i++) {
        int live = 1; /* a later token with the same id (and another content) takes the id: HF drops this one */
        for (size_t q = i + 1; q < n_add && live; q++)
            live = ids[q] != ids[i] || (cont[q]->len == cont[i]->len && !memcmp(cont[q]->str, cont[i]->str, cont[i]->len));
        int dup = 0; /* the same content earlier: already added */
        for (size_t q = 0; q < i && !dup; q++) dup = cont[q]->len == cont[i]->len && !memcmp(cont[q]->str, cont[i]->str, cont[i]->len);
        if (!live || dup) continue;
        const llmc_json *c = cont[i];
        llmc_tokenizer *t = L->t;
        int64_t id = ids[i];
        int in_vocab = (uint64_t)id < t->n_vocab && t->tok_len[id] != UINT32_MAX;
        const llmc_json *ai = &added->items[i];
        if ((st = llmc_tok_add_added(t, (const uint8_t *)c->str, c->len, id, get_bool(ai, "special", 0)))) break;
        llmc_added_tok *at = &t->added[t->n_added - 1];
        at->lstrip = (uint8_t)get_bool(ai, "lstrip", 0);
        at->rstrip = (uint8_t)get_bool(ai, "rstrip", 0);
        at->single_word = (uint8_t)get_bool(ai, "single_word", 0);
        at->normalized = (uint8_t)get_bool(ai, "normalized", 0);
        if (at->normalized && t->normalizer != LLMC_NORM_NONE) { /* HF matches the normalized content */
            uint8_t *nc;
            size_t nl;
            if ((st = llmc_tok_normalize_alloc(t, (const uint8_t *)c->str, c->len, &nc, &nl, NULL))) break;
            st = nl ? llmc_tok_set_match(t, t->n_added - 1, nc, nl) : LLMC_OK;
            if (!nl) at->normalized = 2; /* empty once normalized: HF never matches it (no pass is 2) */
            llmc_free(nc);
            if (st) break;
            at = &t->added[t->n_added - 1]; /* the blob may have moved, not the table */
        }
        /* HF decodes an id through its added token's content and passes that through the decoder: ByteLevel maps it
         * back to bytes when every character is in GPT-2's byte map, else keeps its UTF-8. When the id is also a
         * vocabulary token of other content (a sparse vocabulary), the added content wins. The SentencePiece /
         * WordPiece decode tables built later start from these bytes. */
        if (need_buf(L, c->len + 1)) {
            st = LLMC_ERR_NOMEM;
            break;
        }
        long n = L->byte_level ? unmap_bytes(L->inv, c->str, c->len, L->buf) : -1;
        if (n < 0) { /* not byte-mapped: the content's own bytes */
            memcpy(L->buf, c->str, c->len);
            n = (long)c->len;
        }
        const uint8_t *have = t->blob + t->tok_off[id];
        if (!in_vocab ? ((size_t)n != c->len || memcmp(L->buf, c->str, c->len))
                      : ((size_t)n != t->tok_len[id] || memcmp(L->buf, have, (size_t)n)))
            if ((st = llmc_tok_set_decode(t, id, L->buf, (size_t)n))) break;
    }
    llmc_free(ids);
    llmc_free(cont);
    return st;
}

/* Replace every occurrence of pat by rep in b[0..*n) (in place; rep is never longer than pat). */
static void replace_all(uint8_t *b, size_t *n, const char *pat, const char *rep) {
    size_t lp = strlen(pat), lr = strlen(rep), w = 0;
    for (size_t i = 0; i < *n;) {
        if (i + lp <= *n && !memcmp(b + i, pat, lp)) {
            memcpy(b + w, rep, lr);
            w += lr;
            i += lp;
        } else {
            b[w++] = b[i++];
        }
    }
    *n = w;
}

/* WordPiece decoding: a token is " " + token, a "##" token joins without a space (the leading space of the whole
 * output is stripped); cleanup (HF's per-token rules) is applied to each token's text. */
static llmc_status wp_decode_table(loader *L, int cleanup) {
    llmc_tokenizer *t = L->t;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (t->tok_len[id] == UINT32_MAX) continue;
        int added = t->dec_off && t->dec_len[id] != UINT32_MAX; /* an added token's content (load_added) */
        const uint8_t *b = t->blob + (added ? t->dec_off[id] : t->tok_off[id]);
        size_t n = added ? t->dec_len[id] : t->tok_len[id], o = 0;
        if (need_buf(L, n + 2)) return LLMC_ERR_NOMEM;
        if (n >= 2 && b[0] == '#' && b[1] == '#') {
            memcpy(L->buf, b + 2, n - 2);
            o = n - 2;
        } else {
            L->buf[0] = ' ';
            memcpy(L->buf + 1, b, n);
            o = n + 1;
        }
        if (cleanup) { /* HF's WordPiece cleanup, in its order */
            static const char *rules[][2] = {{" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},
                                             {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"},
                                             {" 's", "'s"},   {" 've", "'ve"}, {" 're", "'re"}};
            for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) replace_all(L->buf, &o, rules[r][0], rules[r][1]);
        }
        llmc_status st = llmc_tok_set_decode(t, (int64_t)id, L->buf, o);
        if (st) return st;
    }
    t->strip_lead_space = 1;
    return LLMC_OK;
}

/* SentencePiece decoding: <0xNN> -> the byte (with_bytes: the ByteFallback decoder), U+2581 -> ' '. strip: 1 drops
 * the leading ' ' of the output (Strip decoder), 2 drops every U+2581 of the first token (Metaspace decoder). */
static llmc_status sp_decode_table(loader *L, int with_bytes, int strip) {
    llmc_tokenizer *t = L->t;
    for (size_t id = 0; id < t->n_vocab; id++) {
        if (t->tok_len[id] == UINT32_MAX) continue;
        int added = t->dec_off && t->dec_len[id] != UINT32_MAX; /* an added token's content (load_added) */
        const uint8_t *b = t->blob + (added ? t->dec_off[id] : t->tok_off[id]);
        size_t n = added ? t->dec_len[id] : t->tok_len[id], o = 0;
        int is_byte = 0;
        for (int k = 0; with_bytes && k < 256 && !is_byte; k++) is_byte = t->byte_id[k] == (int32_t)id ? k + 1 : 0;
        if (need_buf(L, n + 1)) return LLMC_ERR_NOMEM;
        if (is_byte) {
            L->buf[o++] = (uint8_t)(is_byte - 1);
        } else {
            for (size_t i = 0; i < n; i++) {
                if (i + 3 <= n && !memcmp(b + i, META, 3)) {
                    L->buf[o++] = ' ';
                    i += 2;
                } else {
                    L->buf[o++] = b[i];
                }
            }
        }
        llmc_status st = llmc_tok_set_decode(t, (int64_t)id, L->buf, o);
        if (st) return st;
    }
    t->strip_lead_space = strip;
    return LLMC_OK;
}

llmc_status llmc_tokenizer_from_hf_json(const char *data, size_t len, const char *what, llmc_tokenizer **out) {
    *out = NULL;
    llmc_json_doc *doc;
    llmc_status st = llmc_json_parse(data, len, what, &doc);
    if (st) return st;
    const llmc_json *root = llmc_json_root(doc);
    loader L = {0};
    L.what = what;
    byte_level_inverse(L.inv);
    L.t = llmc_tok_new();
    int sp_decoder = 0;
    if (!L.t) {
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    L.t->id_limit = len + ((size_t)1 << 20); /* each vocabulary entry takes bytes of the file: larger ids are absurd */
    if (!llmc_json_is(root, LLMC_JSON_OBJECT)) {
        st = llmc_fail(LLMC_ERR_FORMAT, "%s: the top level is not an object", what);
        goto done;
    }
    const llmc_json *trunc = llmc_json_get(root, "truncation"), *pad = llmc_json_get(root, "padding");
    if ((trunc && trunc->type != LLMC_JSON_NULL) || (pad && pad->type != LLMC_JSON_NULL)) {
        st = unsupported(&L, "truncation/padding", "set them to null");
        goto done;
    }
    const llmc_json *dec = llmc_json_get(root, "decoder");
    if (is_type(dec, "ByteLevel")) L.byte_level = 1;
    if ((st = load_normalizer(&L, llmc_json_get(root, "normalizer"))) || (st = load_pre(&L, llmc_json_get(root, "pre_tokenizer"))) ||
        (st = load_decoder(&L, dec, &sp_decoder)) || (st = load_model(&L, llmc_json_get(root, "model"))) ||
        (st = load_added(&L, llmc_json_get(root, "added_tokens"))) ||
        (st = load_post(&L, llmc_json_get(root, "post_processor"))))
        goto done;
    if (sp_decoder == 1 && (st = sp_decode_table(&L, 1, 1))) goto done;
    if (sp_decoder >= 6 && sp_decoder <= 8 && (st = sp_decode_table(&L, sp_decoder == 6, sp_decoder == 7))) goto done;
    if ((sp_decoder == 4 || sp_decoder == 5) && (st = sp_decode_table(&L, 0, sp_decoder == 5 ? 2 : 0))) goto done;
    if ((sp_decoder == 2 || sp_decoder == 3) && (st = wp_decode_table(&L, sp_decoder == 3))) goto done;
    if (L.t->model == LLMC_MODEL_WORDPIECE && L.t->bert_pre == 0) {
        st = unsupported(&L, "WordPiece without BertPreTokenizer", "other pre-tokenizers");
        goto done;
    }
    for (size_t k = 0; k < L.t->n_prefix + L.t->n_suffix; k++) {
        int32_t id = k < L.t->n_prefix ? L.t->prefix_ids[k] : L.t->suffix_ids[k - L.t->n_prefix];
        if ((size_t)id >= L.t->n_vocab || L.t->tok_len[id] == UINT32_MAX) {
            st = llmc_fail(LLMC_ERR_FORMAT, "%s: post-processor id %d is not a token", what, id);
            goto done;
        }
    }
    if ((st = llmc_tok_finish(L.t))) goto done;
    *out = L.t;
    L.t = NULL;
done:
    llmc_tokenizer_free(L.t);
    llmc_free(L.buf);
    llmc_json_free(doc);
    return st;
}
