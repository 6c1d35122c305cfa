/* pretok_split.c: HF's general pre-tokenizers as a list of split steps (Split with a regex or a string, Digits,
 * Punctuation, Whitespace, WhitespaceSplit, ByteLevel's regex, BertPreTokenizer), applied the way tokenizers'
 * PreTokenizedString::split applies them: each step turns every current piece into the pieces it keeps, and empty
 * pieces vanish.
 *
 * A step's matches in a piece (find_matches) cover the piece as alternating (start, end, is_match) spans:
 *  - a regex: leftmost-first matches in turn; an empty match right where the previous match ended is skipped (the
 *    search moves one character on), as the onig and regex crates' find_iter do;
 *  - a hand-written scanner (a known regex): every piece it makes is a match (those regexes match everywhere);
 *  - a string: its non-overlapping occurrences;
 *  - a character predicate (Rust's char::is_whitespace, is_numeric, HF's is_punc): each such character alone.
 * The behaviour then decides (HF's SplitDelimiterBehavior, after `invert` swaps matches and the rest): Removed
 * drops matches; Isolated keeps every span; Contiguous joins neighbouring spans of the same kind; MergedWithPrevious
 * appends a match to the span before it, MergedWithNext prepends it to the span after it (only the first of
 * consecutive matches merges: HF's fold remembers whether the previous span was a match). */
#include <string.h>

#include "regex.h"
#include "tok_internal.h"
#include "unicode.h"

static int grow_pairs(size_t **p, size_t *cap, size_t need) {
    return llmc_grow((void **)p, cap, need, sizeof(size_t), "pre-tokenizer pieces");
}

/* Append span (a, b, match) to sc->m (triples). */
static inline int push_span(llmc_split_scratch *sc, size_t *k, size_t a, size_t b, size_t m) {
    if (grow_pairs(&sc->m, &sc->cap_m, 3 * (*k + 1))) return -1;
    sc->m[3 * *k] = a;
    sc->m[3 * *k + 1] = b;
    sc->m[3 * *k + 2] = m;
    (*k)++;
    return 0;
}

static inline int pred_has(int pred, uint32_t cp) {
    unsigned f = llmc_uflags(cp);
    switch (pred) {
    case LLMC_PRED_WHITESPACE: return (f & LLMC_U_WS) != 0;
    case LLMC_PRED_NUMERIC: return (f & LLMC_U_N) != 0;
    default: /* HF's is_punc: ASCII punctuation (symbols included) or a Unicode P* character */
        return (cp < 128 && ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) ||
                             (cp >= 123 && cp <= 126))) ||
               (f & LLMC_U_P);
    }
}

/* The spans of piece s[0..n) for one step into sc->m; *k = their count. Offsets are relative to s. */
static llmc_status find_matches(const llmc_pretok_step *st, llmc_split_scratch *sc, const uint8_t *s, size_t n,
                                size_t *k) {
    *k = 0;
    size_t prev = 0;
    if (st->kind == LLMC_STEP_KNOWN) {
        for (size_t i = 0; i < n;) {
            size_t e = llmc_pretok_next(st->known, s, n, i);
            if (push_span(sc, k, i, e, 1)) return LLMC_ERR_NOMEM;
            i = e;
        }
        return LLMC_OK;
    }
    if (st->kind == LLMC_STEP_PRED) {
        for (size_t i = 0; i < n;) {
            size_t l;
            uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
            if (pred_has(st->pred, cp)) {
                if (prev < i && push_span(sc, k, prev, i, 0)) return LLMC_ERR_NOMEM;
                if (push_span(sc, k, i, i + l, 1)) return LLMC_ERR_NOMEM;
                prev = i + l;
            }
            i += l;
        }
    } else if (st->kind == LLMC_STEP_STRING) {
        for (size_t i = 0; st->lit_len && i + st->lit_len <= n;) {
            if (!memcmp(s + i, st->lit, st->lit_len)) {
                if (prev < i && push_span(sc, k, prev, i, 0)) return LLMC_ERR_NOMEM;
                if (push_span(sc, k, i, i + st->lit_len, 1)) return LLMC_ERR_NOMEM;
                i = prev = i + st->lit_len;
            } else {
                i++;
            }
        }
    } else { /* LLMC_STEP_REGEX */
        if (!sc->rx && !(sc->rx = llmc_calloc(1, sizeof(llmc_regex_scratch), "regex scratch"))) return LLMC_ERR_NOMEM;
        size_t from = 0;
        int have_last = 0;
        size_t last_end = 0;
        while (from <= n) {
            size_t ms, me;
            int r = llmc_regex_find(st->re, sc->rx, s, n, from, &ms, &me);
            if (r < 0) return llmc_fail(LLMC_ERR_NOMEM, "out of memory for the regex matcher");
            if (!r) break;
            if (ms == me && have_last && me == last_end) { /* an empty match where the last one ended: step on */
                if (from >= n) break;
                size_t l;
                llmc_utf8_next(s + from, n - from, &l);
                from += l;
                continue;
            }
            if (prev < ms && push_span(sc, k, prev, ms, 0)) return LLMC_ERR_NOMEM;
            if (push_span(sc, k, ms, me, 1)) return LLMC_ERR_NOMEM;
            prev = last_end = me;
            have_last = 1;
            from = me;
        }
    }
    if (prev < n && push_span(sc, k, prev, n, 0)) return LLMC_ERR_NOMEM;
    return LLMC_OK;
}

