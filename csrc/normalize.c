/* normalize.c: HF tokenizers' normalizers as a list of steps (a Sequence, flattened), each rewriting the text the
 * step before it produced: NFC / NFD / NFKC / NFKD, Precompiled (SentencePiece's charsmap, HF's grapheme rule),
 * Strip (White_Space at either end), Replace (a string or a regex, every non-overlapping match), Prepend (only to a
 * non-empty text) and Lowercase (Rust's char::to_lowercase: full mappings, no context rules).
 * HF normalizes each piece of the text between added tokens on its own; so does the caller. */
#include <string.h>

#include "regex.h"
#include "tok_internal.h"
#include "unicode.h"

void llmc_norm_steps_free(llmc_norm_step *steps, size_t n) {
    for (size_t i = 0; i < n; i++) {
        llmc_regex_free(steps[i].re);
        llmc_free(steps[i].pat);
        llmc_free(steps[i].rep);
        llmc_charsmap_free(steps[i].cm);
    }
    llmc_free(steps);
}

static inline llmc_status put(uint8_t **o, size_t *len, size_t *cap, const uint8_t *b, size_t n) {
    size_t need;
    if (!llmc_add_ok(*len, n, &need) || llmc_grow((void **)o, cap, need + 1, 1, "normalised text")) return LLMC_ERR_NOMEM;
    if (n) memcpy(*o + *len, b, n);
    *len = need;
    return LLMC_OK;
}

/* Strip: drop White_Space characters at the left and/or right end. */
static void strip(const uint8_t *s, size_t n, int left, int right, size_t *a, size_t *b) {
    size_t i = 0, e = n, l;
    while (left && i < n) {
        uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
        if (!(llmc_uflags(cp) & LLMC_U_WS)) break;
        i += l;
    }
    while (right && e > i) { /* back to the start of the last character */
        size_t k = e - 1;
        while (k > i && (s[k] & 0xC0) == 0x80 && e - k < 4) k--;
        uint32_t cp = llmc_utf8_next(s + k, e - k, &l);
        if (k + l != e) cp = LLMC_BAD_CP; /* the last byte alone is invalid */
        if (!(llmc_uflags(cp) & LLMC_U_WS)) break;
        e = k + l == e ? k : e - 1;
    }
    *a = i;
    *b = e;
}

/* Replace every non-overlapping match of the step's string or regex by its content, left to right. */
static llmc_status replace(const llmc_norm_step *st, llmc_regex_scratch *rx, const uint8_t *s, size_t n, uint8_t **o,
                           size_t *len, size_t *cap) {
    size_t prev = 0;
    llmc_status rc = LLMC_OK;
    if (st->kind == LLMC_NZ_REPLACE_STRING) {
        for (size_t i = 0; !rc && st->pat_len && i + st->pat_len <= n;) {
            if (!memcmp(s + i, st->pat, st->pat_len)) {
                if (!(rc = put(o, len, cap, s + prev, i - prev))) rc = put(o, len, cap, st->rep, st->rep_len);
                i = prev = i + st->pat_len;
            } else {
                i++;
            }
        }
    } else { /* a regex: the matches onig's find_iter reports (an empty match right after a match is skipped) */
        size_t from = 0, last_end = 0;
        int have_last = 0;
        while (!rc && from <= n) {
            size_t ms, me;
            int r = llmc_regex_find(st->re, rx, s, n, from, &ms, &me);
            if (r < 0) return llmc_fail(LLMC_ERR_NOMEM, "out of memory for the regex matcher");
            if (!r) break;
            if (ms == me && have_last && me == last_end) {
                if (from >= n) break;
                size_t l;
                llmc_utf8_next(s + from, n - from, &l);
                from += l;
                continue;
            }
            if (!(rc = put(o, len, cap, s + prev, ms - prev))) rc = put(o, len, cap, st->rep, st->rep_len);
            prev = last_end = me;
            have_last = 1;
            from = me;
        }
    }
    if (!rc && prev < n) rc = put(o, len, cap, s + prev, n - prev);
    return rc;
}

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

