/* latent.c: hooks on the named activations of the forward pass — capture (an activation cache), steering (add a
 * vector), ablation (zero or mean a head or a neuron) and activation patching (replace by another run's values).
 *
 * The forward blocks (blocks.c) call latent_fire() at each hook point with the activation where it lives; with no
 * hook attached that is one test of s->n_hooks, so an unhooked forward pays nothing. Hooks fire in list order.
 *
 * Every activation is seen through its public layout (U, P, W) (see llmc.h): element (u, t, j) of the T rows of
 * this call lives at p[(u * hs + t) * W + j], hs being the distance between units in rows (T for a packed
 * head-major buffer such as q (H, T, hd), the cache capacity for keys and values, irrelevant when U = 1). Row t
 * is absolute position n + t, n being the tokens the session held before the call. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "latent.h"

static const char *const ACT_NAMES[LLMC_ACT_COUNT] = {
    "embed", "resid_pre", "attn.q", "attn.k", "attn.v", "attn.pattern", "attn.z",
    "attn_out", "resid_mid", "mlp.pre_act", "mlp.post_act", "mlp_out", "resid_post", "ln_final", "moe.router_logits"};

const char *latent_act_name(int act) { return act >= 0 && act < LLMC_ACT_COUNT ? ACT_NAMES[act] : "?"; }

llmc_status llmc_act_layout(const llmc_model *m, int act, size_t *units, size_t *width) {
    const llmc_model_config *c = &m->c;
    *units = 1;
    *width = c->d_model;
    switch (act) {
    case LLMC_ACT_EMBED: case LLMC_ACT_RESID_PRE: case LLMC_ACT_ATTN_OUT: case LLMC_ACT_RESID_MID:
    case LLMC_ACT_MLP_OUT: case LLMC_ACT_RESID_POST:
        return LLMC_OK;
    case LLMC_ACT_LN_FINAL:
        if (c->arch == LLMC_ARCH_BERT) return llmc_fail(LLMC_ERR_UNSUPPORTED, "bert has no final norm (ln_final)");
        return LLMC_OK;
    case LLMC_ACT_ATTN_Q: case LLMC_ACT_ATTN_Z:
        *units = c->n_heads;
        *width = c->head_dim;
        return LLMC_OK;
    case LLMC_ACT_ATTN_K: case LLMC_ACT_ATTN_V:
        *units = c->n_kv_heads;
        *width = c->head_dim;
        return LLMC_OK;
    case LLMC_ACT_ATTN_PATTERN:
        *units = c->n_heads;
        *width = 0; /* the keys seen: depends on the call */
        return LLMC_OK;
    case LLMC_ACT_MLP_PRE: case LLMC_ACT_MLP_POST:
        *width = c->d_ff;
        return LLMC_OK;
    case LLMC_ACT_MOE_ROUTER:
        if (!c->n_experts) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model has no mixture-of-experts router");
        *width = c->n_experts;
        return LLMC_OK;
    default:
        return llmc_fail(LLMC_ERR_INVALID, "unknown activation id %d (valid: 0 .. %d)", act, LLMC_ACT_COUNT - 1);
    }
}

static int model_wide(int act) { return act == LLMC_ACT_EMBED || act == LLMC_ACT_LN_FINAL; }

