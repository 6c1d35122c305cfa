/* dat.c: building the double-array trie of dat.h.
 *
 * Nodes are placed depth first, so that the nodes of one subtree (the pieces that share a prefix) land in
 * neighbouring blocks and a walk stays in a small part of the array. A node whose children have the labels L gets
 * a base b such that every unit b ^ c (c in L) is free and no other node has the base b; its children then take
 * those units. b ^ c keeps b's block (b >> 8) and permutes the offsets inside it, so a search for b looks at the
 * free units f of a block and tries b = f ^ L[0]. Only the last WINDOW blocks are searched (then a new block is
 * added): a block that leaves the window stays as full as it is, which bounds the build time at a small cost in
 * empty units (about 1% on real vocabularies; the scheme of Darts-clone, written here from its description). */
#include <string.h>

#include "dat.h"

#define WINDOW 16 /* blocks searched for a free base */

typedef struct {
    llmc_dat_unit *units;
    uint64_t *used;      /* (n_units / 64,) bit u: unit u is taken */
    uint64_t *taken;     /* (n_units / 64,) bit b: some node has the base b */
    uint16_t *free_in;   /* (n_blocks,) free units per block */
    size_t n_blocks, cap_blocks;
} builder;

static inline int bit(const uint64_t *m, size_t i) { return (int)(m[i >> 6] >> (i & 63)) & 1; }
static inline void set_bit(uint64_t *m, size_t i) { m[i >> 6] |= 1ull << (i & 63); }

/* Append one empty block (all its units free). */
static llmc_status add_block(builder *b) {
    if (b->n_blocks == b->cap_blocks) {
        size_t cap = b->cap_blocks ? 2 * b->cap_blocks : 16;
        if (cap > ((size_t)1 << 24)) /* 2^32 units: bases and labels no longer fit a uint32 */
            return llmc_fail(LLMC_ERR_NOMEM, "double-array trie: more than %zu blocks of 256 units", (size_t)1 << 24);
        llmc_dat_unit *u = llmc_malloc(cap * 256 * sizeof *u, "double-array trie");
        uint64_t *used = llmc_malloc(cap * 4 * sizeof *used, "double-array trie");
        uint64_t *taken = llmc_malloc(cap * 4 * sizeof *taken, "double-array trie");
        uint16_t *fr = llmc_malloc(cap * sizeof *fr, "double-array trie");
        if (!u || !used || !taken || !fr) {
            llmc_free(u);
            llmc_free(used);
            llmc_free(taken);
            llmc_free(fr);
            return LLMC_ERR_NOMEM;
        }
        if (b->n_blocks) {
            memcpy(u, b->units, b->n_blocks * 256 * sizeof *u);
            memcpy(used, b->used, b->n_blocks * 4 * sizeof *used);
            memcpy(taken, b->taken, b->n_blocks * 4 * sizeof *taken);
            memcpy(fr, b->free_in, b->n_blocks * sizeof *fr);
        }
        llmc_free(b->units);
        llmc_free(b->used);
        llmc_free(b->taken);
        llmc_free(b->free_in);
        b->units = u;
        b->used = used;
        b->taken = taken;
        b->free_in = fr;
        b->cap_blocks = cap;
    }
    size_t k = b->n_blocks++;
    memset(b->units + 256 * k, 0, 256 * sizeof *b->units); /* base 0, info 0: free, matches no label */
    memset(b->used + 4 * k, 0, 4 * sizeof *b->used);
    memset(b->taken + 4 * k, 0, 4 * sizeof *b->taken);
    b->free_in[k] = 256;
    return LLMC_OK;
}

/* Can base `base` take children with labels lab[0..nl)? */
static int fits(const builder *b, uint32_t base, const uint8_t *lab, size_t nl) {
    if (bit(b->taken, base)) return 0;
    for (size_t i = 0; i < nl; i++)
        if (bit(b->used, base ^ lab[i])) return 0;
    return 1;
}

