/* batch.c: batched sessions: B KV-cached sequences of different lengths and positions advanced together.
 *
 * The new tokens of all sessions are stacked into one activation matrix x: (Tp, D), packed with no padding, so each
 * linear layer is one matrix-matrix product for the whole batch: the weights are streamed from memory once per pass
 * instead of once per sequence. (Decoding one sequence is memory-bound, every weight byte feeds one multiply-add;
 * with B rows it feeds B.) Everything row-wise runs on the stack unchanged: norms, activations, the MLP, RoPE with
 * each row's own position. Attention runs per sequence ("segment") over that session's own KV cache, its queries
 * read in place from the stack with strides: the packed equivalent of a block-diagonal causal mask that never
 * computes a masked score. Segments are independent, so their attention runs in parallel.
 *
 * A call is cut into passes of at most PASS_TOKENS rows. A pass covers a contiguous range of the packed rows, so a
 * long prompt may continue in the next pass, where it attends to what the earlier pass cached (like the unbatched
 * prefill chunks); BERT, which is not causal, keeps each sequence whole in one pass.
 *
 * Quantized weights: an unbatched append of a few tokens multiplies with integer dot products against quantized
 * activations, a long one with dequantized tiles and sgemm (quant_matmul.c). A pass keeps that choice per session
 * (one product per run of rows of the same kind), so batched results match unbatched ones for every weight type.
 *
 * Layout: packed rows: session 0's new tokens, then session 1's, ...; q: (Tp, H*hd) (gpt2: (Tp, 3D) with k and v),
 * cache k/v of a session: (Hk, cap, hd) as in session.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "model_internal.h"
#include "quant.h"
#include "simd.h"

#define PASS_TOKENS 256    /* rows of one pass: big enough for BLAS to run at full speed, activations a few MiB */
#define GROUP_TOKENS 2048  /* cached tokens of one group of whole sequences (forward_batch, embed): bounds the KV */
#define SMALL_T_CONV1D 16  /* GPT-2's F32 (in, out) Conv1D weights: products of 2 to this many rows take the
                            * streaming kernel below (past it, BLAS sgemm is faster) */
