/* latent.h: what the forward blocks call to fire hooks (csrc/latent.c); not part of the public API. */
#ifndef LLMC_LATENT_H
#define LLMC_LATENT_H

#include "model_internal.h"

/* "resid_pre", "attn.q", ...: the activation's name inside a block (or "embed" / "ln_final") */
const char *latent_act_name(int act);
/* 1 when the hooks need each call run as one chunk: a pattern capture, or a mean over the call's positions */
int latent_needs_whole(const llmc_hook *hooks, size_t n);
/* 1 when a hook of the session targets act (at any layer) */
int latent_has(const llmc_session *s, int act);
/* *dst: where attention should write layer l's probabilities (H, T, T) for a capture, or NULL */
llmc_status latent_pattern(const llmc_session *s, size_t l, size_t T, float **dst);
/* Fire the session's hooks for (act, layer l) on the T rows of this call at p (unit stride hs rows; see latent.c). */
llmc_status latent_fire_hooks(llmc_session *s, int act, size_t l, float *p, size_t hs, size_t T);

/* The hook point the blocks write: free when no hook is attached. */
static inline llmc_status latent_fire(llmc_session *s, int act, size_t l, float *p, size_t hs, size_t T) {
    return s->n_hooks ? latent_fire_hooks(s, act, l, p, hs, T) : LLMC_OK;
}

#endif
