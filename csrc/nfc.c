/* nfc.c: Unicode Normalization Forms C, D, KC and KD (canonical or compatibility decomposition, canonical ordering,
 * canonical composition), for tokenizer.json normalizers (NFC: Qwen; NFKC: many SentencePiece models). Tables come
 * from unicode_tables.c (generated). */
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

/* Hangul syllable constants (Unicode ch. 3.12) */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21, TCOUNT = 28,
       NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

static unsigned ccc(uint32_t cp) {
    size_t lo = 0, hi = llmc_ccc_count; /* binary search over the sorted (code point, class) table */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (llmc_ccc_table[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    return lo < llmc_ccc_count && llmc_ccc_table[lo][0] == cp ? llmc_ccc_table[lo][1] : 0;
}

/* Find cp in a sorted (code point, pool offset, length) table; copy its decomposition to out; 0 if absent. */
static size_t table_decomp(const uint32_t (*tab)[3], size_t count, const uint32_t *pool, uint32_t cp, uint32_t *out) {
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tab[mid][0] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < count && tab[lo][0] == cp) {
        memcpy(out, pool + tab[lo][1], tab[lo][2] * sizeof(uint32_t));
        return tab[lo][2];
    }
    return 0;
}

/* Append the full canonical (compat: compatibility) decomposition of cp to out (room for 18 code points: the
 * longest, U+FDFA's compatibility decomposition, has 18). */
static size_t decompose(uint32_t cp, uint32_t *out, int compat) {
    if (cp >= SBASE && cp < SBASE + SCOUNT) {
        uint32_t si = cp - SBASE, t = si % TCOUNT;
        out[0] = LBASE + si / NCOUNT;
        out[1] = VBASE + (si % NCOUNT) / TCOUNT;
        if (t) out[2] = TBASE + t;
        return t ? 3 : 2;
    }
    size_t k = 0;
    if (compat && cp >= 0xA0) k = table_decomp(llmc_kdecomp_table, llmc_kdecomp_count, llmc_kdecomp_pool, cp, out);
    if (!k && cp >= 0xC0) k = table_decomp(llmc_decomp_table, llmc_decomp_count, llmc_decomp_pool, cp, out);
    if (k) return k;
    out[0] = cp;
    return 1;
}

/* The primary composite of (a, b), or 0. */
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= LBASE && a < LBASE + LCOUNT && b >= VBASE && b < VBASE + VCOUNT)
        return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a >= SBASE && a < SBASE + SCOUNT && (a - SBASE) % TCOUNT == 0 && b > TBASE && b < TBASE + TCOUNT)
        return a + (b - TBASE);
    size_t lo = 0, hi = llmc_comp_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const uint32_t *e = llmc_comp_table[mid];
        if (e[0] < a || (e[0] == a && e[1] < b)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < llmc_comp_count && llmc_comp_table[lo][0] == a && llmc_comp_table[lo][1] == b)
        return llmc_comp_table[lo][2];
    return 0;
}

/* Canonical decomposition + ordering of s[0..n) into code points *cps_out (*m of them); bad[i] marks a raw invalid
 * byte kept as is. Both arrays are llmc_malloc'd. */