#define SMALL_KB 64     /* Conv1D weight rows (in) per chunk of the streaming kernel */
#define SHORT_APPEND 8     /* appends of at most this many tokens take the decode path of quantized weights, as an
                            * unbatched append does (quant_matmul.c's DECODE_MAX_T) */

/* One session's rows in a pass. */
typedef struct {
    llmc_session *s;
    size_t i;                   /* the session's index in the call */
    const int64_t *ids, *types; /* its tokens in this pass; types NULL: type 0 */
    size_t r0, T;               /* its rows [r0, r0 + T) of the pass */
    size_t out_row;             /* output row (all_logits / last) of its first token in this pass */
    int ends;                   /* the pass holds the session's last new token */
    int dec;                    /* the session's append is decode-sized (<= SHORT_APPEND tokens) */
} seg;

struct llmc_batch {
    const llmc_model *m;
    float *scratch;   /* activations of scratch_T rows (session_carve) */
    size_t scratch_T;
    seg *segs, *ends; /* the segments of a pass; one row per segment that ends in it */
    size_t segs_cap, ends_cap;
    size_t *n0;       /* each session's cached tokens before the call (to undo a failed call) */
    size_t n0_cap;
};

typedef struct {
    llmc_batch *b;
    acts a;
    seg *sg;
    size_t nseg, T; /* segments and rows */
} pass;

llmc_status llmc_batch_new(const llmc_model *m, llmc_batch **out) {
    *out = NULL;
    if (!m) return llmc_fail(LLMC_ERR_INVALID, "batch: model is NULL");
    llmc_batch *b = llmc_calloc(1, sizeof *b, "batch workspace");
    if (!b) return LLMC_ERR_NOMEM;
    b->m = m;
    *out = b;
    return LLMC_OK;
}

void llmc_batch_free(llmc_batch *b) {
    if (!b) return;
    llmc_free(b->scratch);
    llmc_free(b->segs);
    llmc_free(b->ends);
    llmc_free(b->n0);
    llmc_free(b);
}

static llmc_status ensure_scratch(llmc_batch *b, size_t T) {
    if (T <= b->scratch_T) return LLMC_OK;
    acts probe;
    size_t n = session_carve(&b->m->c, NULL, T, &probe), bytes;
    if (!n || !llmc_mul_ok(n, sizeof(float), &bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "batch: activation buffer for %zu tokens overflows", T);
    float *p = llmc_malloc(bytes, "batch activations");
    if (!p) return LLMC_ERR_NOMEM;
    llmc_free(b->scratch);
    b->scratch = p;
    b->scratch_T = T;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- products over the rows of segments */
/* y (T, out) = beta * y + x (T, in) @ W for an F32 GPT-2 Conv1D weight W: (in, out) and few rows T (a decode step of
 * a batch), beta 0 or 1. BLAS sgemm first packs all of W, a copy as large as the weights, which for a few rows costs
 * more than the product; here W is read in place, in chunks of SMALL_KB whole rows (contiguous memory), each
 * multiplied into all T rows by the few-row kernel (simd.h rows_in_out: strips of 24 columns held in L1) and added
 * into y. Each thread owns a range of columns of y, 24-aligned. (Weights stored (out, in), every other F32 weight,
 * take llmc_matmul_typed's few-row path.) */
static llmc_status conv1d_few_rows(const float *x, const wmat *w, float *y, size_t T, size_t in, size_t out,
                                   float beta) {
    const float *W = w->data;
    int nt = llmc_threads();
    if (omp_in_parallel()) nt = 1;
    if (2.0 * (double)T * (double)in * (double)out < 4e6) nt = 1; /* too small to split */
    const llmc_simd_kernels *k = llmc_k;
    size_t cols = (out + (size_t)nt - 1) / (size_t)nt;
    cols = (cols + 23) / 24 * 24;
    llmc_flops_note(T, out, in); /* counted as the sgemm it replaces (llmc.scaling.count_flops) */
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int th = 0; th < nt; th++) {
        const size_t c0 = (size_t)th * cols, c1 = c0 + cols < out ? c0 + cols : out;
        if (c0 >= c1) continue;
        for (size_t p0 = 0; p0 < in; p0 += SMALL_KB) {
            const size_t kb = in - p0 < SMALL_KB ? in - p0 : SMALL_KB;
            // y[:, c0:c1] (+)= x[:, p0:p0+kb] (T, kb) @ W[p0:p0+kb, c0:c1] (kb, c1-c0)
            k->rows_in_out(x + p0, in, T, kb, W + p0 * out + c0, out, c1 - c0, y + c0, out, p0 > 0 || beta != 0.0f);
        }
    }
    return LLMC_OK;
}

static int has_dot(int type) {
    const llmc_type_traits *tt = llmc_type_traits_of(type);
    const llmc_quant_kernels *qk = llmc_quant_kernels_for(llmc_simd_get_level());
    return tt && (tt->vec_dot || qk->vec_dot[type]);
}

/* y = beta * y + x @ W^T over the rows of segments sg[0 .. n), which are contiguous: x: (rows, in), y: (rows, out),
 * row 0 = sg[0].r0. F32 weights: one product. Other types: one product per run of segments of the same kind, on the
 * path an unbatched append of that size takes. */
static llmc_status seg_matmul(const seg *sg, size_t n, const float *x, const wmat *w, float *y,
                              size_t in, size_t out, float beta) {
    const size_t base = sg[0].r0, rows = sg[n - 1].r0 + sg[n - 1].T - base;
    if (w->type == LLMC_TYPE_F32) {
        /* one product: llmc_matmul_typed picks sgemv (one row), its few-row kernel or sgemm; a Conv1D (in, out)
         * weight takes the streaming kernel above for a few rows (threshold measured on GPT-2 124M shapes,
         * benchmarks/bench_batch.py) */
        if (w->in_out && rows > 1 && rows <= SMALL_T_CONV1D)
            return conv1d_few_rows(x, w, y, rows, in, out, beta);
        return model_matmul_w(x, w, y, rows, in, out, beta);
    }
    const int dot_ok = has_dot(w->type);
    for (size_t k = 0; k < n;) {
        size_t e = k + 1;
        while (e < n && sg[e].dec == sg[k].dec) e++;
        const size_t r0 = sg[k].r0 - base, r1 = sg[e - 1].r0 + sg[e - 1].T - base;
        const int path = sg[k].dec && dot_ok ? LLMC_MATMUL_DOT : LLMC_MATMUL_AUTO;
        llmc_status st = llmc_matmul_typed_path(w->type, w->data, x + r0 * in, y + r0 * out, r1 - r0, in, out, beta,
                                                path);
        if (st) return st;
        k = e;
    }
    return LLMC_OK;
}

/* y = x @ W^T + b over the whole pass. x: (Tp, in), y: (Tp, out), b: (out,) or NULL */
static llmc_status pass_linear(const pass *p, const float *x, const wmat *w, const float *b, float *y, size_t in,
                               size_t out) {
    if (b)
        for (size_t t = 0; t < p->T; t++) memcpy(y + t * out, b, out * sizeof(float)); /* beta = 1 adds onto b */
    return seg_matmul(p->sg, p->nseg, x, w, y, in, out, b ? 1.0f : 0.0f);
}

static void clamp(float *x, size_t n, float lim) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < -lim ? -lim : x[i] > lim ? lim : x[i];
}

static void add_inplace(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

/* ---------------------------------------------------------------- attention per segment */
/* Segment g's queries, rows r0 .. r0+T-1 of q (row stride q_st, heads hd apart), against its session's cache of
 * layer l, which already holds the segment's own keys at rows n .. n+T-1; out: rows of stride o_st. */
static llmc_status attend_seg(const seg *g, size_t l, const float *q, size_t q_st, float *out, size_t o_st) {
    const llmc_session *s = g->s;
    const llmc_model_config *c = &s->m->c;
    llmc_attention_args a;
    memset(&a, 0, sizeof a);
    a.q = q + g->r0 * q_st;
    a.q_st = q_st;
    a.q_sh = c->head_dim;
    a.k = cache_k(s, l);
    a.v = cache_v(s, l);
    a.k_sh = a.v_sh = s->cap * c->head_dim; /* the cache rows of one head are cap apart */
    a.out = out + g->r0 * o_st;
    a.o_st = o_st;
    a.o_sh = c->head_dim;
    a.B = 1;
    a.Hq = c->n_heads;
    a.Hkv = c->n_kv_heads;
    a.Tq = g->T;
    a.Tk = s->n + g->T;
    a.d = c->head_dim;
    a.impl = s->attn;
    a.causal = c->causal;
    a.window = c->sliding_window;
    a.scale = 1.0f / sqrtf((float)c->head_dim);
    return llmc_attention(&a);
}

/* Every segment's attention; several segments run in parallel (each single-threaded inside), one runs threaded. */
static llmc_status attend_all(const pass *p, size_t l, const float *q, size_t q_st, float *out, size_t o_st) {
    if (p->nseg == 1) return attend_seg(&p->sg[0], l, q, q_st, out, o_st);
    const llmc_model_config *c = &p->b->m->c;
    for (size_t k = 0; k < p->nseg; k++) /* the one failure that depends on sizes, checked here with its message */
        if (p->sg[k].s->attn == LLMC_ATTN_STANDARD) {
            llmc_status st = llmc_attention_check_standard(1, c->n_heads, p->sg[k].T, p->sg[k].s->n + p->sg[k].T);
            if (st) return st;
        }
    int nt = llmc_threads();
    if ((size_t)nt > p->nseg) nt = (int)p->nseg;
    int failed = 0;
    size_t bad = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (size_t k = 0; k < p->nseg; k++)
        if (attend_seg(&p->sg[k], l, q, q_st, out, o_st)) {
#pragma omp critical(llmc_batch_attend)
            {
                failed = 1;
                bad = k;
            }
        }
    /* the message of an error raised on a worker thread stays there: name the segment here */
    return failed ? llmc_fail(LLMC_ERR_NOMEM, "batch: attention of session %zu failed (out of memory)", p->sg[bad].i)
                  : LLMC_OK;
}

/* k, v: (Tp, Hk, hd) with row stride kv_st -> each session's cache rows n .. n+T-1 of layer l */
static void store_kv(const pass *p, size_t l, const float *k, const float *v, size_t kv_st) {
    const llmc_model_config *c = &p->b->m->c;
    const size_t Hk = c->n_kv_heads, hd = c->head_dim;
    for (size_t g = 0; g < p->nseg; g++) {
        const seg *sg = &p->sg[g];
        llmc_session *s = sg->s;
        float *kc = cache_k(s, l), *vc = cache_v(s, l);
        for (size_t h = 0; h < Hk; h++)
            for (size_t t = 0; t < sg->T; t++) {
                const size_t src = (sg->r0 + t) * kv_st + h * hd, dst = (h * s->cap + s->n + t) * hd;
                memcpy(kc + dst, k + src, hd * sizeof(float));
                memcpy(vc + dst, v + src, hd * sizeof(float));
            }
    }
}

/* ---------------------------------------------------------------- blocks over a pass (as in blocks.c) */
/* Llama family: x += o(attn(rope(q(rms(x))), rope(k(..)), v(..)));  x += down(silu(gate(rms(x))) * up(rms(x))) */
static llmc_status pass_llama(const pass *p, size_t l) {
    const llmc_model *m = p->b->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const acts *a = &p->a;
    const size_t D = c->d_model, H = c->n_heads, Hk = c->n_kv_heads, hd = c->head_dim, F = c->d_ff, T = p->T;
    llmc_status st;
    // h: (Tp, D); q: (Tp, H, hd); k, v: (Tp, Hk, hd)
    if ((st = llmc_rms_norm(a->x, L->ln1_w, a->h, T, D, c->norm_eps)) ||
        (st = pass_linear(p, a->h, &L->wq, L->bq, a->q, D, H * hd)) ||
        (st = pass_linear(p, a->h, &L->wk, L->bk, a->k, D, Hk * hd)) ||
        (st = pass_linear(p, a->h, &L->wv, L->bv, a->v, D, Hk * hd)))
        return st;
    if (L->q_norm && c->qk_norm_full) { /* olmoe: RMSNorm over the whole projection of each token */
        if ((st = llmc_rms_norm(a->q, L->q_norm, a->q, T, H * hd, c->norm_eps)) ||
            (st = llmc_rms_norm(a->k, L->k_norm, a->k, T, Hk * hd, c->norm_eps)))
            return st;
    } else if (L->q_norm) { /* qwen3: RMSNorm over each head vector before RoPE */
        if ((st = llmc_rms_norm(a->q, L->q_norm, a->q, T * H, hd, c->norm_eps)) ||
            (st = llmc_rms_norm(a->k, L->k_norm, a->k, T * Hk, hd, c->norm_eps)))
            return st;
    }
    if (c->clip_qkv > 0) { /* olmoe: q, k, v clamped to [-clip, clip] */
        clamp(a->q, T * H * hd, c->clip_qkv);
        clamp(a->k, T * Hk * hd, c->clip_qkv);
        clamp(a->v, T * Hk * hd, c->clip_qkv);
    }
    model_rope_rows(a->q, T, H, hd, a->cs, a->sn); /* cs, sn hold each row's own position */
    model_rope_rows(a->k, T, Hk, hd, a->cs, a->sn);
    store_kv(p, l, a->k, a->v, Hk * hd);
    // a: (Tp, H*hd) written head by head straight from the strided queries
    if ((st = attend_all(p, l, a->q, H * hd, a->a, H * hd)) ||
        (st = seg_matmul(p->sg, p->nseg, a->a, &L->wo, a->x, H * hd, D, 1.0f))) // x += a @ Wo^T
        return st;
    if ((st = llmc_rms_norm(a->x, L->ln2_w, a->h, T, D, c->norm_eps))) return st;
    /* a sparse mixture of experts in place of the MLP (moe.c): routing is per token, so the stacked rows of all
     * sessions go through it together (the first session lends its MoE scratch) */
    if (L->moe) return moe_block_forward(p->sg[0].s, l, a->h, a->x, T);
    // SwiGLU MLP: f1 = silu(h Wg^T) * (h Wu^T): (Tp, F); x += f1 @ Wd^T
    if (
        (st = pass_linear(p, a->h, &L->w_gate, NULL, a->f1, D, F)) ||
        (st = pass_linear(p, a->h, &L->w_up, NULL, a->f2, D, F)) || (st = llmc_silu(a->f1, a->f1, T * F)))
        return st;
    for (size_t i = 0; i < T * F; i++) a->f1[i] *= a->f2[i];
    return seg_matmul(p->sg, p->nseg, a->f1, &L->w_down, a->x, F, D, 1.0f);
}

/* GPT-2: x += c_proj(attn(split(c_attn(ln_1(x)))));  x += mlp.c_proj(gelu_tanh(mlp.c_fc(ln_2(x)))) */
static llmc_status pass_gpt2(const pass *p, size_t l) {
    const llmc_model *m = p->b->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const acts *a = &p->a;
    const size_t D = c->d_model, F = c->d_ff, T = p->T;
    llmc_status st;
    // qkv: (Tp, 3D) = [q | k | v], each (Tp, H, hd) with row stride 3D
    if ((st = llmc_layer_norm(a->x, L->ln1_w, L->ln1_b, a->h, T, D, c->norm_eps)) ||
        (st = pass_linear(p, a->h, &L->wqkv, L->bqkv, a->q, D, 3 * D)))
        return st;
    store_kv(p, l, a->q + D, a->q + 2 * D, 3 * D);
    // a: (Tp, D); x += a @ Wproj + b (through h, as the unbatched block adds a biased projection)
    if ((st = attend_all(p, l, a->q, 3 * D, a->a, D)) || (st = pass_linear(p, a->a, &L->wo, L->bo, a->h, D, D)))
        return st;
    add_inplace(a->x, a->h, T * D);
    if ((st = llmc_layer_norm(a->x, L->ln2_w, L->ln2_b, a->h, T, D, c->norm_eps)) ||
        (st = pass_linear(p, a->h, &L->w_fc, L->b_fc, a->f1, D, F)) || (st = llmc_gelu(a->f1, a->f1, T * F, 1)) ||
        (st = pass_linear(p, a->f1, &L->w_proj, L->b_proj, a->h, F, D)))
        return st;
    add_inplace(a->x, a->h, T * D);
    return LLMC_OK;
}

/* BERT (post-LN): x = LN(x + dense(attn(q(x), k(x), v(x))));  x = LN(x + out(gelu(intermediate(x)))) */
static llmc_status pass_bert(const pass *p, size_t l) {
    const llmc_model *m = p->b->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const acts *a = &p->a;
    const size_t D = c->d_model, F = c->d_ff, T = p->T;
    llmc_status st;
    if ((st = pass_linear(p, a->x, &L->wq, L->bq, a->q, D, D)) || (st = pass_linear(p, a->x, &L->wk, L->bk, a->k, D, D)) ||
        (st = pass_linear(p, a->x, &L->wv, L->bv, a->v, D, D)))
        return st;
    store_kv(p, l, a->k, a->v, D);
    if ((st = attend_all(p, l, a->q, D, a->a, D)) || (st = pass_linear(p, a->a, &L->wo, L->bo, a->h, D, D))) return st;
    add_inplace(a->h, a->x, T * D);
    if ((st = llmc_layer_norm(a->h, L->ln1_w, L->ln1_b, a->x, T, D, c->norm_eps)) ||
        (st = pass_linear(p, a->x, &L->w_fc, L->b_fc, a->f1, D, F)) ||
        (st = llmc_gelu(a->f1, a->f1, T * F, m->gelu_tanh)) ||
        (st = pass_linear(p, a->f1, &L->w_proj, L->b_proj, a->h, F, D)))
        return st;
    add_inplace(a->h, a->x, T * D);
    return llmc_layer_norm(a->h, L->ln2_w, L->ln2_b, a->x, T, D, c->norm_eps);
}

/* token (+ position, + type) embeddings of every segment's tokens at its session's positions -> x: (Tp, D);
 * RoPE angles of each row's position -> cs, sn: (Tp, hd/2) */
static llmc_status pass_embed(const pass *p) {
    const llmc_model *m = p->b->m;
    const llmc_model_config *c = &m->c;
    const acts *a = &p->a;
    const size_t D = c->d_model, half = c->head_dim / 2;
    for (size_t g = 0; g < p->nseg; g++) {
        const seg *sg = &p->sg[g];
        const size_t n = sg->s->n;
        float *x = a->x + sg->r0 * D;
        llmc_status st = model_embed_rows(&m->wte, c->vocab, D, sg->ids, sg->T, x);
        if (st) return st;
        if (m->wpe.data) /* position and token-type tables are always fp32 */
            for (size_t t = 0; t < sg->T; t++) add_inplace(x + t * D, (const float *)m->wpe.data + (n + t) * D, D);
        if (m->wtt.data)
            for (size_t t = 0; t < sg->T; t++) {
                int64_t ty = sg->types ? sg->types[t] : 0;
                if (ty < 0 || (uint64_t)ty >= c->type_vocab)
                    return llmc_fail(LLMC_ERR_INVALID, "sequence %zu: token type id %lld at index %zu is outside "
                                     "[0, %zu)", sg->i, (long long)ty, t, c->type_vocab);
                add_inplace(x + t * D, (const float *)m->wtt.data + (size_t)ty * D, D);
            }
        if (c->rope_theta > 0)
            for (size_t t = 0; t < sg->T; t++)
                for (size_t i = 0; i < half; i++) {
                    /* angle = position * inv_freq in float32, like transformers (and blocks.c) */
                    float ang = (float)(n + t) * m->inv_freq[i];
                    a->cs[(sg->r0 + t) * half + i] = cosf(ang);
                    a->sn[(sg->r0 + t) * half + i] = sinf(ang);
                }
    }
    if (m->wtt.data) return llmc_layer_norm(a->x, m->emb_ln_w, m->emb_ln_b, a->x, p->T, D, c->norm_eps);
    return LLMC_OK;
}

/* The outputs of a pass. all rows (all_logits or last): final norm of every row, each segment's rows to its output
 * rows. Else the next-token logits of the sessions whose last token is in the pass: those are consecutive sessions,
 * so their rows of logits (B, V) are consecutive too, and one product computes them. */
static llmc_status pass_outputs(pass *p, float *logits, int all_logits, float *last) {
    llmc_batch *b = p->b;
    const llmc_model *m = b->m;
    const size_t D = m->c.d_model, V = m->c.vocab;
    const acts *a = &p->a;
    llmc_status st;
    if (last || (logits && all_logits)) {
        if ((st = model_final_norm(m, a->x, a->h, p->T))) return st;
        for (size_t g = 0; g < p->nseg; g++)
            if (last) memcpy(last + p->sg[g].out_row * D, a->h + p->sg[g].r0 * D, p->sg[g].T * D * sizeof(float));
        if (!(logits && all_logits)) return LLMC_OK;
        // logits rows = h @ lm_head^T, one product per run of segments whose output rows follow each other
        for (size_t g = 0; g < p->nseg;) {
            size_t e = g + 1;
            while (e < p->nseg && p->sg[e].out_row == p->sg[e - 1].out_row + p->sg[e - 1].T) e++;
            if ((st = seg_matmul(p->sg + g, e - g, a->h + p->sg[g].r0 * D, &m->lm_head, logits + p->sg[g].out_row * V,
                                 D, V, 0.0f)))
                return st;
            g = e;
        }
        return LLMC_OK;
    }
    if (!logits) return LLMC_OK;
    size_t k = 0, first = 0;
    for (size_t g = 0; g < p->nseg; g++) {
        const seg *sg = &p->sg[g];
        if (!sg->ends) continue;
        if (!k) first = sg->i;
        // h row k = final_norm(x row of the session's last token)
        if ((st = model_final_norm(m, a->x + (sg->r0 + sg->T - 1) * D, a->h + k * D, 1))) return st;
        b->ends[k] = *sg;
        b->ends[k].r0 = k;
        b->ends[k].T = 1;
        k++;
    }
    return k ? seg_matmul(b->ends, k, a->h, &m->lm_head, logits + first * V, D, V, 0.0f) : LLMC_OK;
}

static llmc_status run_pass(pass *p, float *logits, int all_logits, float *last) {
    llmc_batch *b = p->b;
    const llmc_model_config *c = &b->m->c;
    llmc_status st = ensure_scratch(b, p->T);
    if (st) return st;
    session_carve(c, b->scratch, p->T, &p->a);
    if ((st = pass_embed(p))) return st;
    for (size_t l = 0; l < c->n_layers; l++) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* Ctrl-C: the caller rolls the sessions back */
        st = c->arch == LLMC_ARCH_GPT2 ? pass_gpt2(p, l) : c->arch == LLMC_ARCH_BERT ? pass_bert(p, l) : pass_llama(p, l);
        if (st) return st;
    }
    if ((st = pass_outputs(p, logits, all_logits, last))) return st;
    for (size_t g = 0; g < p->nseg; g++) { /* the pass's tokens are cached now */
        llmc_session *s = p->sg[g].s;
        memmove(s->tokens + s->n, p->sg[g].ids, p->sg[g].T * sizeof(int64_t));
        s->n += p->sg[g].T;
    }
    return LLMC_OK;
}

/* Append n[i] tokens (packed in ids / types) to session s[i], all checked, in passes; on error every session is
 * rolled back to its tokens before the call. out_rows: see llmc_batch_append. */
static llmc_status batch_run(llmc_batch *b, llmc_session *const *s, size_t B, const int64_t *ids, const int64_t *types,
                             const size_t *n, float *logits, int all_logits, float *last, const size_t *out_rows) {
    const llmc_model_config *c = &b->m->c;
    if (llmc_grow((void **)&b->n0, &b->n0_cap, B, sizeof(size_t), "batch state") ||
        llmc_grow((void **)&b->ends, &b->ends_cap, B, sizeof(seg), "batch segments"))
        return LLMC_ERR_NOMEM;
    for (size_t i = 0; i < B; i++) b->n0[i] = s[i]->n;
    llmc_status st = LLMC_OK;
    size_t i = 0, j = 0, g = 0; /* next token: index j of session i, packed row g */
    while (i < B && !st) {
        pass p = {b, {0}, NULL, 0, 0};
        size_t nseg = 0, T = 0;
        while (i < B && T < PASS_TOKENS) {
            size_t take = n[i] - j;
            if (c->causal) {
                if (take > PASS_TOKENS - T) take = PASS_TOKENS - T; /* the rest continues in the next pass */
            } else if (T > 0 && take > PASS_TOKENS - T) {
                break; /* a non-causal sequence is never split: it starts the next pass */
            }
            if (llmc_grow((void **)&b->segs, &b->segs_cap, nseg + 1, sizeof(seg), "batch segments")) {
                st = LLMC_ERR_NOMEM;
                break;
            }
            seg *sg = &b->segs[nseg++];
            sg->s = s[i];
            sg->i = i;
            sg->ids = ids + g;
            sg->types = types ? types + g : NULL;
            sg->r0 = T;
            sg->T = take;
            sg->out_row = (out_rows ? out_rows[i] : g - j) + j;
            sg->ends = j + take == n[i];
            sg->dec = n[i] <= SHORT_APPEND;
            T += take;
            g += take;
            j += take;
            if (j == n[i]) {
                i++;
                j = 0;
            }
        }
        if (st) break;
        p.sg = b->segs;
        p.nseg = nseg;
        p.T = T;
        st = run_pass(&p, logits, all_logits, last);
    }
    if (st)
        for (size_t k = 0; k < B; k++) s[k]->n = b->n0[k]; /* cache rows past n are unused: this undoes the call */
    return st;
}

/* ---------------------------------------------------------------- public entry points */
static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
    return x < y ? -1 : x > y;
}

