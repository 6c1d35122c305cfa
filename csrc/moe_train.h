/* moe_train.h: the mixture-of-experts feed-forward inside the trainer (csrc/moe_train.c, called by train.c); not
 * part of the public API.
 *
 * Tensor layout: a sparse layer keeps the dense layer's three MLP slots (L_GATE, L_UP, L_DOWN in train.c) for its
 * expert 0 (gate, up, down), so the per-layer block of the llama family stays the same size; every other MoE tensor
 * sits in a tail after the model's last dense-layout tensor, sparse layer by sparse layer:
 *   router (E, d); experts 1 .. E-1: gate (Fe, d), up (Fe, d), down (d, Fe); then, with a shared expert (Fs > 0):
 *   shared gate (Fs, d), up (Fs, d), down (d, Fs), shared_expert_gate (1, d). */
#ifndef LLMC_MOE_TRAIN_H
#define LLMC_MOE_TRAIN_H

#include "internal.h"

typedef struct moe_train moe_train;

/* 1 when layer l of the trainer's config is sparse */
int moe_train_sparse(const llmc_train_config *c, size_t l);
/* tensors in the tail (0 for a dense config) */
size_t moe_train_tail_tensors(const llmc_train_config *c);
/* tail tensor j: its checkpoint name and shape */
void moe_train_tail_info(const llmc_train_config *c, size_t j, char *name, size_t cap, size_t shape[2], int *ndim);
/* name and shape of expert 0's gate / up / down (slot 0, 1, 2) of sparse layer l */
void moe_train_slot_info(const llmc_train_config *c, size_t l, int slot, char *name, size_t cap, size_t shape[2]);
/* LLMC_OK when the MoE fields are consistent */
llmc_status moe_train_check(const llmc_train_config *c);

/* Saved activations of every sparse layer for N token rows. */
llmc_status moe_train_create(const llmc_train_config *c, size_t N, moe_train **out);
void moe_train_free(moe_train *m);

/* Where one sparse layer's weights (or gradients) are: X[slot0 + 0..2] expert 0, X[tail ..] the rest. */
typedef struct {
    size_t l;      /* block index */
    size_t slot0;  /* index of expert 0's gate in the tensor list */
    size_t tail;   /* index of this layer's router in the tensor list */
} moe_train_where;
moe_train_where moe_train_locate(const llmc_train_config *c, size_t l, size_t slot0, size_t tail0);

/* out (N, d) += moe(xn (N, d)), keeping what the backward needs; counts the routing for the aux loss. */
llmc_status moe_train_forward(moe_train *m, const moe_train_where *w, float *const *P, const float *xn, size_t N,
                              float *out);
/* After the forward of every layer: the load-balancing loss E * sum_e f_e * P_e over all sparse layers' tokens
 * (transformers' load_balancing_loss_func), times the config's coefficient; grad_scale * N scales its gradient
 * as grad_scale scales the mean cross-entropy's. Returns coef * aux (0 for a dense config). */
double moe_train_aux(moe_train *m, size_t N, float grad_scale);
/* dxn (N, d) = d loss / d xn from dout (N, d) = d loss / d out; weight gradients accumulate into G. */
llmc_status moe_train_backward(moe_train *m, const moe_train_where *w, float *const *P, float *const *G,
                               const float *xn, const float *dout, size_t N, float *dxn);

#endif
