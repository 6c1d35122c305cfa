/* model_internal.h: the structs the model's files share (not part of the public API).
 *
 * The model is split along its seams, as llama.cpp splits its model file:
 *   model_config.c  config.json parsing and validation
 *   weights.c       the tensor table, loading from safetensors, random init, tensor views
 *   model_gguf.c    loading from a GGUF file (llama.cpp's), tensors kept in their stored types
 *   blocks.c        the forward blocks (gpt2 / llama / bert), embeddings, final norm, the forward over a chunk
 *   session.c       sessions: KV cache, activation scratch, sliding window, append, copy
 *   model.c         whole-sequence entry points: forward, attention weights, embed
 *   latent.c        hooks on named activations (capture, steering, ablation, patching), fired by the blocks
 *
 * Layout conventions (shapes in comments): D = d_model, H = query heads, Hk = key/value heads, hd = head_dim,
 * F = d_ff, V = vocab, T = tokens in this call, cap = session capacity, n = tokens already cached.
 * Activations are token-major (T, D); attention works head-major: q (H, T, hd), cache k/v (Hk, cap, hd).
 * Weights are typed (F32/F16/BF16 or one of ggml's block formats, see quant.h): F32/F16/BF16 checkpoint tensors
 * may point straight into the mapped safetensors file; converted ones are allocated per tensor. Norms and biases
 * are always fp32. All activations of a session live in one scratch allocation (grown only when a longer chunk
 * than ever before arrives, so decoding one token at a time never allocates). */
#ifndef LLMC_MODEL_INTERNAL_H
#define LLMC_MODEL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "json.h"

#define NAME_MAX_LEN 128

/* ---------------------------------------------------------------- weights */
/* A matrix as the forward reads it: `rows` rows of `cols` values of `type` in ggml's block layout, row-major, so
 * every linear layer is y = x @ W^T through llmc_matmul_typed. data == NULL: absent. */
typedef struct {
    int type;         /* llmc_type */
    const void *data;
    int in_out;       /* F32 GPT-2 Conv1D weight kept as the checkpoint stores it, (in, out) (see weights.c) */
} wmat;

/* A sparse mixture-of-experts feed-forward (moe.c). Fe = moe_d_ff, Fs = shared_d_ff, E experts. */
typedef struct {
    wmat router;                /* (E, D): router logits = x @ router^T (kept F32 by every recipe, as llama.cpp) */
    wmat *gate, *up, *down;     /* E each: (Fe, D), (Fe, D), (D, Fe) */
    wmat sh_gate, sh_up, sh_down; /* qwen2_moe shared expert: (Fs, D), (Fs, D), (D, Fs); data NULL when absent */
    wmat sh_router;             /* (1, D): the shared expert's sigmoid gate */
} moe_weights;

typedef struct {
    float *ln1_w, *ln1_b;       /* (D,): llama input_layernorm / gpt2 ln_1 / bert attention.output.LayerNorm */
    wmat wq, wk, wv, wo;        /* (H*hd, D), (Hk*hd, D), (Hk*hd, D), (D, H*hd), all (out, in) */
    float *bq, *bk, *bv, *bo;   /* biases or NULL */
    wmat wqkv;                  /* gpt2 c_attn: (3D, D), or (D, 3D) when in_out */
    float *bqkv;                /* (3D,) */
    float *q_norm, *k_norm;     /* qwen3: (hd,) */
    float *ln2_w, *ln2_b;       /* (D,) */
    wmat w_gate, w_up, w_down;  /* llama: (F, D), (F, D), (D, F) */
    wmat w_fc, w_proj;          /* gpt2 / bert MLP: (F, D), (D, F) (gpt2's transposed when in_out) */
    float *b_fc, *b_proj;       /* (F,), (D,) */
    moe_weights *moe;           /* a sparse MoE feed-forward in place of w_gate / w_up / w_down, or NULL */
} layer_weights;

/* What a tensor is for: llama.cpp's type recipes key on it (docs/quantization.md). */
enum {
    ROLE_VECTOR = 0, /* norms and biases: always F32 */
    ROLE_TOKEN_EMBD, ROLE_POS_EMBD, ROLE_TOKEN_TYPES, ROLE_OUTPUT,
    ROLE_ATTN_Q, ROLE_ATTN_K, ROLE_ATTN_V, ROLE_ATTN_QKV, ROLE_ATTN_OUT,
    ROLE_FFN_GATE, ROLE_FFN_UP, ROLE_FFN_DOWN,
    ROLE_FFN_ROUTER /* MoE router and shared-expert gate: F32 whatever the recipe */
};