/* Apply the behaviour to the spans (in place): the kept spans as (start, end, 0) triples; *k updated. */
static void apply_behavior(int behavior, int invert, size_t *m, size_t *k) {
    size_t n = *k, o = 0;
    if (invert)
        for (size_t i = 0; i < n; i++) m[3 * i + 2] = !m[3 * i + 2];
    int prev_match = 0;
    switch (behavior) {
    case LLMC_SPLIT_ISOLATED:
        for (size_t i = 0; i < n; i++) m[3 * i + 2] = 0;
        return;
    case LLMC_SPLIT_REMOVED:
        for (size_t i = 0; i < n; i++)
            if (!m[3 * i + 2]) {
                m[3 * o] = m[3 * i], m[3 * o + 1] = m[3 * i + 1], m[3 * o + 2] = 0;
                o++;
            }
        break;
    case LLMC_SPLIT_CONTIGUOUS:
    case LLMC_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int is_match = (int)m[3 * i + 2];
            int join = behavior == LLMC_SPLIT_CONTIGUOUS ? is_match == prev_match : is_match && !prev_match;
            if (join && o) {
                m[3 * (o - 1) + 1] = m[3 * i + 1];
            } else {
                m[3 * o] = m[3 * i], m[3 * o + 1] = m[3 * i + 1], m[3 * o + 2] = 0;
                o++;
            }
            prev_match = is_match;
        }
        break;
    case LLMC_SPLIT_MERGED_NEXT: /* HF folds from the end: a match joins the span after it */
        for (size_t i = n; i-- > 0;) {
            int is_match = (int)m[3 * i + 2];
            if (is_match && !prev_match && o) {
                m[3 * (n - o) + 0] = m[3 * i]; /* the span last written (at slot n - o) now starts here */
            } else {
                o++;
                m[3 * (n - o)] = m[3 * i], m[3 * (n - o) + 1] = m[3 * i + 1], m[3 * (n - o) + 2] = 0;
            }
            prev_match = is_match;
        }
        memmove(m, m + 3 * (n - o), 3 * o * sizeof(size_t)); /* the kept spans were written at the end */
        break;
    }
    *k = o;
}

llmc_status llmc_pretok_split(const llmc_pretok_step *steps, size_t n_steps, llmc_split_scratch *sc,
                              const uint8_t *s, size_t n, const size_t **out, size_t *n_out) {
    int cur = 0;
    size_t np = 0;
    if (n) {
        if (grow_pairs(&sc->pieces[0], &sc->cap[0], 2)) return LLMC_ERR_NOMEM;
        sc->pieces[0][0] = 0;
        sc->pieces[0][1] = n;
        np = 1;
    }
    for (size_t q = 0; q < n_steps; q++) {
        const llmc_pretok_step *st = &steps[q];
        int nx = !cur;
        size_t nn = 0;
        for (size_t p = 0; p < np; p++) {
            size_t a = sc->pieces[cur][2 * p], b = sc->pieces[cur][2 * p + 1], k;
            llmc_status rc = find_matches(st, sc, s + a, b - a, &k);
            if (rc) return rc;
            apply_behavior(st->behavior, st->invert, sc->m, &k);
            if (grow_pairs(&sc->pieces[nx], &sc->cap[nx], 2 * (nn + k))) return LLMC_ERR_NOMEM;
            for (size_t i = 0; i < k; i++) {
                if (sc->m[3 * i] == sc->m[3 * i + 1]) continue; /* empty pieces vanish */
                sc->pieces[nx][2 * nn] = a + sc->m[3 * i];
                sc->pieces[nx][2 * nn + 1] = a + sc->m[3 * i + 1];
                nn++;
            }
        }
        cur = nx;
        np = nn;
    }
    *out = sc->pieces[cur];
    *n_out = np;
    return LLMC_OK;
}

void llmc_split_scratch_free(llmc_split_scratch *sc) {
    llmc_free(sc->pieces[0]);
    llmc_free(sc->pieces[1]);
    llmc_free(sc->m);
    if (sc->rx) llmc_regex_scratch_free(sc->rx);
    llmc_free(sc->rx);
    memset(sc, 0, sizeof *sc);
}

void llmc_pretok_steps_free(llmc_pretok_step *steps, size_t n_steps) {
    for (size_t k = 0; k < n_steps; k++) {
        llmc_regex_free(steps[k].re);
        llmc_free(steps[k].lit);
    }
    llmc_free(steps);
}
