/* session.c: KV-cached decoding state: the cache, the activation scratch, the sliding window, append and copy. */
#include <math.h>
#include <string.h>

#include "model_internal.h"

/* Lay the activation buffers of T tokens out from base (each 64-byte aligned); returns the floats needed, 0 on
 * overflow. base == NULL only measures. */
size_t session_carve(const llmc_model_config *c, float *base, size_t T, acts *a) {
    const size_t D = c->d_model, qd = c->n_heads * c->head_dim, kd = c->n_kv_heads * c->head_dim, F = c->d_ff;
    size_t off = 0, n;
    int ok = 1;
#define TAKE(field, width)                                                                                           \
    do {                                                                                                             \
        a->field = base ? base + off : NULL;                                                                         \
        ok = ok && llmc_mul_ok((width), T, &n) && llmc_add_ok(n, 15, &n) && llmc_add_ok(off, n / 16 * 16, &off);     \
    } while (0)
    TAKE(x, D);                       // x: (T, D) the residual stream
    TAKE(h, D);                       // h: (T, D) normed input of a sublayer / sublayer output
    TAKE(q, qd > 3 * D ? qd : 3 * D); // q: (T, H*hd); gpt2 keeps q, k, v together here: (T, 3D)
    TAKE(k, kd);                      // k, v: (T, Hk*hd)
    TAKE(v, kd);
    TAKE(qh, qd);                     // qh: (H, T, hd) queries head-major
    TAKE(ah, qd);                     // ah: (H, T, hd) attention output head-major
    TAKE(a, qd);                      // a: (T, H*hd) attention output token-major
    TAKE(f1, F);                      // f1, f2: (T, F) MLP hidden
    TAKE(f2, F);
    TAKE(cs, c->head_dim / 2);        // cs, sn: (T, hd/2) RoPE cos / sin
    TAKE(sn, c->head_dim / 2);
#undef TAKE
    return ok ? off : 0;
}

llmc_status session_ensure_scratch(llmc_session *s, size_t T) {
    if (T <= s->scratch_T) return LLMC_OK;
    acts probe;
    size_t n = session_carve(&s->m->c, NULL, T, &probe), bytes;
    if (!n || !llmc_mul_ok(n, sizeof(float), &bytes))
        return llmc_fail(LLMC_ERR_NOMEM, "activation buffer for %zu tokens overflows", T);
    float *p = llmc_malloc(bytes, "activations");
    if (!p) return LLMC_ERR_NOMEM;
    llmc_free(s->scratch);
    s->scratch = p;
    s->scratch_T = T;
    return LLMC_OK;
}

llmc_status session_alloc(const llmc_model *m, size_t cap, llmc_session **out) {
    const llmc_model_config *c = &m->c;
    llmc_session *s = llmc_calloc(1, sizeof *s, "session");
    if (!s) return LLMC_ERR_NOMEM;
    s->m = m;
    s->cap = cap;
    size_t kvn;
    llmc_status st = LLMC_OK;
    if (!llmc_size3(c->n_layers * 2, c->n_kv_heads, cap, c->head_dim * sizeof(float), &kvn))
        st = llmc_fail(LLMC_ERR_NOMEM, "KV cache for %zu tokens overflows", cap);
    else if (!(s->kv = llmc_malloc(kvn, "KV cache")) || !(s->tokens = llmc_calloc(cap, sizeof(int64_t), "token history")))
        st = LLMC_ERR_NOMEM;
    else st = session_ensure_scratch(s, 1); /* decoding one token at a time never allocates after this */
    if (st) {
        llmc_session_free(s);
        return st;
    }
    *out = s;
    return LLMC_OK;
}

void llmc_session_free(llmc_session *s) {
    if (!s) return;
    llmc_free(s->kv);
    llmc_free(s->tokens);
    llmc_free(s->tmp_ids);
    llmc_free(s->scratch);
    llmc_free(s->moe_scratch);
    llmc_free(s->team_ws);
    llmc_free(s);
}

llmc_status llmc_session_new(const llmc_model *m, size_t capacity, int overflow, size_t keep_first, int attn,
                             llmc_session **out) {
    *out = NULL;
    const llmc_model_config *c = &m->c;
    if (!c->causal) return llmc_fail(LLMC_ERR_UNSUPPORTED, "sessions (KV-cached decoding) need a decoder; bert is an encoder");
    if (capacity == 0) capacity = c->context_length;
    if (capacity > c->context_length)
        return llmc_fail(LLMC_ERR_INVALID, "session capacity %zu exceeds the model's context length %zu", capacity,
                         c->context_length);
    if (overflow != LLMC_OVERFLOW_ERROR && overflow != LLMC_OVERFLOW_SLIDE)
        return llmc_fail(LLMC_ERR_INVALID, "unknown overflow policy %d", overflow);
    if (overflow == LLMC_OVERFLOW_SLIDE && keep_first >= capacity)
        return llmc_fail(LLMC_ERR_INVALID, "keep_first (%zu) must be smaller than the window (%zu tokens)", keep_first,
                         capacity);
    llmc_session *s;
    llmc_status st = session_alloc(m, capacity, &s);
    if (st) return st;
    s->overflow = overflow;
    s->keep_first = keep_first;
    s->attn = attn;
    if (overflow == LLMC_OVERFLOW_SLIDE && c->rope_theta == 0 &&
        !(s->tmp_ids = llmc_malloc(capacity * sizeof(int64_t), "window tokens"))) {
        llmc_session_free(s);
        return LLMC_ERR_NOMEM;
    }
    *out = s;
    return LLMC_OK;
}

