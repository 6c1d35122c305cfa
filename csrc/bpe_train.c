/* bpe_train.c: byte-level BPE training with incremental pair counts.
 *
 * 1. Pre-tokenize every text and count the distinct pieces ("words"); each word starts as its bytes (ids 0..255).
 * 2. Count every adjacent pair over the words (weighted by word count) and remember, per pair, which words hold it.
 * 3. Repeatedly take the most frequent pair from a max-heap (ties: the smaller (left, right) ids), give it the next
 *    id, and rewrite only the words that hold it, applying local count deltas:
 *       for each occurrence  X [A B] Y  ->  X C Y :  (A,B) -= f, (X,A) -= f, (X,C) += f, (B,Y) -= f, (C,Y) += f
 *    Heap entries are not updated in place: a popped entry whose count is stale is pushed again with the current
 *    count (lazy deletion); pairs whose count grew (the new ones, with C) are pushed after each merge.
 * Cost per merge is proportional to the words that hold the pair, not to the corpus. */
#include <string.h>

#include "tok_internal.h"

typedef struct {
    uint64_t key;  /* left << 32 | right; UINT64_MAX = empty */
    int64_t count; /* weighted occurrences */
    uint32_t head, tail; /* chunk list of the words that hold (or held) the pair; UINT32_MAX = none */
    uint32_t tail_fill;  /* words used in the tail chunk */
    uint32_t pushed;     /* merge step at which it was last queued (+1) */
} pair_rec;

#define CHUNK 7
typedef struct {
    uint32_t w[CHUNK];
    uint32_t next;
} chunk;

typedef struct {
    int64_t count;
    uint64_t key;
} heap_ent;

typedef struct {
    pair_rec *pairs;
    size_t mask, n;
    chunk *chunks;
    size_t n_chunks, cap_chunks;
    heap_ent *heap;
    size_t n_heap, cap_heap;
    uint64_t *queue; /* keys of the pairs whose count grew during this merge */
    size_t n_queue, cap_queue;
} trainer;

static inline uint64_t mix64(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}


static llmc_status pairs_rehash(trainer *T, size_t cap) {
    pair_rec *np = llmc_malloc(cap * sizeof(pair_rec), "pair counts");
    if (!np) return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < cap; i++) np[i].key = UINT64_MAX;
    for (size_t i = 0; T->pairs && i <= T->mask; i++) {
        if (T->pairs[i].key == UINT64_MAX) continue;
        size_t s = mix64(T->pairs[i].key) & (cap - 1);
        while (np[s].key != UINT64_MAX) s = (s + 1) & (cap - 1);
        np[s] = T->pairs[i];
    }
    llmc_free(T->pairs);
    T->pairs = np;
    T->mask = cap - 1;
    return LLMC_OK;
}

/* The record of pair key (created with count 0 if new); NULL on allocation failure. Slot indices change on
 * rehash, so callers re-find records after inserting. */
static pair_rec *pair_get(trainer *T, uint64_t key) {
    if (2 * (T->n + 1) > T->mask + 1 && pairs_rehash(T, (T->mask + 1) * 2)) return NULL;
    size_t s = mix64(key) & T->mask;
    while (T->pairs[s].key != UINT64_MAX) {
        if (T->pairs[s].key == key) return &T->pairs[s];
        s = (s + 1) & T->mask;
    }
    T->pairs[s] = (pair_rec){key, 0, UINT32_MAX, UINT32_MAX, 0, 0};
    T->n++;
    return &T->pairs[s];
}

/* Note that word w holds pair p (skipped if it is already the last one noted). */
static llmc_status note_word(trainer *T, pair_rec *p, uint32_t w) {
    if (p->tail != UINT32_MAX) {
        chunk *c = &T->chunks[p->tail];
        if (c->w[p->tail_fill - 1] == w) return LLMC_OK;
        if (p->tail_fill < CHUNK) {
            c->w[p->tail_fill++] = w;
            return LLMC_OK;
        }
    }
    if (llmc_grow((void **)&T->chunks, &T->cap_chunks, T->n_chunks + 1, sizeof(chunk), "pair word lists"))
        return LLMC_ERR_NOMEM;
    uint32_t ci = (uint32_t)T->n_chunks++;
    T->chunks[ci].w[0] = w;
    T->chunks[ci].next = UINT32_MAX;
    if (p->tail != UINT32_MAX) T->chunks[p->tail].next = ci;
    else p->head = ci;
    p->tail = ci;
    p->tail_fill = 1;
    return LLMC_OK;
}

