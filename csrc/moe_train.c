/* moe_train.c: the sparse mixture-of-experts feed-forward in training: a forward that keeps what the backward needs,
 * the backward through the experts, the routing weights and the router, and the Switch / Mixtral load-balancing
 * loss. Forward semantics as csrc/moe.c (and transformers): p = softmax(xn @ Wr^T); top-k (ties: lowest index);
 * w = p_sel (/ sum p_sel when norm_topk_prob); out = sum_j w_j FFN_{e_j}(xn) (+ sigmoid(xn . g) FFN_shared(xn)).
 *
 * Backward, per token t (dout = d loss / d out_t):
 *   expert e of slot j:  dy = w_j dout -> through FFN_e (SwiGLU) into dxn and the expert's weight gradients
 *   routing weight:      dw_j = dout . y_j (y_j = FFN_{e_j}(xn_t), kept from the forward)
 *   renormalisation:     dp_j = (dw_j - sum_i dw_i w_i) / S   (S = sum p_sel), or dp_j = dw_j without it
 *   aux loss:            dp_e += coef * E * f_e / R for every expert (f_e = slots routed to e / R, R = rows over
 *                        all sparse layers); the top-k mask itself has no gradient
 *   softmax:             dz = p * (dp - p . dp);  router: dWr += dz^T xn, dxn += dz @ Wr
 *   shared expert:       s = sigmoid(xn . g): d ys = s dout, ds = dout . ys, d(xn . g) = ds s (1 - s)
 * The T*k assignments are grouped by expert (counting sort, as moe.c): one matrix product per expert over its rows,
 * forward and backward. Shapes: N token rows, d model width, E experts, k per token, Fe expert width, Fs shared. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "blas.h"
#include "moe_train.h"
#include "simd.h"

/* what one sparse layer keeps between forward and backward */
typedef struct {
    float *p;         // (N, E) router probabilities
    float *w;         // (N, k) routing weights
    int32_t *ex;      // (N, k) chosen experts
    int32_t *order;   // (N*k) assignment ids t*k + j grouped by expert
    size_t *start;    // (E + 1)
    float *a, *b, *c; // (N*k, Fe) per assignment in order: gate, up, silu(gate) * up
    float *y;         // (N*k, d) each assignment's expert output (before its weight)
    float *sa, *sb, *sc; // (N, Fs) shared expert: gate, up, silu(gate) * up
    float *ys;        // (N, d) shared expert output (before its gate)
    float *sg;        // (N,) shared gate logits
} moe_saved;

struct moe_train {
    llmc_train_config c;
    size_t N, Lm;
    moe_saved *s;     // (Lm,)
    double *counts;   // (E,) slots routed to each expert over all sparse layers (this step)
    double *psum;     // (E,) router probabilities summed over all sparse layers' rows
    float *aux_g;     // (E,) the aux loss gradient d(coef * aux) / d p_e, the same for every row
    size_t rows;      // rows routed this step (over all layers)
    /* scratch */
    float *xe, *dy, *dxe;  // (N*k, d) one expert's input rows, output gradients, input gradients
    float *da, *db, *dc;   // (N*k, F) SwiGLU gradients
    float *dz, *logits;    // (N, E) router logit gradients; router logits
    float *dwk;            // (N*k) d loss / d routing weight of each assignment
    float *mem;
};

int moe_train_sparse(const llmc_train_config *c, size_t l) {
    if (!c->n_experts || (l + 1) % c->decoder_sparse_step) return 0;
    return !(l < LLMC_MOE_MAX_LAYERS && (c->mlp_only[l / 64] >> (l % 64) & 1));
}

static size_t n_sparse(const llmc_train_config *c, size_t upto) {
    size_t n = 0;
    for (size_t l = 0; l < upto; l++) n += (size_t)moe_train_sparse(c, l);
    return n;
}

/* tail tensors of one sparse layer */
static size_t per_sparse(const llmc_train_config *c) { return 1 + 3 * (c->n_experts - 1) + (c->shared_d_ff ? 4 : 0); }

size_t moe_train_tail_tensors(const llmc_train_config *c) {
    return c->n_experts ? n_sparse(c, c->n_layers) * per_sparse(c) : 0;
}

static const char *blk(const llmc_train_config *c) { return c->moe_names ? "block_sparse_moe" : "mlp"; }
static const char *proj(const llmc_train_config *c, int slot) {
    static const char *const hf[] = {"gate_proj", "up_proj", "down_proj"}, *const mx[] = {"w1", "w3", "w2"};
    return c->moe_names ? mx[slot] : hf[slot];
}