size_t llmc_session_n_tokens(const llmc_session *s) { return s->n; }
const int64_t *llmc_session_tokens(const llmc_session *s) { return s->tokens; }
void llmc_session_reset(llmc_session *s) { s->n = 0; }
void llmc_session_set_attn(llmc_session *s, int attn) { s->attn = attn; }

/* Drop `drop` cached tokens right after the first keep_first (first in, first out).
 * RoPE: keys carry their position as a rotation, so moving a key from position p to p - drop is one more rotation
 * by -drop * inv_freq (exact up to rounding; values carry no position). Deeper layers' keys and values still
 * reflect the dropped tokens they once attended to: this is the usual streaming approximation.
 * Learned positions are added to the input, so nothing cached can be moved: the kept window is re-encoded from
 * its tokens, which makes the result exactly a fresh forward over the window. */
static llmc_status slide(llmc_session *s, size_t drop) {
    const llmc_model *m = s->m;
    const llmc_model_config *c = &m->c;
    const size_t k0 = s->keep_first, moved = s->n - k0 - drop, hd = c->head_dim, half = hd / 2;
    if (c->rope_theta > 0) {
        for (size_t l = 0; l < c->n_layers; l++)
            for (int kv = 0; kv < 2; kv++) {
                float *base = kv ? cache_v(s, l) : cache_k(s, l);
                for (size_t h = 0; h < c->n_kv_heads; h++) {
                    float *rows = base + h * s->cap * hd; // (cap, hd)
                    memmove(rows + k0 * hd, rows + (k0 + drop) * hd, moved * hd * sizeof(float));
                    if (kv) continue;
                    for (size_t i = 0; i < half; i++) {
                        float ang = -(float)drop * m->inv_freq[i], cs = cosf(ang), sn = sinf(ang);
                        for (size_t t = k0; t < k0 + moved; t++) {
                            float *v = rows + t * hd, a = v[i], b = v[i + half];
                            v[i] = a * cs - b * sn;
                            v[i + half] = a * sn + b * cs;
                        }
                    }
                }
            }
        memmove(s->tokens + k0, s->tokens + k0 + drop, moved * sizeof(int64_t));
        s->n -= drop;
        return LLMC_OK;
    }
    // learned positions: re-encode tokens [0, k0) + [k0 + drop, n)
    memcpy(s->tmp_ids, s->tokens, k0 * sizeof(int64_t));
    memcpy(s->tmp_ids + k0, s->tokens + k0 + drop, moved * sizeof(int64_t));
    const size_t keep = k0 + moved;
    s->n = 0;
    return keep ? model_forward_tokens(s, s->tmp_ids, NULL, keep, NULL, 0, NULL, NULL, 0, NULL) : LLMC_OK;
}

llmc_status session_check_append(const llmc_session *s, const int64_t *ids, size_t n) {
    if (n == 0) return llmc_fail(LLMC_ERR_INVALID, "append needs at least one token");
    const llmc_model_config *c = &s->m->c;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= c->vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, c->vocab);
    if (s->n + n > s->cap) {
        if (s->overflow == LLMC_OVERFLOW_ERROR)
            return llmc_fail(LLMC_ERR_INVALID,
                             "context window full: %zu cached + %zu new tokens > %zu (create the session with "
                             "overflow=\"slide\" to drop the oldest tokens)",
                             s->n, n, s->cap);
        if (n > s->cap - s->keep_first)
            return llmc_fail(LLMC_ERR_INVALID,
                             "cannot append %zu tokens at once: a window of %zu keeping the first %zu holds at most "
                             "%zu new tokens",
                             n, s->cap, s->keep_first, s->cap - s->keep_first);
    }
    return LLMC_OK;
}

llmc_status session_make_room(llmc_session *s, size_t n) {
    return s->n + n > s->cap ? slide(s, s->n + n - s->cap) : LLMC_OK;
}

llmc_status llmc_session_append(llmc_session *s, const int64_t *ids, size_t n, float *logits) {
    llmc_status st = session_check_append(s, ids, n);
    if (st || (st = session_make_room(s, n))) return st;
    return model_forward_tokens(s, ids, NULL, n, logits, 0, NULL, NULL, 0, NULL);
}


/* ---------------------------------------------------------------- copying a session (beam search) */
// kv: (n_layers, 2, Hk, cap, hd): only the first n positions of each (layer, k/v, head) block are live
llmc_status llmc_session_copy(llmc_session *dst, const llmc_session *src) {
    if (dst == src) return LLMC_OK;
    if (dst->m != src->m || dst->cap != src->cap)
        return llmc_fail(LLMC_ERR_INVALID, "can only copy a session into another of the same model and capacity "
                         "(capacities %zu and %zu)", src->cap, dst->cap);
    const llmc_model_config *c = &src->m->c;
    const size_t blocks = c->n_layers * 2 * c->n_kv_heads, hd = c->head_dim;
    for (size_t b = 0; b < blocks; b++)
        memcpy(dst->kv + b * src->cap * hd, src->kv + b * src->cap * hd, src->n * hd * sizeof(float));
    memcpy(dst->tokens, src->tokens, src->n * sizeof(int64_t));
    dst->n = src->n;
    return LLMC_OK;
}
