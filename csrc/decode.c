/* decode.c: the forward pass of one token (decoding) on one team of threads, forked once per token.
 *
 * Decoding is memory-bound: every weight matrix is read once per token for one dot product per row, so the time
 * is the weight bytes over the memory bandwidth, if the threads keep streaming. The general forward (blocks.c)
 * forks a parallel region per operation: 8-11 per layer, each a fork and a join with sleeping or spinning workers.
 * Here the calling thread forks its team once; every thread walks the same steps (team.c), per layer:
 *
 *   qkv   rows of Wq, Wk, Wv (gpt2: Wqkv, + bias)   prep: x normed (and quantized) by each thread for itself
 *   rope  one chunk: q/k norms, clamp, RoPE; the new key and value into the cache
 *   attn  one task per head (standard) or per key/value head (flash), as llmc_attention cuts it
 *   o     rows of Wo, added into x                 prep: the attention output quantized
 *   up    rows of Wgate and Wup -> silu(gate) * up (gpt2: Wfc + bias -> gelu)   prep: x normed (and quantized)
 *   down  rows of Wdown (gpt2: Wproj + bias), added into x                       prep: the hidden row quantized
 *
 * and after the last layer one step of output rows (prep: the final norm). A step's chunks (about 64 KB of weights
 * each) are claimed dynamically, so a thread the OS preempts holds up at most the chunk it is in. "prep" runs on a
 * thread when it claims its first chunk of the step (its inputs cannot change before every chunk is done), into
 * memory of its own, so those normalisations cost no extra wait. Every chunk computes what the general forward
 * computes for its rows, with the same kernels (one dot product or one sgemv per row range; activations on whole
 * 8-lane vectors), so the logits are the general forward's, bit for bit, at any thread count.
 *
 * Eligible: one token, a decoder without MoE layers, no hooks, no attention weights asked for, every matrix F32 or
 * of a type with an integer dot kernel (see decode_eligible). Everything else takes the general forward. */
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#include "blas.h"
#include "model_internal.h"
#include "quant.h"
#include "simd.h"

#define STEPS_PER_LAYER 6
/* Weight bytes per chunk. A quantized chunk is a loop of dot products: claiming it (~0.1 us) is all the overhead,
 * and 64 KB streams in ~10 us. An F32 chunk is one OpenBLAS sgemv call, which costs ~3-5 us of setup: 256 KB
 * keeps that near 1%. Larger chunks leave a thread idler at the end of each step (half a chunk on average). */
#define CHUNK_BYTES (64 * 1024)
#define CHUNK_BYTES_F32 (256 * 1024)
#define BYTES_PER_THREAD (128 * 1024) /* fewer weight bytes per token than this per thread: fewer threads */
#define MAX_MATS 3

static size_t pad64(size_t n) { return (n + 63) / 64 * 64; }

/* ---------------------------------------------------------------- one matrix-vector product, cut in chunks */
typedef struct {
    const wmat *w;
    const float *b; /* bias (out,) or NULL */
    float *y;       /* (out,) where the rows go */
    float *tmp;     /* NULL: y = W x + b (or y += W x when add); else tmp = W x + b, then y += tmp (gpt2's residual) */
    size_t in, out, rows; /* rows per chunk */
    int add;        /* y += W x (beta 1) */
} mv;

static size_t mv_rows_per_chunk(const wmat *w, size_t in, size_t out, int nt) {
    size_t rows;
    if (w->in_out) {
        /* the outputs are columns of an (in, out) matrix: a chunk reads a slice of every row, which streams well
         * only when wide (128 columns: ~3x slower than whole rows), so one block of columns per thread, as
         * llmc_sgemv splits it */
        rows = (out + (size_t)nt - 1) / (size_t)nt;
        if ((double)in * (double)out < 1e5 || out < 64) rows = out; /* llmc_sgemv keeps these whole: same bits */
    } else {
        size_t rb = 0;
        (void)llmc_type_row_bytes(w->type, in, &rb);
        rows = rb ? (w->type == LLMC_TYPE_F32 ? CHUNK_BYTES_F32 : CHUNK_BYTES) / rb : 16;
    }
    return rows < 16 ? 16 : (rows + 15) / 16 * 16; /* whole 16-row panels: sgemv's blocks land where they always do */
}

