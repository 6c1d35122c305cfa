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

/* mixture of experts: mlp_only_layers is kept as a bitmap over the first LLMC_MOE_MAX_LAYERS layers */
#define LLMC_MOE_MAX_LAYERS 1024

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
    LLMC_ERR_INTERNAL = 7,    /* a bug in llmc (RuntimeError) */
    LLMC_ERR_INTERRUPTED = 8  /* the caller's poll function asked to stop (Python: KeyboardInterrupt) */
} llmc_status;

/* The message of the last error on this thread ("" if none). Valid until the next llmc call on this thread. */
const char *llmc_last_error(void);

/* Interrupts (interrupt.c). A long call (BPE training, long encodes, training steps, model forward passes) asks
 * fn(ctx) every ~20 ms whether to stop, on the thread that installed it, and then returns LLMC_ERR_INTERRUPTED with
 * every object it was given still valid (a training step stops before any weight changes; a session keeps its
 * earlier tokens). fn = NULL removes it. Per thread: other threads are not affected. */
typedef int (*llmc_poll_fn)(void *ctx);
void llmc_set_poll(llmc_poll_fn fn, void *ctx);
/* 1 once the installed poll function has asked to stop (cheap: polls at most every ~20 ms). */
int llmc_interrupted(void);

/* ---------------------------------------------------------------- threads and SIMD */
/* One place decides the thread count, for llmc's own kernels and for OpenBLAS. n < 1 means the default:
 * OMP_NUM_THREADS as it was when llmc loaded (a positive count), else all the cores this process may use. */
void llmc_set_num_threads(int n);
int llmc_get_num_threads(void);

typedef enum { LLMC_SIMD_SCALAR = 0, LLMC_SIMD_AVX2 = 1, LLMC_SIMD_AVX512 = 2 } llmc_simd_level;
/* The best level this CPU supports (chosen at start-up). */
int llmc_simd_best_level(void);
int llmc_simd_get_level(void);
/* Force a level (for tests and benchmarks); a level the CPU lacks is LLMC_ERR_UNSUPPORTED. */
llmc_status llmc_simd_set_level(int level);
const char *llmc_simd_level_name(int level);
/* What the CPU and OS offer (cpu.c; read once at start-up): 1 = usable, 0 = absent. amx_os: the kernel supports
 * AMX tile data (1), does not (0), or cannot say (-1); llmc detects AMX but has no AMX kernel (docs/quantization.md). */
typedef struct {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16, amx_tile, amx_bf16, amx_int8, amx_os;
} llmc_cpu_features;
const llmc_cpu_features *llmc_cpu_get_features(void);
/* The quantized-dot kernels the current SIMD level runs ("scalar", "avx2") and, in words, why. */
const char *llmc_quant_kernels_name(void);
const char *llmc_quant_kernels_reason(void);
/* The BLAS library's own description (e.g. OpenBLAS's build config). */
const char *llmc_blas_info(void);
/* 1 when a large float32 product is one threaded OpenBLAS call whose jobs run on llmc's OpenMP threads (OpenBLAS
 * >= 0.3.27, the pinned wheel); 0 when llmc splits it into single-threaded calls (an older system OpenBLAS). */
int llmc_blas_one_pool(void);
/* FLOP counter (flops.c): while switched on by at least one caller, every float32 BLAS product llmc runs adds
 * 2 m n k (sgemm) or 2 m k (sgemv) to a process-wide running total, on every thread. enable(1) adds a user,
 * enable(0) removes one; read the totals before and after and take the difference. Off by default. */
void llmc_flop_counter_enable(int on);
void llmc_flop_counter_read(uint64_t *flops, uint64_t *calls);

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

/* ---------------------------------------------------------------- typed weights (quant*.c) */
/* A weight is (type, shape, bytes) in ggml's block formats, byte for byte (docs/quantization.md draws them): a row
 * of n values is n / block_size blocks of block_bytes each. The ids are ggml's, so GGUF tensors need no
 * conversion. Q8_1 and Q8_K are ggml's activation formats (what the integer dot products quantize x to). */
typedef enum {
    LLMC_TYPE_F32 = 0, LLMC_TYPE_F16 = 1, LLMC_TYPE_Q4_0 = 2, LLMC_TYPE_Q4_1 = 3, LLMC_TYPE_Q5_0 = 6,
    LLMC_TYPE_Q5_1 = 7, LLMC_TYPE_Q8_0 = 8, LLMC_TYPE_Q8_1 = 9, LLMC_TYPE_Q2_K = 10, LLMC_TYPE_Q3_K = 11,
    LLMC_TYPE_Q4_K = 12, LLMC_TYPE_Q5_K = 13, LLMC_TYPE_Q6_K = 14, LLMC_TYPE_Q8_K = 15, LLMC_TYPE_BF16 = 30
} llmc_type; /* ggml's ids */
int llmc_type_valid(int type);             /* 1 for a type llmc can store and multiply */
const char *llmc_type_name(int type);      /* "f32", "bf16", "q8_0", "q4_k", ... ("unknown" for an invalid id) */
int llmc_type_from_name(const char *name); /* case-insensitive; -1 when unknown */
size_t llmc_type_block_size(int type);     /* values per block: 1 (f32/f16/bf16), 32, 256; 0 if invalid */
size_t llmc_type_block_bytes(int type);    /* bytes per block: 4, 2, 2, 34 (q8_0), 144 (q4_k), ...; 0 if invalid */
/* *bytes = bytes of a row of n values; LLMC_ERR_INVALID (naming n and the block size) unless n % block == 0 */
llmc_status llmc_type_row_bytes(int type, size_t n, size_t *bytes);
/* x: (rows, n) -> dst: rows * row_bytes(n) bytes, ggml's layout byte for byte (its reference quantizers). A block
 * holding NaN dequantizes to NaN (docs/quantization.md defines the non-finite cases). Threads over rows. */