/* expert matrices: (Fe, d), (Fe, d), (d, Fe) */
static void expert_shape(const llmc_train_config *c, size_t F, int slot, size_t shape[2]) {
    shape[0] = slot == 2 ? c->d_model : F;
    shape[1] = slot == 2 ? F : c->d_model;
}

void moe_train_slot_info(const llmc_train_config *c, size_t l, int slot, char *name, size_t cap, size_t shape[2]) {
    snprintf(name, cap, "model.layers.%zu.%s.experts.0.%s.weight", l, blk(c), proj(c, slot));
    expert_shape(c, c->moe_d_ff, slot, shape);
}

void moe_train_tail_info(const llmc_train_config *c, size_t j, char *name, size_t cap, size_t shape[2], int *ndim) {
    const size_t ps = per_sparse(c), li = j / ps, r = j % ps;
    size_t l = 0;
    for (size_t seen = 0;; l++) /* the li-th sparse layer */
        if (moe_train_sparse(c, l) && seen++ == li) break;
    *ndim = 2;
    if (r == 0) {
        snprintf(name, cap, "model.layers.%zu.%s.gate.weight", l, blk(c));
        shape[0] = c->n_experts;
        shape[1] = c->d_model;
    } else if (r < 1 + 3 * (c->n_experts - 1)) {
        const size_t e = 1 + (r - 1) / 3;
        const int slot = (int)((r - 1) % 3);
        snprintf(name, cap, "model.layers.%zu.%s.experts.%zu.%s.weight", l, blk(c), e, proj(c, slot));
        expert_shape(c, c->moe_d_ff, slot, shape);
    } else {
        const int slot = (int)(r - 1 - 3 * (c->n_experts - 1));
        if (slot < 3) {
            static const char *const sh[] = {"gate_proj", "up_proj", "down_proj"};
            snprintf(name, cap, "model.layers.%zu.mlp.shared_expert.%s.weight", l, sh[slot]);
            expert_shape(c, c->shared_d_ff, slot, shape);
        } else {
            snprintf(name, cap, "model.layers.%zu.mlp.shared_expert_gate.weight", l);
            shape[0] = 1;
            shape[1] = c->d_model;
        }
    }
}

llmc_status moe_train_check(const llmc_train_config *c) {
    if (!c->n_experts) return LLMC_OK;
    if (c->n_experts_used == 0 || c->n_experts_used > c->n_experts)
        return llmc_fail(LLMC_ERR_INVALID, "num_experts_per_tok = %zu must be in [1, %zu]", c->n_experts_used,
                         c->n_experts);
    if (!c->moe_d_ff || !c->decoder_sparse_step)
        return llmc_fail(LLMC_ERR_INVALID, "mixture of experts: expert width %zu and decoder_sparse_step %zu must be "
                         ">= 1", c->moe_d_ff, c->decoder_sparse_step);
    if (c->n_experts > 65536 || c->arch != LLMC_TRAIN_LLAMA)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "mixture-of-experts training needs a llama-family model and at most "
                         "65536 experts (got %zu)", c->n_experts);
    if (c->precision != LLMC_PRECISION_FP32)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "mixture-of-experts training runs in fp32 (precision='bf16' is not "
                         "implemented for the experts)");
    return LLMC_OK;
}

moe_train_where moe_train_locate(const llmc_train_config *c, size_t l, size_t slot0, size_t tail0) {
    moe_train_where w = {l, slot0, tail0 + n_sparse(c, l) * per_sparse(c)};
    return w;
}