llmc_status llmc_hooks_check(const llmc_model *m, const llmc_hook *hooks, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const llmc_hook *h = &hooks[i];
        size_t U, W, want;
        llmc_status st = llmc_act_layout(m, h->act, &U, &W);
        if (st) return st;
        const char *name = latent_act_name(h->act);
        if (h->kind < LLMC_HOOK_CAPTURE || h->kind > LLMC_HOOK_MEAN)
            return llmc_fail(LLMC_ERR_INVALID, "hook %zu: unknown kind %d", i, h->kind);
        if (!model_wide(h->act) && h->layer >= m->c.n_layers)
            return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): layer %zu out of range: the model has %zu layers", i,
                             name, h->layer, m->c.n_layers);
        if (!model_wide(h->act) && (h->act == LLMC_ACT_MLP_PRE || h->act == LLMC_ACT_MLP_POST) && m->L[h->layer].moe)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "hook %zu (%s): layer %zu is a mixture of experts, whose tokens run "
                             "different experts: it has no single %s (use mlp_out or moe.router_logits)", i, name,
                             h->layer, name);
        if (h->act == LLMC_ACT_MOE_ROUTER && !m->L[h->layer].moe)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "hook %zu (%s): layer %zu has a dense MLP, no router", i, name,
                             h->layer);
        if (h->pos_start > h->pos_stop)
            return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): empty position range [%zu, %zu)", i, name,
                             h->pos_start, h->pos_stop);
        if (h->act == LLMC_ACT_ATTN_PATTERN && h->kind != LLMC_HOOK_CAPTURE)
            return llmc_fail(LLMC_ERR_INVALID, "hook %zu: attn.pattern can be captured, not changed (change attn.q, "
                             "attn.k or attn.z instead)", i);
        if (h->kind == LLMC_HOOK_CAPTURE || h->kind == LLMC_HOOK_SET) {
            if (h->act == LLMC_ACT_ATTN_PATTERN) W = h->rows; /* (H, rows, rows) */
            if (!h->data || !llmc_size3(U, h->rows, W, 1, &want) || h->data_len != want)
                return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): data holds %zu values, (%zu, %zu, %zu) needs %zu", i,
                                 name, h->data ? h->data_len : 0, U, h->rows, W, U * h->rows * W);
        } else if (h->kind == LLMC_HOOK_ADD || (h->kind == LLMC_HOOK_MEAN && h->data)) {
            if (!h->data || h->data_len != U * W)
                return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): data holds %zu values, (%zu, %zu) needs %zu", i, name,
                                 h->data ? h->data_len : 0, U, W, U * W);
        }
        if (h->kind == LLMC_HOOK_ZERO || h->kind == LLMC_HOOK_MEAN) {
            const size_t n_units = U > 1 ? U : W;
            if (!h->index || !h->n_index) return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): no units to ablate", i, name);
            for (size_t k = 0; k < h->n_index; k++)
                if (h->index[k] < 0 || (uint64_t)h->index[k] >= n_units)
                    return llmc_fail(LLMC_ERR_INVALID, "hook %zu (%s): %s %lld out of range [0, %zu)", i, name,
                                     U > 1 ? "head" : "unit", (long long)h->index[k], n_units);
        }
    }
    return LLMC_OK;
}

int latent_needs_whole(const llmc_hook *hooks, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (hooks[i].act == LLMC_ACT_ATTN_PATTERN || (hooks[i].kind == LLMC_HOOK_MEAN && !hooks[i].data)) return 1;
    return 0;
}

int latent_has(const llmc_session *s, int act) {
    for (size_t i = 0; i < s->n_hooks; i++)
        if (s->hooks[i].act == act) return 1;
    return 0;
}

llmc_status latent_pattern(const llmc_session *s, size_t l, size_t T, float **dst) {
    *dst = NULL;
    for (size_t i = 0; i < s->n_hooks; i++) {
        const llmc_hook *h = &s->hooks[i];
        if (h->act != LLMC_ACT_ATTN_PATTERN || h->layer != l) continue;
        if (s->n != 0 || h->rows != T)
            return llmc_fail(LLMC_ERR_INVALID, "attn.pattern of layer %zu: a capture needs one whole-sequence run of "
                             "%zu tokens (got %zu tokens at position %zu)", l, h->rows, T, s->n);
        *dst = h->data; /* (H, T, T): attention writes it directly */
    }
    return LLMC_OK;
}

/* the value unit i of row t gets under MEAN: data when given, else the mean over rows [t0, t1), for element j of
 * head i (U > 1) or for column i (U = 1, j = 0) */