llmc_status llmc_batch_append(llmc_batch *b, llmc_session *const *s, size_t B, const int64_t *ids, const size_t *n,
                              float *logits, int all_logits, const size_t *out_rows) {
    if (!b || (B && (!s || !ids || !n))) return llmc_fail(LLMC_ERR_INVALID, "batch append: NULL argument");
    if (B == 0) return LLMC_OK;
    const llmc_model *m = b->m;
    if (logits && !m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    size_t total = 0;
    for (size_t i = 0; i < B; i++) {
        if (!s[i]) return llmc_fail(LLMC_ERR_INVALID, "batch append: session %zu is NULL", i);
        if (s[i]->m != m) return llmc_fail(LLMC_ERR_INVALID, "batch append: session %zu belongs to another model", i);
        if (s[i]->n_hooks)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "batch append: session %zu has interventions attached; batched "
                             "appends run without hooks (append it on its own)", i);
        if (n[i] == 0) return llmc_fail(LLMC_ERR_INVALID, "batch append: session %zu gets no tokens (n[%zu] = 0)", i, i);
        if (!llmc_add_ok(total, n[i], &total)) return llmc_fail(LLMC_ERR_INVALID, "batch append: token count overflows");
    }
    /* distinct sessions: two rows of the batch must not write the same cache */
    llmc_session **sorted = llmc_malloc(B * sizeof *sorted, "batch session list");
    if (!sorted) return LLMC_ERR_NOMEM;
    memcpy(sorted, s, B * sizeof *sorted);
    qsort(sorted, B, sizeof *sorted, cmp_ptr);
    int dup = 0;
    for (size_t i = 1; i < B; i++) dup |= sorted[i] == sorted[i - 1];
    llmc_free(sorted);
    if (dup) return llmc_fail(LLMC_ERR_INVALID, "batch append: a session appears twice in the batch");
    /* every check first, so that a bad session leaves all of them untouched; then make room (overflow="slide") */
    llmc_status st;
    for (size_t i = 0, off = 0; i < B; off += n[i], i++)
        if ((st = session_check_append(s[i], ids + off, n[i]))) {
            char msg[900];
            snprintf(msg, sizeof msg, "%s", llmc_last_error());
            return llmc_fail(st, "session %zu of the batch: %s", i, msg);
        }
    for (size_t i = 0; i < B; i++)
        if ((st = session_make_room(s[i], n[i]))) return st;
    return batch_run(b, s, B, ids, NULL, n, logits, all_logits, NULL, out_rows);
}

