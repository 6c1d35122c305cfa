/* moe.c: the sparse mixture-of-experts feed-forward (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE).
 *
 *   logits = h @ router^T                         (T, E)
 *   p      = softmax(logits)                      (T, E), in float32 as transformers
 *   top-k of p per token -> experts (T, k), w (T, k), by descending probability; ties: the lowest expert index
 *   w     /= sum(w) over the k                    when norm_topk_prob (Mixtral: always)
 *   out[t] = sum_j w[t, j] * FFN_{experts[t, j]}(h[t])        FFN_e(x) = down_e(silu(gate_e(x)) * up_e(x))
 *   out[t] += sigmoid(h[t] . sh_router) * FFN_shared(h[t])     (qwen2_moe's shared expert)
 *
 * Compute is proportional to the active experts: the T*k (token, expert) assignments are sorted by expert (a
 * counting sort, stable in token order), and each expert with tokens runs three matrix products over exactly its
 * tokens' rows, gathered into one block (llmc_matmul_typed: any weight type, BLAS or the quantized kernels, threaded
 * inside). Decoding one token therefore reads the weights of its k experts only; experts nobody chose are never
 * touched. */
#include <math.h>
#include <string.h>

#include "latent.h"
#include "model_internal.h"

/* ---------------------------------------------------------------- routing */
/* logits: (T, E) -> experts: (T, k) int32, w: (T, k). Softmax as torch computes it in float32 (max, exp(x - max),
 * times 1 / sum); the top k are picked on the probabilities, as torch.topk does, so two logits that round to the
 * same probability tie, and ties go to the lower expert index. */
static void route(const float *logits, size_t T, size_t E, size_t k, int normalize, float *prob, int32_t *experts,
                  float *w) {
    for (size_t t = 0; t < T; t++) {
        const float *z = logits + t * E;
        float mx = z[0], sum = 0.0f;
        for (size_t e = 1; e < E; e++) mx = z[e] > mx ? z[e] : mx;
        for (size_t e = 0; e < E; e++) sum += prob[e] = expf(z[e] - mx);
        const float inv = 1.0f / sum;
        for (size_t e = 0; e < E; e++) prob[e] *= inv;
        int32_t *ix = experts + t * k;
        float *wt = w + t * k, tot = 0.0f;
        for (size_t j = 0; j < k; j++) {
            /* the j-th largest: strictly greater wins, so the first (lowest) index of equal values is kept; chosen
             * experts are marked with -1 (probabilities are >= 0) */
            size_t best = E;
            for (size_t e = 0; e < E; e++)
                if (prob[e] >= 0.0f && (best == E || prob[e] > prob[best])) best = e;
            ix[j] = (int32_t)best;
            wt[j] = prob[best];
            tot += prob[best];
            prob[best] = -1.0f;
        }
        if (normalize)
            for (size_t j = 0; j < k; j++) wt[j] /= tot;
    }
}

/* ---------------------------------------------------------------- scratch */
/* Buffers of one MoE call over T tokens, carved from one allocation. */
typedef struct {
    float *logits;    // (T, E) router logits
    float *prob;      // (E,) one token's probabilities while routing
    float *w;         // (T, k) routing weights
    int32_t *experts; // (T, k) chosen experts
    int32_t *order;   // (T*k) assignment ids t*k + j, grouped by expert
    size_t *start;    // (E + 1) expert e's assignments are order[start[e] .. start[e+1])
    float *xe;        // (T, D) the rows of one expert's tokens
    float *g, *u;     // (T, Fmax) gate and up projections
    float *ye;        // (T, D) one expert's output rows
    float *sg;        // (T,) shared-expert gate logits
} moe_buf;

/* Lay moe_buf out from base (64-byte aligned pieces); returns the bytes needed, 0 on overflow. base NULL: measure. */
static size_t moe_carve(char *base, size_t T, size_t D, size_t E, size_t k, size_t F, moe_buf *b) {
    size_t off = 0, n;
    int ok = 1;
#define PIECE(field, count, type)                                                                                    \
    do {                                                                                                             \
        b->field = base ? (type *)(void *)(base + off) : NULL;                                                       \
        ok = ok && llmc_mul_ok((count), sizeof(type), &n) && llmc_add_ok(n, 63, &n) &&                               \
             llmc_add_ok(off, n / 64 * 64, &off);                                                                    \
    } while (0)
    size_t Tk = 0, TD = 0, TE = 0, TF = 0;
    ok = llmc_mul_ok(T, k, &Tk) && llmc_mul_ok(T, D, &TD) && llmc_mul_ok(T, E, &TE) && llmc_mul_ok(T, F, &TF);
    PIECE(logits, TE, float);
    PIECE(prob, E, float);
    PIECE(w, Tk, float);
    PIECE(experts, Tk, int32_t);
    PIECE(order, Tk, int32_t);
    PIECE(start, E + 1, size_t);
    PIECE(xe, TD, float);
    PIECE(g, TF, float);
    PIECE(u, TF, float);
    PIECE(ye, TD, float);
    PIECE(sg, T, float);
#undef PIECE
    return ok ? off : 0;
}