static mv mv_make(const wmat *w, const float *b, float *y, float *tmp, size_t in, size_t out, int add, int nt) {
    mv m = {w, b, y, tmp, in, out, mv_rows_per_chunk(w, in, out, nt), add};
    return m;
}

static size_t mv_chunks(const mv *m) { return (m->out + m->rows - 1) / m->rows; }

/* rows [lo, hi) of m; x: the fp32 input, xq: it in the weight's dot format */
static void mv_run(const mv *m, const float *x, const void *xq, size_t lo, size_t hi) {
    if (hi > m->out) hi = m->out;
    float *dst = m->tmp ? m->tmp : m->y;
    float beta = m->add && !m->tmp ? 1.0f : 0.0f;
    if (m->b) { /* as blocks.c's linear: the bias first, then beta = 1 adds the product onto it */
        memcpy(dst + lo, m->b + lo, (hi - lo) * sizeof(float));
        beta = 1.0f;
    }
    if (lo == 0 && m->w->type == LLMC_TYPE_F32) llmc_flops_note(m->out, m->in, 1); /* as llmc_sgemv counts */
    if (m->w->in_out) /* y (out,) = W^T x, W: (in, out) */
        llmc_sgemv_rows(1, m->in, m->out, 1.0f, m->w->data, m->out, x, beta, dst, lo, hi);
    else
        llmc_matvec_rows(m->w->type, m->w->data, x, xq, dst, m->in, m->out, lo, hi, beta);
    if (m->tmp) /* the sublayer output onto the residual stream, as blocks.c's project_add */
        for (size_t i = lo; i < hi; i++) m->y[i] += m->tmp[i];
}

/* ---------------------------------------------------------------- the token's shared state */
typedef struct {
    llmc_session *s;
    acts a;                     /* the session's activations for one token */
    float *logits;              /* (V,) or NULL */
    llmc_team team;
    llmc_attention_tasks *attn; /* per layer: the attention tasks (they differ only in the cache pointers) */
    char *ws;                   /* per-thread workspaces, ws_bytes each */
    int nt;                     /* threads asked for (the team may be smaller) */
    size_t ws_bytes, xq_bytes;  /* xq_bytes: one quantized activation row */
} token;

/* a thread's own memory: h (D,) the normed row, xq[MAX_MATS] quantized inputs, the attention scratch */
typedef struct {
    float *h;
    void *xq[MAX_MATS];
    float *att;
} own;

static own own_of(const token *t, int me) {
    char *p = t->ws + (size_t)me * t->ws_bytes;
    own o;
    o.h = (float *)p;
    p += pad64(t->s->m->c.d_model * sizeof(float));
    for (int i = 0; i < MAX_MATS; i++, p += t->xq_bytes) o.xq[i] = p;
    o.att = (float *)p;
    return o;
}

/* x into each matrix's dot format, once per distinct format; xq[i] is matrix i's */
static void prepare(const mv *m, int n, const float *x, own *o, const void **xq) {
    for (int i = 0; i < n; i++) {
        int j = 0;
        const int vt = llmc_type_traits_of(m[i].w->type)->vec_dot_type;
        while (j < i && llmc_type_traits_of(m[j].w->type)->vec_dot_type != vt) j++;
        if (j == i) llmc_matvec_prepare(m[i].w->type, x, o->xq[i], m[i].in);
        xq[i] = o->xq[j];
    }
}

/* The normed input of a sublayer: LayerNorm (gpt2) or RMSNorm */
static void norm_row(const llmc_model *m, const float *x, const float *w, const float *b, float *out) {
    const llmc_model_config *c = &m->c;
    if (c->arch == LLMC_ARCH_GPT2) llmc_layer_norm_row(x, w, b, out, c->d_model, c->norm_eps);
    else llmc_rms_norm_row(x, w, out, c->d_model, c->norm_eps);
}

