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

/* ---------------------------------------------------------------- tokenizer (tokenizer.c) */
/* (declared by the tokenizer work) */

/* ---------------------------------------------------------------- model (model.c) */
/* (declared by the model work) */

#ifdef __cplusplus
}
#endif
#endif /* LLMC_H */
