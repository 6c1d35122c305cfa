/* grapheme.c: extended grapheme cluster boundaries (UAX #29, the rules of Unicode 16), for HF's Precompiled
 * normalizer, which rewrites whole graphemes of fewer than 6 bytes. Properties come from unicode_tables.c
 * (generated: Grapheme_Cluster_Break, Extended_Pictographic, Indic_Conjunct_Break).
 *
 * The scan walks forward from the first character keeping three small states: the run of Regional_Indicator
 * characters (flags pair up, GB12/13), an emoji sequence ExtPict Extend* ZWJ (GB11), and an Indic conjunct
 * Consonant [Extend Linker]* with at least one Linker (GB9c). A byte of invalid UTF-8 is a grapheme of its own. */
#include "tok_internal.h"
#include "unicode.h"

enum { EMOJI_NONE, EMOJI_PICT, EMOJI_ZWJ };                  /* ExtPict Extend*, then ZWJ */
enum { INCB_NONE, INCB_CONSONANT, INCB_LINKED };              /* Consonant [Extend|Linker]*, with a Linker seen */

/* Does a break stay out between a character of properties a and the next one of b (GB3..GB13)? */
static int joins(unsigned a, unsigned b, int ri_odd, int emoji, int incb) {
    unsigned ga = a & 15, gb = b & 15;
    if (ga == LLMC_GCB_CR && gb == LLMC_GCB_LF) return 1;                               /* GB3 */
    if (ga == LLMC_GCB_CONTROL || ga == LLMC_GCB_CR || ga == LLMC_GCB_LF) return 0;    /* GB4 */
    if (gb == LLMC_GCB_CONTROL || gb == LLMC_GCB_CR || gb == LLMC_GCB_LF) return 0;    /* GB5 */
    if (ga == LLMC_GCB_L && (gb == LLMC_GCB_L || gb == LLMC_GCB_V || gb == LLMC_GCB_LV || gb == LLMC_GCB_LVT))
        return 1;                                                                       /* GB6 */
    if ((ga == LLMC_GCB_LV || ga == LLMC_GCB_V) && (gb == LLMC_GCB_V || gb == LLMC_GCB_T)) return 1; /* GB7 */
    if ((ga == LLMC_GCB_LVT || ga == LLMC_GCB_T) && gb == LLMC_GCB_T) return 1;         /* GB8 */
    if (gb == LLMC_GCB_EXTEND || gb == LLMC_GCB_ZWJ || gb == LLMC_GCB_SPACINGMARK) return 1; /* GB9, GB9a */
    if (ga == LLMC_GCB_PREPEND) return 1;                                               /* GB9b */
    if (incb == INCB_LINKED && (b >> 5) == LLMC_INCB_CONSONANT) return 1;               /* GB9c */
    if (emoji == EMOJI_ZWJ && ga == LLMC_GCB_ZWJ && (b & LLMC_GP_EXTPICT)) return 1;     /* GB11 */
    if (ga == LLMC_GCB_RI && gb == LLMC_GCB_RI && ri_odd) return 1;                     /* GB12, GB13 */
    return 0;                                                                           /* GB999 */
}

// s: (n,) UTF-8 bytes, i < n -> the end of the grapheme cluster that starts at byte i
size_t llmc_grapheme_next(const uint8_t *s, size_t n, size_t i) {
    size_t l;
    uint32_t cp = llmc_utf8_next(s + i, n - i, &l);
    unsigned a = llmc_gprop(cp);
    int ri_odd = (a & 15) == LLMC_GCB_RI, emoji = (a & LLMC_GP_EXTPICT) ? EMOJI_PICT : EMOJI_NONE;
    int incb = (a >> 5) == LLMC_INCB_CONSONANT ? INCB_CONSONANT : INCB_NONE;
    size_t j = i + l;
    while (j < n) {
        cp = llmc_utf8_next(s + j, n - j, &l);
        unsigned b = llmc_gprop(cp);
        if (!joins(a, b, ri_odd, emoji, incb)) break;
        /* the states after b joins */
        ri_odd = (b & 15) == LLMC_GCB_RI ? !ri_odd : 0;
        if (b & LLMC_GP_EXTPICT) emoji = EMOJI_PICT;
        else if (emoji == EMOJI_PICT && (b & 15) == LLMC_GCB_EXTEND) emoji = EMOJI_PICT;
        else if (emoji == EMOJI_PICT && (b & 15) == LLMC_GCB_ZWJ) emoji = EMOJI_ZWJ;
        else emoji = EMOJI_NONE;
        unsigned ib = b >> 5;
        if (ib == LLMC_INCB_CONSONANT) incb = INCB_CONSONANT;
        else if (incb != INCB_NONE && ib == LLMC_INCB_LINKER) incb = INCB_LINKED;
        else if (incb != INCB_NONE && ib == LLMC_INCB_EXTEND) { /* stays */ }
        else incb = INCB_NONE;
        a = b;
        j += l;
    }
    return j;
}
