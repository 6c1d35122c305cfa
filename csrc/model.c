/* model.c: Hugging Face transformer checkpoints in the C core: the whole-sequence entry points (forward, attention
 * weights, sentence embeddings). The rest of the model lives beside it (see model_internal.h): model_config.c,
 * weights.c, blocks.c, session.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model_internal.h"

static llmc_status check_ids(const llmc_model *m, const int64_t *ids, size_t T) {
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "need at least one token (got an empty sequence)");
    if (T > m->c.context_length)
        return llmc_fail(LLMC_ERR_INVALID, "%zu tokens exceed the model's context length %zu", T, m->c.context_length);
    for (size_t i = 0; i < T; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= m->c.vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, m->c.vocab);
    return LLMC_OK;
}

static llmc_status run_hooked(const llmc_model *m, const int64_t *ids, const int64_t *types, size_t T, int attn,
                              float *logits, float *hidden, float *last, size_t probs_layer, float *probs,
                              const llmc_hook *hooks, size_t n_hooks) {
    llmc_status st = check_ids(m, ids, T);
    if (st) return st;
    llmc_session *s;
    if ((st = session_alloc(m, T, &s))) return st;
    s->attn = attn;
    s->hooks = hooks;
    s->n_hooks = n_hooks;
    st = model_forward_tokens(s, ids, types, T, logits, 1, hidden, last, probs_layer, probs);
    llmc_session_free(s);
    return st;
}

static llmc_status run_once(const llmc_model *m, const int64_t *ids, const int64_t *types, size_t T, int attn,
                            float *logits, float *hidden, float *last, size_t probs_layer, float *probs) {
    return run_hooked(m, ids, types, T, attn, logits, hidden, last, probs_layer, probs, NULL, 0);
}

llmc_status llmc_model_forward_hooked(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T,
                                      int attn, float *logits, const llmc_hook *hooks, size_t n_hooks) {
    if (logits && !m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    llmc_status st = llmc_hooks_check(m, hooks, n_hooks);
    if (st) return st;
    return run_hooked(m, ids, type_ids, T, attn, logits, NULL, NULL, 0, NULL, hooks, n_hooks);
}

llmc_status llmc_model_forward(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T, int attn,
                               float *logits, float *hidden, float *last) {
    if (logits && !m->lm_head.data) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model (bert) has no language-model head");
    return run_once(m, ids, type_ids, T, attn, logits, hidden, last, 0, NULL);
}

llmc_status llmc_model_routing(const llmc_model *m, const int64_t *ids, size_t T, float *logits, int32_t *experts,
                               float *weights) {
    if (!m->c.n_experts) return llmc_fail(LLMC_ERR_UNSUPPORTED, "this model has no mixture-of-experts layers");
    llmc_status st = check_ids(m, ids, T);
    if (st) return st;
    llmc_session *s;
    if ((st = session_alloc(m, T, &s))) return st;
    struct moe_record rec = {T, logits, experts, weights};
    s->moe_rec = &rec; /* moe.c writes each MoE layer's routing here */
    st = model_forward_tokens(s, ids, NULL, T, NULL, 1, NULL, NULL, 0, NULL);
    llmc_session_free(s);
    return st;
}

llmc_status llmc_model_attention_weights(const llmc_model *m, const int64_t *ids, const int64_t *type_ids, size_t T,
                                         size_t layer, float *probs) {
    if (layer >= m->c.n_layers)
        return llmc_fail(LLMC_ERR_INVALID, "layer %zu out of range: the model has %zu layers", layer, m->c.n_layers);
    return run_once(m, ids, type_ids, T, LLMC_ATTN_STANDARD, NULL, NULL, NULL, layer, probs);
}

/* llmc_model_embed (batched prefill of whole sequences) lives in batch.c */
