/* unigram.c: the Unigram language-model tokenizer (SentencePiece's model_type UNIGRAM; HF's "Unigram" model).
 *
 * Each piece has a score (a log probability). A text is cut into the pieces whose scores sum highest: Viterbi over
 * byte positions, best[e] = max over pieces p ending at e of best[e - |p|] + score(p). The pieces starting at a
 * position come from one walk down a byte trie of the vocabulary (all prefixes of the rest of the text that are
 * pieces). A character that starts no one-character piece may also be crossed by an "unknown" step scored
 * min_score - 10. Ties keep the first candidate found (shorter pieces first, earlier start positions first): both
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

/* ---------------------------------------------------------------- the trie */
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

typedef struct {
    uint32_t node, lo, hi, depth;
} build_item;

llmc_status llmc_unigram_build(llmc_tokenizer *t, size_t n_ids) {
    size_t nk = 0, total = 1;
    key_ref *keys = llmc_malloc((n_ids + 1) * sizeof(key_ref), "Unigram trie");
    if (!keys) return LLMC_ERR_NOMEM;
    for (size_t id = 0; id < n_ids && id < t->n_vocab; id++) {
        if (t->tok_len[id] == UINT32_MAX || !t->tok_len[id]) continue;
        if (t->uni_flags && (t->uni_flags[id] & LLMC_UNI_NOT_IN_TRIE)) continue;
        keys[nk++] = (key_ref){t->blob + t->tok_off[id], t->tok_len[id], (int32_t)id};
        total += t->tok_len[id];
    }
    qsort(keys, nk, sizeof *keys, key_cmp);
    /* breadth first: the children of a node are made together, so they are contiguous and sorted by label */
    llmc_trie_node *nodes = llmc_malloc(total * sizeof *nodes, "Unigram trie");
    build_item *q = llmc_malloc(total * sizeof *q, "Unigram trie");
    if (!nodes || !q) {
        llmc_free(keys);
        llmc_free(nodes);
        llmc_free(q);
        return LLMC_ERR_NOMEM;
    }
    size_t n_nodes = 1, qh = 0, qt = 0;
    nodes[0] = (llmc_trie_node){-1, 0, 0, 0, 0};
    q[qt++] = (build_item){0, 0, (uint32_t)nk, 0};
    while (qh < qt) {
        build_item it = q[qh++];
        uint32_t lo = it.lo;
        while (lo < it.hi && keys[lo].len == it.depth) nodes[it.node].id = keys[lo++].id; /* keys ending here */
        nodes[it.node].first = (uint32_t)n_nodes;
        uint32_t nc = 0;
        while (lo < it.hi) { /* one child per distinct next byte */
            uint8_t c = keys[lo].b[it.depth];
            uint32_t hi = lo;
            while (hi < it.hi && keys[hi].b[it.depth] == c) hi++;
            nodes[n_nodes] = (llmc_trie_node){-1, 0, 0, c, 0};
            q[qt++] = (build_item){(uint32_t)n_nodes, lo, hi, it.depth + 1};
            n_nodes++;
            nc++;
            lo = hi;
        }
        nodes[it.node].n = (uint16_t)nc;
    }
    llmc_free(keys);
    llmc_free(q);
    llmc_free(t->trie);
    t->trie = nodes;
    t->n_trie = n_nodes;
    return LLMC_OK;
}

