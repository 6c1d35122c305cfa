/* unigram.c: the Unigram language-model tokenizer (SentencePiece's model_type UNIGRAM; HF's "Unigram" model).
 *
 * Each piece has a score (a log probability). A text is cut into the pieces whose scores sum highest: Viterbi over
 * byte positions, best[e] = max over pieces p ending at e of best[e - |p|] + score(p). The pieces starting at a
 * position come from one walk down a double-array trie of the vocabulary (dat.h: one array load per byte), which
 * meets every prefix of the rest of the text that is a piece. A character that starts no one-character piece may
 * also be crossed by an "unknown" step scored min_score - 10. Ties keep the first candidate found (shorter pieces first, earlier start positions first): both
 * references do the same.
 *
 * Unknown steps next to each other are fused into one unk token; with byte fallback an unknown run becomes the
 * <0xNN> tokens of its bytes instead. HF sums scores in double and looks a fused run up in the vocabulary first;
 * SentencePiece sums in float, skips UNUSED pieces and scores USER_DEFINED ones len * max_score - 0.1 (so they
 * always win). t->uni_spm picks SentencePiece's arithmetic. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "unicode.h"

#define UNK_PENALTY 10.0

/* ---------------------------------------------------------------- the piece trie */
typedef struct {
    const uint8_t *b;
    uint32_t len;
    int32_t id;
} key_ref;

static int key_cmp(const void *pa, const void *pb) {
    const key_ref *a = pa, *b = pb;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->b, b->b, n) : 0;
    if (c) return c;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id; /* equal bytes: by id (the last one wins, as in HF's map) */
}

llmc_status llmc_unigram_build(llmc_tokenizer *t, size_t n_ids) {
    size_t nk = 0;
    key_ref *keys = llmc_malloc((n_ids + 1) * sizeof(key_ref), "Unigram trie");
    if (!keys) return LLMC_ERR_NOMEM;
    for (size_t id = 0; id < n_ids && id < t->n_vocab; id++) {
        if (t->tok_len[id] == UINT32_MAX || !t->tok_len[id]) continue;
        /* unknown, control and byte pieces are never matched; SentencePiece never matches UNUSED ones either */
        if (t->uni_flags && (t->uni_flags[id] & (LLMC_UNI_NOT_IN_TRIE | LLMC_UNI_UNUSED))) continue;
        keys[nk++] = (key_ref){t->blob + t->tok_off[id], t->tok_len[id], (int32_t)id};
    }
    qsort(keys, nk, sizeof *keys, key_cmp);
    size_t nu = 0; /* distinct keys, the last id of equal ones kept */
    for (size_t i = 0; i < nk; i++) {
        if (nu && keys[nu - 1].len == keys[i].len && !memcmp(keys[nu - 1].b, keys[i].b, keys[i].len)) nu--;
        keys[nu++] = keys[i];
    }
    for (size_t i = 0; i < nu; i++)
        if (keys[i].id > LLMC_DAT_MAX_VALUE) {
            int32_t id = keys[i].id;
            llmc_free(keys);
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "Unigram piece id %d: llmc's piece trie holds ids up to %d", (int)id,
                             (int)LLMC_DAT_MAX_VALUE);
        }
    const uint8_t **kb = llmc_malloc((nu + 1) * sizeof *kb, "Unigram trie");
    uint32_t *kl = llmc_malloc((nu + 1) * sizeof *kl, "Unigram trie");
    int32_t *kv = llmc_malloc((nu + 1) * sizeof *kv, "Unigram trie");
    double *kw = llmc_malloc((nu + 1) * sizeof *kw, "Unigram trie");
    llmc_status st = kb && kl && kv && kw ? LLMC_OK : LLMC_ERR_NOMEM;
    for (size_t i = 0; !st && i < nu; i++) {
        int32_t id = keys[i].id;
        double score = t->uni_score ? t->uni_score[id] : 0.0;
        if (t->uni_spm && t->uni_flags && (t->uni_flags[id] & LLMC_UNI_USER))
            /* SentencePiece: a user-defined piece scores len * max_score - 0.1 (a float product, a double
             * difference), so that it always wins */
            score = (double)((float)keys[i].len * t->spm_max_score) - 0.1;
        kb[i] = keys[i].b;
        kl[i] = keys[i].len;
        kv[i] = id;
        kw[i] = score;
    }
    if (!st) st = llmc_dat_build(&t->uni_dat, kb, kl, kv, kw, nu);
    llmc_free(keys);
    llmc_free(kb);
    llmc_free(kl);
    llmc_free(kv);
    llmc_free(kw);
    return st;
}

void llmc_uni_scratch_free(llmc_uni_scratch *sc) {
    llmc_free(sc->cell);
    llmc_free(sc->ends);
    memset(sc, 0, sizeof *sc);
}

static llmc_status reserve(llmc_uni_scratch *sc, size_t n) {
    if (n <= sc->cap) return LLMC_OK;
    size_t a = sc->cap, b = a;
    if (llmc_grow((void **)&sc->cell, &a, n, sizeof(llmc_uni_cell), "Viterbi buffer") ||
        llmc_grow((void **)&sc->ends, &b, n, sizeof(uint32_t), "Viterbi buffer"))
        return LLMC_ERR_NOMEM;
    sc->cap = a;
    return LLMC_OK;
}