/* ---------------------------------------------------------------- create / free */
llmc_status moe_train_create(const llmc_train_config *c, size_t N, moe_train **out) {
    *out = NULL;
    if (!c->n_experts) return LLMC_OK;
    const size_t Lm = n_sparse(c, c->n_layers), E = c->n_experts, k = c->n_experts_used, d = c->d_model;
    const size_t Fe = c->moe_d_ff, Fs = c->shared_d_ff, F = Fe > Fs ? Fe : Fs;
    size_t Nk = 0, per = 0, glob = 0, total;
    int ok = llmc_mul_ok(N, k, &Nk);
    /* acc += a * b * c, overflow-checked */
#define ADD3(acc, a, b, cc) (ok = ok && llmc_size3((a), (b), (cc), 1, &x) && llmc_add_ok((acc), x, &(acc)))
    size_t x;
    /* floats per sparse layer: p | w, ex, order | a, b, c | y | sa, sb, sc | ys | sg (ints are float-sized) */
    ADD3(per, N, E, 1); ADD3(per, Nk, 3, 1); ADD3(per, Nk, Fe, 3); ADD3(per, Nk, d, 1); ADD3(per, N, Fs, 3);
    ADD3(per, Fs ? N : 0, d, 1); ADD3(per, N, 1, 1);
    /* scratch: xe, dy, dxe (N*k, d); da, db, dc (N*k, F); dz, logits (N, E); aux_g (E); dwk (N*k) */
    ADD3(glob, Nk, d, 3); ADD3(glob, Nk, F, 3); ADD3(glob, N, E, 2); ADD3(glob, E, 1, 1); ADD3(glob, Nk, 1, 1);
#undef ADD3
    if (!ok || !llmc_mul_ok(per, Lm, &total) || !llmc_add_ok(total, glob, &total) ||
        !llmc_mul_ok(total, sizeof(float), &total) || Nk > INT32_MAX)
        return llmc_fail(LLMC_ERR_NOMEM, "mixture-of-experts training buffers for %zu rows overflow", N);
    moe_train *m = llmc_calloc(1, sizeof *m, "MoE trainer");
    if (!m) return LLMC_ERR_NOMEM;
    m->c = *c;
    m->N = N;
    m->Lm = Lm;
    if (!(m->s = llmc_calloc(Lm ? Lm : 1, sizeof(moe_saved), "MoE saved activations")) ||
        !(m->counts = llmc_calloc(2 * E, sizeof(double), "MoE routing counts")) ||
        !(m->mem = llmc_malloc(total, "MoE training activations"))) {
        moe_train_free(m);
        return LLMC_ERR_NOMEM;
    }
    m->psum = m->counts + E;
    float *p = m->mem;
#define TAKE(dst, type, n) (dst = (type *)(void *)p, p += (n))
    for (size_t i = 0; i < Lm; i++) {
        moe_saved *s = &m->s[i];
        TAKE(s->p, float, N * E); TAKE(s->w, float, Nk); TAKE(s->ex, int32_t, Nk); TAKE(s->order, int32_t, Nk);
        TAKE(s->a, float, Nk * Fe); TAKE(s->b, float, Nk * Fe); TAKE(s->c, float, Nk * Fe); TAKE(s->y, float, Nk * d);
        TAKE(s->sa, float, N * Fs); TAKE(s->sb, float, N * Fs); TAKE(s->sc, float, N * Fs);
        TAKE(s->ys, float, Fs ? N * d : 0); TAKE(s->sg, float, N);
    }
    TAKE(m->xe, float, Nk * d); TAKE(m->dy, float, Nk * d); TAKE(m->dxe, float, Nk * d);
    TAKE(m->da, float, Nk * F); TAKE(m->db, float, Nk * F); TAKE(m->dc, float, Nk * F);
    TAKE(m->dz, float, N * E); TAKE(m->logits, float, N * E); TAKE(m->aux_g, float, E); TAKE(m->dwk, float, Nk);
#undef TAKE
    for (size_t i = 0; i < Lm; i++)
        if (!(m->s[i].start = llmc_calloc(E + 1, sizeof(size_t), "MoE expert offsets"))) {
            moe_train_free(m);
            return LLMC_ERR_NOMEM;
        }
    *out = m;
    return LLMC_OK;
}

void moe_train_free(moe_train *m) {
    if (!m) return;
    for (size_t i = 0; m->s && i < m->Lm; i++) llmc_free(m->s[i].start);
    llmc_free(m->s);
    llmc_free(m->counts);
    llmc_free(m->mem);
    llmc_free(m);
}

/* ---------------------------------------------------------------- forward */
/* the weights of expert e of this layer: X[gate], X[up], X[down] indices */
static void expert_idx(const llmc_train_config *c, const moe_train_where *w, size_t e, size_t idx[3]) {
    for (int s = 0; s < 3; s++) idx[s] = e == 0 ? w->slot0 + (size_t)s : w->tail + 1 + 3 * (e - 1) + (size_t)s;
    (void)c;
}
static size_t shared_idx(const llmc_train_config *c, const moe_train_where *w) {
    return w->tail + 1 + 3 * (c->n_experts - 1); /* gate, up, down, shared_expert_gate follow */
}