llmc_status llmc_quantize(int type, const float *x, void *dst, size_t rows, size_t n);
/* src: rows * row_bytes(n) bytes -> y: (rows, n) */
llmc_status llmc_dequantize(int type, const void *src, float *y, size_t rows, size_t n);
/* y: (T, out) = beta * y + x: (T, in) @ W^T, with W: (out, in) stored as `out` rows of `in` values of `type`
 * (F32: sgemv for one row, the few-row kernel for 2..LLMC_F32_ROWS_MAX_T rows, BLAS sgemm for more). The one dispatch
 * point the forward blocks call for every weight. Threads over rows. beta == 0 ignores y's old contents (NaN there
 * does not leak). w may sit at any address. */
llmc_status llmc_matmul_typed(int type, const void *w, const float *x, float *y, size_t T, size_t in, size_t out,
                              float beta);
/* The same with the kernel path forced (benchmarks and tests): AUTO as above; DOT: quantize x and take integer (or
 * F16/BF16) dot products for any T (LLMC_ERR_UNSUPPORTED for types without one: f32, q8_1, q8_k); TILES:
 * dequantize tiles of W and sgemm for any T; ROWS: F32 weights only (LLMC_ERR_UNSUPPORTED otherwise), the few-row
 * kernel (simd.h rows_dot: W streamed once, no packing) for any T. */
typedef enum { LLMC_MATMUL_AUTO = 0, LLMC_MATMUL_DOT = 1, LLMC_MATMUL_TILES = 2, LLMC_MATMUL_ROWS = 3 } llmc_matmul_path;
/* F32 products of 2 to this many rows take the few-row kernel (measured against sgemm: benchmarks/README.md) */
#define LLMC_F32_ROWS_MAX_T 64
llmc_status llmc_matmul_typed_path(int type, const void *w, const float *x, float *y, size_t T, size_t in,
                                   size_t out, float beta, int path);

/* ---------------------------------------------------------------- mixture of experts (moe.c) */
/* A sparse MoE feed-forward on fp32 arrays (docs/moe.md):
 *   p = softmax(x @ router^T) (T, E); the k most probable experts per token (ties: the lowest index), their
 *   probabilities renormalised to sum 1 when normalize; out[t] = sum_j w[t, j] * down_e(silu(gate_e(x_t)) * up_e(x_t)).
 * x: (T, D); router: (E, D); w_gate, w_up: (E, F, D); w_down: (E, D, F); out: (T, D);
 * experts: (T, k) int32 by descending probability, weights: (T, k) (either may be NULL).
 * Tokens are grouped by expert: one matrix product per expert over its tokens. */
llmc_status llmc_moe(const float *x, size_t T, size_t D, const float *router, const float *w_gate, const float *w_up,
                     const float *w_down, size_t E, size_t F, size_t k, int normalize, float *out, int32_t *experts,
                     float *weights);

/* ---------------------------------------------------------------- attention (attention.c) */
/* Scaled dot-product attention, two implementations behind one call:
 *   out[b, h, i] = sum_j softmax_j(scale * q[b, h, i] . k[b, h / G, j]) v[b, h / G, j],  G = Hq / Hkv,
 * with j running over the keys query i may see.
 *  - LLMC_ATTN_STANDARD materialises the whole (B, Hq, Tq, Tk) score tensor (BLAS sgemm, row softmax, sgemm).
 *    It refuses with LLMC_ERR_NOMEM, naming the size, when that tensor exceeds llmc_attention_standard_limit().
 *  - LLMC_ATTN_FLASH tiles queries and keys (online softmax); extra memory is a few tiles per thread.
 * Positions: query i sits at position p = Tk - Tq + i (the queries are the last Tq tokens: decoding with a KV cache).
 * causal: query i sees keys j <= p. window W > 0: causal, keys p - W < j <= p (Mistral's sliding window);
 * non-causal, keys |j - p| < W. causal or window need Tq <= Tk (else every query would have to see a key before
 * the first); Tk >= 1, d >= 1. Hq must be a multiple of Hkv (grouped-query attention; Hkv = 1 is multi-query). */
typedef enum { LLMC_ATTN_STANDARD = 0, LLMC_ATTN_FLASH = 1 } llmc_attn_impl;

typedef struct {
    const float *q; /* q: (B, Hq, Tq, d) */
    const float *k; /* k: (B, Hkv, Tk, d) */
    const float *v; /* v: (B, Hkv, Tk, d) */
    float *out;     /* out: (B, Hq, Tq, d); must not overlap q, k, v */
    size_t B, Hq, Hkv, Tq, Tk, d;
    /* Element strides of the batch, head and time axes; the d axis is always contiguous. 0 = packed (e.g. q_st = d,
     * q_sh = Tq * d, q_sb = Hq * Tq * d). A KV cache of capacity C >= Tk passes k_sh = v_sh = C * d; a
     * (B, T, H, d) layout passes s_t = H * d, s_h = d. */
    size_t q_sb, q_sh, q_st;
    size_t k_sb, k_sh, k_st;
    size_t v_sb, v_sh, v_st;
    size_t o_sb, o_sh, o_st;
    int impl;      /* llmc_attn_impl */
    int causal;    /* nonzero: causal mask, aligned to the last Tq keys */
    size_t window; /* 0 = none; else the sliding window W described above */
    float scale;   /* multiplies q . k; must be finite (the usual value is 1 / sqrt(d)) */
    size_t block_q, block_k; /* flash tiles: block_q queries of each of the Hq / Hkv heads that share a KV head, by
                              * block_k keys; 0 = automatic (64 / (Hq / Hkv) queries, 64 keys) */
    float *weights; /* optional, standard only: (B, Hq, Tq, Tk) packed, receives the softmax weights (0 where
                     * masked). Its size is checked against llmc_attention_standard_limit() too. */
} llmc_attention_args;

llmc_status llmc_attention(const llmc_attention_args *args);