/* The child of node with label c, or -1 (binary search over the sorted children). */
static inline long child(const llmc_trie_node *nodes, const llmc_trie_node *nd, uint8_t c) {
    uint32_t lo = nd->first, hi = nd->first + nd->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (nodes[mid].label < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < nd->first + nd->n && nodes[lo].label == c ? (long)lo : -1;
}

void llmc_uni_scratch_free(llmc_uni_scratch *sc) {
    llmc_free(sc->score);
    llmc_free(sc->start);
    llmc_free(sc->id);
    llmc_free(sc->ends);
    memset(sc, 0, sizeof *sc);
}

static llmc_status reserve(llmc_uni_scratch *sc, size_t n) {
    if (n <= sc->cap) return LLMC_OK;
    size_t a = sc->cap, b = a, c = a, d = a;
    if (llmc_grow((void **)&sc->score, &a, n, sizeof(double), "Viterbi buffer") ||
        llmc_grow((void **)&sc->start, &b, n, sizeof(int32_t), "Viterbi buffer") ||
        llmc_grow((void **)&sc->id, &c, n, sizeof(int32_t), "Viterbi buffer") ||
        llmc_grow((void **)&sc->ends, &d, n, sizeof(uint32_t), "Viterbi buffer"))
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
    llmc_status st = reserve(sc, n + 1);
    if (st) return st;
    double *best = sc->score;
    int32_t *from = sc->start, *bid = sc->id;
    for (size_t i = 0; i <= n; i++) from[i] = -1;
    best[0] = 0;
    const llmc_trie_node *nodes = t->trie;
    const int spm = t->uni_spm;
    const float unk_f = (float)t->uni_min_score - (float)UNK_PENALTY;
    const double unk_d = t->uni_min_score - UNK_PENALTY;
    for (size_t pos = 0; pos < n;) {
        size_t mblen;
        llmc_utf8_next(p + pos, n - pos, &mblen); /* an invalid byte is a character of its own */
        const double base = best[pos];
        int single = 0;
        const llmc_trie_node *nd = &nodes[0];
        for (size_t k = pos; k < n; k++) { /* every piece that starts here */
            long c = child(nodes, nd, p[k]);
            if (c < 0) break;
            nd = &nodes[c];
            int32_t id = nd->id;
            if (id < 0) continue;
            size_t len = k + 1 - pos, e = k + 1;
            double cand;
            if (spm) {
                uint8_t f = t->uni_flags[id];
                if (f & LLMC_UNI_UNUSED) continue;
                /* SentencePiece: a user-defined piece scores len * max_score - 0.1 (float product, double
                 * difference), so it always wins; the sum is a double, compared with the stored float */
                double s = (f & LLMC_UNI_USER) ? (double)((float)len * t->spm_max_score) - 0.1 : t->uni_score[id];
                cand = s + base;
            } else {
                cand = t->uni_score[id] + base;
            }
            if (from[e] < 0 || cand > best[e]) {
                best[e] = spm ? (double)(float)cand : cand; /* SentencePiece keeps float path scores */
                from[e] = (int32_t)pos;
                bid[e] = id;
            }
            if (len == mblen) single = 1;
        }
        if (!single) { /* no one-character piece: the character may be crossed as unknown */
            size_t e = pos + mblen;
            double cand = spm ? (double)(unk_f + (float)base) : unk_d + base;
            if (from[e] < 0 || cand > best[e]) {
                if (t->unk_id < 0 && !spm)
                    return llmc_fail(LLMC_ERR_INVALID, "the text has '%.*s', which no piece covers, and the Unigram "
                                                       "model has no unk token", (int)mblen, (const char *)p + pos);
                best[e] = cand;
                from[e] = (int32_t)pos;
                bid[e] = -1; /* unknown */
            }
        }
        pos += mblen;
    }
    /* backtrack: the ends of the best path's steps, last first */
    size_t ns = 0;
    for (size_t e = n; e > 0; e = (size_t)from[e]) sc->ends[ns++] = (uint32_t)e;
    size_t k = 0, run = 0, in_run = 0;
    for (size_t j = ns; j-- > 0;) {
        size_t e = sc->ends[j], s0 = (size_t)from[e];
        int unk = bid[e] < 0 || bid[e] == t->unk_id;
        if (unk) { /* unknown steps (and the unk piece itself, as HF compares ids) fuse */
            if (!in_run) run = s0;
            in_run = 1;
            continue;
        }
        if (in_run && (st = unknown_run(t, p + run, s0 - run, out, &k))) return st;
        in_run = 0;
        out[k++] = (uint32_t)bid[e];
    }
    if (in_run && (st = unknown_run(t, p + run, n - run, out, &k))) return st;
    *m = k;
    return LLMC_OK;
}
