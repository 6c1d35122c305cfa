/* spm_charsmap.c: SentencePiece's precompiled_charsmap, the normalisation rules a .model file (and HF's Precompiled
 * normalizer) carries: a Darts-clone double-array trie over UTF-8 keys whose values are offsets of NUL-terminated
 * replacement strings.
 *
 * Layout: u32 little-endian trie size in bytes, the trie (u32 units), then the replacement strings. A unit holds
 * (Darts-clone): bit 8 has_leaf, bits 10.. the offset (shifted by 8 more when bit 9 is set), the label in the low
 * byte (bit 31 set marks a leaf unit, whose low 31 bits are the value). Walking key byte c from node p:
 * p ^= c; unit = units[p] must carry label c; p ^= offset(unit); when has_leaf(unit), units[p] is a leaf holding
 * the value of the key read so far. Every index is checked against the array: a corrupt map is an error or a
 * non-match, never a read out of bounds.
 *
 * Two ways to apply it:
 *  - SentencePiece (normalizer.cc): at each position the LONGEST key that prefixes the rest of the text;
 *  - HF tokenizers (spm_precompiled): per extended grapheme cluster, the whole cluster when it is shorter than 6
 *    bytes and the SHORTEST key that prefixes it matches (the whole cluster becomes that key's replacement), else
 *    character by character. */
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

struct llmc_charsmap {
    uint32_t *units;  /* (n_units,) */
    size_t n_units;
    uint8_t *pool;    /* replacement strings (pool_len bytes + a NUL) */
    size_t pool_len;
    uint8_t ascii_kind[128]; /* llmc_charsmap_first of each ASCII byte */
};

static inline uint32_t unit_offset(uint32_t u) { return (u >> 10) << ((u & (1u << 9)) >> 6); }
static inline uint32_t unit_label(uint32_t u) { return u & (0x80000000u | 0xFFu); }
static inline int unit_has_leaf(uint32_t u) { return (u >> 8) & 1; }
static inline uint32_t unit_value(uint32_t u) { return u & 0x7FFFFFFFu; }

// blob: (len,) bytes of a precompiled_charsmap -> *out
llmc_status llmc_charsmap_parse(const uint8_t *blob, size_t len, llmc_charsmap **out) {
    *out = NULL;
    if (len < 4) return llmc_fail(LLMC_ERR_FORMAT, "precompiled_charsmap: %zu bytes is too short for its header", len);
    uint32_t trie_bytes = (uint32_t)blob[0] | (uint32_t)blob[1] << 8 | (uint32_t)blob[2] << 16 | (uint32_t)blob[3] << 24;
    if (trie_bytes > len - 4 || trie_bytes % 4)
        return llmc_fail(LLMC_ERR_FORMAT,
                         "precompiled_charsmap: trie size %u does not fit the %zu bytes that follow (or is not a "
                         "multiple of 4)", trie_bytes, len - 4);
    size_t pool_len = len - 4 - trie_bytes;
    const uint8_t *pool = blob + 4 + trie_bytes;
    for (size_t i = 0; i < pool_len;) { /* HF refuses replacement strings that are not UTF-8 */
        size_t l = llmc_utf8_seq(pool + i, pool_len - i);
        if (pool[i] == 0) l = 1;
        if (!l) return llmc_fail(LLMC_ERR_FORMAT, "precompiled_charsmap: replacement byte %zu is not UTF-8", i);
        i += l;
    }
    llmc_charsmap *cm = llmc_calloc(1, sizeof *cm, "charsmap");
    if (!cm) return LLMC_ERR_NOMEM;
    cm->n_units = trie_bytes / 4;
    cm->units = llmc_malloc(trie_bytes + 4, "charsmap trie");
    cm->pool = llmc_malloc(pool_len + 1, "charsmap strings");
    if (!cm->units || !cm->pool) {
        llmc_charsmap_free(cm);
        return LLMC_ERR_NOMEM;
    }
    for (size_t k = 0; k < cm->n_units; k++) {
        const uint8_t *b = blob + 4 + 4 * k;
        cm->units[k] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    }
    if (pool_len) memcpy(cm->pool, pool, pool_len);
    cm->pool[pool_len] = 0;
    cm->pool_len = pool_len;
    for (int c = 0; c < 128; c++) cm->ascii_kind[c] = (uint8_t)llmc_charsmap_first(cm, (uint8_t)c);
    *out = cm;
    return LLMC_OK;
}

void llmc_charsmap_free(llmc_charsmap *cm) {
    if (!cm) return;
    llmc_free(cm->units);
    llmc_free(cm->pool);
    llmc_free(cm);
}