/* The largest score tensor (bytes) the standard implementation will hold; 0 restores the default (half the
 * physical RAM), so an oversized request is refused with a clear error before the OOM killer can act. */
void llmc_attention_set_standard_limit(size_t bytes);
size_t llmc_attention_standard_limit(void);
/* LLMC_OK if a (B, Hq, Tq, Tk) float32 score tensor fits under that limit, else LLMC_ERR_NOMEM naming the size. */
llmc_status llmc_attention_check_standard(size_t B, size_t Hq, size_t Tq, size_t Tk);

/* ---------------------------------------------------------------- tokenizer (tokenizer.c, tokenizer_hf.c, ...) */
/* A BPE tokenizer: tiktoken .tiktoken files and Hugging Face tokenizer.json (byte-level BPE, SentencePiece-style
 * BPE with byte fallback). Token ids are int32; token bytes are raw bytes. Thread-safe for concurrent encodes. */
typedef struct llmc_tokenizer llmc_tokenizer;

/* data[0..len): the bytes of a .tiktoken file ("base64 rank" per line). pattern: a built-in pre-tokenizer name
 * ("gpt2", "cl100k", "o200k", "llama3", "qwen2") or one of those exact regex strings (hand-written scanners), or any
 * other regex in the general engine's subset (its matches are the pieces; outside the subset: LLMC_ERR_UNSUPPORTED
 * naming the construct). specials: n_special tokens, bytes special[k][0..special_len[k]) with id special_id[k]. */
llmc_status llmc_tokenizer_from_tiktoken(const char *data, size_t len, const char *pattern,
                                         const char *const *special, const size_t *special_len,
                                         const int64_t *special_id, size_t n_special, llmc_tokenizer **out);
/* data[0..len): the bytes of a Hugging Face tokenizer.json; `what` names it in error messages. */
llmc_status llmc_tokenizer_from_hf_json(const char *data, size_t len, const char *what, llmc_tokenizer **out);
/* data[0..len): the bytes of a SentencePiece .model file (Unigram or BPE); `what` names it in error messages. */
llmc_status llmc_tokenizer_from_sentencepiece(const char *data, size_t len, const char *what, llmc_tokenizer **out);
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
/* Like llmc_tokenizer_encode, but a text of any length is cut into chunks of at least `step` bytes (at the same cut
 * points the long-text path uses) and encoded on num_threads threads; tokenizers that cannot be cut encode in one
 * pass. For tests: a tiny step puts a cut at nearly every candidate point. */
llmc_status llmc_tokenizer_encode_chunked(const llmc_tokenizer *t, const char *text, size_t len,
                                          const uint8_t *special_mode, int add_special, size_t step, int num_threads,
                                          int32_t **ids, size_t *n_ids);
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
/* Pre-tokenize only (no special tokens, no normaliser): piece k is text[spans[2k] .. spans[2k+1]) (spans: (2 * *n,),
 * free with llmc_tokenizer_free_buffer). A general pre-tokenizer may drop text (Removed spans). */
llmc_status llmc_tokenizer_pieces(const llmc_tokenizer *t, const char *text, size_t len, size_t **spans, size_t *n);

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

/* ---------------------------------------------------------------- backward (backward.c) and optimiser (optim.c) */
/* Every backward ACCUMULATES into its gradient outputs (dx += ...); zero them first. Any of them may be NULL. */
/* y = x @ W^T + b. dy: (N, out), x: (N, in), w: (out, in) -> dx: (N, in), dw: (out, in), db: (out,) */
llmc_status llmc_linear_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, float *db,
                                 size_t N, size_t in, size_t out);
/* dy, x, dx: (rows, cols); w, dw, db: (cols,) */
llmc_status llmc_layer_norm_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, float *db,
                                     size_t rows, size_t cols, float eps);
llmc_status llmc_rms_norm_backward(const float *dy, const float *x, const float *w, float *dx, float *dw, size_t rows,
                                   size_t cols, float eps);
/* dy, x, dx: (n,) */
llmc_status llmc_gelu_backward(const float *dy, const float *x, float *dx, size_t n, int tanh_approximation);
llmc_status llmc_silu_backward(const float *dy, const float *x, float *dx, size_t n);
/* dy: (n, dim), ids: (n,) -> dtable: (vocab, dim) */
llmc_status llmc_embedding_backward(const float *dy, const int64_t *ids, size_t n, size_t dim, float *dtable,
                                    size_t vocab);
/* dy, dx: (outer, T, d) */
llmc_status llmc_apply_rope_backward(const float *dy, float *dx, size_t outer, size_t T, size_t d,
                                     const int64_t *positions, float theta, int layout);
/* Fused softmax + cross-entropy: dlogits += scale * (softmax(logits) - onehot(targets)); *loss_sum = summed NLL.
 * logits, dlogits: (T, V); targets: (T,) */
llmc_status llmc_cross_entropy_backward(const float *logits, const int64_t *targets, size_t T, size_t V, float scale,
                                        float *dlogits, double *loss_sum);
/* Self-attention backward (scores recomputed per head), with the masks of llmc_attention (Tq = Tk = T): causal,
 * window W > 0 (causal: keys i - W < j <= i; non-causal: |j - i| < W). q, dq, dout: (Hq, T, d); k, v, dk, dv:
 * (Hkv, T, d) */
llmc_status llmc_attention_backward(const float *q, const float *k, const float *v, const float *dout, float *dq,
                                    float *dk, float *dv, size_t Hq, size_t Hkv, size_t T, size_t d, float scale,
                                    int causal, size_t window);
/* One AdamW step (torch.optim.AdamW arithmetic, decoupled weight decay); step counts from 1. param, grad, m, v: (n,) */
llmc_status llmc_adamw_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int64_t step);
/* Sum of squares of g (n,), accumulated in double (for the global gradient norm). */
double llmc_sumsq(const float *g, size_t n);
/* Learning rate at `step` (from 0): linear warmup over `warmup` steps, then cosine decay to lr_min at `total`. */
float llmc_lr_cosine(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min);