/* y (n, d) = down(c), c = silu(a) * b, a = x Wg^T, b = x Wu^T: x (n, d); a, b, c (n, F) kept */
static llmc_status swiglu_fwd(const float *x, size_t n, size_t d, size_t F, const float *wg, const float *wu,
                              const float *wd, float *a, float *b, float *c, float *y) {
    llmc_status st;
    if ((st = llmc_sgemm(0, 1, n, F, d, 1.0f, x, d, wg, d, 0.0f, a, F)) ||
        (st = llmc_sgemm(0, 1, n, F, d, 1.0f, x, d, wu, d, 0.0f, b, F)) || (st = llmc_silu(a, c, n * F)))
        return st;
    for (size_t i = 0; i < n * F; i++) c[i] *= b[i];
    return llmc_sgemm(0, 1, n, d, F, 1.0f, c, F, wd, F, 0.0f, y, d);
}

static moe_saved *saved(moe_train *m, size_t l) { return &m->s[n_sparse(&m->c, l)]; }

llmc_status moe_train_forward(moe_train *m, const moe_train_where *w, float *const *P, const float *xn, size_t N,
                              float *out) {
    const llmc_train_config *c = &m->c;
    const size_t E = c->n_experts, k = c->n_experts_used, d = c->d_model, Fe = c->moe_d_ff, Fs = c->shared_d_ff;
    moe_saved *s = saved(m, w->l);
    llmc_status st;
    if (n_sparse(c, w->l) == 0) { /* the first sparse layer of a step: reset the aux statistics */
        memset(m->counts, 0, 2 * E * sizeof(double));
        m->rows = 0;
    }
    // logits (N, E) = xn @ Wr^T; p = softmax (float32, as torch); top-k (ties: lowest index)
    if ((st = llmc_sgemm(0, 1, N, E, d, 1.0f, xn, d, P[w->tail], d, 0.0f, m->logits, E))) return st;
    for (size_t t = 0; t < N; t++) {
        const float *z = m->logits + t * E;
        float *p = s->p + t * E, mx = z[0], sum = 0.0f;
        for (size_t e = 1; e < E; e++) mx = z[e] > mx ? z[e] : mx;
        for (size_t e = 0; e < E; e++) sum += p[e] = expf(z[e] - mx);
        const float inv = 1.0f / sum;
        for (size_t e = 0; e < E; e++) {
            p[e] *= inv;
            m->psum[e] += p[e];
        }
        float tot = 0.0f;
        for (size_t j = 0; j < k; j++) {
            size_t best = E;
            for (size_t e = 0; e < E; e++) {
                int taken = 0;
                for (size_t i = 0; i < j; i++) taken |= s->ex[t * k + i] == (int32_t)e;
                if (!taken && (best == E || p[e] > p[best])) best = e;
            }
            s->ex[t * k + j] = (int32_t)best;
            s->w[t * k + j] = p[best];
            tot += p[best];
            m->counts[best] += 1.0;
        }
        if (c->norm_topk_prob)
            for (size_t j = 0; j < k; j++) s->w[t * k + j] /= tot;
    }
    m->rows += N;
    // group the N*k assignments by expert (counting sort, stable in token order)
    size_t *st0 = s->start;
    memset(st0, 0, (E + 1) * sizeof(size_t));
    for (size_t i = 0; i < N * k; i++) st0[s->ex[i] + 1]++;
    for (size_t e = 0; e < E; e++) st0[e + 1] += st0[e];
    for (size_t i = 0; i < N * k; i++) s->order[st0[s->ex[i]]++] = (int32_t)i;
    for (size_t e = E; e > 0; e--) st0[e] = st0[e - 1];
    st0[0] = 0;
    for (size_t e = 0; e < E; e++) {
        const size_t r0 = st0[e], n = st0[e + 1] - r0;
        if (!n) continue;
        size_t ix[3];
        expert_idx(c, w, e, ix);
        for (size_t i = 0; i < n; i++) memcpy(m->xe + i * d, xn + (size_t)s->order[r0 + i] / k * d, d * sizeof(float));
        // rows r0 .. r0+n-1 of a, b, c (Fe wide) and y (d wide)
        if ((st = swiglu_fwd(m->xe, n, d, Fe, P[ix[0]], P[ix[1]], P[ix[2]], s->a + r0 * Fe, s->b + r0 * Fe,
                             s->c + r0 * Fe, s->y + r0 * d)))
            return st;
        for (size_t i = 0; i < n; i++) { /* out[t] += w_tj * y */
            const size_t a = (size_t)s->order[r0 + i];
            llmc_k->axpy(out + a / k * d, s->w[a], s->y + (r0 + i) * d, d);
        }
    }
    if (Fs) { // out += sigmoid(xn . g) * FFN_shared(xn)
        const size_t si = shared_idx(c, w);
        if ((st = swiglu_fwd(xn, N, d, Fs, P[si], P[si + 1], P[si + 2], s->sa, s->sb, s->sc, s->ys)) ||
            (st = llmc_sgemm(0, 1, N, 1, d, 1.0f, xn, d, P[si + 3], d, 0.0f, s->sg, 1)))
            return st;
        for (size_t t = 0; t < N; t++) llmc_k->axpy(out + t * d, 1.0f / (1.0f + expf(-s->sg[t])), s->ys + t * d, d);
    }
    return LLMC_OK;
}

