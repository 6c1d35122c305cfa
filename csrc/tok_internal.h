/* tok_internal.h: what the tokenizer's C files share (pre-tokenizer kinds, NFC, the tokenizer struct). */
#ifndef LLMC_TOK_INTERNAL_H
#define LLMC_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dat.h"
#include "internal.h"

/* ---------------------------------------------------------------- pre-tokenizers (pretokenize.c) */
typedef enum {
    LLMC_PRE_NONE = 0,   /* the whole segment is one piece (SentencePiece-style BPE) */
    LLMC_PRE_GPT2 = 1,   /* GPT-2 / r50k / HF ByteLevel(use_regex=true) */
    LLMC_PRE_CL100K = 2, /* cl100k_base */
    LLMC_PRE_O200K = 3,  /* o200k_base */
    LLMC_PRE_LLAMA3 = 4, /* Llama 3: cl100k's regex written with (?i:...) contractions */
    LLMC_PRE_QWEN2 = 5   /* Qwen 2/3: like Llama 3 with single digits */
} llmc_pretok_kind;

/* End of the pre-token that starts at byte i of s[0..n) (i < n); always > i. Invalid UTF-8 bytes are
 * single "other" characters (neither letter, number nor space). */
size_t llmc_pretok_next(int kind, const uint8_t *s, size_t n, size_t i);
/* The kind for a built-in name ("gpt2", "r50k", "cl100k", "o200k", "llama3", "qwen2"), or -1. */
int llmc_pretok_from_name(const char *name);
/* The kind whose exact regex source equals pat[0..len) (tiktoken's pat_str or HF's Split regex), or -1. */
int llmc_pretok_from_regex(const char *pat, size_t len);
const char *llmc_pretok_name(int kind);
/* The regex source a kind implements (the first listed: tiktoken's form for cl100k), or NULL for none. */
const char *llmc_pretok_regex(int kind);

/* ---------------------------------------------------------------- HF pre-tokenizer steps (pretok_split.c) */
/* A general pre-tokenizer is a list of steps (HF's Sequence, flattened); each step splits every piece the steps
 * before it made. A step finds matches in a piece (a regex, one of the hand-written scanners, a literal string, or
 * single characters of a class) and keeps, drops or merges them per HF's SplitDelimiterBehavior. */
typedef enum { LLMC_STEP_REGEX, LLMC_STEP_KNOWN, LLMC_STEP_STRING, LLMC_STEP_PRED } llmc_step_kind;
typedef enum {
    LLMC_SPLIT_REMOVED, LLMC_SPLIT_ISOLATED, LLMC_SPLIT_MERGED_PREV, LLMC_SPLIT_MERGED_NEXT, LLMC_SPLIT_CONTIGUOUS
} llmc_split_behavior;
typedef enum { LLMC_PRED_WHITESPACE, LLMC_PRED_PUNCT, LLMC_PRED_NUMERIC } llmc_pred_kind;
struct llmc_regex;
typedef struct {
    int kind, behavior, invert;
    int known;              /* LLMC_STEP_KNOWN: the llmc_pretok_kind scanner */
    struct llmc_regex *re;  /* LLMC_STEP_REGEX */
    uint8_t *lit;           /* LLMC_STEP_STRING (llmc_malloc'ed) */
    size_t lit_len;
    int pred;               /* LLMC_STEP_PRED */
} llmc_pretok_step;

/* Per-thread scratch for llmc_pretok_split. */
typedef struct {
    size_t *pieces[2]; /* (start, end) pairs, ping-pong between steps */
    size_t cap[2];
    size_t *m;         /* (start, end, is_match) triples of one piece */
    size_t cap_m;
    void *rx;          /* llmc_regex_scratch */
} llmc_split_scratch;

/* Run the steps over s[0..n): *out points at n_out (start, end) pairs (in sc; valid until the next call). */
llmc_status llmc_pretok_split(const llmc_pretok_step *steps, size_t n_steps, llmc_split_scratch *sc,
                              const uint8_t *s, size_t n, const size_t **out, size_t *n_out);
void llmc_split_scratch_free(llmc_split_scratch *sc);
void llmc_pretok_steps_free(llmc_pretok_step *steps, size_t n_steps);