/* A free base for children with labels lab[0..nl) (nl >= 1), in the window or in a new block. */
static llmc_status find_base(builder *b, const uint8_t *lab, size_t nl, uint32_t *out) {
    for (;;) {
        size_t first = b->n_blocks > WINDOW + 1 ? b->n_blocks - WINDOW : 1; /* block 0 holds only the root */
        for (size_t k = first; k < b->n_blocks; k++) {
            if (b->free_in[k] < nl) continue;
            for (size_t w = 0; w < 4; w++) {
                uint64_t freebits = ~b->used[4 * k + w];
                while (freebits) { /* each free unit f of the block: the base that puts lab[0] on f */
                    uint32_t f = (uint32_t)(256 * k + 64 * w + (size_t)__builtin_ctzll(freebits));
                    freebits &= freebits - 1;
                    uint32_t base = f ^ lab[0];
                    if (fits(b, base, lab, nl)) {
                        *out = base;
                        return LLMC_OK;
                    }
                }
            }
        }
        llmc_status st = add_block(b);
        if (st) return st;
    }
}

typedef struct {
    uint32_t node, lo, hi, depth; /* keys[lo..hi) share the node's prefix of `depth` bytes */
} build_item;

llmc_status llmc_dat_build(llmc_dat *d, const uint8_t *const *keys, const uint32_t *lens, const int32_t *values,
                           const double *weights, size_t n) {
    builder b = {0};
    build_item *q = NULL;
    size_t qcap = 0, qt = 0; /* a stack */
    uint8_t lab[256];
    llmc_status st = add_block(&b); /* block 0: the root (unit 0) */
    if (st) goto done;
    b.units[0].info = 0; /* the root is marked used but carries no "in use" bit: no step ever lands on it */
    set_bit(b.used, 0);
    b.free_in[0]--;
    if (llmc_grow((void **)&q, &qcap, 1, sizeof *q, "double-array trie")) {
        st = LLMC_ERR_NOMEM;
        goto done;
    }
    q[qt++] = (build_item){0, 0, (uint32_t)n, 0};
    while (qt > 0) {
        build_item it = q[--qt]; /* depth first: a node's subtree lands in neighbouring blocks */
        uint32_t lo = it.lo;
        if (lo < it.hi && lens[lo] == it.depth) { /* the key that ends here (sorted: the shortest comes first) */
            if (weights) b.units[it.node].weight = weights[lo];
            int32_t v = values[lo++];
            if (v < 0 || v > LLMC_DAT_MAX_VALUE) {
                st = llmc_fail(LLMC_ERR_INVALID, "double-array trie: value %d is outside 0..%d", (int)v,
                               (int)LLMC_DAT_MAX_VALUE);
                goto done;
            }
            b.units[it.node].info |= (uint32_t)(v + 1) << 9;
        }
        if (lo < it.hi && lens[lo] == it.depth) { /* a second key ending here */
            st = llmc_fail(LLMC_ERR_INVALID, "double-array trie: key %u is a duplicate", (unsigned)lo);
            goto done;
        }
        size_t nl = 0;
        for (uint32_t k = lo; k < it.hi;) { /* the distinct next bytes */
            uint8_t c = keys[k][it.depth];
            lab[nl++] = c;
            while (k < it.hi && keys[k][it.depth] == c) k++;
        }
        if (!nl) continue; /* a leaf: base 0 */
        uint32_t base;
        if ((st = find_base(&b, lab, nl, &base))) goto done;
        b.units[it.node].base = base;
        set_bit(b.taken, base);
        if (llmc_grow((void **)&q, &qcap, qt + nl, sizeof *q, "double-array trie")) {
            st = LLMC_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < nl; i++) { /* the children, each with its range of keys */
            uint32_t u = base ^ lab[i], hi = lo;
            while (hi < it.hi && keys[hi][it.depth] == lab[i]) hi++;
            b.units[u] = (llmc_dat_unit){0, 0x100u | lab[i], 0.0};
            set_bit(b.used, u);
            b.free_in[u >> 8]--;
            q[qt + nl - 1 - i] = (build_item){u, lo, hi, it.depth + 1}; /* pushed last first: popped in label order */
            lo = hi;
        }
        qt += nl;
    }
done:
    llmc_free(q);
    llmc_free(b.used);
    llmc_free(b.taken);
    llmc_free(b.free_in);
    if (st) {
        llmc_free(b.units);
        return st;
    }
    llmc_dat_free(d);
    d->units = b.units;
    d->n_units = 256 * b.n_blocks;
    return LLMC_OK;
}

void llmc_dat_free(llmc_dat *d) {
    llmc_free(d->units);
    d->units = NULL;
    d->n_units = 0;
}
