/* pretokenize.c: the pre-tokenization regexes of GPT-2, cl100k, o200k, Llama 3 and Qwen 2 as hand-written
 * scanners. Each llmc_pretok_next(kind, s, n, i) returns the end of the match the regex (leftmost-first,
 * backtracking semantics, as in tiktoken's fancy-regex and HF's Oniguruma) finds at byte i. Unicode classes come
 * from the generated tables in unicode_tables.c.
 *
 * The regexes (from tiktoken's / the tokenizer.json's pattern strings):
 *  gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *  cl100k (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|
 *         \s+(?!\S)|\s+                      (llama3: the same; qwen2: \p{N} instead of \p{N}{1,3})
 *  o200k  [^\r\n\p{L}\p{N}]?[UP]*[LO]+C?|[^\r\n\p{L}\p{N}]?[UP]+[LO]*C?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|
 *         \s*[\r\n]+|\s+(?!\S)|\s+   with UP = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], LO = [\p{Ll}\p{Lm}\p{Lo}\p{M}],
 *         C = the contractions ('s|'S|'t|...), case-insensitive in ASCII. */
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

#define END_CP 0xFFFFFFFFu /* "no character": past the end of the text */

/* Code point at byte i (END_CP at the end), its byte length in *len. */
static inline uint32_t cp_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    if (i >= n) {
        *len = 0;
        return END_CP;
    }
    if (s[i] < 0x80) {
        *len = 1;
        return s[i];
    }
    return llmc_utf8_next(s + i, n - i, len);
}

/* Class flags; END_CP and LLMC_BAD_CP have none (both > 0x10FFFF). */
static inline unsigned cls(uint32_t cp) { return llmc_uflags(cp); }

/* [^\s\p{L}\p{N}]: a real character (not the end) that is no space, letter or number */
static inline int is_other(uint32_t cp) { return cp != END_CP && !(cls(cp) & (LLMC_U_WS | LLMC_U_L | LLMC_U_N)); }

/* End of the run of characters with any of `mask` starting at i. */
static inline size_t run(const uint8_t *s, size_t n, size_t i, unsigned mask) {
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            if (!(cls(s[i]) & mask)) break;
            i++;
            continue;
        }
        size_t l;
        uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
        if (!(cls(cp) & mask)) break;
        i += l;
    }
    return i;
}

/* End of a run of [^\s\p{L}\p{N}] characters starting at j. */
static inline size_t run_other(const uint8_t *s, size_t n, size_t j) {
    while (j < n) {
        size_t l;
        if (!is_other(cp_at(s, n, j, &l))) break;
        j += l;
    }
    return j;
}

/* \p{N}{1,max}: j is just past the first digit; returns the end after at most max - 1 more digits. */
static inline size_t digits_upto(const uint8_t *s, size_t n, size_t j, size_t max) {
    for (size_t d = 1; d < max && j < n; d++) {
        size_t l;
        if (!(cls(cp_at(s, n, j, &l)) & LLMC_U_N)) break;
        j += l;
    }
    return j;
}

/* Length of a contraction after the apostrophe at s[i-1] ('s 't 'm 'd 're 've 'll), 0 if none. ci = 0: exact;
 * 1: ASCII case-insensitive (cl100k's and o200k's 's|'S|'t|'T|... alternatives); 2: (?i:...) as Oniguruma and the
 * regex crate fold it, where U+017F LATIN SMALL LETTER LONG S also matches 's' (tested against both). */
static inline size_t contraction(const uint8_t *s, size_t n, size_t i, int ci) {
    if (i >= n) return 0;
    if (ci == 2 && s[i] == 0xC5 && i + 1 < n && s[i + 1] == 0xBF) return 2; /* 'ſ */
    uint8_t a = s[i], b = i + 1 < n ? s[i + 1] : 0;
    if (ci) { /* fold ASCII letters to lower case */
        if (a >= 'A' && a <= 'Z') a = (uint8_t)(a + 32);
        if (b >= 'A' && b <= 'Z') b = (uint8_t)(b + 32);
    }
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 1;
    if ((a == 'r' || a == 'v') && b == 'e') return 2;
    if (a == 'l' && b == 'l') return 2;
    return 0;
}