/* ---------------------------------------------------------------- NFC (nfc.c) */
/* NFC of s[0..n) (valid UTF-8 expected; invalid bytes are copied through) into a new llmc_malloc buffer. */
llmc_status llmc_nfc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);
/* NFD (canonical decomposition and ordering), same contract. */
llmc_status llmc_nfd(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

/* NFKC / NFKD (compatibility decomposition), same contract. */
llmc_status llmc_nfkc(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);
llmc_status llmc_nfkd(const uint8_t *s, size_t n, uint8_t **out, size_t *out_len);

/* ---------------------------------------------------------------- grapheme clusters (grapheme.c) */
/* End of the extended grapheme cluster that starts at byte i of s[0..n) (i < n). */
size_t llmc_grapheme_next(const uint8_t *s, size_t n, size_t i);

/* ---------------------------------------------------------------- SentencePiece charsmap (spm_charsmap.c) */
typedef struct llmc_charsmap llmc_charsmap;
llmc_status llmc_charsmap_parse(const uint8_t *blob, size_t len, llmc_charsmap **out);
void llmc_charsmap_free(llmc_charsmap *cm);
/* Length of the shortest (longest != 0: the longest) key that prefixes key[0..n), 0 if none; its replacement in
 * *rep[0..*rep_len). */
size_t llmc_charsmap_match(const llmc_charsmap *cm, const uint8_t *key, size_t n, int longest, const uint8_t **rep,
                           size_t *rep_len);
/* Which rules' keys start with byte c: none, only keys whose second byte is not ASCII (so c followed by an ASCII
 * byte or the end matches none), or any. */
enum { LLMC_CM_NONE = 0, LLMC_CM_NON_ASCII_NEXT = 1, LLMC_CM_ANY = 2 };
int llmc_charsmap_first(const llmc_charsmap *cm, uint8_t c);
/* HF's Precompiled normalizer over s[0..n) into a new llmc_malloc buffer. */
llmc_status llmc_charsmap_normalize_hf(const llmc_charsmap *cm, const uint8_t *s, size_t n, uint8_t **out,
                                       size_t *out_len);

/* ---------------------------------------------------------------- HF normalizer steps (normalize.c) */
typedef enum {
    LLMC_NZ_NFC, LLMC_NZ_NFD, LLMC_NZ_NFKC, LLMC_NZ_NFKD, LLMC_NZ_PRECOMPILED, LLMC_NZ_STRIP, LLMC_NZ_REPLACE_STRING,
    LLMC_NZ_REPLACE_REGEX, LLMC_NZ_PREPEND, LLMC_NZ_LOWERCASE
} llmc_nz_kind;
typedef struct {
    int kind;
    int left, right;        /* LLMC_NZ_STRIP */
    struct llmc_regex *re;  /* LLMC_NZ_REPLACE_REGEX */
    uint8_t *pat, *rep;     /* Replace's string pattern and content; Prepend's text (llmc_malloc'ed) */
    size_t pat_len, rep_len;
    llmc_charsmap *cm;      /* LLMC_NZ_PRECOMPILED */
} llmc_norm_step;
/* *lead_dropped (may be NULL): a step deleted the first character (HF's text then no longer starts at offset 0). */
llmc_status llmc_normalize_steps(const llmc_norm_step *steps, size_t n_steps, const uint8_t *s, size_t n,
                                 uint8_t **out, size_t *out_n, int *lead_dropped);
void llmc_norm_steps_free(llmc_norm_step *steps, size_t n);

/* ---------------------------------------------------------------- the tokenizer (tokenizer.c) */
typedef enum {
    LLMC_MODEL_BYTE_BPE = 0, LLMC_MODEL_CHAR_BPE = 1, LLMC_MODEL_WORDPIECE = 2, LLMC_MODEL_UNIGRAM = 3
} llmc_tok_model;
typedef enum {
    LLMC_NORM_NONE = 0, LLMC_NORM_NFC = 1, LLMC_NORM_METASPACE = 2, LLMC_NORM_BERT = 3,
    LLMC_NORM_STEPS = 4, /* HF normalizer steps (norm_steps) */
    LLMC_NORM_SPM = 5    /* SentencePiece's own normalizer (spm_*) */
} llmc_tok_norm;

/* per-id flags of Unigram pieces */
enum { LLMC_UNI_UNUSED = 1, LLMC_UNI_USER = 2, LLMC_UNI_NOT_IN_TRIE = 4, LLMC_UNI_CONTROL = 8 };
/* Per-thread Viterbi scratch: one cell per byte position (the best path that ends there). */
typedef struct {
    double score; /* the best path's score (meaningless while from < 0) */
    int32_t from; /* where its last step starts (-1: no path yet) */
    int32_t id;   /* its last step's piece (-1: an unknown character) */
} llmc_uni_cell;
typedef struct {
    llmc_uni_cell *cell;
    uint32_t *ends; /* backtracking */
    size_t cap;
} llmc_uni_scratch;
/* BertNormalizer options (llmc_tokenizer.bert_norm bits) */
enum { LLMC_BERT_CLEAN = 1, LLMC_BERT_CHINESE = 2, LLMC_BERT_STRIP_ACCENTS = 4, LLMC_BERT_LOWERCASE = 8 };

/* token bytes -> id: open addressing, 32-byte slots holding the first 16 key bytes, so a probe touches one cache
 * line; longer keys compare their tail in the blob */
typedef struct {
    uint64_t k0, k1; /* key bytes 0..15, zero padded */
    uint32_t hash;   /* high bits of the 64-bit hash */
    uint32_t len;    /* key length */
    int32_t id;      /* -1: empty */
    uint32_t pad;
} llmc_bmap_slot;

/* (left id, right id) -> (merge rank, merged id): open addressing on a 64-bit key */
typedef struct {
    uint64_t key; /* left << 32 | right; UINT64_MAX = empty */
    uint32_t rank;
    uint32_t id;
} llmc_pair_slot;

typedef struct {
    uint32_t off, len; /* content bytes in blob */
    int32_t id;
    uint8_t special; /* 1: a special token (tiktoken's allowed/disallowed apply); 0: HF non-special added token */
    uint8_t lstrip, rstrip, single_word; /* HF AddedToken options (whitespace taken on either side; whole words) */
    uint8_t normalized;                  /* matched in a second pass, in the pieces between the other tokens */
    uint32_t moff, mlen;                 /* the bytes matched in the text (normalized tokens: the normalized content) */
} llmc_added_tok;

struct llmc_tokenizer {
    int model;             /* llmc_tok_model */
    int pretok;            /* llmc_pretok_kind */
    int normalizer;        /* llmc_tok_norm */
    int whole_piece_first; /* a piece that is itself a token is emitted as is (tiktoken; HF ignore_merges) */
    int no_piece_cache;    /* pieces are whole segments (SentencePiece Unigram): a piece cache would not hit */
    int prefix_space;      /* HF ByteLevel add_prefix_space: a segment not starting with ' ' gets one */
    int strip_lead_space;  /* decoding: 1 drop one leading ' ' (HF Strip decoder), 2 drop the first token's U+2581s
                            * (HF Metaspace decoder) */
    int join_space;        /* decoding: tokens joined by ' ' (HF with no decoder) */
    int fuse_unk;
    int32_t unk_id;        /* -1: none */
    size_t n_vocab;        /* max id + 1 */
    size_t id_limit;       /* ids must stay below this (0: no limit): set from the size of the file being loaded */
    uint8_t *blob;         /* all token bytes */
    size_t blob_len, blob_cap;
    uint64_t *tok_off;     /* (n_vocab,) token bytes = blob[tok_off[id] .. + tok_len[id]) */
    uint32_t *tok_len;     /* (n_vocab,) UINT32_MAX: no token has this id */
    uint64_t *dec_off;     /* (n_vocab,) or NULL: bytes a token decodes to when they differ (SentencePiece) */
    uint32_t *dec_len;
    llmc_bmap_slot *map;   /* model vocabulary bytes -> id (power-of-two size map_mask + 1) */
    size_t map_mask;
    llmc_pair_slot *pairs; /* merges */
    size_t pair_mask, n_pairs;
    uint64_t *pair_filter;   /* one bit per hash of the merges (>= 8 bits each): most pairs looked up do not merge,
                              * and this answers them from 1/16 of the table's memory (NULL: none) */
    unsigned pair_filter_shift; /* bit index = hash >> shift */
    llmc_dat bt_dat;         /* byte-level BPE: the vocabulary (bytes -> id) of the search encoder (empty: none) */
    /* the search encoder's pair checks, memoized for the tokenizer's life and shared by every thread and call:
     * direct-mapped 8-byte slots ((a << 31 | b) << 1 | answer) + 1, 0 = empty; atomic, so concurrent encodes of the
     * same tokenizer only ever see whole entries (an entry is a fact about the vocabulary, never stale) */
    _Atomic uint64_t *bt_memo;
    size_t bt_memo_mask;
    /* short pieces -> their ids, memoized the same way (tokenizer.c's word_get/word_put: 64-byte seqlock slots) */
    _Atomic uint64_t *bt_words;
    size_t bt_words_mask;
    int32_t byte_id[256];  /* byte-level: each byte's token; char BPE: the <0xNN> byte-fallback tokens (or -1) */
    llmc_added_tok *added; /* special and added tokens, matched in the raw text */
    size_t n_added;
    uint8_t first_byte[256]; /* 1 if some added token starts with this byte */
    int32_t *prefix_ids, *suffix_ids; /* add_special_tokens template (HF TemplateProcessing) */
    size_t n_prefix, n_suffix;
    int ms_pre;           /* Metaspace pre-tokenizer: 0 none, else 1 + prepend scheme (0 never, 1 always, 2 first) */
    int ms_split;         /* Metaspace split=true: pieces start at each U+2581 */
    llmc_pretok_step *steps; /* general pre-tokenizer (used when n_steps > 0; pretok is then LLMC_PRE_NONE) */
    size_t n_steps;
    int bert_norm;        /* LLMC_BERT_* bits when normalizer == LLMC_NORM_BERT */
    int bert_pre;         /* BertPreTokenizer: split on whitespace, isolate punctuation */
    size_t wp_max_chars;  /* WordPiece: longer words become unk */
    uint8_t wp_prefix[16]; /* WordPiece continuing-subword prefix ("##") */
    size_t wp_prefix_len;
    llmc_norm_step *norm_steps; /* LLMC_NORM_STEPS */
    size_t n_norm_steps;
    /* Unigram */
    llmc_dat uni_dat;            /* the pieces' bytes -> their ids, with the score a path through them adds */
    size_t user_max_len;     /* SentencePiece: the longest user-defined piece (0: none) */
    int spm_word_split;      /* SentencePiece BPE: no merge has a right side that starts with U+2581 */
    uint8_t spm_ascii_kind[128]; /* SentencePiece: LLMC_CM_* of the charsmap, LLMC_CM_ANY when a user piece starts
                                  * with this byte */
    double *uni_score;    /* (n_vocab,) piece scores */
    uint8_t *uni_flags;   /* (n_vocab,) LLMC_UNI_* */
    double uni_min_score; /* the lowest score (of normal pieces for SentencePiece) */
    float spm_max_score;  /* SentencePiece: the highest normal score (at least FLT_MIN); user pieces score from it */
    int uni_spm;          /* SentencePiece's arithmetic (float sums, user/unused pieces) instead of HF's (double) */
    int byte_fallback;    /* unknown text becomes its <0xNN> tokens */
    /* SentencePiece normalizer (LLMC_NORM_SPM) */
    llmc_charsmap *spm_cm;
    int spm_dummy_prefix, spm_remove_ws, spm_escape_ws;
    int spm_decode;       /* decoding follows sentencepiece: control pieces vanish, unk is its surface, ... */
};

/* ---------------------------------------------------------------- BPE by search (bpe_backtrack.c) */
#define LLMC_BPE_NONE 0x7FFFFFFFu /* "no token before": compat(ctx, LLMC_BPE_NONE, b) asks whether b alone is valid */
/* 1 if the merge loop turns bytes(a) + bytes(b) into exactly (a, b) (a == LLMC_BPE_NONE: bytes(b) into (b)), 0 if
 * not, -1 on an allocation failure (message set). */
typedef int (*llmc_bpe_compat_fn)(void *ctx, uint32_t a, uint32_t b);
/* Build t->bt_dat and the memos (bt_memo, bt_words) for a byte-level BPE tokenizer with merges and all 256 byte
 * tokens (else leave them empty). */
llmc_status llmc_bpe_trie_build(llmc_tokenizer *t);
void llmc_bpe_trie_free(llmc_tokenizer *t);
/* The merge loop's output for one piece p[0..n) (n >= 1), found by search: tokens into out (room for n), count in
 * *m; dead: scratch of n + 1 bytes. whole: a piece that is a token is that token (tiktoken). Needs t->bt_dat. */
llmc_status llmc_bpe_backtrack(const llmc_tokenizer *t, const uint8_t *p, size_t n, int whole,
                               llmc_bpe_compat_fn compat, void *ctx, uint32_t *out, uint8_t *dead, size_t *m);

/* ---------------------------------------------------------------- Unigram (unigram.c) */
/* Build the piece trie over ids [0, n_ids) (those with bytes and without LLMC_UNI_NOT_IN_TRIE), scores set. */
llmc_status llmc_unigram_build(llmc_tokenizer *t, size_t n_ids);
/* Viterbi segmentation of one piece p[0..n): ids into out (room for n + 1), count in *m. */
llmc_status llmc_unigram_piece(const llmc_tokenizer *t, llmc_uni_scratch *sc, const uint8_t *p, size_t n,
                               uint32_t *out, size_t *m);
void llmc_uni_scratch_free(llmc_uni_scratch *sc);

/* ---------------------------------------------------------------- SentencePiece normalizer (tokenizer_spm.c) */
/* SentencePiece's Normalizer::Normalize of s[0..n) into a new llmc_malloc buffer. */
llmc_status llmc_spm_normalize(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n);
/* The same into *buf (llmc_malloc'ed, *cap bytes, grown as needed and kept for the next call). */
llmc_status llmc_spm_normalize_into(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **buf, size_t *cap,
                                    size_t *out_n);
/* The length of the longest user-defined piece that prefixes s[0..n) (0: none). */
size_t llmc_spm_user_match(const llmc_tokenizer *t, const uint8_t *s, size_t n);

/* ---------------------------------------------------------------- WordPiece / BERT (wordpiece.c) */
/* BertNormalizer of s[0..n) per t->bert_norm into a new llmc_malloc buffer. */
llmc_status llmc_bert_normalize(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n);
/* BertPreTokenizer: the next piece at or after byte *i (whitespace skipped); returns its end, *i = its start; both
 * n when there is none. */
size_t llmc_bert_pretok_next(const uint8_t *s, size_t n, size_t *i);
/* WordPiece of one word: ids into out (room for n + 1), count in *k. */
llmc_status llmc_wordpiece_word(const llmc_tokenizer *t, const uint8_t *w, size_t n, int32_t *out, size_t *k);

/* Builders shared by the loaders (tokenizer.c). */
llmc_tokenizer *llmc_tok_new(void);
/* Set token `id` to bytes b[0..n) (growing the tables); the map is built later by llmc_tok_finish. */
llmc_status llmc_tok_set(llmc_tokenizer *t, int64_t id, const uint8_t *b, size_t n);
llmc_status llmc_tok_set_decode(llmc_tokenizer *t, int64_t id, const uint8_t *b, size_t n);
llmc_status llmc_tok_add_added(llmc_tokenizer *t, const uint8_t *b, size_t n, int64_t id, int special);
/* Added token k is matched in the text as b[0..n) (a normalized token: its content through the normalizer). */
llmc_status llmc_tok_set_match(llmc_tokenizer *t, size_t k, const uint8_t *b, size_t n);
/* The tokenizer's normalizer (not the pre-tokenizer's prefix space) over s[0..n), into a new llmc_malloc buffer. */
llmc_status llmc_tok_normalize_alloc(const llmc_tokenizer *t, const uint8_t *s, size_t n, uint8_t **out, size_t *out_n,
                                     int *lead_dropped);
/* Build the bytes->id map over ids [0, n_model) that have bytes (added tokens excluded unless also model vocab). */
llmc_status llmc_tok_build_map(llmc_tokenizer *t, size_t n_model);
int32_t llmc_tok_lookup(const llmc_tokenizer *t, const uint8_t *b, size_t n);
/* Merges: add (left, right) -> merged id with rank (later ranks of an existing pair are ignored, like HF). */
llmc_status llmc_tok_add_pair(llmc_tokenizer *t, uint32_t left, uint32_t right, uint32_t rank, uint32_t id);
/* tiktoken: every split of every token into two tokens is a merge whose rank is the merged token's rank. */
llmc_status llmc_tok_pairs_from_ranks(llmc_tokenizer *t);
llmc_status llmc_tok_finish(llmc_tokenizer *t);

#endif