/* A step of up to MAX_MATS products of one input: input = norm(x) when nw is set, else x itself. The chunks of the
 * products follow one another; with `fused` the matrices share their chunks' row ranges and act() runs on them. */
typedef void (*act_fn)(const token *t, size_t lo, size_t hi);

static void step_products(token *t, own *o, size_t *step, const mv *m, int n, const float *x, const float *nw,
                          const float *nb, int fused, act_fn act, int wait) {
    size_t n_chunks = 0, first[MAX_MATS + 1];
    for (int i = 0; i < n; i++) {
        first[i] = n_chunks;
        n_chunks += fused ? (i == 0 ? mv_chunks(&m[0]) : 0) : mv_chunks(&m[i]);
    }
    first[n] = n_chunks;
    const void *xq[MAX_MATS];
    const float *in = x;
    int ready = 0;
    for (size_t c; (c = llmc_team_claim(&t->team, *step, (uint32_t)n_chunks)) < n_chunks;
         llmc_team_done(&t->team, *step, (uint32_t)n_chunks)) {
        if (!ready) { /* the step's input is fixed until all its chunks are done: prepare it once, privately */
            if (nw) {
                norm_row(t->s->m, x, nw, nb, o->h);
                in = o->h;
            }
            prepare(m, n, in, o, xq);
            ready = 1;
        }
        if (fused) {
            const size_t lo = c * m[0].rows, hi = lo + m[0].rows;
            for (int i = 0; i < n; i++) mv_run(&m[i], in, xq[i], lo, hi);
            if (act) act(t, lo, hi < m[0].out ? hi : m[0].out);
            continue;
        }
        int i = 0;
        while (c >= first[i + 1]) i++;
        const size_t lo = (c - first[i]) * m[i].rows;
        mv_run(&m[i], in, xq[i], lo, lo + m[i].rows);
    }
    if (wait) llmc_team_wait(&t->team, *step, (uint32_t)n_chunks);
    ++*step;
}

/* f1 = silu(f1) * f2 on rows [lo, hi) (multiples of 16 but the last: the same 8-lane vectors as llmc_silu) */
static void act_swiglu(const token *t, size_t lo, size_t hi) {
    float *f1 = t->a.f1, *f2 = t->a.f2;
    llmc_k->silu(f1 + lo, f1 + lo, hi - lo);
    for (size_t i = lo; i < hi; i++) f1[i] *= f2[i];
}

static void act_gelu(const token *t, size_t lo, size_t hi) { llmc_k->gelu_tanh(t->a.f1 + lo, t->a.f1 + lo, hi - lo); }

static void clamp(float *x, size_t n, float lim) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < -lim ? -lim : x[i] > lim ? lim : x[i];
}

/* the rope step of a llama-family layer: q (H, hd), k, v (Hk, hd) -> q roped in place, k and v into the cache */
static void rope_and_cache(const token *t, size_t l) {
    const llmc_session *s = t->s;
    const llmc_model_config *c = &s->m->c;
    const layer_weights *L = &s->m->L[l];
    const size_t H = c->n_heads, Hk = c->n_kv_heads, hd = c->head_dim;
    const acts *a = &t->a;
    if (L->q_norm && c->qk_norm_full) { /* olmoe: RMSNorm over the whole projection */
        llmc_rms_norm_row(a->q, L->q_norm, a->q, H * hd, c->norm_eps);
        llmc_rms_norm_row(a->k, L->k_norm, a->k, Hk * hd, c->norm_eps);
    } else if (L->q_norm) { /* qwen3: RMSNorm over each head vector */
        for (size_t h = 0; h < H; h++) llmc_rms_norm_row(a->q + h * hd, L->q_norm, a->q + h * hd, hd, c->norm_eps);
        for (size_t h = 0; h < Hk; h++) llmc_rms_norm_row(a->k + h * hd, L->k_norm, a->k + h * hd, hd, c->norm_eps);
    }
    if (c->clip_qkv > 0) {
        clamp(a->q, H * hd, c->clip_qkv);
        clamp(a->k, Hk * hd, c->clip_qkv);
        clamp(a->v, Hk * hd, c->clip_qkv);
    }
    model_rope_rows(a->q, 1, H, hd, a->cs, a->sn);
    model_rope_rows(a->k, 1, Hk, hd, a->cs, a->sn);
    // cache rows n of every key/value head: (Hk, cap, hd)
    for (size_t h = 0; h < Hk; h++) {
        memcpy(cache_k(s, l) + (h * s->cap + s->n) * hd, a->k + h * hd, hd * sizeof(float));
        memcpy(cache_v(s, l) + (h * s->cap + s->n) * hd, a->v + h * hd, hd * sizeof(float));
    }
}

