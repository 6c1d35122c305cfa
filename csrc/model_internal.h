/* model_internal.h: the structs the model's files share (not part of the public API).
 *
 * The model is split along its seams, as llama.cpp splits its model file:
 *   model_config.c  config.json parsing and validation
 *   weights.c       the tensor table, loading from safetensors, random init, tensor views
 *   blocks.c        the forward blocks (gpt2 / llama / bert), embeddings, final norm, the forward over a chunk
 *   session.c       sessions: KV cache, activation scratch, sliding window, append, copy
 *   model.c         whole-sequence entry points: forward, attention weights, embed
 *   latent.c        hooks on named activations (capture, steering, ablation, patching), fired by the blocks
 *
 * Layout conventions (shapes in comments): D = d_model, H = query heads, Hk = key/value heads, hd = head_dim,
 * F = d_ff, V = vocab, T = tokens in this call, cap = session capacity, n = tokens already cached.
 * Activations are token-major (T, D); attention works head-major: q (H, T, hd), cache k/v (Hk, cap, hd).
 * All weights live in one fp32 allocation; all activations of a session in one scratch allocation (grown only when
 * a longer chunk than ever before arrives, so decoding one token at a time never allocates). */
#ifndef LLMC_MODEL_INTERNAL_H
#define LLMC_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "json.h"

#define NAME_MAX_LEN 128

/* ---------------------------------------------------------------- weights */
typedef struct {
    float *ln1_w, *ln1_b;          /* (D,): llama input_layernorm / gpt2 ln_1 / bert attention.output.LayerNorm */
    float *wq, *wk, *wv, *wo;      /* llama/bert: (H*hd, D), (Hk*hd, D), (Hk*hd, D), (D, H*hd) stored (out, in) */
    float *bq, *bk, *bv, *bo;      /* biases or NULL */
    float *wqkv, *bqkv;            /* gpt2 c_attn: (D, 3D) stored (in, out), bias (3D,) */
    float *q_norm, *k_norm;        /* qwen3: (hd,) */
    float *ln2_w, *ln2_b;          /* (D,) */
    float *w_gate, *w_up, *w_down; /* llama: (F, D), (F, D), (D, F) */
    float *w_fc, *b_fc, *w_proj, *b_proj; /* gpt2 (in, out): (D, F), (F,), (F, D), (D,); bert (out, in) */
} layer_weights;

typedef struct {
    char name[NAME_MAX_LEN];
    int ndim;
    size_t shape[2];
    size_t offset; /* floats from the start of the weight block */
    size_t numel;
    int init;      /* INIT_* for random models */
    int optional;  /* absent in the checkpoint is fine (then zero) */
    float **slot;  /* where the model keeps a pointer to it */
} tensor_spec;

enum { INIT_NORMAL = 0, INIT_ONES = 1, INIT_ZEROS = 2 };

struct llmc_model {
    llmc_model_config c;
    float *block; /* every weight, fp32 */
    size_t block_floats;
    tensor_spec *t;
    size_t n_t, cap_t;
    layer_weights *L;
    float *wte, *wpe, *wtt;     /* token (V, D), position (ctx, D), token-type (types, D) embeddings */
    float *emb_ln_w, *emb_ln_b; /* bert embeddings.LayerNorm */
    float *norm_w, *norm_b;     /* final norm (decoders) */
    float *lm_head;             /* (V, D) */
    float *lm_head_own;         /* untied lm_head tensor (NULL when tied) */
    float *inv_freq;            /* RoPE (hd/2,) */
    int gelu_tanh;              /* gpt2 / bert activation */
};

/* ---------------------------------------------------------------- session: cache + scratch */
struct llmc_session {
    const llmc_model *m;
    size_t cap, n;       /* capacity and tokens cached */
    int overflow, attn;
    size_t keep_first;
    float *kv;           /* (n_layers, 2, Hk, cap, hd): keys then values of each layer */
    int64_t *tokens;     /* (cap,) the tokens in the cache */
    float *scratch;      /* activations for up to scratch_T tokens */
    size_t scratch_T;
    int64_t *tmp_ids;    /* (cap,) for re-encoding a slid window */
    const llmc_hook *hooks; /* attached hooks (latent.c), the caller's memory; n_hooks = 0: none */
    size_t n_hooks;
};

/* activation buffers of one forward call, carved from the session scratch */
typedef struct {
    float *x, *h, *q, *k, *v, *qh, *ah, *a, *f1, *f2, *cs, *sn;
} acts;

/* ---------------------------------------------------------------- model_config.c */
/* Validate a parsed config.json (file names it in messages) into c; *gelu_tanh: the activation of gpt2 / bert. */
llmc_status model_parse_config(const llmc_json *root, const char *file, llmc_model_config *c, int *gelu_tanh);
/* Read and parse dir/config.json; path receives its path (for messages). */
llmc_status model_read_config(const char *dir, llmc_json_doc **doc, char *path, size_t path_len);

/* ---------------------------------------------------------------- session.c */
/* A session of capacity cap with its KV cache and the scratch for one token. */
llmc_status session_alloc(const llmc_model *m, size_t cap, llmc_session **out);
/* Lay the activation buffers of T tokens out from base; returns the floats needed, 0 on overflow. */
size_t session_carve(const llmc_model_config *c, float *base, size_t T, acts *a);
/* Grow the session's scratch to hold the activations of T tokens. */
llmc_status session_ensure_scratch(llmc_session *s, size_t T);

/* cache rows of layer l: k then v, each (Hk, cap, hd) */
static inline float *cache_k(const llmc_session *s, size_t l) {
    const llmc_model_config *c = &s->m->c;
    return s->kv + l * 2 * c->n_kv_heads * s->cap * c->head_dim;
}
static inline float *cache_v(const llmc_session *s, size_t l) {
    const llmc_model_config *c = &s->m->c;
    return cache_k(s, l) + c->n_kv_heads * s->cap * c->head_dim;
}

/* ---------------------------------------------------------------- blocks.c */
/* The whole stack over T new tokens appended at position s->n.
 * logits: (T, V) when all_logits, else (V,) of the last token; hidden: (L+1, T, D); last: (T, D); any may be NULL.
 * probs_layer / probs: the attention probabilities (H, T, Tk) of one layer, or NULL. On error the session is left
 * as it was before the call. */
llmc_status model_forward_tokens(llmc_session *s, const int64_t *ids, const int64_t *types, size_t T, float *logits,
                                 int all_logits, float *hidden, float *last, size_t probs_layer, float *probs);

#endif