typedef struct {
    char name[NAME_MAX_LEN];
    int ndim;
    size_t shape[2];  /* the checkpoint's shape */
    size_t numel;
    int init;         /* INIT_* for random models */
    int role;         /* ROLE_* */
    int layer;        /* block index, -1 outside the blocks */
    int conv1d;       /* a GPT-2 Conv1D weight: (in, out) in the checkpoint */
    int transposed;   /* stored as (shape[1], shape[0]): a Conv1D weight of a type other than F32, so that each row
                       * holds `in` values as ggml's blocks need (F32 ones stay (in, out): zero-copy, trainable) */
    int type;         /* llmc_type of data */
    void *data;       /* the bytes: rows of `cols` values (see tensor_rows / tensor_cols) */
    size_t nbytes;
    int owned;        /* data was llmc_malloc'ed; else it points into the mapped checkpoint (m->sf) */
    float **vslot;    /* 1-D tensors: where the model keeps the fp32 pointer */
    wmat *mslot;      /* 2-D tensors: where the model keeps the typed view */
} tensor_spec;

/* rows and row length of a tensor as stored */
static inline size_t tensor_rows(const tensor_spec *t) {
    return t->ndim == 1 ? 1 : t->transposed ? t->shape[1] : t->shape[0];
}
static inline size_t tensor_cols(const tensor_spec *t) {
    return t->ndim == 1 ? t->shape[0] : t->transposed ? t->shape[0] : t->shape[1];
}

enum { INIT_NORMAL = 0, INIT_ONES = 1, INIT_ZEROS = 2 };

struct llmc_st;   /* safetensors.h */
struct llmc_gguf; /* gguf.h */

struct llmc_model {
    llmc_model_config c;
    tensor_spec *t;
    size_t n_t, cap_t;
    layer_weights *L;
    wmat wte, wpe, wtt;         /* token (V, D), position (ctx, D), token-type (types, D) embeddings */
    float *emb_ln_w, *emb_ln_b; /* bert embeddings.LayerNorm */
    float *norm_w, *norm_b;     /* final norm (decoders) */
    wmat lm_head;               /* (V, D): the untied lm_head tensor or the token embedding; data NULL for bert */
    wmat lm_head_own;           /* untied lm_head tensor */
    float *inv_freq;            /* RoPE (hd/2,) */
    int gelu_tanh;              /* gpt2 / bert activation */
    struct llmc_st *sf;         /* the mapped checkpoint while tensors point into it, else NULL */
    struct llmc_gguf *gguf;     /* the mapped GGUF file while tensors point into it, else NULL (model_gguf.c) */
    float *rope_factors;        /* (hd/2,) or NULL: RoPE frequencies are divided by these (GGUF rope_freqs) */
    char dtype[16];             /* the recipe the weights were converted with; "" = as the checkpoint stores them */
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
    void *moe_scratch;   /* moe.c's buffers for up to moe_T tokens */
    size_t moe_T;
    struct moe_record *moe_rec; /* where MoE layers report their routing (llmc_model_routing), or NULL */
    void *team_ws;       /* decode.c's workspace (step counters, attention plans, per-thread rows), team_bytes */
    size_t team_bytes;
};

/* activation buffers of one forward call, carved from the session scratch */
typedef struct {
    float *x, *h, *q, *k, *v, *qh, *ah, *a, *f1, *f2, *cs, *sn;
} acts;

/* ---------------------------------------------------------------- moe.c */
/* What llmc_model_routing collects, the caller's memory; row = the token's absolute position. Lm MoE layers. */
struct moe_record {
    size_t T;          /* rows of each layer's block */
    float *logits;     /* (Lm, T, E) router logits */
    int32_t *experts;  /* (Lm, T, k) chosen experts, by descending probability */
    float *weights;    /* (Lm, T, k) their weights (renormalised when norm_topk_prob) */
};
/* The MoE feed-forward of layer l over T rows: x: (T, D) += moe(h), h: (T, D) the normed input (clobbered rows
 * are not; h is read only). Fires mlp_out on the block's output. */