/* gpt2: qkv (3D,) = [q | k | v]; k and v into the cache (q is read in place: (H, hd) packed) */
static void split_and_cache(const token *t, size_t l) {
    const llmc_session *s = t->s;
    const llmc_model_config *c = &s->m->c;
    const size_t D = c->d_model, H = c->n_heads, hd = c->head_dim;
    for (size_t h = 0; h < H; h++) {
        memcpy(cache_k(s, l) + (h * s->cap + s->n) * hd, t->a.q + D + h * hd, hd * sizeof(float));
        memcpy(cache_v(s, l) + (h * s->cap + s->n) * hd, t->a.q + 2 * D + h * hd, hd * sizeof(float));
    }
}

/* one chunk, run by whichever thread claims it */
static void step_single(token *t, size_t *step, size_t l, void (*fn)(const token *, size_t)) {
    if (llmc_team_claim(&t->team, *step, 1) == 0) {
        fn(t, l);
        llmc_team_done(&t->team, *step, 1);
    }
    llmc_team_wait(&t->team, *step, 1);
    ++*step;
}

static void step_attention(token *t, own *o, size_t *step, size_t l) {
    const llmc_attention_tasks *p = &t->attn[l];
    const uint32_t n = (uint32_t)p->n_tasks;
    for (uint32_t c; (c = llmc_team_claim(&t->team, *step, n)) < n; llmc_team_done(&t->team, *step, n))
        llmc_attention_run_task(p, c, o->att);
    llmc_team_wait(&t->team, *step, n);
    ++*step;
}

/* ---------------------------------------------------------------- the layers and the output */
static void layer(token *t, own *o, size_t *step, size_t l) {
    const llmc_model *m = t->s->m;
    const llmc_model_config *c = &m->c;
    const layer_weights *L = &m->L[l];
    const acts *a = &t->a;
    const size_t D = c->d_model, H = c->n_heads, Hk = c->n_kv_heads, hd = c->head_dim, F = c->d_ff;
    if (c->arch == LLMC_ARCH_GPT2) {
        mv qkv = mv_make(&L->wqkv, L->bqkv, a->q, NULL, D, 3 * D, 0, t->nt);
        step_products(t, o, step, &qkv, 1, a->x, L->ln1_w, L->ln1_b, 0, NULL, 1);
        step_single(t, step, l, split_and_cache);
        step_attention(t, o, step, l);
        mv wo = mv_make(&L->wo, L->bo, a->x, L->bo ? a->h : NULL, D, D, 1, t->nt);
        step_products(t, o, step, &wo, 1, a->a, NULL, NULL, 0, NULL, 1);
        mv fc = mv_make(&L->w_fc, L->b_fc, a->f1, NULL, D, F, 0, t->nt);
        step_products(t, o, step, &fc, 1, a->x, L->ln2_w, L->ln2_b, 1, act_gelu, 1);
        mv proj = mv_make(&L->w_proj, L->b_proj, a->x, L->b_proj ? a->h : NULL, F, D, 1, t->nt);
        step_products(t, o, step, &proj, 1, a->f1, NULL, NULL, 0, NULL, 1);
        return;
    }
    mv qkv[3] = {mv_make(&L->wq, L->bq, a->q, NULL, D, H * hd, 0, t->nt),
                 mv_make(&L->wk, L->bk, a->k, NULL, D, Hk * hd, 0, t->nt),
                 mv_make(&L->wv, L->bv, a->v, NULL, D, Hk * hd, 0, t->nt)};
    step_products(t, o, step, qkv, 3, a->x, L->ln1_w, NULL, 0, NULL, 1);
    step_single(t, step, l, rope_and_cache);
    step_attention(t, o, step, l);
    mv wo = mv_make(&L->wo, NULL, a->x, NULL, H * hd, D, 1, t->nt); /* no bias: as blocks.c's llama block */
    step_products(t, o, step, &wo, 1, a->a, NULL, NULL, 0, NULL, 1);
    mv gu[2] = {mv_make(&L->w_gate, NULL, a->f1, NULL, D, F, 0, t->nt),
                mv_make(&L->w_up, NULL, a->f2, NULL, D, F, 0, t->nt)};
    if (gu[1].rows > gu[0].rows) gu[0].rows = gu[1].rows; /* fused: one row range for both */
    gu[1].rows = gu[0].rows;
    step_products(t, o, step, gu, 2, a->x, L->ln2_w, NULL, 1, act_swiglu, 1);
    mv down = mv_make(&L->w_down, NULL, a->x, NULL, F, D, 1, t->nt);
    step_products(t, o, step, &down, 1, a->f1, NULL, NULL, 0, NULL, 1);
}