double moe_train_aux(moe_train *m, size_t N, float grad_scale) {
    if (!m || !m->rows) return 0.0;
    const llmc_train_config *c = &m->c;
    const size_t E = c->n_experts;
    const double R = (double)m->rows; /* rows over all sparse layers */
    double aux = 0.0;
    for (size_t e = 0; e < E; e++) {
        const double f = m->counts[e] / R, pe = m->psum[e] / R;
        aux += f * pe;
        /* d(coef * E * sum_e f_e P_e) / d p_{row, e} = coef * E * f_e / R; the loss is a mean, so the gradient
         * takes grad_scale * N (1 for the mean cross-entropy's grad_scale = 1 / N) */
        m->aux_g[e] = (float)((double)grad_scale * (double)N * c->aux_loss_coef * (double)E * f / R);
    }
    return c->aux_loss_coef * (double)E * aux;
}

/* ---------------------------------------------------------------- backward */
/* Through y = down(silu(a) * b): dy (n, d) -> dx (n, d) = (da @ Wg + db @ Wu) (overwritten), gradients of Wg, Wu,
 * Wd accumulated. x (n, d) the input rows; a, b, c (n, F) from the forward; da, db, dc (n, F) scratch. */
static llmc_status swiglu_bwd(const float *dy, const float *x, size_t n, size_t d, size_t F, const float *wg,
                              const float *wu, const float *wd, const float *a, const float *b, const float *c,
                              float *gg, float *gu, float *gd, float *da, float *db, float *dc, float *dx) {
    llmc_status st;
    // dc = dy @ Wd (n, F); dWd += dy^T c
    if ((st = llmc_sgemm(0, 0, n, F, d, 1.0f, dy, d, wd, F, 0.0f, dc, F)) ||
        (st = llmc_sgemm(1, 0, d, F, n, 1.0f, dy, d, c, F, 1.0f, gd, F)))
        return st;
    // db = dc * silu(a); da = silu'(a) * (dc * b)
    if ((st = llmc_silu(a, db, n * F))) return st;
    for (size_t i = 0; i < n * F; i++) {
        db[i] *= dc[i];
        dc[i] *= b[i];
    }
    memset(da, 0, n * F * sizeof(float));
    if ((st = llmc_silu_backward(dc, a, da, n * F))) return st;
    // dx = da @ Wg + db @ Wu; dWg += da^T x; dWu += db^T x
    if ((st = llmc_sgemm(0, 0, n, d, F, 1.0f, da, F, wg, d, 0.0f, dx, d)) ||
        (st = llmc_sgemm(0, 0, n, d, F, 1.0f, db, F, wu, d, 1.0f, dx, d)) ||
        (st = llmc_sgemm(1, 0, F, d, n, 1.0f, da, F, x, d, 1.0f, gg, d)) ||
        (st = llmc_sgemm(1, 0, F, d, n, 1.0f, db, F, x, d, 1.0f, gu, d)))
        return st;
    return LLMC_OK;
}

