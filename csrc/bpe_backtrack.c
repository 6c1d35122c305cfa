/* bpe_backtrack.c: byte-level BPE of one piece by a left-to-right search over the vocabulary instead of the merge
 * loop, with exactly the merge loop's output, for any pair -> (rank, merged token) table (tiktoken's ranks or a
 * merges list).
 *
 * The merge loop (tokenizer.c) repeatedly merges the adjacent pair of lowest rank, the leftmost among equals. Call a
 * token sequence "valid" if it is the merge loop's output for its own bytes. Two facts:
 *   (a) every run of consecutive tokens of a valid sequence is valid;
 *   (b) if e_0..e_i is valid and the pair e_i e_j is valid, then e_0..e_i e_j is valid.
 * Proof of both: run the loop on the whole text and stop at the first merge that joins bytes of two different
 * tokens of the sequence in question. Until then each part of the text that is a run of whole tokens changes only by
 * merges inside it, each of which was the lowest pair of the whole text, so the lowest of that part: the part went
 * through the same states as in a run on its bytes alone. The crossing merge lies inside such a part (for (b): in
 * e_0..e_i or in e_i e_j), is the lowest pair of the part there, so the run on the part alone would make it too and
 * could not end with that token boundary: a contradiction. Hence no crossing merge happens, and every token ends up
 * merged from its own bytes.
 * So the output for a piece is the one sequence whose first token is valid alone and whose adjacent pairs are each
 * valid ("compatible"), and the sequence on the stack is always the output for the bytes it covers. The search takes
 * the longest token at the current position, keeps it if it is compatible with the token before it, else tries the
 * next shorter token there; when no token fits at a position, that position is marked dead (the stack that reaches
 * it is always the same, so it can never fit) and the previous token is replaced by its next shorter one. Each
 * position dies once, so the search is linear in the piece for a bounded token length. Usually the longest token is
 * the right one: Chinese text, whose long pieces never repeat, costs one walk down the vocabulary trie and one
 * (memoized) pair check per token instead of a dozen merge-table lookups.
 * The idea is the "backtracking" encoder of GitHub's rust-gems bpe crate; this is an independent C implementation
 * (the pair check and its memo are in tokenizer.c: the two tokens' own merge runs interleaved by rank, without
 * merging their bytes). The vocabulary is a double-array trie (dat.h): one load per byte of a walk. */
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"

#define BT_MEMO_SLOTS (1u << 17)  /* memoized pair checks: 1 MB */
#define BT_WORD_SLOTS (1u << 15)  /* memoized short pieces, 64 bytes each: 2 MB */

typedef struct {
    const uint8_t *p;
    uint32_t len;
    int32_t id;
} tok_ref;