static void run_token(token *t, int me) {
    const llmc_model *m = t->s->m;
    const llmc_model_config *c = &m->c;
    own o = own_of(t, me);
    size_t step = 0;
    for (size_t l = 0; l < c->n_layers; l++) {
        /* Ctrl-C: polled on the calling thread (thread 0), seen by all between layers (interrupt.c) */
        if (me == 0 && llmc_interrupted()) atomic_store(&t->team.stop, 1);
        if (atomic_load(&t->team.stop)) return;
        layer(t, &o, &step, l);
    }
    if (t->logits) {
        mv head = mv_make(&m->lm_head, NULL, t->logits, NULL, c->d_model, c->vocab, 0, t->nt);
        /* only the calling thread waits for the last step: a worker with nothing left to claim leaves the region
         * at once, so the join never waits for a worker that slept and has not been woken yet */
        step_products(t, &o, &step, &head, 1, t->a.x, m->norm_w, m->norm_b, 0, NULL, me == 0);
    }
}

/* ---------------------------------------------------------------- entry */
int decode_eligible(const llmc_session *s) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    if (s->n_hooks || s->moe_rec || !c->causal || c->arch == LLMC_ARCH_BERT) return 0;
    if (m->lm_head.data && !m->lm_head.in_out && !llmc_matvec_supported(m->lm_head.type)) return 0;
    for (size_t l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->L[l];
        if (L->moe) return 0;
        const wmat *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wqkv, &L->w_gate, &L->w_up, &L->w_down, &L->w_fc,
                           &L->w_proj};
        for (size_t i = 0; i < sizeof w / sizeof *w; i++)
            if (w[i]->data && !w[i]->in_out && !llmc_matvec_supported(w[i]->type)) return 0;
    }
    return 1;
}

/* bytes of the weights one token reads (every matrix once) */
static size_t token_bytes(const llmc_model *m) {
    const llmc_model_config *c = &m->c;
    size_t total = 0, rb;
    const size_t D = c->d_model, qd = c->n_heads * c->head_dim, kd = c->n_kv_heads * c->head_dim, F = c->d_ff;
#define ADD(w, in, out) \
    if ((w).data && !llmc_type_row_bytes((w).type, (in), &rb)) total += rb * (out)
    for (size_t l = 0; l < c->n_layers; l++) {
        const layer_weights *L = &m->L[l];
        ADD(L->wq, D, qd); ADD(L->wk, D, kd); ADD(L->wv, D, kd); ADD(L->wo, qd, D); ADD(L->wqkv, D, 3 * D);
        ADD(L->w_gate, D, F); ADD(L->w_up, D, F); ADD(L->w_down, F, D); ADD(L->w_fc, D, F); ADD(L->w_proj, F, D);
    }
    ADD(m->lm_head, D, c->vocab);
#undef ADD
    return total;
}