llmc_status moe_train_backward(moe_train *m, const moe_train_where *w, float *const *P, float *const *G,
                               const float *xn, const float *dout, size_t N, float *dxn) {
    const llmc_train_config *c = &m->c;
    const size_t E = c->n_experts, k = c->n_experts_used, d = c->d_model, Fe = c->moe_d_ff, Fs = c->shared_d_ff;
    moe_saved *s = saved(m, w->l);
    llmc_status st;
    memset(dxn, 0, N * d * sizeof(float));
    // dp (N, E) into dz: the aux loss's part for every expert, then the routing weights' part below
    for (size_t t = 0; t < N; t++) memcpy(m->dz + t * E, m->aux_g, E * sizeof(float));
    for (size_t e = 0; e < E; e++) {
        const size_t r0 = s->start[e], n = s->start[e + 1] - r0;
        if (!n) continue;
        size_t ix[3];
        expert_idx(c, w, e, ix);
        for (size_t i = 0; i < n; i++) {
            const size_t a = (size_t)s->order[r0 + i], t = a / k;
            memcpy(m->xe + i * d, xn + t * d, d * sizeof(float));
            // dy = w_tj * dout_t (the expert's output gradient); d w_tj = dout_t . y_tj
            const float *dt = dout + t * d, *y = s->y + (r0 + i) * d;
            float dwt = 0.0f;
            for (size_t q = 0; q < d; q++) {
                m->dy[i * d + q] = s->w[a] * dt[q];
                dwt += dt[q] * y[q];
            }
            m->dwk[a] = dwt;
        }
        if ((st = swiglu_bwd(m->dy, m->xe, n, d, Fe, P[ix[0]], P[ix[1]], P[ix[2]], s->a + r0 * Fe, s->b + r0 * Fe,
                             s->c + r0 * Fe, G[ix[0]], G[ix[1]], G[ix[2]], m->da, m->db, m->dc, m->dxe)))
            return st;
        for (size_t i = 0; i < n; i++) llmc_k->axpy(dxn + (size_t)s->order[r0 + i] / k * d, 1.0f, m->dxe + i * d, d);
    }
    // routing weights -> probabilities of the chosen experts -> softmax -> router
    for (size_t t = 0; t < N; t++) {
        const float *dw = m->dwk + t * k, *wt = s->w + t * k, *p = s->p + t * E;
        float *dz = m->dz + t * E;
        if (c->norm_topk_prob) { /* w_j = p_j / S: dp_j = (dw_j - sum_i dw_i w_i) / S */
            float S = 0.0f, dot = 0.0f;
            for (size_t j = 0; j < k; j++) {
                S += p[s->ex[t * k + j]];
                dot += dw[j] * wt[j];
            }
            for (size_t j = 0; j < k; j++) dz[s->ex[t * k + j]] += (dw[j] - dot) / S;
        } else {
            for (size_t j = 0; j < k; j++) dz[s->ex[t * k + j]] += dw[j];
        }
        float pd = 0.0f; /* softmax: dz = p * (dp - p . dp) */
        for (size_t e = 0; e < E; e++) pd += p[e] * dz[e];
        for (size_t e = 0; e < E; e++) dz[e] = p[e] * (dz[e] - pd);
    }
    // router: dWr += dz^T xn; dxn += dz @ Wr
    if ((st = llmc_sgemm(1, 0, E, d, N, 1.0f, m->dz, E, xn, d, 1.0f, G[w->tail], d)) ||
        (st = llmc_sgemm(0, 0, N, d, E, 1.0f, m->dz, E, P[w->tail], d, 1.0f, dxn, d)))
        return st;
    if (Fs) {
        const size_t si = shared_idx(c, w);
        // s = sigmoid(sg): d ys = s dout (into dy), d sg = (dout . ys) s (1 - s) (into dz's first column)
        for (size_t t = 0; t < N; t++) {
            const float sig = 1.0f / (1.0f + expf(-s->sg[t]));
            float dsg = 0.0f;
            for (size_t q = 0; q < d; q++) {
                m->dy[t * d + q] = sig * dout[t * d + q];
                dsg += dout[t * d + q] * s->ys[t * d + q];
            }
            m->dz[t] = dsg * sig * (1.0f - sig);
        }
        // gate: dG += dsg^T xn (1, d); dxn += dsg @ G
        if ((st = llmc_sgemm(1, 0, 1, d, N, 1.0f, m->dz, 1, xn, d, 1.0f, G[si + 3], d)) ||
            (st = llmc_sgemm(0, 0, N, d, 1, 1.0f, m->dz, 1, P[si + 3], d, 1.0f, dxn, d)))
            return st;
        if ((st = swiglu_bwd(m->dy, xn, N, d, Fs, P[si], P[si + 1], P[si + 2], s->sa, s->sb, s->sc, G[si], G[si + 1],
                             G[si + 2], m->da, m->db, m->dc, m->dxe)))
            return st;
        llmc_k->axpy(dxn, 1.0f, m->dxe, N * d);
    }
    return LLMC_OK;
}