// s: (n,) -> *out: (*out_n,) after every step (a new llmc_malloc buffer); *lead_dropped (may be NULL) = 1 when a
// step deleted the text's first character (Strip, a Replace or Precompiled rule with an empty replacement at the
// start): HF then no longer sees the text as starting at offset 0 (Metaspace's prepend_scheme "first")
llmc_status llmc_normalize_steps(const llmc_norm_step *steps, size_t n_steps, const uint8_t *s, size_t n,
                                 uint8_t **out, size_t *out_n, int *lead_dropped) {
    uint8_t *cur = llmc_malloc(n + 1, "normalised text");
    if (!cur) return LLMC_ERR_NOMEM;
    if (n) memcpy(cur, s, n);
    size_t len = n;
    llmc_regex_scratch rx = {0};
    llmc_status st = LLMC_OK;
    int dropped = 0;
    for (size_t k = 0; !st && k < n_steps; k++) {
        const llmc_norm_step *sp = &steps[k];
        uint8_t *o = NULL;
        size_t ol = 0, cap = 0;
        switch (sp->kind) {
        case LLMC_NZ_NFC: st = llmc_nfc(cur, len, &o, &ol); break;
        case LLMC_NZ_NFD: st = llmc_nfd(cur, len, &o, &ol); break;
        case LLMC_NZ_NFKC: st = llmc_nfkc(cur, len, &o, &ol); break;
        case LLMC_NZ_NFKD: st = llmc_nfkd(cur, len, &o, &ol); break;
        case LLMC_NZ_PRECOMPILED: {
            st = llmc_charsmap_normalize_hf(sp->cm, cur, len, &o, &ol);
            const uint8_t *rep;
            size_t rl, g = len ? llmc_grapheme_next(cur, len, 0) : 0;
            /* the first grapheme (or its first character) rewritten to nothing */
            if (!st && len && g < 6 && llmc_charsmap_match(sp->cm, cur, g, 0, &rep, &rl)) dropped |= rl == 0;
            else if (!st && len && llmc_charsmap_match(sp->cm, cur, llmc_utf8_seq(cur, len), 0, &rep, &rl))
                dropped |= rl == 0;
            break;
        }
        case LLMC_NZ_STRIP: {
            size_t a, b;
            strip(cur, len, sp->left, sp->right, &a, &b);
            dropped |= a > 0;
            st = put(&o, &ol, &cap, cur + a, b - a);
            break;
        }
        case LLMC_NZ_REPLACE_STRING:
        case LLMC_NZ_REPLACE_REGEX:
            st = replace(sp, &rx, cur, len, &o, &ol, &cap);
            if (!st && !sp->rep_len && len) { /* did a match at the start delete text? */
                size_t ms = 0, me = 0;
                if (sp->kind == LLMC_NZ_REPLACE_STRING) dropped |= sp->pat_len <= len && !memcmp(cur, sp->pat, sp->pat_len);
                else if (llmc_regex_find(sp->re, &rx, cur, len, 0, &ms, &me) > 0) dropped |= ms == 0 && me > 0;
            }
            break;
        case LLMC_NZ_PREPEND:
            if (len && !(st = put(&o, &ol, &cap, sp->rep, sp->rep_len))) st = put(&o, &ol, &cap, cur, len);
            else if (!len) st = put(&o, &ol, &cap, cur, 0);
            break;
        case LLMC_NZ_LOWERCASE:
            for (size_t i = 0; !st && i < len;) {
                size_t l;
                uint32_t cp = llmc_utf8_next(cur + i, len - i, &l), lo[3];
                if (cp == LLMC_BAD_CP || cp < 0x80) {
                    uint8_t c = cur[i];
                    if (cp != LLMC_BAD_CP && c >= 'A' && c <= 'Z') c = (uint8_t)(c + 32);
                    st = put(&o, &ol, &cap, &c, 1);
                } else {
                    size_t m = lower(cp, lo);
                    uint8_t b[12];
                    size_t bl = 0;
                    for (size_t j = 0; j < m; j++) bl += llmc_utf8_put(lo[j], b + bl);
                    st = put(&o, &ol, &cap, b, bl);
                }
                i += l;
            }
            break;
        default: st = llmc_fail(LLMC_ERR_INTERNAL, "unknown normalizer step %d", sp->kind);
        }
        if (!st && !o) st = put(&o, &ol, &cap, cur, 0); /* an empty result still needs a buffer */
        llmc_free(cur);
        cur = o;
        len = ol;
    }
    llmc_regex_scratch_free(&rx);
    if (st) {
        llmc_free(cur);
        return st;
    }
    if (lead_dropped) *lead_dropped = dropped;
    *out = cur;
    *out_n = len;
    return LLMC_OK;
}