/* ---------------------------------------------------------------- training (train.c) */
/* Forward with saved activations + full backward of a gpt2 or llama-family model (llama, mistral, qwen2, qwen3)
 * whose weights the caller owns, as one pointer per tensor in llmc_train_tensor_info() order (Hugging Face
 * checkpoint names and shapes). */
typedef enum { LLMC_TRAIN_GPT2 = 0, LLMC_TRAIN_LLAMA = 1 } llmc_train_arch;
/* fp32: every product in float32. bf16: the operands of every linear layer's matmul (weights, activations and
 * output gradients, forward and backward) are rounded to bfloat16 and multiplied with float32 accumulation and a
 * float32 result (what AVX512_BF16's vdpbf16ps computes, emulated here by rounding + sgemm); weights stay float32
 * masters, and norms, softmax, attention, cross-entropy and gradient sums stay float32. */
typedef enum { LLMC_PRECISION_FP32 = 0, LLMC_PRECISION_BF16 = 1 } llmc_train_precision;
/* RoPE frequency scaling of rope_scaling / rope_parameters type llama3 (llama3 = 0: none) */
typedef struct {
    int llama3;
    float factor, low_freq_factor, high_freq_factor;
    size_t original_context;
} llmc_rope_scaling;
typedef struct {
    int arch;                 /* llmc_train_arch */
    size_t n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab, n_positions;
    float eps;                /* LayerNorm / RMSNorm epsilon */
    float rope_theta;         /* llama: RoPE base (rotate-half layout) */
    int tied;                 /* llama: lm_head shares the embedding matrix (gpt2 always does) */
    size_t window;            /* llama: sliding-window attention (Mistral): keys p - W < j <= p; 0 = full causal */
    int qkv_bias;             /* llama: q/k/v projections have biases (Qwen2) */
    int qk_norm;              /* llama: RMSNorm of each q and k head before RoPE (Qwen3) */
    llmc_rope_scaling rope;   /* llama: RoPE frequency scaling */
    const float *rope_divisors; /* llama: (head_dim / 2,) divisors of the RoPE frequencies (GGUF rope_freqs) or
                                 * NULL; copied by llmc_trainer_create */
    int precision;            /* llmc_train_precision */
    /* mixture of experts (moe_train.c; llama family, fp32): n_experts == 0 for a dense model. A sparse layer
     * (decoder_sparse_step, mlp_only) has E SwiGLU experts of width moe_d_ff behind a router, and a shared expert
     * of width shared_d_ff (0: none) behind a sigmoid gate; dense layers use d_ff. */
    size_t n_experts, n_experts_used, moe_d_ff, shared_d_ff, decoder_sparse_step;
    int norm_topk_prob;       /* renormalise the k routing weights to sum 1 */
    int moe_names;            /* checkpoint names: 1 Mixtral's (block_sparse_moe, w1/w3/w2), 0 mlp.experts.{e}.*_proj */
    float aux_loss_coef;      /* router_aux_loss_coef: the loss adds coef * the Switch load-balancing loss */
    uint64_t mlp_only[LLMC_MOE_MAX_LAYERS / 64]; /* bit l: layer l keeps a dense MLP */
} llmc_train_config;
typedef struct llmc_trainer llmc_trainer;
size_t llmc_train_n_tensors(const llmc_train_config *c);
/* name (written into name[cap]) and shape of tensor i; ndim is 1 or 2 */
llmc_status llmc_train_tensor_info(const llmc_train_config *c, size_t i, char *name, size_t cap, size_t shape[2],
                                   int *ndim);
/* Activations for batches of up to B sequences of T tokens, allocated once. */
llmc_status llmc_trainer_create(const llmc_train_config *c, size_t B, size_t T, llmc_trainer **out);
void llmc_trainer_free(llmc_trainer *t);
/* inputs, targets: (B, T) token ids. *loss_mean = mean next-token NLL (+ aux_loss_coef * the load-balancing loss
 * for a mixture of experts, as transformers' loss with output_router_logits). If grads != NULL, grads[i] +=
 * grad_scale * d(summed NLL)/d params[i] (grad_scale = 1 / (B * T) gives the gradient of the mean; the aux loss,
 * already a mean, enters with grad_scale * B * T). */
llmc_status llmc_trainer_step(llmc_trainer *t, float *const *params, float *const *grads, const int64_t *inputs,
                              const int64_t *targets, size_t B, size_t T, float grad_scale, double *loss_mean);
/* n random window starts in [0, max_start] for training step `step` (a pure function of seed, step and i). */
void llmc_random_starts(uint64_t seed, uint64_t step, size_t n, size_t max_start, int64_t *out);

/* ---------------------------------------------------------------- sampling (sampling.c) */
/* The next-token sampler chain, in transformers' order: repetition penalty -> no-repeat n-grams -> (when sampling)
 * temperature -> top-k -> top-p -> min-p -> draw from the softmax. Greedy (do_sample == 0 or temperature == 0)
 * applies only the first two and takes the argmax (lowest index on ties). */
typedef struct {
    float temperature;        /* > 0 divides the logits; 0 = greedy */
    int top_k;                /* keep the k most likely (ties at the k-th kept); 0 = off */
    float top_p;              /* keep the smallest most-likely set with mass >= top_p; 1 = off */
    float min_p;              /* drop tokens with p < min_p * p_max; 0 = off */
    float repetition_penalty; /* CTRL: seen tokens' positive logits / penalty, negative * penalty; 1 = off */
    int no_repeat_ngram_size; /* ban tokens that would repeat an n-gram of the history; 0 = off */
    int do_sample;            /* 0 = greedy */
    uint64_t seed;            /* the sampler's own RNG (xoshiro256**) */
} llmc_sampler_params;