/* The whitespace alternatives at a whitespace character i:  [\s*[\r\n]+ |] \s+(?!\S) | \s+ */
static size_t ws_tail(const uint8_t *s, size_t n, size_t i, int newline_rule) {
    size_t j = i, last_start = i, last_nl_end = 0;
    while (j < n) {
        size_t l;
        uint32_t cp = cp_at(s, n, j, &l);
        if (!(cls(cp) & LLMC_U_WS)) break;
        if (cp == '\r' || cp == '\n') last_nl_end = j + 1; /* \s*[\r\n]+ ends after the run's last \r or \n */
        last_start = j;
        j += l;
    }
    if (newline_rule && last_nl_end) return last_nl_end;
    if (j == n) return j;                 /* \s+(?!\S) at the end of the text takes the whole run */
    if (last_start > i) return last_start; /* before a non-space: all but the last whitespace character */
    return j;                              /* a single space before a non-space: \s+ */
}

/* ---------------------------------------------------------------- GPT-2 */
static size_t next_gpt2(const uint8_t *s, size_t n, size_t i) {
    size_t l0, l1;
    uint32_t c0 = cp_at(s, n, i, &l0);
    if (c0 == '\'') {
        size_t k = contraction(s, n, i + 1, 0);
        if (k) return i + 1 + k;
    }
    size_t p = i;      /* start after the optional ' ' of " ?\p{L}+" etc. */
    uint32_t c = c0;   /* the character at p */
    size_t lc = l0;
    if (c0 == ' ') {
        uint32_t c1 = cp_at(s, n, i + 1, &l1);
        if (c1 != END_CP && !(cls(c1) & LLMC_U_WS)) { /* " ?" only helps when a non-space follows */
            p = i + 1;
            c = c1;
            lc = l1;
        }
    }
    unsigned f = cls(c);
    if (p > i || !(f & LLMC_U_WS)) {
        if (f & LLMC_U_L) return run(s, n, p + lc, LLMC_U_L);
        if (f & LLMC_U_N) return run(s, n, p + lc, LLMC_U_N);
        return run_other(s, n, p + lc); /* ?[^\s\p{L}\p{N}]+ */
    }
    return ws_tail(s, n, i, 0);
}