/* max-heap on (count, then the smaller key) */
static inline int heap_before(const heap_ent *a, const heap_ent *b) {
    return a->count > b->count || (a->count == b->count && a->key < b->key);
}

static llmc_status heap_push(trainer *T, int64_t count, uint64_t key) {
    if (llmc_grow((void **)&T->heap, &T->cap_heap, T->n_heap + 1, sizeof(heap_ent), "pair heap")) return LLMC_ERR_NOMEM;
    heap_ent v = {count, key};
    size_t i = T->n_heap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_before(&v, &T->heap[p])) break;
        T->heap[i] = T->heap[p];
        i = p;
    }
    T->heap[i] = v;
    return LLMC_OK;
}

static heap_ent heap_pop(trainer *T) {
    heap_ent top = T->heap[0], v = T->heap[--T->n_heap];
    size_t i = 0, n = T->n_heap;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= n) break;
        if (l + 1 < n && heap_before(&T->heap[l + 1], &T->heap[l])) l++;
        if (!heap_before(&T->heap[l], &v)) break;
        T->heap[i] = T->heap[l];
        i = l;
    }
    if (n) T->heap[i] = v;
    return top;
}

/* Add d to the count of (a, b); when d > 0 note word w and queue the pair for a heap push at this step. */
static llmc_status delta(trainer *T, uint32_t a, uint32_t b, int64_t d, uint32_t w, uint32_t step) {
    pair_rec *p = pair_get(T, (uint64_t)a << 32 | b);
    if (!p) return LLMC_ERR_NOMEM;
    p->count += d;
    if (d > 0) {
        llmc_status st = note_word(T, p, w);
        if (st) return st;
        if (p->pushed != step + 1) {
            p->pushed = step + 1;
            if (llmc_grow((void **)&T->queue, &T->cap_queue, T->n_queue + 1, sizeof(uint64_t), "pair queue"))
                return LLMC_ERR_NOMEM;
            T->queue[T->n_queue++] = p->key;
        }
    }
    return LLMC_OK;
}

/* Token bytes of the ids made so far, with a bytes -> id map, so that a merge whose bytes already exist as a token
 * (e.g. (a, bc) after (ab, c)) reuses that id like HF's trainer. */
typedef struct {
    uint8_t *bytes;
    size_t n_bytes, cap_bytes;
    uint32_t *off, *len;
    size_t n, cap_off, cap_len;
    int32_t *map; /* open addressing over ids; -1 empty */
    size_t mask;
} tokset;

static uint64_t hbytes(const uint8_t *b, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return mix64(h);
}

/* The id of bytes b[0..n) if known, else -1 (and *slot = where it would go). */
static int32_t tokset_find(const tokset *S, const uint8_t *b, size_t n, size_t *slot) {
    size_t s = hbytes(b, n) & S->mask;
    while (S->map[s] >= 0) {
        int32_t id = S->map[s];
        if (S->len[id] == n && !memcmp(S->bytes + S->off[id], b, n)) return id;
        s = (s + 1) & S->mask;
    }
    *slot = s;
    return -1;
}