// key: (n,) bytes -> the length of the shortest (longest = 0) or longest key that prefixes it (0: none), with its
// replacement in *rep[0..*rep_len)
size_t llmc_charsmap_match(const llmc_charsmap *cm, const uint8_t *key, size_t n, int longest, const uint8_t **rep,
                           size_t *rep_len) {
    if (!cm->n_units) return 0;
    size_t p = unit_offset(cm->units[0]), found = 0;
    uint32_t value = 0;
    for (size_t i = 0; i < n; i++) {
        if (key[i] == 0) break; /* keys never hold NUL */
        p ^= key[i];
        if (p >= cm->n_units) break;
        uint32_t u = cm->units[p];
        if (unit_label(u) != key[i]) break;
        p ^= unit_offset(u);
        if (p >= cm->n_units) break;
        if (unit_has_leaf(u)) {
            value = unit_value(cm->units[p]);
            found = i + 1;
            if (!longest) break;
        }
    }
    if (!found || value > cm->pool_len) return 0; /* a value outside the strings: no rule */
    *rep = cm->pool + value;
    *rep_len = strlen((const char *)cm->pool + value); /* the pool ends with a NUL */
    return found;
}

/* Which keys start with byte c (LLMC_CM_*); computed once per map into ascii_kind. */
int llmc_charsmap_first(const llmc_charsmap *cm, uint8_t c) {
    if (!cm->n_units || !c) return LLMC_CM_NONE;
    size_t p = unit_offset(cm->units[0]) ^ c;
    if (p >= cm->n_units || unit_label(cm->units[p]) != c) return LLMC_CM_NONE;
    uint32_t u = cm->units[p];
    if (unit_has_leaf(u)) return LLMC_CM_ANY; /* c alone is a key */
    p ^= unit_offset(u);
    for (uint32_t d = 1; d < 0x80; d++) { /* a key c, d... with an ASCII second byte? */
        size_t q = p ^ d;
        if (q < cm->n_units && unit_label(cm->units[q]) == d) return LLMC_CM_ANY;
    }
    return LLMC_CM_NON_ASCII_NEXT;
}

static inline llmc_status put(uint8_t **o, size_t *len, size_t *cap, const uint8_t *b, size_t n) {
    size_t need;
    if (!llmc_add_ok(*len, n, &need) || llmc_grow((void **)o, cap, need + 1, 1, "normalised text")) return LLMC_ERR_NOMEM;
    if (n) memcpy(*o + *len, b, n);
    *len = need;
    return LLMC_OK;
}

// s: (n,) UTF-8 -> *out: (*out_len,) as HF's Precompiled normalizer rewrites it (graphemes, shortest match)
llmc_status llmc_charsmap_normalize_hf(const llmc_charsmap *cm, const uint8_t *s, size_t n, uint8_t **out,
                                       size_t *out_len) {
    uint8_t *o = NULL;
    size_t len = 0, cap = 0;
    llmc_status st = llmc_grow((void **)&o, &cap, n + 16, 1, "normalised text") ? LLMC_ERR_NOMEM : LLMC_OK;
    const uint8_t *rep;
    size_t rl;
    for (size_t i = 0; !st && i < n;) {
        size_t r = i; /* a run of ASCII bytes that are clusters of their own (no CR LF) and start no rule there */
        while (r < n && s[r] < 0x80 && (r + 1 == n || (s[r + 1] < 0x80 && !(s[r] == '\r' && s[r + 1] == '\n'))) &&
               cm->ascii_kind[s[r]] != LLMC_CM_ANY)
            r++;
        if (r > i) { /* copied as they are */
            st = put(&o, &len, &cap, s + i, r - i);
            i = r;
            continue;
        }
        size_t g = llmc_grapheme_next(s, n, i);
        if (g - i < 6 && llmc_utf8_seq(s + i, n - i) && llmc_charsmap_match(cm, s + i, g - i, 0, &rep, &rl)) {
            st = put(&o, &len, &cap, rep, rl); /* the whole cluster becomes the first rule's replacement */
            i = g;
            continue;
        }
        while (!st && i < g) { /* character by character */
            size_t l = llmc_utf8_seq(s + i, g - i);
            if (l && llmc_charsmap_match(cm, s + i, l, 0, &rep, &rl)) st = put(&o, &len, &cap, rep, rl);
            else st = put(&o, &len, &cap, s + i, l ? l : 1); /* invalid bytes pass through */
            i += l ? l : 1;
        }
    }
    if (st) {
        llmc_free(o);
        return st;
    }
    *out = o;
    *out_len = len;
    return LLMC_OK;
}
