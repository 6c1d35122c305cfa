/* internal.h: helpers shared by the C core's files; not part of the public API. */
#ifndef LLMC_INTERNAL_H
#define LLMC_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include "llmc.h"

/* Set this thread's error message (printf-style) and return status, so callers can `return llmc_fail(...)`. */
llmc_status llmc_fail(llmc_status status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void llmc_clear_error(void);

/* Overflow-checked size arithmetic: return 0 and leave *out untouched on overflow. */
static inline int llmc_mul_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline int llmc_add_ok(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
/* a * b * c elements of `elem` bytes each; 0 on overflow. */
int llmc_size3(size_t a, size_t b, size_t c, size_t elem, size_t *out);

/* Allocation that records a clear error on failure (64-byte aligned, free with llmc_free). */
void *llmc_malloc(size_t bytes, const char *what);
void *llmc_calloc(size_t count, size_t size, const char *what);
void llmc_free(void *p);
/* Grow *p (llmc_malloc'ed, *cap items of `elem` bytes) to hold at least `need` items, doubling; 0 on success,
 * -1 with the error set. */
int llmc_grow(void **p, size_t *cap, size_t need, size_t elem, const char *what);

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 if there is none (error.c). */
size_t llmc_utf8_seq(const unsigned char *s, size_t n);

/* file.c: open path for reading only if it is a regular file (a FIFO or device is refused before it is opened, so
 * nothing blocks); *fd_out is a blocking descriptor the caller closes, *size the file's size. */
llmc_status llmc_open_regular(const char *path, int *fd_out, size_t *size);
/* The whole regular file at path, NUL-terminated, in an llmc_malloc'd buffer; files over max_bytes are refused. */
llmc_status llmc_read_file(const char *path, size_t max_bytes, char **text, size_t *len);


/* The thread count our OpenMP loops use. */
int llmc_threads(void);
/* Threads worth using for `work` units of roughly-equal cost (1 for small jobs, to skip the fork/join). */
int llmc_threads_for(size_t work);
/* team.c: the steps of one parallel region shared out chunk by chunk (see team.c). One step's counters fill a cache
 * line, so threads claiming in one step do not slow down threads waiting on another. */
typedef struct {
    _Atomic uint32_t claimed, done, sleepers; /* 32-bit: `done` is also the futex a waiter sleeps on */
    char pad[64 - 3 * sizeof(uint32_t)];
} llmc_team_step;
typedef struct {
    llmc_team_step *steps; /* one per step of the region, zeroed by llmc_team_init before it starts */
    size_t n_steps;
    _Atomic int stop;      /* set when the region must end early (an interrupt); read between steps */
} llmc_team;
void llmc_team_init(llmc_team *t, llmc_team_step *steps, size_t n_steps);
/* The next unclaimed chunk of step `step` (of n_chunks), or n_chunks when none is left. */
uint32_t llmc_team_claim(llmc_team *t, size_t step, uint32_t n_chunks);
/* One claimed chunk of `step` (of n_chunks) is finished: its writes are published; the last one wakes sleepers. */
void llmc_team_done(llmc_team *t, size_t step, uint32_t n_chunks);
/* Wait until all n_chunks chunks of `step` are done: spins briefly, then sleeps. */
void llmc_team_wait(llmc_team *t, size_t step, uint32_t n_chunks);
/* attention.c: llmc_attention's independent tasks, for a caller that shares them out over its own team. The plan
 * checks the arguments like llmc_attention (weights must be NULL) and holds the resolved copy. */
typedef struct {
    llmc_attention_args a;  /* resolved strides */
    size_t n_tasks;         /* tasks; each writes only its own heads' output */
    size_t scratch_floats;  /* scratch one thread needs while it runs a task */
    size_t bq, bk;          /* flash tile sizes */
} llmc_attention_tasks;
llmc_status llmc_attention_plan(const llmc_attention_args *args, llmc_attention_tasks *p);
void llmc_attention_run_task(const llmc_attention_tasks *p, size_t t, float *scratch);
/* ops.c: one row of llmc_layer_norm / llmc_rms_norm on the calling thread (cols >= 1, eps >= 0). x, out: (cols,) */
void llmc_layer_norm_row(const float *x, const float *weight, const float *bias, float *out, size_t cols, float eps);
void llmc_rms_norm_row(const float *x, const float *weight, float *out, size_t cols, float eps);
/* flops.c: count 2 m n k FLOPs of one BLAS product when the FLOP counter is on (one atomic load when off) */
void llmc_flops_note(size_t m, size_t n, size_t k);

/* Attention backward with caller-provided scratch of 2 * T * T floats (see llmc_attention_backward). */
llmc_status llmc_attention_backward_ws(const float *q, const float *k, const float *v, const float *dout, float *dq,
                                       float *dk, float *dv, size_t Hq, size_t Hkv, size_t T, size_t d, float scale,
                                       int causal, size_t window, float *scratch);
/* rope_freq.c: RoPE inverse frequencies theta^(-2i/d) (i < head_dim / 2) with optional llama3 scaling (s may be
 * NULL) and per-frequency divisors (NULL: none). out: (head_dim / 2,) */
void llmc_rope_inv_freq(float theta, size_t head_dim, const llmc_rope_scaling *s, const float *divisors, float *out);
/* train_bf16.c: x rounded to the nearest bfloat16 (ties to even), kept as float32. src, dst: (n,); may alias */
void llmc_round_bf16(const float *src, float *dst, size_t n);
/* Overwrite logits (T, V) with scale * (softmax - onehot(targets)); return the summed NLL. Targets must be valid. */
double llmc_cross_entropy_grad_inplace(float *logits_to_grad, const int64_t *targets, size_t T, size_t V, float scale);


/* splitmix64 + Box-Muller: one deterministic standard normal sample per call (random model weights) */
static inline uint64_t llmc_splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double llmc_rand_normal(uint64_t *s) {
    double u1 = ((double)(llmc_splitmix64(s) >> 11) + 1.0) / 9007199254740993.0; /* uniform in (0, 1] */
    double u2 = (double)(llmc_splitmix64(s) >> 11) / 9007199254740992.0;          /* uniform in [0, 1) */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#endif