/* Whole sequences [i0, i1) (packed from ids + off) in fresh sessions of their own length, in one batched call. */
static llmc_status run_group(llmc_batch *b, const int64_t *ids, const int64_t *types, const size_t *lengths, size_t i0,
                             size_t i1, int attn, float *logits, float *last, const size_t *out_rows) {
    const size_t G = i1 - i0;
    llmc_session **ss = llmc_calloc(G, sizeof *ss, "batch sessions");
    if (!ss) return LLMC_ERR_NOMEM;
    llmc_status st = LLMC_OK;
    for (size_t k = 0; k < G && !st; k++)
        if (!(st = session_alloc(b->m, lengths[i0 + k], &ss[k]))) ss[k]->attn = attn;
    if (!st) st = batch_run(b, ss, G, ids, types, lengths + i0, logits, 1, last, out_rows + i0);
    for (size_t k = 0; k < G; k++) llmc_session_free(ss[k]);
    llmc_free(ss);
    return st;
}

/* sequences i of N (numbered base + i in messages): lengths in [1, context], ids in the vocabulary */
static llmc_status check_seqs(const llmc_model *m, const int64_t *ids, const size_t *lengths, size_t N, size_t base) {
    for (size_t i = 0, off = 0; i < N; off += lengths[i], i++) {
        if (lengths[i] == 0) return llmc_fail(LLMC_ERR_INVALID, "sequence %zu is empty: need at least one token", base + i);
        if (lengths[i] > m->c.context_length)
            return llmc_fail(LLMC_ERR_INVALID, "sequence %zu has %zu tokens, more than the model's context length %zu",
                             base + i, lengths[i], m->c.context_length);
        for (size_t t = 0; t < lengths[i]; t++)
            if (ids[off + t] < 0 || (uint64_t)ids[off + t] >= m->c.vocab)
                return llmc_fail(LLMC_ERR_INVALID, "sequence %zu: token id %lld at index %zu is outside the "
                                 "vocabulary [0, %zu)", base + i, (long long)ids[off + t], t, m->c.vocab);
    }
    return LLMC_OK;
}