typedef struct llmc_sampler llmc_sampler;
llmc_status llmc_sampler_create(const llmc_sampler_params *params, size_t vocab, llmc_sampler **out);
void llmc_sampler_free(llmc_sampler *s);
void llmc_sampler_seed(llmc_sampler *s, uint64_t seed);
int llmc_sampler_is_sampling(const llmc_sampler *s);
/* Apply the chain to logits (vocab,) in place; history (n,) is every token so far (prompt + generated). */
llmc_status llmc_sampler_process(llmc_sampler *s, float *logits, const int64_t *history, size_t n_history);
/* process, then pick a token; *logprob (if not NULL) is its log-probability under the processed distribution. */
llmc_status llmc_sampler_sample(llmc_sampler *s, float *logits, const int64_t *history, size_t n_history,
                                int64_t *token, float *logprob);

/* ---------------------------------------------------------------- model (model.c) */
/* Transformer models loaded from Hugging Face checkpoint folders (config.json + safetensors). Weights are typed
 * (llmc_type): F32/F16/BF16 tensors can stay as the checkpoint stores them (pointing into the mapped file), or
 * every weight is converted on load to a dtype recipe (llama.cpp's rules: docs/quantization.md). Activations are
 * fp32; every linear layer goes through llmc_matmul_typed. GPT-2's Conv1D weights of a type other than F32 are
 * stored transposed, (out, in), so that each row holds `in` values (F32 ones stay (in, out)). */
typedef enum {
    LLMC_ARCH_GPT2 = 0,    /* learned positions, pre-LN, GELU-tanh, Conv1D weights, tied lm_head */
    LLMC_ARCH_LLAMA = 1,   /* RMSNorm, RoPE (rotate-half, optional llama3 scaling), SwiGLU, GQA */
    LLMC_ARCH_MISTRAL = 2, /* llama + sliding-window attention */
    LLMC_ARCH_QWEN2 = 3,   /* llama + q/k/v bias */
    LLMC_ARCH_QWEN3 = 4,   /* llama + per-head RMSNorm of q and k */
    LLMC_ARCH_BERT = 5,    /* encoder: absolute + token-type positions, post-LN, GELU; no lm_head */
    /* mixtures of experts (csrc/moe.c, docs/moe.md): llama-family attention, sparse MoE feed-forward */
    LLMC_ARCH_MIXTRAL = 6,   /* mistral + top-k of E SwiGLU experts, weights always renormalised */
    LLMC_ARCH_QWEN2_MOE = 7, /* qwen2 + experts + a shared expert behind a sigmoid gate; some layers may stay dense */
    LLMC_ARCH_QWEN3_MOE = 8, /* qwen3 + experts; some layers may stay dense */
    LLMC_ARCH_OLMOE = 9      /* llama + RMSNorm over the whole q / k projections, optional clip_qkv + experts */
} llmc_arch;


typedef struct {
    int arch;                 /* llmc_arch */
    size_t n_layers, d_model, n_heads, n_kv_heads, head_dim, d_ff, vocab, context_length;
    size_t type_vocab;        /* BERT token types (0 otherwise) */
    float norm_eps;
    int tied_embeddings;      /* lm_head is the token embedding */
    int causal;               /* decoders: 1; BERT: 0 */
    int has_lm_head;          /* BERT: 0 */
    size_t sliding_window;    /* mistral: keys at most this far back (incl. the query's own); 0 = unlimited */
    float rope_theta;         /* 0 for learned positions */
    int rope_llama3;          /* rope_scaling / rope_parameters of type llama3 */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    size_t rope_original_context;
    int qkv_bias;             /* q/k/v projections have biases (qwen2; qwen2_moe's qkv_bias) */
    float clip_qkv;           /* olmoe: q, k, v clamped to [-clip_qkv, clip_qkv] after projection; 0 = off */
    int qk_norm_full;         /* olmoe: q_norm / k_norm are RMSNorms over the whole (H*hd) / (Hk*hd) projection */
    /* mixture of experts (n_experts == 0: a dense model) */
    size_t n_experts;         /* E: routed experts per sparse layer */
    size_t n_experts_used;    /* k: experts per token (num_experts_per_tok), 1 <= k <= E */
    size_t moe_d_ff;          /* each expert's hidden width */
    size_t shared_d_ff;       /* qwen2_moe's shared expert hidden width; 0 = no shared expert */
    int norm_topk_prob;       /* renormalise the k chosen probabilities to sum to 1 (mixtral: always) */
    size_t decoder_sparse_step; /* layer l is sparse when (l + 1) % step == 0 and l is not in mlp_only_layers */
    uint64_t mlp_only[LLMC_MOE_MAX_LAYERS / 64]; /* bit l: layer l keeps a dense MLP (d_ff) */
    float router_aux_loss_coef; /* weight of the load-balancing loss in training */
} llmc_model_config;

/* 1 when layer l of a model with this config has a sparse MoE feed-forward */
int llmc_layer_is_moe(const llmc_model_config *c, size_t l);

typedef struct llmc_model llmc_model;

/* Load dir/config.json and dir/model.safetensors (or the shards of dir/model.safetensors.index.json).
 * A missing or unsupported config field is an error naming the field and the file. */
llmc_status llmc_model_load(const char *dir, llmc_model **out);
/* A model of the architecture described by config_json (a config.json's text) with random weights:
 * normal(0, 0.02) matrices and embeddings, norm weights 1, biases 0. Deterministic in seed. */
llmc_status llmc_model_init(const char *config_json, size_t len, uint64_t seed, llmc_model **out);
void llmc_model_free(llmc_model *m);
const llmc_model_config *llmc_model_get_config(const llmc_model *m);

/* progress(ud, done, total) after each tensor converted or loaded */
typedef void (*llmc_progress_fn)(void *ud, size_t done, size_t total);
/* llmc_model_load, converting the weights to the recipe dtype on the way in, tensor by tensor (the whole model is
 * never held in fp32). dtype NULL or "": keep the checkpoint's F32/F16/BF16 tensors as stored. Recipes: "f32",
 * "bf16", "f16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k" (= "q4_k_m"), "q4_k_s", "q5_k" (= "q5_k_m"),
 * "q5_k_s", "q6_k". A tensor whose rows fit no block of its recipe type is LLMC_ERR_INVALID naming the tensor, its
 * row length and the block size. progress may be NULL. */