llmc_status moe_block_forward(llmc_session *s, size_t l, const float *h, float *x, size_t T);
/* Register the MoE tensors of layer l (prefix pre) and allocate its moe_weights. */
llmc_status moe_build_spec(llmc_model *m, const char *pre, size_t l);
/* Free what moe_build_spec allocated. */
void moe_free(llmc_model *m);

/* ---------------------------------------------------------------- weights.c, shared with moe.c */
llmc_status model_add_tensor(llmc_model *m, float **vslot, wmat *mslot, int role, int layer, int init, int conv1d,
                             size_t d0, size_t d1, const char *fmt, ...) __attribute__((format(printf, 10, 11)));

/* ---------------------------------------------------------------- model_config.c */
/* Validate a parsed config.json (file names it in messages) into c; *gelu_tanh: the activation of gpt2 / bert. */
llmc_status model_parse_config(const llmc_json *root, const char *file, llmc_model_config *c, int *gelu_tanh);
/* Read and parse dir/config.json; path receives its path (for messages). */
llmc_status model_read_config(const char *dir, llmc_json_doc **doc, char *path, size_t path_len);

/* ---------------------------------------------------------------- weight_types.c */
/* The type llama.cpp's recipe `recipe` gives tensor t of model m (llama_tensor_get_type); LLMC_ERR_INVALID naming
 * the tensor, its row length and the block size when no type of the recipe fits its rows. */
llmc_status model_recipe_type(const llmc_model *m, const char *recipe, const tensor_spec *t, int *type);
/* LLMC_OK when recipe names a recipe (f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k[_s|_m], q5_k[_s|_m],
 * q6_k); else LLMC_ERR_INVALID listing them. */
llmc_status model_recipe_check(const char *recipe);

/* ---------------------------------------------------------------- weights.c, for the other loaders (model_gguf.c) */
/* The model's tables and tensor list (checkpoint names with prefix `pre`) for a config; no weights yet. */
llmc_status model_create(const llmc_model_config *c, int gelu_tanh, const char *pre, llmc_model **out);
/* Once every tensor has its type and bytes: publish them to the model's slots, the lm_head view and RoPE. */
void model_finish(llmc_model *m);

/* ---------------------------------------------------------------- session.c */
/* A session of capacity cap with its KV cache and the scratch for one token. */
llmc_status session_alloc(const llmc_model *m, size_t cap, llmc_session **out);
/* Lay the activation buffers of T tokens out from base; returns the floats needed, 0 on overflow. */
size_t session_carve(const llmc_model_config *c, float *base, size_t T, acts *a);
/* Grow the session's scratch to hold the activations of T tokens. */
llmc_status session_ensure_scratch(llmc_session *s, size_t T);

/* ---------------------------------------------------------------- decode.c */
/* Whether one token of this session can take the one-region decode path (no hooks, no MoE, every matrix type has a
 * row kernel); attention weights and hidden states are the caller's to exclude. */
int decode_eligible(const llmc_session *s);
/* Layers and output of the one token whose embedding is in a->x (RoPE tables in a->cs, a->sn) at position s->n on
 * one team of threads; logits: (V,) or NULL. The caller advances s->n and the token history. */
llmc_status decode_token(llmc_session *s, const acts *a, float *logits);

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

/* The building blocks batch.c shares with blocks.c: y = beta * y + x @ W^T for a weight of any type (x: (T, in),
 * y: (T, out)); embedding rows of a table of any type; RoPE on x: (T, nh, hd) with cs, sn: (T, hd/2) the angles of
 * each row; the final norm of the architecture (rows, D). */
llmc_status model_matmul_w(const float *x, const wmat *w, float *y, size_t T, size_t in, size_t out, float beta);
llmc_status model_embed_rows(const wmat *table, size_t vocab, size_t dim, const int64_t *ids, size_t n, float *out);
void model_rope_rows(float *x, size_t T, size_t nh, size_t hd, const float *cs, const float *sn);
llmc_status model_final_norm(const llmc_model *m, const float *in, float *out, size_t rows);

/* ---------------------------------------------------------------- session.c, for batch.c */
/* Check that n tokens ids can be appended to s (ids in the vocabulary, room in the window or overflow="slide");
 * changes nothing. */
llmc_status session_check_append(const llmc_session *s, const int64_t *ids, size_t n);
/* After session_check_append: drop the oldest tokens (overflow="slide") so that n more fit. */
llmc_status session_make_room(llmc_session *s, size_t n);

#endif