static int ref_cmp(const void *x, const void *y) { /* bytewise, a prefix before its extensions */
    const tok_ref *a = x, *b = y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = n ? memcmp(a->p, b->p, n) : 0;
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

void llmc_bpe_trie_free(llmc_tokenizer *t) {
    llmc_dat_free(&t->bt_dat);
    llmc_free((void *)t->bt_memo);
    llmc_free((void *)t->bt_words);
    t->bt_memo = t->bt_words = NULL;
    t->bt_memo_mask = t->bt_words_mask = 0;
}

llmc_status llmc_bpe_trie_build(llmc_tokenizer *t) {
    llmc_bpe_trie_free(t);
    /* only byte-level BPE with a merge table and a token for every byte (else the merge loop runs, and reports a
     * missing byte when one is encoded) */
    if (t->model != LLMC_MODEL_BYTE_BPE || !t->pairs || !t->map || t->n_vocab > (size_t)LLMC_DAT_MAX_VALUE)
        return LLMC_OK;
    for (int b = 0; b < 256; b++)
        if (t->byte_id[b] < 0) return LLMC_OK;
    size_t count = 0;
    for (size_t s = 0; s <= t->map_mask; s++) count += t->map[s].id >= 0;
    tok_ref *refs = llmc_malloc((count + 1) * sizeof *refs, "BPE trie");
    const uint8_t **keys = llmc_malloc((count + 1) * sizeof *keys, "BPE trie");
    uint32_t *lens = llmc_malloc((count + 1) * sizeof *lens, "BPE trie");
    int32_t *ids = llmc_malloc((count + 1) * sizeof *ids, "BPE trie");
    llmc_status st = refs && keys && lens && ids ? LLMC_OK : LLMC_ERR_NOMEM;
    size_t k = 0;
    for (size_t s = 0; !st && s <= t->map_mask; s++) { /* the model vocabulary (added tokens are not in the map) */
        int32_t id = t->map[s].id;
        if (id >= 0 && t->tok_len[id]) refs[k++] = (tok_ref){t->blob + t->tok_off[id], t->tok_len[id], id};
    }
    if (!st) {
        qsort(refs, k, sizeof *refs, ref_cmp);
        for (size_t i = 0; i < k; i++) {
            keys[i] = refs[i].p;
            lens[i] = refs[i].len;
            ids[i] = refs[i].id;
        }
        st = llmc_dat_build(&t->bt_dat, keys, lens, ids, NULL, k);
    }
    if (!st && (!(t->bt_memo = llmc_calloc(BT_MEMO_SLOTS, sizeof(uint64_t), "BPE pair checks")) ||
                !(t->bt_words = llmc_calloc(8 * (size_t)BT_WORD_SLOTS, sizeof(uint64_t), "BPE piece memo"))))
        st = LLMC_ERR_NOMEM;
    if (!st) {
        t->bt_memo_mask = BT_MEMO_SLOTS - 1;
        t->bt_words_mask = BT_WORD_SLOTS - 1;
    } else {
        llmc_bpe_trie_free(t);
    }
    llmc_free(refs);
    llmc_free(keys);
    llmc_free(lens);
    llmc_free(ids);
    return st;
}

/* The longest token that is a prefix of p[0..maxlen) and whose end p + len is not dead (dead[len] == 0), or -1.
 * p[0..maxlen) lies in the piece; dead is indexed from p. */
static inline int32_t longest(const llmc_tokenizer *t, const uint8_t *p, size_t maxlen, const uint8_t *dead,
                              size_t *len) {
    int32_t best = -1;
    size_t best_len = 0;
    const llmc_dat *d = &t->bt_dat;
    uint32_t node = 0;
    for (size_t i = 0; i < maxlen; i++) {
        if (!(node = llmc_dat_child(d, node, p[i]))) break; /* no token continues this prefix */
        int32_t id = llmc_dat_value(d, node);
        if (id >= 0 && !dead[i + 1]) {
            best = id;
            best_len = i + 1;
        }
    }
    *len = best_len;
    return best;
}

// p: (n,) one piece -> out: (*m,) its BPE tokens; dead: (n + 1,) scratch
llmc_status llmc_bpe_backtrack(const llmc_tokenizer *t, const uint8_t *p, size_t n, int whole,
                               llmc_bpe_compat_fn compat, void *ctx, uint32_t *out, uint8_t *dead, size_t *m) {
    size_t k = 0, pos = 0, len = 0;
    memset(dead, 0, n + 1);
    int32_t c = longest(t, p, n, dead, &len);
    if (whole && len == n) { /* the piece is a token (the first walk went the whole way) */
        out[0] = (uint32_t)c;
        *m = 1;
        return LLMC_OK;
    }
    while (pos < n) {
        if (c >= 0) {
            int ok = compat(ctx, k ? out[k - 1] : LLMC_BPE_NONE, (uint32_t)c);
            if (ok < 0) return LLMC_ERR_NOMEM; /* the pair check could not allocate (message set) */
            if (ok) { /* keep it; the stack is the output for p[0..pos) */
                out[k++] = (uint32_t)c;
                pos += len;
                if (pos < n) c = longest(t, p + pos, n - pos, dead + pos, &len);
            } else { /* the next shorter token at pos */
                c = longest(t, p + pos, len - 1, dead + pos, &len);
            }
            continue;
        }
        /* no token fits at pos: it is dead; undo the token before it and try its next shorter one */
        if (!k) return llmc_fail(LLMC_ERR_INTERNAL, "BPE search found no encoding of a %zu-byte piece", n);
        dead[pos] = 1;
        uint32_t top = out[--k];
        size_t tl = t->tok_len[top];
        pos -= tl;
        c = longest(t, p + pos, tl - 1, dead + pos, &len);
    }
    *m = k;
    return LLMC_OK;
}