/* ---------------------------------------------------------------- cl100k / llama3 / qwen2 */
static size_t next_cl100k(const uint8_t *s, size_t n, size_t i, size_t max_digits, int ci) {
    size_t l0, l1;
    uint32_t c0 = cp_at(s, n, i, &l0);
    if (c0 == '\'') {
        size_t k = contraction(s, n, i + 1, ci);
        if (k) return i + 1 + k;
    }
    unsigned f0 = cls(c0);
    if (f0 & LLMC_U_L) return run(s, n, i + l0, LLMC_U_L); /* \p{L}+ (the optional prefix cannot be a letter) */
    if (!(f0 & LLMC_U_N) && c0 != '\r' && c0 != '\n') {     /* [^\r\n\p{L}\p{N}]\p{L}+ */
        uint32_t c1 = cp_at(s, n, i + l0, &l1);
        if (cls(c1) & LLMC_U_L) return run(s, n, i + l0 + l1, LLMC_U_L);
    }
    if (f0 & LLMC_U_N) return digits_upto(s, n, i + l0, max_digits); /* \p{N}{1,max_digits} */
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    size_t p = i;
    if (c0 == ' ' && is_other(cp_at(s, n, i + 1, &l1))) p = i + 1;
    if (p > i || is_other(c0)) {
        size_t j = run_other(s, n, p);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    return ws_tail(s, n, i, 1);
}

/* ---------------------------------------------------------------- o200k */
/* An o200k contraction may follow a word: returns the end after it (or e). */
static inline size_t o200k_contr(const uint8_t *s, size_t n, size_t e) {
    if (e < n && s[e] == '\'') {
        size_t k = contraction(s, n, e + 1, 1);
        if (k) return e + 1 + k;
    }
    return e;
}

/* [UP]*[LO]+ at p with regex backtracking; 0 if it cannot match. The UP run is greedy; if the character after it
 * is no LO, the engine gives UP characters back until one of them is LO (Lm, Lo, M are in both classes). */
static size_t o200k_upper_lower(const uint8_t *s, size_t n, size_t p) {
    size_t j = p, last_lo_end = 0;
    while (j < n) {
        size_t l;
        unsigned f = cls(cp_at(s, n, j, &l));
        if (!(f & LLMC_U_UP)) break;
        if (f & LLMC_U_LO) last_lo_end = j + l;
        j += l;
    }
    size_t l;
    if (cls(cp_at(s, n, j, &l)) & LLMC_U_LO) return run(s, n, j, LLMC_U_LO); /* [LO]+ right after the UP run */
    return last_lo_end; /* the last LO inside the run ends [LO]+ (what follows it is not LO), or 0 */
}

static size_t next_o200k(const uint8_t *s, size_t n, size_t i) {
    size_t l0, l1;
    uint32_t c0 = cp_at(s, n, i, &l0);
    unsigned f0 = cls(c0);
    int prefixable = c0 != '\r' && c0 != '\n' && !(f0 & (LLMC_U_L | LLMC_U_N)); /* [^\r\n\p{L}\p{N}] */
    size_t e;
    /* alternative 1: prefix? [UP]*[LO]+ contraction? (with the prefix first, then without) */
    if (prefixable && (e = o200k_upper_lower(s, n, i + l0))) return o200k_contr(s, n, e);
    if ((e = o200k_upper_lower(s, n, i))) return o200k_contr(s, n, e);
    /* alternative 2: prefix? [UP]+[LO]* contraction? */
    if (prefixable) {
        e = run(s, n, i + l0, LLMC_U_UP);
        if (e > i + l0) return o200k_contr(s, n, run(s, n, e, LLMC_U_LO));
    }
    e = run(s, n, i, LLMC_U_UP);
    if (e > i) return o200k_contr(s, n, run(s, n, e, LLMC_U_LO));
    if (f0 & LLMC_U_N) return digits_upto(s, n, i + l0, 3); /* \p{N}{1,3} */
    /*  ?[^\s\p{L}\p{N}]+[\r\n/]* */
    size_t p = i;
    if (c0 == ' ' && is_other(cp_at(s, n, i + 1, &l1))) p = i + 1;
    if (p > i || is_other(c0)) {
        size_t j = run_other(s, n, p);
        while (j < n && (s[j] == '\r' || s[j] == '\n' || s[j] == '/')) j++;
        return j;
    }
    return ws_tail(s, n, i, 1);
}

size_t llmc_pretok_next(int kind, const uint8_t *s, size_t n, size_t i) {
    switch (kind) {
    case LLMC_PRE_GPT2: return next_gpt2(s, n, i);
    case LLMC_PRE_CL100K: return next_cl100k(s, n, i, 3, 1);
    case LLMC_PRE_LLAMA3: return next_cl100k(s, n, i, 3, 2);
    case LLMC_PRE_QWEN2: return next_cl100k(s, n, i, 1, 2);
    case LLMC_PRE_O200K: return next_o200k(s, n, i);
    default: return n;
    }
}

static const struct {
    const char *name;
    int kind;
} names[] = {{"gpt2", LLMC_PRE_GPT2},     {"r50k", LLMC_PRE_GPT2},     {"cl100k", LLMC_PRE_CL100K},
             {"cl100k_base", LLMC_PRE_CL100K}, {"gpt4", LLMC_PRE_CL100K}, {"o200k", LLMC_PRE_O200K},
             {"o200k_base", LLMC_PRE_O200K}, {"llama3", LLMC_PRE_LLAMA3}, {"qwen2", LLMC_PRE_QWEN2},
             {"none", LLMC_PRE_NONE}};

int llmc_pretok_from_name(const char *name) {
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(names[k].name, name)) return names[k].kind;
    return -1;
}

const char *llmc_pretok_name(int kind) {
    static const char *n[] = {"none", "gpt2", "cl100k", "o200k", "llama3", "qwen2"};
    return kind >= 0 && kind <= 5 ? n[kind] : "?";
}

/* The exact pattern strings (as in the tiktoken .json files and the HF tokenizer.json files). */
static const struct {
    const char *pat;
    int kind;
} regexes[] = {
    {"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", LLMC_PRE_GPT2},
    {"('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LLMC_PRE_CL100K},
    {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+('s|'S|'t|'T|'re|'rE|"
     "'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+"
     "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)?|"
     "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LLMC_PRE_O200K},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LLMC_PRE_LLAMA3},
    {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
     "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
     LLMC_PRE_QWEN2},
};

int llmc_pretok_from_regex(const char *pat, size_t len) {
    for (size_t k = 0; k < sizeof regexes / sizeof regexes[0]; k++)
        if (strlen(regexes[k].pat) == len && !memcmp(regexes[k].pat, pat, len))
            return regexes[k].kind;
    return -1;
}

const char *llmc_pretok_regex(int kind) {
    for (size_t k = 0; k < sizeof regexes / sizeof regexes[0]; k++)
        if (regexes[k].kind == kind) return regexes[k].pat;
    return NULL;
}

const char *llmc_pretokenizer_regex(const char *name) {
    int kind = llmc_pretok_from_name(name);
    if (kind >= 0) return llmc_pretok_regex(kind);
    for (size_t k = 0; k < sizeof regexes / sizeof regexes[0]; k++) /* an exact known regex names itself */
        if (!strcmp(regexes[k].pat, name)) return regexes[k].pat;
    return NULL;
}
