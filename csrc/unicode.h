/* unicode.h: Unicode class flags, UTF-8 decoding and NFC for the tokenizer (tables in unicode_tables.c, generated
 * by scripts/gen_unicode_tables.py from Python's unicodedata; the version is llmc_unicode_version). */
#ifndef LLMC_UNICODE_H
#define LLMC_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    LLMC_U_L = 1,    /* \p{L} */
    LLMC_U_N = 2,    /* \p{N} */
    LLMC_U_M = 4,    /* \p{M} */
    LLMC_U_UP = 8,   /* [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] (o200k) */
    LLMC_U_LO = 16,  /* [\p{Ll}\p{Lm}\p{Lo}\p{M}] (o200k) */
    LLMC_U_WS = 32,  /* \s: White_Space */
    LLMC_U_P = 64,   /* \p{P} (BERT punctuation) */
    LLMC_U_C = 128,  /* Cc, Cf or Co (what HF's BertNormalizer removes as control) */
    LLMC_U_MN = 256  /* Mn (accents that BERT's strip_accents removes) */
};

/* General categories (Unicode 16.0, what the regex engines of tiktoken and HF use), in this order; a uint32_t with
 * bit (1 << cat) set for each member is a set of categories (\p{L} = Lu|Ll|Lt|Lm|Lo). */
enum {
    LLMC_UC_LU, LLMC_UC_LL, LLMC_UC_LT, LLMC_UC_LM, LLMC_UC_LO, LLMC_UC_MN, LLMC_UC_MC, LLMC_UC_ME, LLMC_UC_ND,
    LLMC_UC_NL, LLMC_UC_NO, LLMC_UC_PC, LLMC_UC_PD, LLMC_UC_PS, LLMC_UC_PE, LLMC_UC_PI, LLMC_UC_PF, LLMC_UC_PO,
    LLMC_UC_SM, LLMC_UC_SC, LLMC_UC_SK, LLMC_UC_SO, LLMC_UC_ZS, LLMC_UC_ZL, LLMC_UC_ZP, LLMC_UC_CC, LLMC_UC_CF,
    LLMC_UC_CS, LLMC_UC_CO, LLMC_UC_CN, LLMC_UC_COUNT
};
extern const uint16_t llmc_ucat_stage1[];
extern const uint8_t llmc_ucat_stage2[];

extern const char llmc_unicode_version[];
extern const uint16_t llmc_uflags_stage1[];
extern const uint16_t llmc_uflags_stage2[];
extern const size_t llmc_ccc_count, llmc_decomp_count, llmc_comp_count;
extern const uint32_t llmc_ccc_table[][2];
extern const uint32_t llmc_decomp_table[][3];
extern const uint32_t llmc_decomp_pool[];
extern const uint32_t llmc_comp_table[][3];
extern const size_t llmc_kdecomp_count;
extern const uint32_t llmc_kdecomp_table[][3];
extern const uint32_t llmc_kdecomp_pool[];
extern const uint16_t llmc_gprop_stage1[];
extern const uint8_t llmc_gprop_stage2[];
extern const size_t llmc_lower_count;
extern const uint32_t llmc_lower_table[][4];

/* Class flags of code point cp (cp <= 0x10FFFF; anything else, e.g. an invalid-byte marker, has no flags). */
static inline unsigned llmc_uflags(uint32_t cp) {
    if (cp > 0x10FFFF) return 0;
    return llmc_uflags_stage2[(size_t)llmc_uflags_stage1[cp >> 8] * 256 + (cp & 255)];
}

/* General category (LLMC_UC_*) of cp; anything above U+10FFFF (an invalid-byte marker) is Cn. */
static inline unsigned llmc_ucat(uint32_t cp) {
    if (cp > 0x10FFFF) return LLMC_UC_CN;
    return llmc_ucat_stage2[(size_t)llmc_ucat_stage1[cp >> 8] * 256 + (cp & 255)];
}

/* Grapheme_Cluster_Break values (the low 4 bits of llmc_gprop), Extended_Pictographic (bit 4) and
 * Indic_Conjunct_Break (bits 5-6) */
enum {
    LLMC_GCB_OTHER, LLMC_GCB_CR, LLMC_GCB_LF, LLMC_GCB_CONTROL, LLMC_GCB_EXTEND, LLMC_GCB_ZWJ, LLMC_GCB_RI,
    LLMC_GCB_PREPEND, LLMC_GCB_SPACINGMARK, LLMC_GCB_L, LLMC_GCB_V, LLMC_GCB_T, LLMC_GCB_LV, LLMC_GCB_LVT
};
enum { LLMC_GP_EXTPICT = 16, LLMC_INCB_LINKER = 1, LLMC_INCB_CONSONANT = 2, LLMC_INCB_EXTEND = 3 };

/* Grapheme properties of cp: GCB | EXTPICT | InCB << 5 (an invalid-byte marker is a Control). */
static inline unsigned llmc_gprop(uint32_t cp) {
    if (cp > 0x10FFFF) return LLMC_GCB_CONTROL;
    return llmc_gprop_stage2[(size_t)llmc_gprop_stage1[cp >> 8] * 256 + (cp & 255)];
}

/* A code point that marks one byte of invalid UTF-8 (never a real code point; classed as "other"). */
#define LLMC_BAD_CP 0x110000u

/* Decode the code point at s[0..n) (n >= 1) and store its byte length in *len. Invalid or truncated UTF-8
 * (overlongs, surrogates, > U+10FFFF) gives LLMC_BAD_CP with *len = 1. */
static inline uint32_t llmc_utf8_next(const uint8_t *s, size_t n, size_t *len) {
    uint8_t c = s[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c >= 0xC2 && c < 0xE0) {
        if (n >= 2 && (s[1] & 0xC0) == 0x80) { *len = 2; return ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F); }
    } else if (c >= 0xE0 && c < 0xF0) {
        if (n >= 3 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
            uint32_t cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
            if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) { *len = 3; return cp; }
        }
    } else if (c >= 0xF0 && c < 0xF5) {
        if (n >= 4 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80 && (s[3] & 0xC0) == 0x80) {
            uint32_t cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
                          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
            if (cp >= 0x10000 && cp <= 0x10FFFF) { *len = 4; return cp; }
        }
    }
    *len = 1;
    return LLMC_BAD_CP;
}

/* Write cp as UTF-8 into out (room for 4); returns the byte count. */
static inline size_t llmc_utf8_put(uint32_t cp, uint8_t *out) {
    if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) { out[0] = (uint8_t)(0xC0 | (cp >> 6)); out[1] = (uint8_t)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (cp >> 12)); out[1] = (uint8_t)(0x80 | ((cp >> 6) & 63));
        out[2] = (uint8_t)(0x80 | (cp & 63)); return 3;
    }
    out[0] = (uint8_t)(0xF0 | (cp >> 18)); out[1] = (uint8_t)(0x80 | ((cp >> 12) & 63));
    out[2] = (uint8_t)(0x80 | ((cp >> 6) & 63)); out[3] = (uint8_t)(0x80 | (cp & 63)); return 4;
}

#endif