/* Emit the ids of an unknown run p[0..n) into out: HF: the run's own token when it is one; byte fallback: its
 * <0xNN> tokens (when all exist); else one unk. */
static llmc_status unknown_run(const llmc_tokenizer *t, const uint8_t *p, size_t n, uint32_t *out, size_t *k) {
    if (!t->uni_spm) {
        int32_t id = llmc_tok_lookup(t, p, n);
        if (id >= 0) {
            out[(*k)++] = (uint32_t)id;
            return LLMC_OK;
        }
    }
    if (t->byte_fallback) {
        int all = 1;
        for (size_t j = 0; j < n; j++) all &= t->byte_id[p[j]] >= 0;
        if (all) {
            for (size_t j = 0; j < n; j++) out[(*k)++] = (uint32_t)t->byte_id[p[j]];
            return LLMC_OK;
        }
    }
    if (t->unk_id < 0)
        return llmc_fail(LLMC_ERR_INVALID, "the text has '%.*s', which no piece covers, and the Unigram model has no "
                                           "unk token", (int)(n < 40 ? n : 40), (const char *)p);
    out[(*k)++] = (uint32_t)t->unk_id;
    return LLMC_OK;
}

// p: (n,) bytes of one pre-tokenized piece -> out: (*m,) ids (out has room for n + 1)
llmc_status llmc_unigram_piece(const llmc_tokenizer *t, llmc_uni_scratch *sc, const uint8_t *p, size_t n,
                               uint32_t *out, size_t *m) {
    *m = 0;
    if (n == 0) return LLMC_OK;
    if (n >= (size_t)INT32_MAX) /* lattice positions are int32 */
        return llmc_fail(LLMC_ERR_INVALID, "a Unigram lattice of %zu bytes is too long (at most %d)", n, INT32_MAX - 1);
    llmc_status st = reserve(sc, n + 1);
    if (st) return st;
    llmc_uni_cell *cell = sc->cell; /* cell[e]: the best path over p[0..e) */
    for (size_t i = 0; i <= n; i++) cell[i].from = -1;
    cell[0].score = 0;
    const llmc_dat *dat = &t->uni_dat;
    const int spm = t->uni_spm;
    const float unk_f = (float)t->uni_min_score - (float)UNK_PENALTY;
    const double unk_d = t->uni_min_score - UNK_PENALTY;
    for (size_t pos = 0; pos < n;) {
        size_t mblen = 1;
        if (p[pos] >= 0x80) llmc_utf8_next(p + pos, n - pos, &mblen); /* an invalid byte is a character of its own */
        const double base = cell[pos].score;
        int single = 0;
        uint32_t node = 0;
        for (size_t k = pos; k < n; k++) { /* every piece that starts here: one trie step per byte */
            if (!(node = llmc_dat_child(dat, node, p[k]))) break;
            int32_t id = llmc_dat_value(dat, node);
            if (id < 0) continue;
            /* the piece's score (SentencePiece: a double sum, compared with the stored float) */
            const double cand = llmc_dat_weight(dat, node) + base;
            llmc_uni_cell *c = &cell[k + 1];
            if (c->from < 0 || cand > c->score) { /* ties keep the first found */
                c->score = spm ? (double)(float)cand : cand; /* SentencePiece keeps float path scores */
                c->from = (int32_t)pos;
                c->id = id;
            }
            single |= k + 1 - pos == mblen;
        }
        if (!single) { /* no one-character piece: the character may be crossed as unknown */
            llmc_uni_cell *c = &cell[pos + mblen];
            double cand = spm ? (double)(unk_f + (float)base) : unk_d + base;
            if (c->from < 0 || cand > c->score) {
                if (t->unk_id < 0 && !spm)
                    return llmc_fail(LLMC_ERR_INVALID, "the text has '%.*s', which no piece covers, and the Unigram "
                                                       "model has no unk token", (int)mblen, (const char *)p + pos);
                c->score = cand;
                c->from = (int32_t)pos;
                c->id = -1; /* unknown */
            }
        }
        pos += mblen;
    }
    /* backtrack: the ends of the best path's steps, last first */
    size_t ns = 0;
    for (size_t e = n; e > 0; e = (size_t)cell[e].from) sc->ends[ns++] = (uint32_t)e;
    size_t k = 0, run = 0, in_run = 0;
    for (size_t j = ns; j-- > 0;) {
        size_t e = sc->ends[j], s0 = (size_t)cell[e].from;
        int32_t id = cell[e].id;
        if (id < 0 || id == t->unk_id) { /* unknown steps (and the unk piece itself, as HF compares ids) fuse */
            if (!in_run) run = s0;
            in_run = 1;
            continue;
        }
        if (in_run && (st = unknown_run(t, p + run, s0 - run, out, &k))) return st;
        in_run = 0;
        out[k++] = (uint32_t)id;
    }
    if (in_run && (st = unknown_run(t, p + run, n - run, out, &k))) return st;
    *m = k;
    return LLMC_OK;
}