llmc_status llmc_model_load_as(const char *dir, const char *dtype, llmc_progress_fn progress, void *ud,
                               llmc_model **out);
/* A model from a GGUF file (llama.cpp's; csrc/model_gguf.c): architectures llama (incl. Mistral-style sliding window
 * and Llama 3 RoPE scaling), qwen2, qwen3, gpt2; hyperparameters from the {arch}.* keys. The tensors keep their
 * stored types (any type llmc_type_valid accepts), pointing into the mapped file, except llama's q/k projections,
 * whose rows llama.cpp's converter permuted (put back in a copy). dtype as in llmc_model_load_as (converted after
 * loading). Errors name the file and the key or tensor. */
llmc_status llmc_model_load_gguf(const char *path, const char *dtype, llmc_progress_fn progress, void *ud,
                                 llmc_model **out);
/* Convert a model's weights in place to the recipe dtype (a quantized tensor is dequantized and requantized). The
 * caller makes sure no other thread runs the model meanwhile. */
llmc_status llmc_model_convert(llmc_model *m, const char *dtype, llmc_progress_fn progress, void *ud);
/* The recipe of the last load_as / convert, "" when the weights are as the checkpoint stores them. */
const char *llmc_model_dtype(const llmc_model *m);

/* The weights by checkpoint name. */
size_t llmc_model_n_tensors(const llmc_model *m);
/* tensor i's name, shape and fp32 data (owned by the model, writable); LLMC_ERR_UNSUPPORTED unless the tensor is
 * stored as F32 in its checkpoint layout. */
llmc_status llmc_model_tensor(const llmc_model *m, size_t i, const char **name, int *ndim, size_t shape[2],
                              float **data);
typedef struct {
    const char *name;
    int ndim;
    size_t shape[2];  /* the checkpoint's shape */
    int type;         /* llmc_type */
    int transposed;   /* 1: stored as (shape[1], shape[0]) (GPT-2 Conv1D weights not in F32) */
    size_t rows, cols;/* as stored: rows of cols values */
    void *data;       /* rows * row_bytes(type, cols) bytes, owned by the model */
    size_t nbytes;
} llmc_tensor_view;
llmc_status llmc_model_tensor_typed(const llmc_model *m, size_t i, llmc_tensor_view *view);

/* The MoE layers' routing over one sequence (a forward pass). Lm = the number of MoE layers (llmc_layer_is_moe).
 * logits: (Lm, T, E) router logits; experts: (Lm, T, k) chosen experts by descending probability; weights:
 * (Lm, T, k) their weights (after renormalisation when the config asks for it); any may be NULL.
 * LLMC_ERR_UNSUPPORTED for a dense model. */
llmc_status llmc_model_routing(const llmc_model *m, const int64_t *ids, size_t T, float *logits, int32_t *experts,
                               float *weights);

/* One sequence through the whole model. ids: (T,); type_ids: (T,) or NULL (BERT token types, default 0);
 * attn: llmc_attn_impl.
 * Any output may be NULL: logits: (T, vocab); hidden: (n_layers + 1, T, d_model) as transformers reports them
 * (embedding output, each block's output, the last one after the final norm for decoders);
 * last: (T, d_model) the final hidden state (after the final norm for decoders). */
llmc_status llmc_model_forward(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T, int attn,
                               float *logits, float *hidden, float *last);
/* The attention probabilities of one layer (standard attention). probs: (n_heads, T, T) */
llmc_status llmc_model_attention_weights(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T,
                                         size_t layer, float *probs);

typedef enum { LLMC_POOL_MEAN = 0, LLMC_POOL_CLS = 1, LLMC_POOL_LAST = 2 } llmc_pooling;
/* Sentence embeddings of N padded sequences. ids, type_ids: (N, T_max) (type_ids may be NULL); lengths: (N,), each
 * in [1, T_max]: only the first lengths[i] tokens of row i are read (the attention mask). out: (N, d_model) */
llmc_status llmc_model_embed(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, const size_t *lengths,
                             size_t N, size_t T_max, int pooling, int normalize, int attn, float *out);

/* KV-cached decoding state (decoders only). capacity: the most tokens held (<= context_length; 0 = context_length).
 * overflow: what append does when the window is full. */
typedef enum { LLMC_OVERFLOW_ERROR = 0, LLMC_OVERFLOW_SLIDE = 1 } llmc_overflow;
typedef struct llmc_session llmc_session;
llmc_status llmc_session_new(const llmc_model *m, size_t capacity, int overflow, size_t keep_first, int attn,
                             llmc_session **out);
/* Feed n >= 1 tokens; logits: (vocab,) of the last one. */
llmc_status llmc_session_append(llmc_session *s, const int64_t *ids, size_t n, float *logits);
size_t llmc_session_n_tokens(const llmc_session *s);
/* The tokens now in the cache, (n_tokens,) */
const int64_t *llmc_session_tokens(const llmc_session *s);
void llmc_session_reset(llmc_session *s);
/* Make dst hold exactly src's cached tokens and keys/values (same model and capacity): beam search forks beams. */
llmc_status llmc_session_copy(llmc_session *dst, const llmc_session *src);
void llmc_session_set_attn(llmc_session *s, int attn);
void llmc_session_free(llmc_session *s);

/* Batched sessions (csrc/batch.c): B sessions of one model advanced together. Session i gets n[i] >= 1 new tokens;
 * ids holds them packed, session 0's first, then session 1's, ... Every weight multiplies the new tokens of all
 * sessions in one matrix product (the weights are read once per call, not once per session); attention runs per
 * session over its own cache. The results equal B llmc_session_append calls up to the rounding of the products.
 * A workspace keeps the activations between calls (decoding never allocates); one workspace serves one call at a
 * time. */
