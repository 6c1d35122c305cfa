/* wordpiece.c: BERT-style tokenization as in HF tokenizer.json files: BertNormalizer (clean text, space around CJK
 * ideographs, strip accents, lowercase), BertPreTokenizer (split on whitespace, each punctuation character alone)
 * and the WordPiece model (greedy longest-match-first with a "##" continuation prefix, unk for unmatched words). */
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

/* Rust's char::is_whitespace (= White_Space), which BertNormalizer and BertPreTokenizer use */
static inline int bert_space(uint32_t cp) { return cp != LLMC_BAD_CP && (llmc_uflags(cp) & LLMC_U_WS); }

/* BERT punctuation: the ASCII punctuation ranges, or any \p{P} */
static inline int bert_punct(uint32_t cp) {
    if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126))
        return 1;
    return cp != LLMC_BAD_CP && (llmc_uflags(cp) & LLMC_U_P);
}

/* The CJK ideograph blocks that BertNormalizer surrounds with spaces */
static inline int bert_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
           (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* Lower-case mapping of cp (1..3 code points) into out; returns the count. */
static size_t lower(uint32_t cp, uint32_t *out) {
    size_t lo = 0, hi = llmc_lower_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (llmc_lower_table[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < llmc_lower_count && llmc_lower_table[lo][0] == cp) {
        size_t k = 0;
        for (; k < 3 && llmc_lower_table[lo][1 + k]; k++) out[k] = llmc_lower_table[lo][1 + k];
        return k;
    }
    out[0] = cp;
    return 1;
}

// s: (n,) UTF-8 -> *out: (*out_n,) normalised UTF-8. Stages in HF's order: clean, CJK, strip accents, lowercase.
llmc_status llmc_bert_normalize(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n) {
    int f = t->bert_norm;
    size_t cap;
    /* stage 1 output: every character can become " c " (3 + 4 + ... bytes): 3x plus slack */
    if (!llmc_mul_ok(n + 1, 3, &cap)) return llmc_fail(LLMC_ERR_NOMEM, "text too long");
    uint8_t *a = llmc_malloc(cap, "normalised text");
    if (!a) return LLMC_ERR_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l;
        uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
        i += l;
        if (cp == LLMC_BAD_CP) cp = 0xFFFD; /* invalid bytes read as U+FFFD (removed by clean_text) */
        if (f & LLMC_BERT_CLEAN) {
            if (cp == 0 || cp == 0xFFFD || (cp != '\t' && cp != '\n' && cp != '\r' && (llmc_uflags(cp) & LLMC_U_C)))
                continue; /* control characters go */
            if (bert_space(cp)) cp = ' ';
        }
        if ((f & LLMC_BERT_CHINESE) && bert_cjk(cp)) {
            a[o++] = ' ';
            o += llmc_utf8_put(cp, a + o);
            a[o++] = ' ';
        } else {
            o += llmc_utf8_put(cp, a + o);
        }
    }
    if (f & LLMC_BERT_STRIP_ACCENTS) { /* NFD, then drop Mn */
        uint8_t *d;
        size_t dn;
        llmc_status st = llmc_nfd(a, o, &d, &dn);
        llmc_free(a);
        if (st) return st;
        size_t w = 0;
        for (size_t i = 0; i < dn;) {
            size_t l;
            uint32_t cp = llmc_utf8_next(d + i, dn - i, &l);
            if (!(llmc_uflags(cp) & LLMC_U_MN)) {
                memmove(d + w, d + i, l); /* w <= i */
                w += l;
            }
            i += l;
        }
        a = d;
        o = w;
    }
    if (f & LLMC_BERT_LOWERCASE) { /* a lower-case mapping is at most 3 code points: 12 bytes per input byte */
        uint8_t *b = llmc_malloc(o * 3 + 16, "normalised text");
        if (!b) {
            llmc_free(a);
            return LLMC_ERR_NOMEM;
        }
        size_t w = 0;
        for (size_t i = 0; i < o;) {
            size_t l;
            uint32_t cp = llmc_utf8_next(a + i, o - i, &l), lo[3];
            if (cp == LLMC_BAD_CP) {
                b[w++] = a[i];
            } else if (cp < 0x80) {
                b[w++] = (uint8_t)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
            } else {
                size_t k = lower(cp, lo);
                for (size_t j = 0; j < k; j++) w += llmc_utf8_put(lo[j], b + w);
            }
            i += l;
        }
        llmc_free(a);
        a = b;
        o = w;
    }
    *out = a;
    *out_n = o;
    return LLMC_OK;
}

size_t llmc_bert_pretok_next(const uint8_t *s, size_t n, size_t *i) {
    size_t j = *i, l;
    while (j < n) { /* skip whitespace (removed) */
        uint32_t cp = llmc_utf8_next(s + j, n - j, &l);
        if (!bert_space(cp)) break;
        j += l;
    }
    *i = j;
    if (j >= n) return n;
    uint32_t cp = llmc_utf8_next(s + j, n - j, &l);
    if (bert_punct(cp)) return j + l; /* punctuation stands alone */
    while (j < n) {
        cp = llmc_utf8_next(s + j, n - j, &l);
        if (bert_space(cp) || bert_punct(cp)) break;
        j += l;
    }
    return j;
}

// w: (n,) bytes of one word -> out: (*k,) ids. Greedy longest match from the left; "##" before non-initial parts.
llmc_status llmc_wordpiece_word(const llmc_tokenizer *t, const uint8_t *w, size_t n, int32_t *out, size_t *k) {
    size_t chars = 0;
    for (size_t i = 0; i < n; i++) chars += (w[i] & 0xC0) != 0x80; /* count code points */
    *k = 0;
    if (chars > t->wp_max_chars) goto unk;
    uint8_t stack[320];
    uint8_t *buf = n + t->wp_prefix_len <= sizeof stack ? stack : llmc_malloc(n + t->wp_prefix_len, "WordPiece buffer");
    if (!buf) return LLMC_ERR_NOMEM;
    size_t start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (start < end) {
            size_t pl = start > 0 ? t->wp_prefix_len : 0; /* "##" + w[start..end) for non-initial parts */
            memcpy(buf, t->wp_prefix, pl);
            memcpy(buf + pl, w + start, end - start);
            if ((found = llmc_tok_lookup(t, buf, pl + end - start)) >= 0) break;
            do end--; /* step back one code point */
            while (end > start && (w[end] & 0xC0) == 0x80);
        }
        if (found < 0) {
            if (buf != stack) llmc_free(buf);
            *k = 0;
            goto unk;
        }
        out[(*k)++] = found;
        start = end;
    }
    if (buf != stack) llmc_free(buf);
    return LLMC_OK;
unk:
    if (t->unk_id < 0)
        return llmc_fail(LLMC_ERR_INVALID, "WordPiece: word '%.*s' has no tokens and the model has no unk token",
                         (int)(n > 200 ? 200 : n), (const char *)w);
    out[(*k)++] = t->unk_id;
    return LLMC_OK;
}