llmc_status llmc_model_forward_batch(const llmc_model *m, const int64_t *ids, const int64_t *type_ids,
                                     const size_t *lengths, size_t N, int attn, float *logits, float *last,
                                     const size_t *out_rows) {
    if (N == 0) return LLMC_OK;
    if (logits && !m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    if (attn != LLMC_ATTN_STANDARD && attn != LLMC_ATTN_FLASH)
        return llmc_fail(LLMC_ERR_INVALID, "unknown attention implementation %d", attn);
    llmc_status st = check_seqs(m, ids, lengths, N, 0);
    if (st) return st;
    size_t *rows = llmc_malloc(N * sizeof(size_t), "batch output rows");
    llmc_batch *b = NULL;
    if (!rows) return LLMC_ERR_NOMEM;
    for (size_t i = 0, r = 0; i < N; r += lengths[i], i++) rows[i] = out_rows ? out_rows[i] : r;
    if (!(st = llmc_batch_new(m, &b))) {
        size_t i0 = 0, off = 0;
        while (i0 < N && !st) {
            size_t i1 = i0, tok = 0;
            while (i1 < N && (i1 == i0 || tok + lengths[i1] <= GROUP_TOKENS)) tok += lengths[i1++];
            st = run_group(b, ids + off, type_ids ? type_ids + off : NULL, lengths, i0, i1, attn, logits, last, rows);
            off += tok;
            i0 = i1;
        }
    }
    llmc_batch_free(b);
    llmc_free(rows);
    return st;
}

/* ---------------------------------------------------------------- sentence embeddings */
/* Pool sequence rows h: (T, D) -> o: (D,), then L2-normalise when asked. */
static void pool(const float *h, size_t T, size_t D, int pooling, int normalize, float *o) {
    if (pooling == LLMC_POOL_CLS) memcpy(o, h, D * sizeof(float));
    else if (pooling == LLMC_POOL_LAST) memcpy(o, h + (T - 1) * D, D * sizeof(float));
    else
        for (size_t d = 0; d < D; d++) { /* mean over the sequence's tokens, accumulated in double */
            double acc = 0.0;
            for (size_t t = 0; t < T; t++) acc += h[t * D + d];
            o[d] = (float)(acc / (double)T);
        }
    if (normalize) {
        double ss = 0.0;
        for (size_t d = 0; d < D; d++) ss += (double)o[d] * o[d];
        float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12)); /* like torch.nn.functional.normalize: max(norm, 1e-12) */
        for (size_t d = 0; d < D; d++) o[d] *= inv;
    }
}