/* The layers and the output of the one token whose embedding is in a->x (rope tables in a->cs / a->sn) at position
 * s->n; logits (V,) or NULL. The session's tokens and n are the caller's to advance. */
llmc_status decode_token(llmc_session *s, const acts *a, float *logits) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t L = c->n_layers, D = c->d_model, qd = c->n_heads * c->head_dim, F = c->d_ff;
    llmc_status st;
    /* threads: all of llmc's, unless the token's weights are too few to give each thread a useful share */
    int nt = llmc_threads();
    const size_t bytes = token_bytes(m);
    if (omp_in_parallel()) nt = 1;
    if ((size_t)nt > 1 + bytes / BYTES_PER_THREAD) nt = (int)(1 + bytes / BYTES_PER_THREAD);

    /* the attention of every layer, checked before any thread starts (a task cannot fail) */
    llmc_attention_tasks plan_cap;
    llmc_attention_args aa;
    memset(&aa, 0, sizeof aa);
    aa.q = a->q;
    aa.out = a->a;
    aa.B = 1;
    aa.Hq = c->n_heads;
    aa.Hkv = c->n_kv_heads;
    aa.Tq = 1;
    aa.d = c->head_dim;
    aa.k_sh = aa.v_sh = s->cap * c->head_dim; /* the cache rows of one head are cap apart */
    aa.impl = s->attn;
    aa.causal = c->causal;
    aa.window = c->sliding_window;
    aa.scale = 1.0f / sqrtf((float)c->head_dim);
    aa.k = aa.v = s->kv;
    aa.Tk = s->cap; /* the scratch a task needs at the longest cache (the standard one grows with Tk) */
    if ((st = llmc_attention_plan(&aa, &plan_cap))) return st;

    /* workspace: the attention plans, the steps' counters, then each thread's own memory. A quantized row needs at
     * most 4 bytes a value (Q8_K: 1.14), so an fp32 row's size holds any input in any dot format. */
    size_t xq_bytes = D > qd ? D : qd;
    xq_bytes = pad64((F > xq_bytes ? F : xq_bytes) * sizeof(float));
    const size_t own_bytes =
        pad64(D * sizeof(float)) + MAX_MATS * xq_bytes + pad64(plan_cap.scratch_floats * sizeof(float));
    const size_t n_steps = L * STEPS_PER_LAYER + 1;
    const size_t head = pad64(L * sizeof(llmc_attention_tasks)) + n_steps * sizeof(llmc_team_step);
    size_t need;
    if (!llmc_mul_ok(own_bytes, (size_t)nt, &need) || !llmc_add_ok(need, head, &need))
        return llmc_fail(LLMC_ERR_NOMEM, "decode workspace for %d threads overflows", nt);
    if (need > s->team_bytes) {
        void *p = llmc_malloc(need, "decode workspace");
        if (!p) return LLMC_ERR_NOMEM;
        llmc_free(s->team_ws);
        s->team_ws = p;
        s->team_bytes = need;
    }
    token t;
    memset(&t, 0, sizeof t);
    t.s = s;
    t.a = *a;
    t.logits = logits;
    t.nt = nt;
    t.attn = (llmc_attention_tasks *)s->team_ws;
    llmc_team_step *steps = (llmc_team_step *)((char *)s->team_ws + pad64(L * sizeof(llmc_attention_tasks)));
    t.ws = (char *)steps + n_steps * sizeof(llmc_team_step);
    t.ws_bytes = own_bytes;
    t.xq_bytes = xq_bytes;
    aa.Tk = s->n + 1;
    for (size_t l = 0; l < L; l++) {
        aa.k = cache_k(s, l);
        aa.v = cache_v(s, l);
        if ((st = llmc_attention_plan(&aa, &t.attn[l]))) return st;
    }
    llmc_team_init(&t.team, steps, n_steps);

    if (nt > 1) {
#pragma omp parallel num_threads(nt)
        run_token(&t, omp_get_thread_num());
    } else {
        run_token(&t, 0);
    }
    return atomic_load(&t.team.stop) ? LLMC_ERR_INTERRUPTED : LLMC_OK;
}