static llmc_status decompose_text(const uint8_t *s, size_t n, int compat, uint32_t **cps_out, uint8_t **bad_out,
                                  size_t *m_out) {
    size_t cap = n + 32, cap2 = cap; /* grown as decompositions expand the text */
    uint32_t *cps = llmc_malloc(cap * sizeof(uint32_t), "NFC buffer");
    uint8_t *bad = llmc_malloc(cap, "NFC buffer"); /* marks code points that stand for an invalid byte */
    if (!cps || !bad) {
        llmc_free(cps);
        llmc_free(bad);
        return LLMC_ERR_NOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < n;) { /* 1. decode and decompose */
        size_t l;
        uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
        if (m + 18 > cap && (llmc_grow((void **)&cps, &cap, m + 18, sizeof(uint32_t), "NFC buffer") ||
                             llmc_grow((void **)&bad, &cap2, m + 18, 1, "NFC buffer"))) {
            llmc_free(cps);
            llmc_free(bad);
            return LLMC_ERR_NOMEM;
        }
        if (cp == LLMC_BAD_CP) {
            cps[m] = s[i]; /* keep the raw byte */
            bad[m++] = 1;
        } else {
            uint32_t d[18];
            size_t k = decompose(cp, d, compat);
            for (size_t j = 0; j < k; j++) {
                cps[m] = d[j];
                bad[m++] = 0;
            }
        }
        i += l;
    }
    /* 2. canonical ordering: stable insertion sort of every run of non-starters by combining class */
    for (size_t i = 1; i < m; i++) {
        unsigned c = bad[i] ? 0 : ccc(cps[i]);
        if (!c) continue;
        size_t j = i;
        while (j > 0 && !bad[j - 1] && ccc(cps[j - 1]) > c) {
            uint32_t t = cps[j];
            cps[j] = cps[j - 1];
            cps[j - 1] = t;
            j--;
        }
    }
    *cps_out = cps;
    *bad_out = bad;
    *m_out = m;
    return LLMC_OK;
}

/* UTF-8 of cps[0..m) (raw bytes where bad) into a new buffer. */
static llmc_status encode_text(const uint32_t *cps, const uint8_t *bad, size_t m, uint8_t **out, size_t *out_len) {
    uint8_t *res = llmc_malloc(4 * m + 1, "normalised text"); /* at most 4 UTF-8 bytes per code point */
    if (!res) return LLMC_ERR_NOMEM;
    size_t o = 0;
    for (size_t i = 0; i < m; i++) {
        if (bad[i]) res[o++] = (uint8_t)cps[i];
        else o += llmc_utf8_put(cps[i], res + o);
    }
    *out = res;
    *out_len = o;
    return LLMC_OK;
}

// s: (n,) UTF-8 bytes -> *out: (*out_len,) UTF-8 bytes in NFD (compat: NFKD). Invalid bytes pass through unchanged.
static llmc_status form_d(const uint8_t *s, size_t n, int compat, uint8_t **out, size_t *out_len) {
    uint32_t *cps;
    uint8_t *bad;
    size_t m;
    llmc_status st = decompose_text(s, n, compat, &cps, &bad, &m);
    if (st) return st;
    st = encode_text(cps, bad, m, out, out_len);
    llmc_free(cps);
    llmc_free(bad);
    return st;
}

// s: (n,) UTF-8 bytes -> *out: (*out_len,) UTF-8 bytes in NFC (compat: NFKC). Invalid bytes pass through unchanged.
static llmc_status form_c(const uint8_t *s, size_t n, int compat, uint8_t **out, size_t *out_len) {
    uint32_t *cps;
    uint8_t *bad;
    size_t m;
    llmc_status st = decompose_text(s, n, compat, &cps, &bad, &m);
    if (st) return st;
    /* 3. canonical composition (in place: w <= i) */
    size_t w = 0, starter = (size_t)-1;
    unsigned last = 256; /* class of the last kept character; 256 blocks composition */
    for (size_t i = 0; i < m; i++) {
        uint32_t cp = cps[i];
        unsigned c = bad[i] ? 256 : ccc(cp);
        if (starter != (size_t)-1 && !bad[i] && (last == 0 ? w - 1 == starter : last < c)) {
            uint32_t comp = compose(cps[starter], cp);
            if (comp) { /* not blocked: fold into the starter */
                cps[starter] = comp;
                continue;
            }
        }
        if (c == 0) starter = w;
        else if (bad[i]) starter = (size_t)-1;
        last = c;
        bad[w] = bad[i];
        cps[w++] = cp;
    }
    st = encode_text(cps, bad, w, out, out_len);
    llmc_free(cps);
    llmc_free(bad);
    return st;
}

llmc_status llmc_nfd(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) { return form_d(s, n, 0, out, out_len); }
llmc_status llmc_nfkd(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) { return form_d(s, n, 1, out, out_len); }
llmc_status llmc_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) { return form_c(s, n, 0, out, out_len); }
llmc_status llmc_nfkc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len) { return form_c(s, n, 1, out, out_len); }
