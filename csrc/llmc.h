/*
 * llmc.h: the public C API of llmc's core.
 *
 * Conventions (see README "C core"):
 *  - every fallible function returns llmc_status; LLMC_OK is 0. On failure the message is kept per thread and
 *    read with llmc_last_error(); it names the offending value.
 *  - arrays are float32, row-major, contiguous, owned by the caller. Shapes are given as size_t counts and are
 *    written next to each declaration, e.g. x: (rows, cols).
 *  - no function exits, aborts or asserts on anything a caller passes in.
 */
#ifndef LLMC_H
#define LLMC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */
typedef enum {
    LLMC_OK = 0,
    LLMC_ERR_INVALID = 1,     /* a bad argument: shape, range, value (Python: ValueError) */
    LLMC_ERR_NOMEM = 2,       /* an allocation failed or a size overflowed (MemoryError) */
    LLMC_ERR_IO = 3,          /* reading or writing a file failed (OSError) */
    LLMC_ERR_NOT_FOUND = 4,   /* a file does not exist (FileNotFoundError) */
    LLMC_ERR_FORMAT = 5,      /* a file is corrupt or truncated (ValueError) */
    LLMC_ERR_UNSUPPORTED = 6, /* a valid input that llmc does not support (NotImplementedError) */
    LLMC_ERR_INTERNAL = 7     /* a bug in llmc (RuntimeError) */
} llmc_status;

/* The message of the last error on this thread ("" if none). Valid until the next llmc call on this thread. */
const char *llmc_last_error(void);

/* ---------------------------------------------------------------- threads and SIMD */
/* One place decides the thread count, for llmc's own kernels and for OpenBLAS. n < 1 means "all cores". */
void llmc_set_num_threads(int n);
int llmc_get_num_threads(void);

typedef enum { LLMC_SIMD_SCALAR = 0, LLMC_SIMD_AVX2 = 1, LLMC_SIMD_AVX512 = 2 } llmc_simd_level;
/* The best level this CPU supports (chosen at start-up). */
int llmc_simd_best_level(void);
int llmc_simd_get_level(void);
/* Force a level (for tests and benchmarks); a level the CPU lacks is LLMC_ERR_UNSUPPORTED. */
llmc_status llmc_simd_set_level(int level);
const char *llmc_simd_level_name(int level);
/* The BLAS library's own description (e.g. OpenBLAS's build config). */
const char *llmc_blas_info(void);

/* Bytes of working memory llmc's kernels hold now, and the high-water mark since the last reset
 * (weights mapped from files are not counted). For memory benchmarks. */
size_t llmc_mem_current(void);
size_t llmc_mem_peak(void);
void llmc_mem_reset_peak(void);

/* ---------------------------------------------------------------- ops (ops.c) */
/* out[b] = a[b] @ bm[b].  a: (batch, m, k) (or (m, k) shared when a_batched == 0),
 * bm: (batch, k, n) (or (k, n) shared when b_batched == 0), out: (batch, m, n). */
llmc_status llmc_matmul(const float *a, const float *bm, float *out, size_t batch, size_t m, size_t k, size_t n,
                        int a_batched, int b_batched);

/* Softmax family over the middle axis of x viewed as (outer, n, inner): out = softmax(x / temperature).
 * x, out: (outer, n, inner). temperature > 0. A slice whose n entries are all -inf is LLMC_ERR_INVALID. */
llmc_status llmc_softmax(const float *x, float *out, size_t outer, size_t n, size_t inner, float temperature);
llmc_status llmc_log_softmax(const float *x, float *out, size_t outer, size_t n, size_t inner, float temperature);
/* One-hot of the argmax along the middle axis; ties go to the lowest index; NaN counts as the largest. */
llmc_status llmc_hardmax(const float *x, float *out, size_t outer, size_t n, size_t inner);

/* Mean negative log-likelihood of targets under softmax(logits). logits: (T, V), targets: (T,) in [0, V). */
llmc_status llmc_cross_entropy(const float *logits, const int64_t *targets, size_t T, size_t V, double *mean_nll);

/* x, out: (rows, cols); weight, bias: (cols,) (bias may be NULL). */
llmc_status llmc_layer_norm(const float *x, const float *weight, const float *bias, float *out, size_t rows,
                            size_t cols, float eps);
llmc_status llmc_rms_norm(const float *x, const float *weight, float *out, size_t rows, size_t cols, float eps);

/* Elementwise over n values; out may equal x. */
llmc_status llmc_gelu(const float *x, float *out, size_t n, int tanh_approximation);
llmc_status llmc_silu(const float *x, float *out, size_t n);

/* out: (n_positions, dim), dim even: out[p, 2i] = sin(p / 10000^(2i/dim)), out[p, 2i+1] = cos(...). */
llmc_status llmc_sinusoidal_positions(float *out, size_t n_positions, size_t dim);

typedef enum { LLMC_ROPE_HALF = 0, LLMC_ROPE_INTERLEAVED = 1 } llmc_rope_layout;
/* Rotary position embedding. x, out: (outer, T, d), d even; positions: (T,) (any integer, may be negative).
 * HALF rotates pairs (i, i + d/2) (GPT-NeoX / Llama "rotate_half"); INTERLEAVED rotates (2i, 2i+1) (GPT-J, Meta's
 * original Llama). The angle of pair i at position p is p * theta^(-2i/d). out may equal x. */
llmc_status llmc_apply_rope(const float *x, float *out, size_t outer, size_t T, size_t d, const int64_t *positions,
                            float theta, int layout);

/* out[i] = table[ids[i]]. table: (vocab, dim), ids: (n,), out: (n, dim). An id outside [0, vocab) is
 * LLMC_ERR_INVALID naming the id and its index. */
