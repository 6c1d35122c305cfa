/* dat.h: a double-array trie over byte strings (dat.c), for walks that look up every prefix of a text in one pass
 * (the vocabulary walk of Unigram's Viterbi, SentencePiece's user-defined pieces).
 *
 * Every node is one 16-byte unit of one array; unit 0 is the root. The child of node s for byte c is the unit
 * units[s].base ^ c, and it is s's child only if that unit is in use and carries the label c (different nodes
 * get different bases, so a label match cannot be another node's child). One step of a walk is one load and one
 * compare, with no search over siblings. Bases of internal nodes lie in blocks of 256 units from block 1 on and a
 * leaf's base is 0, so base ^ c never leaves the array (which is a whole number of blocks) and a leaf's step lands
 * in block 0, where only the root is, whose info never matches: no bounds check is needed. */
#ifndef LLMC_DAT_H
#define LLMC_DAT_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct {
    uint32_t base; /* the children of this node are units base ^ c, c the next byte (0: a leaf) */
    uint32_t info; /* bits 0-7: the byte that leads here; bit 8: in use; bits 9-31: value + 1 of the key ending here */
    double weight; /* the weight of the key ending here: kept in the unit, so a walk that meets a key reads no
                    * other memory (Unigram: the piece's score) */
} llmc_dat_unit;

typedef struct {
    llmc_dat_unit *units; /* (n_units,) n_units a multiple of 256; NULL when empty */
    size_t n_units;
} llmc_dat;

#define LLMC_DAT_MAX_VALUE ((int32_t)((1u << 23) - 2)) /* values are stored + 1 in 23 bits */

/* keys[i][0..lens[i]) -> values[i] (0 <= value <= LLMC_DAT_MAX_VALUE) and weights[i] (NULL: all 0). Keys must be
 * non-empty, distinct and sorted bytewise (a shorter key before its extensions). d is replaced (free it with
 * llmc_dat_free). */
llmc_status llmc_dat_build(llmc_dat *d, const uint8_t *const *keys, const uint32_t *lens, const int32_t *values,
                           const double *weights, size_t n);
void llmc_dat_free(llmc_dat *d);

/* The child of node s for byte c, or 0 when there is none (the root is nobody's child). An empty trie has none. */
static inline uint32_t llmc_dat_child(const llmc_dat *d, uint32_t s, uint8_t c) {
    uint32_t u = d->units[s].base ^ c;
    return (d->units[u].info & 0x1FFu) == (0x100u | c) ? u : 0;
}

/* The value of the key that ends at node s, or -1. */
static inline int32_t llmc_dat_value(const llmc_dat *d, uint32_t s) { return (int32_t)(d->units[s].info >> 9) - 1; }

/* The weight of the key that ends at node s (0 when none does). */
static inline double llmc_dat_weight(const llmc_dat *d, uint32_t s) { return d->units[s].weight; }

#endif