static llmc_status tokset_add(tokset *S, const uint8_t *b, size_t n) {
    if (S->n_bytes + n > UINT32_MAX) return llmc_fail(LLMC_ERR_NOMEM, "trained tokens too long");
    if (llmc_grow((void **)&S->bytes, &S->cap_bytes, S->n_bytes + n + 1, 1, "token bytes") ||
        llmc_grow((void **)&S->off, &S->cap_off, S->n + 1, sizeof(uint32_t), "token bytes") ||
        llmc_grow((void **)&S->len, &S->cap_len, S->n + 1, sizeof(uint32_t), "token bytes"))
        return LLMC_ERR_NOMEM;
    if (2 * (S->n + 1) > S->mask + 1) { /* rehash at load 1/2 */
        size_t nm = S->mask ? (S->mask + 1) * 2 : 1024;
        int32_t *m = llmc_malloc(nm * sizeof(int32_t), "token map");
        if (!m) return LLMC_ERR_NOMEM;
        for (size_t i = 0; i < nm; i++) m[i] = -1;
        for (size_t id = 0; id < S->n; id++) {
            size_t s = hbytes(S->bytes + S->off[id], S->len[id]) & (nm - 1);
            while (m[s] >= 0) s = (s + 1) & (nm - 1);
            m[s] = (int32_t)id;
        }
        llmc_free(S->map);
        S->map = m;
        S->mask = nm - 1;
    }
    size_t slot = 0;
    tokset_find(S, b, n, &slot);
    memcpy(S->bytes + S->n_bytes, b, n);
    S->off[S->n] = (uint32_t)S->n_bytes;
    S->len[S->n] = (uint32_t)n;
    S->n_bytes += n;
    S->map[slot] = (int32_t)S->n++;
    return LLMC_OK;
}

/* words: distinct pieces with counts */
typedef struct {
    uint64_t hash;
    uint32_t off, len; /* bytes in the arena */
    uint64_t count;
} word_slot;