llmc_status llmc_embedding(const float *table, size_t vocab, size_t dim, const int64_t *ids, size_t n, float *out);

/* ---------------------------------------------------------------- attention (attention.c) */
/* (declared by the attention work) */

/* ---------------------------------------------------------------- tokenizer (tokenizer.c, tokenizer_hf.c, ...) */
/* A BPE tokenizer: tiktoken .tiktoken files and Hugging Face tokenizer.json (byte-level BPE, SentencePiece-style
 * BPE with byte fallback). Token ids are int32; token bytes are raw bytes. Thread-safe for concurrent encodes. */
typedef struct llmc_tokenizer llmc_tokenizer;

/* data[0..len): the bytes of a .tiktoken file ("base64 rank" per line). pattern: a built-in pre-tokenizer name
 * ("gpt2", "cl100k", "o200k", "llama3", "qwen2") or one of those exact regex strings (anything else is
 * LLMC_ERR_UNSUPPORTED). specials: n_special tokens, bytes special[k][0..special_len[k]) with id special_id[k]. */
llmc_status llmc_tokenizer_from_tiktoken(const char *data, size_t len, const char *pattern,
                                         const char *const *special, const size_t *special_len,
                                         const int64_t *special_id, size_t n_special, llmc_tokenizer **out);
/* data[0..len): the bytes of a Hugging Face tokenizer.json; `what` names it in error messages. */
llmc_status llmc_tokenizer_from_hf_json(const char *data, size_t len, const char *what, llmc_tokenizer **out);
void llmc_tokenizer_free(llmc_tokenizer *t);
/* Free a buffer returned by a tokenizer function (ids, bytes, offsets, merges). */
void llmc_tokenizer_free_buffer(void *p);

size_t llmc_tokenizer_n_vocab(const llmc_tokenizer *t); /* max id + 1 */
/* Special / added tokens: k in [0, n); *special = 1 for special tokens (0 for HF's non-special added tokens). */
size_t llmc_tokenizer_n_added(const llmc_tokenizer *t);
void llmc_tokenizer_added(const llmc_tokenizer *t, size_t k, const char **bytes, size_t *len, int32_t *id,
                          int *special);

enum { LLMC_SPECIAL_ALLOWED = 1, LLMC_SPECIAL_DISALLOWED = 2 };
/* Encode text[0..len) (UTF-8; invalid bytes are encoded as bytes). special_mode: NULL (special tokens are plain
 * text) or (n_added,) flags: ALLOWED -> the token's text becomes its id; DISALLOWED -> text containing it is
 * LLMC_ERR_INVALID. Non-special added tokens are always matched. add_special: apply the post-processor template
 * (e.g. Llama's <s>). *ids: (*n_ids,) int32, free with llmc_tokenizer_free_buffer. */
llmc_status llmc_tokenizer_encode(const llmc_tokenizer *t, const char *text, size_t len, const uint8_t *special_mode,
                                  int add_special, int32_t **ids, size_t *n_ids);
/* Encode n_texts texts in parallel on up to num_threads threads (<= 0: llmc_threads()). texts[i][0..lens[i]) ->
 * ids[i]: (n_ids[i],) (each freed with llmc_tokenizer_free_buffer; on error none are left allocated). */
llmc_status llmc_tokenizer_encode_batch(const llmc_tokenizer *t, const char *const *texts, const size_t *lens,
                                        size_t n_texts, const uint8_t *special_mode, int add_special,
                                        int num_threads, int32_t **ids, size_t *n_ids);
/* The bytes of ids[0..n) concatenated (decoder rules applied). *out: (*out_len,) bytes, free with llmc_tokenizer_free_buffer.
 * An id outside [0, n_vocab) or without a token is LLMC_ERR_INVALID naming it and its index. */
llmc_status llmc_tokenizer_decode(const llmc_tokenizer *t, const int64_t *ids, size_t n, char **out, size_t *out_len);
/* The bytes of one token (pointer into the tokenizer; valid while it lives). */
llmc_status llmc_tokenizer_token_bytes(const llmc_tokenizer *t, int64_t id, const char **bytes, size_t *len);
/* Pre-tokenize only: piece k is text[starts[k] .. starts[k+1]) (starts: (*n + 1,), free with llmc_tokenizer_free_buffer). */
llmc_status llmc_tokenizer_pieces(const llmc_tokenizer *t, const char *text, size_t len, size_t **starts, size_t *n);

/* The exact regex a built-in pre-tokenizer name ("gpt2", "gpt4"/"cl100k", "o200k", "llama3", "qwen2") implements
 * (a known regex string maps to itself), or NULL for anything else. */
const char *llmc_pretokenizer_regex(const char *name);

/* Byte-level BPE training (bpe_train.c). texts: n_texts strings; pretok: a built-in pre-tokenizer name or regex.
 * Adds up to n_merges new tokens by merging the most frequent pair (count >= min_frequency; ties: the smaller
 * (left, right) ids). Bytes are ids 0..255; new tokens get 256, 257, ... in order; a merge whose bytes are already a
 * token reuses its id. merges: (*n_out, 3) int32 rows (left id, right id, merged id) in rank order, free with
 * llmc_tokenizer_free_buffer. progress (may be NULL) is called every ~1% with (tokens made, n_merges, ctx). */
llmc_status llmc_bpe_train(const char *const *texts, const size_t *lens, size_t n_texts, const char *pretok,
                           size_t n_merges, uint64_t min_frequency, void (*progress)(size_t, size_t, void *),
                           void *ctx, int32_t **merges, size_t *n_out);

/* ---------------------------------------------------------------- model (model.c) */
/* (declared by the model work) */

#ifdef __cplusplus
}
#endif
#endif /* LLMC_H */