typedef struct llmc_batch llmc_batch;
llmc_status llmc_batch_new(const llmc_model *m, llmc_batch **out);
void llmc_batch_free(llmc_batch *b);
/* logits: NULL, or the next-token logits (B, vocab) after each session's last new token; with all_logits the
 * logits of every new token, session i's rows starting at row out_rows[i] (out_rows NULL: packed rows, session i
 * from row n[0] + ... + n[i-1]). The sessions must be distinct, of the workspace's model, without hooks. On error
 * every session keeps the tokens it had (an overflow="slide" session may have dropped its oldest ones). */
llmc_status llmc_batch_append(llmc_batch *b, llmc_session *const *s, size_t B, const int64_t *ids, const size_t *n,
                              float *logits, int all_logits, const size_t *out_rows);
/* N whole sequences of different lengths through the model together (batched prefill; each sees only its own
 * tokens, so sequence i's outputs equal llmc_model_forward on it alone). ids, type_ids: packed (sum lengths,)
 * (type_ids may be NULL); logits: (rows, vocab) or NULL; last: (rows, d_model) final hidden states or NULL; sequence
 * i's rows start at out_rows[i] (NULL: packed). */
llmc_status llmc_model_forward_batch(const llmc_model *m, const int64_t *ids, const int64_t *type_ids,
                                     const size_t *lengths, size_t N, int attn, float *logits, float *last,
                                     const size_t *out_rows);


/* ---------------------------------------------------------------- latent space: hooks on named activations
 * Hook points of the forward pass (csrc/latent.c). Each activation has a public layout (U, P, W): U units (heads
 * for head-major activations, else 1), P positions, W values per unit and position. D = d_model, F = d_ff,
 * H / Hk = query / key-value heads, hd = head_dim, Tk = keys seen.
 *   EMBED (1, T, D) input of block 0          RESID_PRE (1, T, D) input of block l
 *   ATTN_Q (H, T, hd) queries after q_norm and RoPE, as attention reads them; ATTN_K / ATTN_V (Hk, T, hd) likewise
 *   ATTN_PATTERN (H, T, Tk) softmax weights (capture only)      ATTN_Z (H, T, hd) attention output per head
 *   ATTN_OUT (1, T, D) output projection (+ bias)   RESID_MID (1, T, D) residual stream between attention and MLP
 *   MLP_PRE (1, T, F) gate (llama) / fc (gpt2, bert) before the activation; MLP_POST (1, T, F) input of the down
 *   projection; MLP_OUT (1, T, D); RESID_POST (1, T, D) output of block l; LN_FINAL (1, T, D) after the final norm
 *   MOE_ROUTER (1, T, E) router logits of a mixture-of-experts layer, before the softmax: a hook that changes them
 *   changes the routing. A MoE layer has no MLP_PRE / MLP_POST (each token's experts differ); MLP_OUT is the
 *   block's output (experts + shared expert). */
typedef enum {
    LLMC_ACT_EMBED = 0, LLMC_ACT_RESID_PRE, LLMC_ACT_ATTN_Q, LLMC_ACT_ATTN_K, LLMC_ACT_ATTN_V, LLMC_ACT_ATTN_PATTERN,
    LLMC_ACT_ATTN_Z, LLMC_ACT_ATTN_OUT, LLMC_ACT_RESID_MID, LLMC_ACT_MLP_PRE, LLMC_ACT_MLP_POST, LLMC_ACT_MLP_OUT,
    LLMC_ACT_RESID_POST, LLMC_ACT_LN_FINAL, LLMC_ACT_MOE_ROUTER, LLMC_ACT_COUNT
} llmc_act;

/* What a hook does where it fires. Positions are absolute (row t of a call at session position n is n + t); a hook
 * touches positions in [pos_start, pos_stop) only. */
typedef enum {
    LLMC_HOOK_CAPTURE = 0, /* copy into data (U, rows, W) at row = position (positions >= rows are not copied) */
    LLMC_HOOK_ADD = 1,     /* add scale * data (U, W) at each position (steering) */
    LLMC_HOOK_SET = 2,     /* replace by data (U, rows, W), row = position (activation patching) */
    LLMC_HOOK_ZERO = 3,    /* zero the units in index: heads when U > 1, else columns (neurons) */
    LLMC_HOOK_MEAN = 4     /* replace the units in index by data (U, W) or, when data is NULL, by their mean over
                              the positions of the call (the whole sequence: such a run is not chunked) */
} llmc_hook_kind;

typedef struct {
    int kind;                     /* llmc_hook_kind */
    int act;                      /* llmc_act */
    size_t layer;                 /* block index (ignored for EMBED and LN_FINAL) */
    float *data;                  /* see kind; the caller keeps it alive while the hook is attached */
    size_t data_len;              /* floats in data (checked against the layout) */
    size_t rows;                  /* CAPTURE / SET: positions in data */
    float scale;                  /* ADD */
    size_t pos_start, pos_stop;   /* affected positions [start, stop) */
    const int64_t *index;         /* ZERO / MEAN: unit indices */
    size_t n_index;
} llmc_hook;

/* The layout (U, W) of activation act for this model (W of ATTN_PATTERN: 0, it depends on the call). Returns
 * LLMC_ERR_UNSUPPORTED for an activation the architecture lacks (LN_FINAL of bert). */
llmc_status llmc_act_layout(const llmc_model *m, int act, size_t *units, size_t *width);
/* Check hooks against the model: kinds, activations, layers, data sizes, unit indices, position ranges. */
llmc_status llmc_hooks_check(const llmc_model *m, const llmc_hook *hooks, size_t n);
/* A whole-sequence forward (like llmc_model_forward with all logits) with hooks firing in list order at each
 * point. logits (T, V) may be NULL. */
