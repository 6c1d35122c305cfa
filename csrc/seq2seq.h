/* seq2seq.h: the structs the encoder-decoder files share (not part of the public API).
 *
 *   seq2seq_config.c   config.json of t5 / bart -> llmc_s2s_config, every field validated
 *   seq2seq_weights.c  the tensor table (checkpoint names and shapes), loading from safetensors, random init
 *   seq2seq_attn.c     T5's relative position buckets and the attention with an additive position bias
 *   seq2seq.c          the encoder, the cross-attention K/V, the decoder state (self-attention caches of n beams)
 *
 * Shapes: D = d_model, H = heads, hd = head dim, F = d_ff, V = vocab, T_in = source tokens, B = beams, T = new
 * decoder tokens per beam in one call, cap = decoder capacity, n = decoder tokens cached per beam. Activations are
 * row-major (rows, D) with rows = B * T (row b * T + t); attention works head-major. */
#ifndef LLMC_SEQ2SEQ_H
#define LLMC_SEQ2SEQ_H

#include "model_internal.h"

/* One encoder or decoder layer. T5 norms come before each sublayer (pre-LN, RMS, no bias); BART's after the
 * residual add (post-LN, with bias). */
typedef struct {
    float *ln1_w, *ln1_b;         /* self-attention norm (D,) */
    wmat wq, wk, wv, wo;          /* self-attention: (H*hd, D) x3, (D, H*hd) */
    float *bq, *bk, *bv, *bo;     /* BART biases */
    float *lnx_w, *lnx_b;         /* decoder: cross-attention norm */
    wmat xq, xk, xv, xo;          /* decoder: cross-attention projections */
    float *bxq, *bxk, *bxv, *bxo;
    float *ln2_w, *ln2_b;         /* feed-forward norm */
    wmat wi, wi1, wff;            /* wi (F, D) (gated: wi_0), wi1 (F, D) gated only, wff (D, F) */
    float *bi, *bff;              /* BART fc1 / fc2 biases */
} s2s_layer;

struct llmc_s2s {
    llmc_s2s_config c;
    tensor_spec *t;
    size_t n_t, cap_t;
    s2s_layer *enc, *dec;
    wmat shared;                       /* (V, D) token embedding of both sides */
    wmat enc_emb_own, dec_emb_own;     /* (V, D) per-side embed_tokens when the checkpoint has its own */
    wmat enc_emb, dec_emb;             /* the views used: own or shared */
    wmat lm_head_own;                  /* (V, D) lm_head.weight when the checkpoint has its own */
    wmat lm_head;                      /* the view used: lm_head_own or shared */
    float *enc_pos, *dec_pos;          /* BART (max_positions + 2, D) */
    float *enc_lne_w, *enc_lne_b, *dec_lne_w, *dec_lne_b; /* BART layernorm_embedding */
    float *enc_final, *dec_final;      /* T5 final RMS norms (D,) */
    float *enc_rel, *dec_rel;          /* T5 relative_attention_bias of layer 0: (num_buckets, H) */
    float *final_logits_bias;          /* BART (V,) or NULL (zeros) */
    struct llmc_st *sf;                /* the mapped checkpoint while tensors point into it */
    _Atomic uint64_t encoder_runs;     /* llmc_s2s_encode calls (a statistic, not state the math depends on) */
};

struct llmc_s2s_dec {
    const llmc_s2s *m;
    size_t B, cap, n, T_in;
    int attn;
    float *cross;      /* (dec_layers, 2, H, T_in, hd): cross-attention keys then values of each decoder layer */
    float *kv;         /* (dec_layers, 2, B, H, cap, hd): self-attention keys then values */
    float *tmp;        /* (B, H, cap, hd): reorder staging */
    int64_t *tokens;   /* (B, cap) */
    float *scratch;    /* activations for scratch_rows rows */
    size_t scratch_rows, scratch_keys;
};

/* ---------------------------------------------------------------- seq2seq_config.c */
/* Validate a parsed config.json of model_type t5 or bart (file names it in messages). */
llmc_status s2s_parse_config(const llmc_json *root, const char *file, llmc_s2s_config *c);

/* ---------------------------------------------------------------- seq2seq_weights.c */
/* Tensors a checkpoint may or may not hold (S2S_HAS_* flags): lm_head.weight (else the shared embedding), per-side
 * embed_tokens (else shared; transformers 5 unties them from shared when tie_word_embeddings is false), BART's
 * final_logits_bias (else zeros). */
enum { S2S_HAS_LM_HEAD = 1, S2S_HAS_ENC_EMB = 2, S2S_HAS_DEC_EMB = 4, S2S_HAS_FLB = 8 };
/* The model's tables and tensor list (no weights yet) for a config and the optional tensors present. */
llmc_status s2s_create(const llmc_s2s_config *c, int has, llmc_s2s **out);
/* publish every tensor's bytes to its slot and set the lm_head view */
void s2s_finish(llmc_s2s *m);

/* ---------------------------------------------------------------- seq2seq_attn.c */
/* rel: (H, Tq + Tk - 1), rel[h][r + Tk - 1] = bias of head h for key position - query position = r, from the
 * bucket table w: (num_buckets, H). Only r in [-(Tk-1), Tq-1] are filled. */
void s2s_rel_table(const llmc_s2s_config *c, const float *w, size_t H, size_t Tq, size_t Tk, int bidirectional,
                   float *rel);
/* Floats of per-thread scratch s2s_biased_attention needs for Tk keys. */
size_t s2s_biased_scratch(size_t Tk);
/* Attention with an additive relative-position bias, unscaled (T5): for each beam b and head h,
 *   out[b,h,i] = sum_j softmax_j(q[b,h,i] . k[b,h,j] + rel[h][j - p_i + Tk - 1]) v[b,h,j],  p_i = Tk - Tq + i,
 * keys j <= p_i when causal. q, out: (B, H, Tq, hd) packed; k, v: (B, H, cap, hd) (k_sb / k_sh element strides);
 * probs: (H, Tq, Tk) softmax weights (B == 1), or NULL. scratch: llmc_threads() * s2s_biased_scratch(Tk) floats. */
llmc_status s2s_biased_attention(const float *q, const float *k, const float *v, size_t k_sb, size_t k_sh,
                                 float *out, size_t B, size_t H, size_t Tq, size_t Tk, size_t hd, const float *rel,
                                 int causal, float *probs, float *scratch);

#endif