/* Padded (N, T_max) rows are packed group by group (at most GROUP_TOKENS tokens, or one longer sequence) and run as
 * one batch; each group's final hidden states are pooled before the next group runs. */
llmc_status llmc_model_embed(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, const size_t *lengths,
                             size_t N, size_t T_max, int pooling, int normalize, int attn, float *out) {
    const size_t D = m->c.d_model;
    if (pooling != LLMC_POOL_MEAN && pooling != LLMC_POOL_CLS && pooling != LLMC_POOL_LAST)
        return llmc_fail(LLMC_ERR_INVALID, "unknown pooling %d", pooling);
    if (attn != LLMC_ATTN_STANDARD && attn != LLMC_ATTN_FLASH)
        return llmc_fail(LLMC_ERR_INVALID, "unknown attention implementation %d", attn);
    for (size_t i = 0; i < N; i++)
        if (lengths[i] == 0 || lengths[i] > T_max)
            return llmc_fail(LLMC_ERR_INVALID, "sequence %zu has length %zu, outside [1, %zu]", i, lengths[i], T_max);
    size_t cap = GROUP_TOKENS > T_max ? GROUP_TOKENS : T_max, bytes;
    if (!llmc_size3(cap, D, 1, sizeof(float), &bytes)) return llmc_fail(LLMC_ERR_NOMEM, "embedding buffer overflows");
    float *last = llmc_malloc(bytes, "final hidden states");
    int64_t *pid = llmc_malloc(cap * sizeof(int64_t), "packed ids"), *pty = NULL;
    size_t *rows = llmc_malloc((N ? N : 1) * sizeof(size_t), "batch output rows");
    llmc_batch *b = NULL;
    llmc_status st = !last || !pid || !rows ? LLMC_ERR_NOMEM : LLMC_OK;
    if (!st && type_ids && !(pty = llmc_malloc(cap * sizeof(int64_t), "packed token types"))) st = LLMC_ERR_NOMEM;
    if (!st) st = llmc_batch_new(m, &b);
    for (size_t i0 = 0; i0 < N && !st;) {
        size_t i1 = i0, tok = 0;
        while (i1 < N && (i1 == i0 || tok + lengths[i1] <= GROUP_TOKENS)) {
            const int64_t *src = ids + i1 * T_max;
            memcpy(pid + tok, src, lengths[i1] * sizeof(int64_t));
            if (pty) memcpy(pty + tok, type_ids + i1 * T_max, lengths[i1] * sizeof(int64_t));
            rows[i1] = tok;
            tok += lengths[i1++];
        }
        if ((st = check_seqs(m, pid, lengths + i0, i1 - i0, i0))) break;
        if ((st = run_group(b, pid, pty, lengths, i0, i1, attn, NULL, last, rows))) break;
        for (size_t i = i0; i < i1; i++) pool(last + rows[i] * D, lengths[i], D, pooling, normalize, out + i * D);
        i0 = i1;
    }
    llmc_batch_free(b);
    llmc_free(rows);
    llmc_free(pty);
    llmc_free(pid);
    llmc_free(last);
    return st;
}