/* The shape of one MoE layer. */
typedef struct {
    const moe_weights *w;
    size_t D, E, k, Fe, Fs; /* Fs = 0: no shared expert */
    int normalize;
} moe_shape;

static size_t fmax_of(const moe_shape *p) { return p->Fe > p->Fs ? p->Fe : p->Fs; }

/* y (n, D) = FFN(x (n, D)) = down(silu(gate(x)) * up(x)); g, u: (n, F) scratch */
static llmc_status swiglu_ffn(const wmat *gate, const wmat *up, const wmat *down, const float *x, size_t n, size_t D,
                              size_t F, float *g, float *u, float *y) {
    llmc_status st;
    if ((st = llmc_matmul_typed(gate->type, gate->data, x, g, n, D, F, 0.0f)) ||
        (st = llmc_matmul_typed(up->type, up->data, x, u, n, D, F, 0.0f)) || (st = llmc_silu(g, g, n * F)))
        return st;
    for (size_t i = 0; i < n * F; i++) g[i] *= u[i];
    return llmc_matmul_typed(down->type, down->data, g, y, n, F, D, 0.0f);
}

/* logits (T, E) = h @ router^T into b->logits */
static llmc_status router_logits(const moe_shape *p, const float *h, size_t T, moe_buf *b) {
    return llmc_matmul_typed(p->w->router.type, p->w->router.data, h, b->logits, T, p->D, p->E, 0.0f);
}

/* out (T, D) = moe(h (T, D)) from the router logits in b->logits; b: buffers carved for T tokens; leaves the
 * routing in b->experts / b->w. */