// texts: n_texts strings -> *merges: (*n_out, 3) int32 (left id, right id, merged id); new ids are 256, 257, ...
llmc_status llmc_bpe_train(const char *const *texts, const size_t *lens, size_t n_texts, const char *pretok,
                           size_t n_merges, uint64_t min_frequency, void (*progress)(size_t, size_t, void *),
                           void *ctx, int32_t **merges, size_t *n_out) {
    *merges = NULL;
    *n_out = 0;
    int kind = llmc_pretok_from_name(pretok);
    if (kind < 0) kind = llmc_pretok_from_regex(pretok, strlen(pretok));
    if (kind < 0)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "training pre-tokenizer '%.200s' is not supported: use gpt2, gpt4 "
                                               "(= cl100k), o200k, llama3 or qwen2", pretok);
    if (n_merges > (size_t)INT32_MAX - 256) return llmc_fail(LLMC_ERR_INVALID, "too many merges: %zu", n_merges);
    if (min_frequency < 1) min_frequency = 1;
    llmc_status st = LLMC_OK;
    trainer T = {0};
    word_slot *wmap = NULL;
    size_t wmask = 1023, n_words = 0, cap_arena = 0, arena_len = 0, cap_syms = 0;
    uint8_t *arena = NULL;
    uint32_t *syms = NULL, *woff = NULL, *wlen = NULL, *stamp = NULL;
    uint64_t *wcount = NULL;
    int32_t *out = NULL;
    size_t cap_out = 0;
    tokset S = {0};
    uint8_t *cat = NULL; /* concatenation scratch */
    size_t cap_cat = 0;
    for (int b = 0; b < 256; b++) {
        uint8_t c = (uint8_t)b;
        if ((st = tokset_add(&S, &c, 1))) goto done;
    }
    /* 1. count distinct pieces */
    wmap = llmc_calloc(wmask + 1, sizeof(word_slot), "word counts");
    if (!wmap) {
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    size_t polls = 0;
    for (size_t t = 0; t < n_texts; t++) {
        const uint8_t *s = (const uint8_t *)texts[t];
        for (size_t i = 0; i < lens[t];) {
            if ((++polls & 1023) == 0 && llmc_interrupted()) { /* Ctrl-C: see interrupt.c */
                st = LLMC_ERR_INTERRUPTED;
                goto done;
            }
            size_t e = kind == LLMC_PRE_NONE ? lens[t] : llmc_pretok_next(kind, s, lens[t], i);
            size_t n = e - i;
            uint64_t h = mix64(0x9E3779B97F4A7C15ull * (n + 1));
            for (size_t k = 0; k < n; k++) h = (h ^ s[i + k]) * 0x100000001B3ull; /* FNV-1a over the bytes */
            h = mix64(h) | 1;                                                  /* 0 marks an empty slot */
            size_t slot = h & wmask;
            while (wmap[slot].hash && !(wmap[slot].hash == h && wmap[slot].len == n &&
                                        !memcmp(arena + wmap[slot].off, s + i, n)))
                slot = (slot + 1) & wmask;
            if (wmap[slot].hash) {
                wmap[slot].count++;
            } else {
                if (n > UINT32_MAX || arena_len + n > UINT32_MAX) {
                    st = llmc_fail(LLMC_ERR_INVALID, "training text too large (over 4 GB of distinct pieces)");
                    goto done;
                }
                if (llmc_grow((void **)&arena, &cap_arena, arena_len + n, 1, "training pieces")) {
                    st = LLMC_ERR_NOMEM;
                    goto done;
                }
                memcpy(arena + arena_len, s + i, n);
                wmap[slot] = (word_slot){h, (uint32_t)arena_len, (uint32_t)n, 1};
                arena_len += n;
                if (2 * ++n_words > wmask + 1) { /* keep the load under 1/2 */
                    size_t nm = (wmask + 1) * 2;
                    word_slot *nw = llmc_calloc(nm, sizeof(word_slot), "word counts");
                    if (!nw) {
                        st = LLMC_ERR_NOMEM;
                        goto done;
                    }
                    for (size_t k = 0; k <= wmask; k++) {
                        if (!wmap[k].hash) continue;
                        size_t j = wmap[k].hash & (nm - 1);
                        while (nw[j].hash) j = (j + 1) & (nm - 1);
                        nw[j] = wmap[k];
                    }
                    llmc_free(wmap);
                    wmap = nw;
                    wmask = nm - 1;
                }
            }
            i = e;
        }
    }
    /* 2. words as symbol arrays, and the initial pair counts */
    woff = llmc_malloc((n_words + 1) * sizeof(uint32_t), "words");
    wlen = llmc_malloc((n_words + 1) * sizeof(uint32_t), "words");
    wcount = llmc_malloc((n_words + 1) * sizeof(uint64_t), "words");
    stamp = llmc_calloc(n_words + 1, sizeof(uint32_t), "words");
    if (!woff || !wlen || !wcount || !stamp || llmc_grow((void **)&syms, &cap_syms, arena_len + 1, sizeof(uint32_t), "words") ||
        pairs_rehash(&T, 1 << 16)) {
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    size_t w = 0;
    for (size_t k = 0; k <= wmask; k++) {
        if (!wmap[k].hash) continue;
        woff[w] = wmap[k].off;
        wlen[w] = wmap[k].len;
        wcount[w] = wmap[k].count;
        for (size_t j = 0; j < wmap[k].len; j++) syms[wmap[k].off + j] = arena[wmap[k].off + j];
        for (size_t j = 0; j + 1 < wmap[k].len; j++) {
            uint32_t a = arena[wmap[k].off + j], b = arena[wmap[k].off + j + 1];
            pair_rec *p = pair_get(&T, (uint64_t)a << 32 | b);
            if (!p || note_word(&T, p, (uint32_t)w)) {
                st = LLMC_ERR_NOMEM;
                goto done;
            }
            p->count += (int64_t)wmap[k].count;
        }
        w++;
    }
    for (size_t k = 0; k <= T.mask; k++)
        if (T.pairs[k].key != UINT64_MAX && (st = heap_push(&T, T.pairs[k].count, T.pairs[k].key))) goto done;
    /* 3. merge loop: until n_merges new tokens exist */
    size_t done_merges = 0, n_rec = 0, report = n_merges / 100 + 1;
    while (done_merges < n_merges && T.n_heap) {
        if (llmc_interrupted()) {
            st = LLMC_ERR_INTERRUPTED;
            goto done;
        }
        heap_ent top = heap_pop(&T);
        pair_rec *p = pair_get(&T, top.key);
        if (!p) {
            st = LLMC_ERR_NOMEM;
            goto done;
        }
        if (p->count != top.count) { /* stale entry: requeue with the current count */
            if (p->count > 0 && (st = heap_push(&T, p->count, top.key))) goto done;
            continue;
        }
        if ((uint64_t)top.count < min_frequency || top.count <= 0) break;
        uint32_t A = (uint32_t)(top.key >> 32), B = (uint32_t)top.key;
        size_t la = S.len[A], lb = S.len[B], slot = 0;
        if (llmc_grow((void **)&cat, &cap_cat, la + lb + 1, 1, "merge scratch") ||
            llmc_grow((void **)&out, &cap_out, 3 * n_rec + 3, sizeof(int32_t), "merges")) {
            st = LLMC_ERR_NOMEM;
            goto done;
        }
        memcpy(cat, S.bytes + S.off[A], la);
        memcpy(cat + la, S.bytes + S.off[B], lb);
        int32_t known = tokset_find(&S, cat, la + lb, &slot);
        uint32_t C = known >= 0 ? (uint32_t)known : (uint32_t)S.n; /* an existing token is reused */
        if (known < 0 && (st = tokset_add(&S, cat, la + lb))) goto done;
        uint32_t step = (uint32_t)n_rec + 1;
        out[3 * n_rec] = (int32_t)A;
        out[3 * n_rec + 1] = (int32_t)B;
        out[3 * n_rec + 2] = (int32_t)C;
        n_rec++;
        T.n_queue = 0;
        /* walk the words that hold (A, B); the list may grow while we walk (new pairs only, never (A, B)) */
        for (uint32_t ci = p->head; ci != UINT32_MAX;) {
            pair_rec *pp = pair_get(&T, top.key); /* re-find: delta() may rehash */
            uint32_t fill = ci == pp->tail ? pp->tail_fill : CHUNK;
            for (uint32_t q = 0; q < fill; q++) {
                uint32_t wi = T.chunks[ci].w[q];
                if (stamp[wi] == step) continue; /* already rewritten at this step */
                stamp[wi] = step;
                uint32_t *sy = syms + woff[wi];
                size_t n = wlen[wi], o = 0;
                int64_t f = (int64_t)wcount[wi];
                for (size_t i = 0; i < n;) {
                    if (i + 1 < n && sy[i] == A && sy[i + 1] == B) {
                        if ((st = delta(&T, A, B, -f, wi, step))) goto done;
                        if (o > 0 && ((st = delta(&T, sy[o - 1], A, -f, wi, step)) ||
                                      (st = delta(&T, sy[o - 1], C, f, wi, step))))
                            goto done;
                        if (i + 2 < n && ((st = delta(&T, B, sy[i + 2], -f, wi, step)) ||
                                          (st = delta(&T, C, sy[i + 2], f, wi, step))))
                            goto done;
                        sy[o++] = C; /* o <= i: the rewrite never overtakes the read */
                        i += 2;
                    } else {
                        sy[o++] = sy[i++];
                    }
                }
                wlen[wi] = (uint32_t)o;
            }
            ci = T.chunks[ci].next;
        }
        /* push the pairs that grew, once each, with their final count */
        for (size_t k = 0; k < T.n_queue; k++) {
            pair_rec *qp = pair_get(&T, T.queue[k]);
            if (!qp) {
                st = LLMC_ERR_NOMEM;
                goto done;
            }
            if (qp->count > 0 && (st = heap_push(&T, qp->count, qp->key))) goto done;
        }
        if (known < 0) done_merges++;
        if (known < 0 && progress && (done_merges % report == 0 || done_merges == n_merges)) progress(done_merges, n_merges, ctx);
    }
    if (!out && !(out = llmc_malloc(3 * sizeof(int32_t), "merges"))) { /* no merges: still a buffer */
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    *merges = out;
    *n_out = n_rec;
    out = NULL;
done:
    llmc_free(S.bytes);
    llmc_free(S.off);
    llmc_free(S.len);
    llmc_free(S.map);
    llmc_free(cat);
    llmc_free(out);
    llmc_free(wmap);
    llmc_free(arena);
    llmc_free(syms);
    llmc_free(woff);
    llmc_free(wlen);
    llmc_free(wcount);
    llmc_free(stamp);
    llmc_free(T.pairs);
    llmc_free(T.chunks);
    llmc_free(T.heap);
    llmc_free(T.queue);
    return st;
}