static float unit_mean(const llmc_hook *h, const float *p, size_t U, size_t W, size_t hs, size_t i, size_t j,
                       size_t t0, size_t t1) {
    if (h->data) return U > 1 ? h->data[i * W + j] : h->data[i];
    double acc = 0.0;
    for (size_t t = t0; t < t1; t++) acc += U > 1 ? p[(i * hs + t) * W + j] : p[t * W + i];
    return (float)(acc / (double)(t1 - t0));
}

/* one hook on rows [t0, t1) of the site (U units of W values, unit stride hs rows) */
static void apply(const llmc_hook *h, float *p, size_t U, size_t W, size_t hs, size_t n, size_t t0, size_t t1) {
    switch (h->kind) {
    case LLMC_HOOK_CAPTURE: // data: (U, rows, W)
        for (size_t u = 0; u < U; u++)
            for (size_t t = t0; t < t1 && n + t < h->rows; t++)
                memcpy(h->data + (u * h->rows + n + t) * W, p + (u * hs + t) * W, W * sizeof(float));
        break;
    case LLMC_HOOK_SET: // data: (U, rows, W)
        for (size_t u = 0; u < U; u++)
            for (size_t t = t0; t < t1 && n + t < h->rows; t++)
                memcpy(p + (u * hs + t) * W, h->data + (u * h->rows + n + t) * W, W * sizeof(float));
        break;
    case LLMC_HOOK_ADD: // data: (U, W); x += scale * v at each position
        for (size_t u = 0; u < U; u++)
            for (size_t t = t0; t < t1; t++) {
                float *row = p + (u * hs + t) * W;
                const float *v = h->data + u * W;
                for (size_t j = 0; j < W; j++) row[j] += h->scale * v[j];
            }
        break;
    case LLMC_HOOK_ZERO:
    case LLMC_HOOK_MEAN:
        for (size_t k = 0; k < h->n_index; k++) {
            const size_t i = (size_t)h->index[k];
            if (U > 1) { // unit = head i: its rows (t, 0..W) are set to 0 or to the head's mean vector
                for (size_t j = 0; j < W; j++) {
                    const float v = h->kind == LLMC_HOOK_ZERO ? 0.0f : unit_mean(h, p, U, W, hs, i, j, t0, t1);
                    for (size_t t = t0; t < t1; t++) p[(i * hs + t) * W + j] = v;
                }
            } else { // unit = column i (a neuron) of the (T, W) rows
                const float v = h->kind == LLMC_HOOK_ZERO ? 0.0f : unit_mean(h, p, U, W, hs, i, 0, t0, t1);
                for (size_t t = t0; t < t1; t++) p[t * W + i] = v;
            }
        }
        break;
    }
}

llmc_status latent_fire_hooks(llmc_session *s, int act, size_t l, float *p, size_t hs, size_t T) {
    size_t U = 0, W = 0;
    const size_t n = s->n;
    for (size_t i = 0; i < s->n_hooks; i++) {
        const llmc_hook *h = &s->hooks[i];
        if (h->act != act || (!model_wide(act) && h->layer != l)) continue;
        if (!W) {
            llmc_status st = llmc_act_layout(s->m, act, &U, &W);
            if (st) return st;
        }
        /* rows of this call inside [pos_start, pos_stop) */
        const size_t a = h->pos_start > n ? h->pos_start - n : 0;
        const size_t b = h->pos_stop < n ? 0 : (h->pos_stop - n < T ? h->pos_stop - n : T);
        if (a < b) apply(h, p, U, W, hs, n, a, b);
    }
    return LLMC_OK;
}

llmc_status llmc_session_set_hooks(llmc_session *s, const llmc_hook *hooks, size_t n) {
    llmc_status st = llmc_hooks_check(s->m, hooks, n);
    if (st) return st;
    for (size_t i = 0; i < n; i++)
        if (hooks[i].act == LLMC_ACT_ATTN_PATTERN)
            return llmc_fail(LLMC_ERR_INVALID, "hook %zu: attn.pattern cannot be hooked on a session (capture it with a "
                             "whole-sequence run)", i);
    s->hooks = n ? hooks : NULL;
    s->n_hooks = n;
    return LLMC_OK;
}