llmc_status llmc_model_forward_hooked(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T,
                                      int attn, float *logits, const llmc_hook *hooks, size_t n_hooks);
/* Attach hooks to a session (n = 0 detaches): they fire on every later append. The array and its data are the
 * caller's and must outlive the attachment. CAPTURE and ATTN_PATTERN are not allowed on a session. */
llmc_status llmc_session_set_hooks(llmc_session *s, const llmc_hook *hooks, size_t n);
/* The logit lens readout: logits (rows, V) = lm_head(final_norm(x)) for x: (rows, D) residual-stream rows. */
llmc_status llmc_model_readout(const llmc_model *m, const float *x, size_t rows, float *logits);


/* ---------------------------------------------------------------- encoder-decoder models (seq2seq*.c)
 * T5 (v1.0 ReLU and v1.1 / flan gated-GELU; relative position buckets; RMS "T5 LayerNorm") and BART (learned
 * positions with offset 2, post-LayerNorm, GELU) from Hugging Face folders. The encoder reads the whole source with
 * bidirectional attention; a decoder state holds the encoder's cross-attention keys/values of every decoder layer
 * (computed once per source) and the self-attention caches of n_beams sequences that grow together. */
typedef enum { LLMC_S2S_T5 = 0, LLMC_S2S_BART = 1 } llmc_s2s_arch;
typedef enum { LLMC_FN_RELU = 0, LLMC_FN_GELU = 1, LLMC_FN_GELU_TANH = 2, LLMC_FN_SILU = 3 } llmc_act_fn;

typedef struct {
    int arch;                 /* llmc_s2s_arch */
    size_t vocab, d_model;
    size_t enc_layers, enc_heads, enc_head_dim, enc_ff;
    size_t dec_layers, dec_heads, dec_head_dim, dec_ff;
    size_t max_positions;     /* BART: positions per side (its tables hold 2 more rows); T5: 0 = no limit */
    size_t num_buckets, max_distance; /* T5 relative position buckets */
    float eps;                /* layer norm / T5 RMS norm epsilon */
    int act;                  /* llmc_act_fn of the feed-forward */
    int gated;                /* T5 v1.1: wo(act(wi_0 x) * wi_1 x) */
    float embed_scale;        /* BART scale_embedding: sqrt(d_model); else 1 */
    float out_scale;          /* T5 with scale_decoder_outputs (tied heads): d_model^-0.5; else 1 */
    int untied_head;          /* a separate lm_head.weight was loaded */
} llmc_s2s_config;

typedef struct llmc_s2s llmc_s2s;
/* dir: config.json (model_type t5 or bart) + model.safetensors (or shards). Tensors of F32/F16/BF16 are used as
 * stored (mapped); norms and biases become fp32. */
llmc_status llmc_s2s_load(const char *dir, llmc_s2s **out);
/* llmc_s2s_load converting every matrix (not norms, biases, position tables) to one type: dtype "f32", "f16",
 * "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k" or "q6_k" (NULL or "": as stored). A matrix whose
 * rows are not whole blocks is LLMC_ERR_INVALID naming it. */
llmc_status llmc_s2s_load_as(const char *dir, const char *dtype, llmc_s2s **out);
/* random weights (normal(0, 0.02), norms 1, biases 0) for a config.json text; deterministic in seed */
llmc_status llmc_s2s_init(const char *config_json, size_t len, uint64_t seed, llmc_s2s **out);
void llmc_s2s_free(llmc_s2s *m);
const llmc_s2s_config *llmc_s2s_get_config(const llmc_s2s *m);
size_t llmc_s2s_n_tensors(const llmc_s2s *m);
llmc_status llmc_s2s_tensor_typed(const llmc_s2s *m, size_t i, llmc_tensor_view *view);
/* How many times the encoder has run on this model (tests: a generate call encodes its source once). */
uint64_t llmc_s2s_encoder_runs(const llmc_s2s *m);

/* The encoder over ids (T,): out (T, d_model) = the final encoder states (after the encoder's final norm for T5).
 * probs: (enc_heads, T, T) self-attention weights of encoder layer probs_layer, or NULL. */
llmc_status llmc_s2s_encode(const llmc_s2s *m, const int64_t *ids, size_t T, int attn, float *out,
                            size_t probs_layer, float *probs);

typedef struct llmc_s2s_dec llmc_s2s_dec;
/* A decoding state over encoder states enc (T_in, d_model) (copied into cross K/V: enc may be freed afterwards)
 * for n_beams sequences of up to capacity tokens (BART: at most max_positions). */
llmc_status llmc_s2s_dec_new(const llmc_s2s *m, const float *enc, size_t T_in, size_t n_beams, size_t capacity,
                             int attn, llmc_s2s_dec **out);
/* Append T tokens to every beam: ids (n_beams, T). logits: (n_beams, T, vocab) when all_logits, else
 * (n_beams, vocab) of each beam's last token; may be NULL. cross_probs: (dec_heads, T, T_in) cross-attention
 * weights of decoder layer probs_layer (n_beams must be 1), or NULL. On error the state is as before the call. */
llmc_status llmc_s2s_dec_append(llmc_s2s_dec *d, const int64_t *ids, size_t T, float *logits, int all_logits,
                                size_t probs_layer, float *cross_probs);
/* Beam search: beam i continues beam parents[i]'s cache (n_beams entries in [0, n_beams)). */
llmc_status llmc_s2s_dec_reorder(llmc_s2s_dec *d, const int64_t *parents);
size_t llmc_s2s_dec_n_tokens(const llmc_s2s_dec *d);
void llmc_s2s_dec_reset(llmc_s2s_dec *d);
void llmc_s2s_dec_free(llmc_s2s_dec *d);
/* T5's relative position bucket of rel = key position - query position (transformers' float32 arithmetic). */
int64_t llmc_t5_bucket(int64_t rel, int bidirectional, size_t num_buckets, size_t max_distance);

#ifdef __cplusplus
}
#endif
#endif /* LLMC_H */
