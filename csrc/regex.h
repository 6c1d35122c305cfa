/* regex.h: the regex subset real pre-tokenizers use, compiled once to a small program and run by a Pike VM
 * (linear time in the input: every position is visited once per program instruction, no backtracking).
 *
 * Supported: literals and escapes (\n \r \t \f \v \e \a \xHH \x{H..} \uHHHH, escaped punctuation), `.`, classes
 * [...] and [^...] with ranges, \s \S \d \D \w \W \h \H, \p{..} / \P{..} / \pL for general categories (L Lu Ll Lt
 * Lm Lo M Mn Mc Me N Nd Nl No P Pc Pd Ps Pe Pi Pf Po S Sm Sc Sk So Z Zs Zl Zp C Cc Cf Cs Co Cn and their long
 * names), alternation, groups (capturing groups are plain groups), (?:...), (?i:...), (?i) for the rest of a
 * group, quantifiers * + ? {n} {n,} {n,m} greedy or lazy (?), possessive *+ ++ ?+ on a single character or class,
 * one-character lookahead (?!C) / (?=C), anchors ^ $ (line anchors, as in Oniguruma) and \A \z \Z.
 * Matching is leftmost-first (the match a backtracking engine reports). Case-insensitive matching folds ASCII
 * letters only. Anything else is LLMC_ERR_UNSUPPORTED naming the construct. */
#ifndef LLMC_REGEX_H
#define LLMC_REGEX_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"

typedef struct llmc_regex llmc_regex;

/* Per-thread scratch of a matcher (thread lists); zero-initialise, free with llmc_regex_scratch_free. */
typedef struct {
    uint32_t *pcs[2], *starts[2], *sparse[2];
    size_t cap;
    uint32_t *stack;
    uint32_t gen; /* generation stamps for the thread lists' marks, increasing across calls */
} llmc_regex_scratch;

/* Dialects: where Oniguruma (HF's Split regexes) and Rust's regex crate (tiktoken; HF's Whitespace pre-tokenizer)
 * differ on the subset, which one to follow (today: \w). */
enum { LLMC_REGEX_ONIG = 0, LLMC_REGEX_RUST = 1 };
/* Compile pat[0..len) (UTF-8) in a dialect. */
llmc_status llmc_regex_compile(const char *pat, size_t len, int dialect, llmc_regex **out);
void llmc_regex_free(llmc_regex *re);
void llmc_regex_scratch_free(llmc_regex_scratch *sc);
/* The leftmost-first match in s[0..n) that starts at or after `from`: 1 with [*ms, *me), 0 when there is none,
 * -1 when the scratch could not be allocated. An empty match is reported like any other. */
int llmc_regex_find(const llmc_regex *re, llmc_regex_scratch *sc, const uint8_t *s, size_t n, size_t from,
                    size_t *ms, size_t *me);

/* Is cp a \w character in the dialect (outside brackets)? */
int llmc_regex_is_word(uint32_t cp, int dialect);

#endif