static llmc_status moe_apply(const moe_shape *p, const float *h, size_t T, moe_buf *b, float *out) {
    const moe_weights *W = p->w;
    const size_t D = p->D, E = p->E, k = p->k, Fe = p->Fe;
    llmc_status st;
    route(b->logits, T, E, k, p->normalize, b->prob, b->experts, b->w);
    // counting sort of the T*k assignments by expert: start[e] = first slot of expert e
    memset(b->start, 0, (E + 1) * sizeof(size_t));
    for (size_t i = 0; i < T * k; i++) b->start[b->experts[i] + 1]++;
    for (size_t e = 0; e < E; e++) b->start[e + 1] += b->start[e];
    for (size_t i = 0; i < T * k; i++) b->order[b->start[b->experts[i]]++] = (int32_t)i; /* start[e] -> end of e */
    for (size_t e = E; e > 0; e--) b->start[e] = b->start[e - 1];                        /* shift back */
    b->start[0] = 0;
    memset(out, 0, T * D * sizeof(float));
    for (size_t e = 0; e < E; e++) {
        const size_t s0 = b->start[e], n = b->start[e + 1] - s0;
        if (n == 0) continue; /* an expert no token chose: its weights are not read */
        // xe (n, D): the rows of expert e's tokens
        for (size_t i = 0; i < n; i++) memcpy(b->xe + i * D, h + (size_t)(b->order[s0 + i] / (int32_t)k) * D, D * sizeof(float));
        if ((st = swiglu_ffn(&W->gate[e], &W->up[e], &W->down[e], b->xe, n, D, Fe, b->g, b->u, b->ye))) return st;
        // out[t] += w[t, j] * ye[i]  for assignment i = t*k + j
        for (size_t i = 0; i < n; i++) {
            const size_t a = (size_t)b->order[s0 + i], t = a / k;
            const float wt = b->w[a];
            float *o = out + t * D;
            const float *y = b->ye + i * D;
            for (size_t d = 0; d < D; d++) o[d] += wt * y[d];
        }
    }
    if (p->Fs) {
        // shared expert over every token: out += sigmoid(h @ sh_router^T) * FFN_shared(h), in blocks of T rows
        if ((st = llmc_matmul_typed(W->sh_router.type, W->sh_router.data, h, b->sg, T, D, 1, 0.0f)) ||
            (st = swiglu_ffn(&W->sh_gate, &W->sh_up, &W->sh_down, h, T, D, p->Fs, b->g, b->u, b->ye)))
            return st;
        for (size_t t = 0; t < T; t++) {
            const float gate = 1.0f / (1.0f + expf(-b->sg[t]));
            for (size_t d = 0; d < D; d++) out[t * D + d] += gate * b->ye[t * D + d];
        }
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- in the model */
/* the index of layer l among the model's MoE layers */
static size_t moe_index(const llmc_model_config *c, size_t l) {
    size_t i = 0;
    for (size_t j = 0; j < l; j++) i += (size_t)llmc_layer_is_moe(c, j);
    return i;
}

static moe_shape layer_shape(const llmc_model *m, size_t l) {
    const llmc_model_config *c = &m->c;
    moe_shape p = {m->L[l].moe, c->d_model, c->n_experts, c->n_experts_used, c->moe_d_ff, c->shared_d_ff,
                   c->norm_topk_prob};
    return p;
}

/* Grow the session's MoE buffers to T tokens: moe_buf, then the block output (T, D). */
static llmc_status moe_ensure_scratch(llmc_session *s, size_t T) {
    if (T <= s->moe_T) return LLMC_OK;
    const llmc_model_config *c = &s->m->c;
    moe_buf probe;
    const size_t F = c->moe_d_ff > c->shared_d_ff ? c->moe_d_ff : c->shared_d_ff;
    size_t bytes = moe_carve(NULL, T, c->d_model, c->n_experts, c->n_experts_used, F, &probe), extra;
    if (!bytes || !llmc_size3(T, c->d_model, 1, sizeof(float), &extra) || !llmc_add_ok(bytes, extra, &bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "mixture-of-experts buffers for %zu tokens overflow", T);
    void *buf = llmc_malloc(bytes, "mixture-of-experts buffers");
    if (!buf) return LLMC_ERR_NOMEM;
    llmc_free(s->moe_scratch);
    s->moe_scratch = buf;
    s->moe_T = T;
    return LLMC_OK;
}

llmc_status moe_block_forward(llmc_session *s, size_t l, const float *h, float *x, size_t T) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model;
    llmc_status st = moe_ensure_scratch(s, T);
    if (st) return st;
    moe_shape p = layer_shape(m, l);
    moe_buf b;
    const size_t used = moe_carve(s->moe_scratch, T, D, c->n_experts, c->n_experts_used, fmax_of(&p), &b);
    float *out = (float *)(void *)((char *)s->moe_scratch + used); // out: (T, D) the block's output
    // the router logits hook point: what a hook leaves here is what the routing sees
    if ((st = router_logits(&p, h, T, &b)) || (st = latent_fire(s, LLMC_ACT_MOE_ROUTER, l, b.logits, T, T)) ||
        (st = moe_apply(&p, h, T, &b, out)))
        return st;
    if (s->moe_rec) { /* routing report: rows at the tokens' absolute positions */
        const struct moe_record *r = s->moe_rec;
        const size_t li = moe_index(c, l), E = c->n_experts, k = c->n_experts_used;
        for (size_t t = 0; t < T && s->n + t < r->T; t++) {
            const size_t row = li * r->T + s->n + t;
            if (r->logits) memcpy(r->logits + row * E, b.logits + t * E, E * sizeof(float));
            if (r->experts) memcpy(r->experts + row * k, b.experts + t * k, k * sizeof(int32_t));
            if (r->weights) memcpy(r->weights + row * k, b.w + t * k, k * sizeof(float));
        }
    }
    if ((st = latent_fire(s, LLMC_ACT_MLP_OUT, l, out, T, T))) return st;
    for (size_t i = 0; i < T * D; i++) x[i] += out[i];
    return LLMC_OK;
}

/* ---------------------------------------------------------------- tensors */
llmc_status moe_build_spec(llmc_model *m, const char *pre, size_t l) {
    const llmc_model_config *c = &m->c;
    const size_t D = c->d_model, E = c->n_experts, Fe = c->moe_d_ff, Fs = c->shared_d_ff;
    moe_weights *W = llmc_calloc(1, sizeof *W, "expert table");
    if (!W) return LLMC_ERR_NOMEM;
    m->L[l].moe = W; /* freed by moe_free from here on */
    if (!(W->gate = llmc_calloc(3 * E, sizeof(wmat), "expert table"))) return LLMC_ERR_NOMEM;
    W->up = W->gate + E;
    W->down = W->gate + 2 * E;
    const int mixtral = c->arch == LLMC_ARCH_MIXTRAL, il = (int)l;
    /* Mixtral's checkpoints name the block block_sparse_moe and the expert matrices w1 (gate), w3 (up), w2 (down) */
    const char *blk = mixtral ? "block_sparse_moe" : "mlp";
    const char *gn = mixtral ? "w1" : "gate_proj", *un = mixtral ? "w3" : "up_proj", *dn = mixtral ? "w2" : "down_proj";
    llmc_status st;
#define ADD(slot, role, d0, d1, ...)                                                                                 \
    if ((st = model_add_tensor(m, NULL, slot, role, il, INIT_NORMAL, 0, d0, d1, __VA_ARGS__))) return st
    ADD(&W->router, ROLE_FFN_ROUTER, E, D, "%slayers.%zu.%s.gate.weight", pre, l, blk);
    for (size_t e = 0; e < E; e++) {
        ADD(&W->gate[e], ROLE_FFN_GATE, Fe, D, "%slayers.%zu.%s.experts.%zu.%s.weight", pre, l, blk, e, gn);
        ADD(&W->up[e], ROLE_FFN_UP, Fe, D, "%slayers.%zu.%s.experts.%zu.%s.weight", pre, l, blk, e, un);
        ADD(&W->down[e], ROLE_FFN_DOWN, D, Fe, "%slayers.%zu.%s.experts.%zu.%s.weight", pre, l, blk, e, dn);
    }
    if (Fs) {
        ADD(&W->sh_gate, ROLE_FFN_GATE, Fs, D, "%slayers.%zu.mlp.shared_expert.gate_proj.weight", pre, l);
        ADD(&W->sh_up, ROLE_FFN_UP, Fs, D, "%slayers.%zu.mlp.shared_expert.up_proj.weight", pre, l);
        ADD(&W->sh_down, ROLE_FFN_DOWN, D, Fs, "%slayers.%zu.mlp.shared_expert.down_proj.weight", pre, l);
        ADD(&W->sh_router, ROLE_FFN_ROUTER, 1, D, "%slayers.%zu.mlp.shared_expert_gate.weight", pre, l);
    }
#undef ADD
    return LLMC_OK;
}

void moe_free(llmc_model *m) {
    if (!m->L) return;
    for (size_t l = 0; l < m->c.n_layers; l++) {
        if (!m->L[l].moe) continue;
        llmc_free(m->L[l].moe->gate);
        llmc_free(m->L[l].moe);
        m->L[l].moe = NULL;
    }
}

/* ---------------------------------------------------------------- the op on arrays */
llmc_status llmc_moe(const float *x, size_t T, size_t D, const float *router, const float *w_gate, const float *w_up,
                     const float *w_down, size_t E, size_t F, size_t k, int normalize, float *out, int32_t *experts,
                     float *weights) {
    if (E == 0) return llmc_fail(LLMC_ERR_INVALID, "a mixture of experts needs at least one expert (E = 0)");
    if (k == 0 || k > E) return llmc_fail(LLMC_ERR_INVALID, "top_k = %zu must be in [1, E = %zu]", k, E);
    if (D == 0 || F == 0) return llmc_fail(LLMC_ERR_INVALID, "empty expert dimensions: D = %zu, F = %zu", D, F);
    if (E > INT32_MAX || T > INT32_MAX / k)
        return llmc_fail(LLMC_ERR_INVALID, "E = %zu experts, T * k = %zu * %zu assignments: too many", E, T, k);
    if (T == 0) return LLMC_OK;
    moe_weights W;
    memset(&W, 0, sizeof W);
    W.router.type = LLMC_TYPE_F32;
    W.router.data = router;
    size_t FD;
    if (!llmc_mul_ok(F, D, &FD)) return llmc_fail(LLMC_ERR_NOMEM, "expert size F = %zu x D = %zu overflows", F, D);
    if (!(W.gate = llmc_calloc(3 * E, sizeof(wmat), "expert table"))) return LLMC_ERR_NOMEM;
    W.up = W.gate + E;
    W.down = W.gate + 2 * E;
    for (size_t e = 0; e < E; e++) { /* expert e's matrices are slices e of the stacked arrays */
        W.gate[e] = (wmat){LLMC_TYPE_F32, w_gate + e * FD, 0};
        W.up[e] = (wmat){LLMC_TYPE_F32, w_up + e * FD, 0};
        W.down[e] = (wmat){LLMC_TYPE_F32, w_down + e * FD, 0};
    }
    moe_shape p = {&W, D, E, k, F, 0, normalize};
    moe_buf b;
    const size_t bytes = moe_carve(NULL, T, D, E, k, F, &b);
    llmc_status st = LLMC_OK;
    char *buf = NULL;
    if (!bytes) st = llmc_fail(LLMC_ERR_NOMEM, "mixture-of-experts buffers for %zu tokens overflow", T);
    else if (!(buf = llmc_malloc(bytes, "mixture-of-experts buffers"))) st = LLMC_ERR_NOMEM;
    if (!st) {
        moe_carve(buf, T, D, E, k, F, &b);
        if (!(st = router_logits(&p, x, T, &b))) st = moe_apply(&p, x, T, &b, out);
    }
    if (!st && experts) memcpy(experts, b.experts, T * k * sizeof(int32_t));
    if (!st && weights) memcpy(weights, b.w, T * k * sizeof(float));
    llmc_free(buf);
    llmc_free(W.gate);
    return st;
}
