/* train.c: self-supervised training of the gpt2 and llama-family architectures (llama, mistral's sliding window,
 * qwen2's q/k/v biases, qwen3's q/k norms, llama3 RoPE scaling): a forward pass that keeps the activations the
 * backward pass needs, the full backward pass, and the loss (next-token cross-entropy).
 *
 * Weights are not owned here: the caller passes one pointer per tensor, in the order llmc_train_tensor_info()
 * gives (the checkpoint's own names), so the same buffers serve inference and training. Gradients accumulate
 * (+=) into caller buffers of the same shapes. All activations live in one allocation sized at creation for at most
 * (B, T) tokens; a step allocates nothing itself.
 *
 * Shapes: N = B * T token rows; d = d_model; Hq, Hkv heads of size hd; ff = MLP width; V = vocab. Per-layer
 * activations are kept as rows (N, .) for the matmuls and as heads (B, H, T, hd) for attention.
 *
 * Mixed precision (c.precision = LLMC_PRECISION_BF16): every linear layer's matmul reads bf16-rounded operands
 * (train_bf16.c): the weights through rounded copies refreshed at each step (the caller's float32 weights stay the
 * masters), the activations that feed a matmul rounded in place when they are made (they are saved for the weight
 * gradients in that form, as autocast saves its bf16 casts), and the output gradients rounded before the backward
 * matmuls (bias gradients are summed from the float32 ones first). Products accumulate in float32. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <omp.h>

#include "blas.h"
#include "internal.h"
#include "moe_train.h"
#include "simd.h"

struct llmc_trainer {
    llmc_train_config c;
    size_t B, T; /* capacity */
    float *mem;
    /* per layer (index l): saved activations; qr, kr (q, k before their norms) only with qk_norm */
    float **x_in, **xn1, **q, **k, **v, **qr, **kr, **att_t, **x_mid, **xn2, **ff_a, **ff_b, **ff_c;
    float *x_last, *xf, *logits;
    /* scratch; dres_mm (bf16 only): the residual gradient rounded for the matmuls */
    float *qkv, *att, *dres, *dres_mm, *dxn, *dqkv, *dq, *dk, *dv, *datt, *datt_t, *dff_a, *dff_b, *dff_c, *att_scratch;
    float *rope_cos, *rope_sin; /* (T, hd / 2) each: the RoPE rotation of positions 0 .. T-1 */
    float **wmm;                /* bf16: per tensor, the bf16-rounded copy its matmuls read (NULL if none); else NULL */
    float *wmm_mem;
    size_t scratch_threads; /* att_scratch holds 2 * T * T floats for each of this many threads */
    moe_train *moe;         /* mixture of experts: the sparse layers' saved activations (moe_train.c), or NULL */
};

/* ---------------------------------------------------------------- tensor layout */
/* llama family, index within a layer: the 9 tensors every variant has, then q/k/v biases (qkv_bias), then the
 * q/k norms (qk_norm) */
enum { L_LN1, L_Q, L_K, L_V, L_O, L_LN2, L_GATE, L_UP, L_DOWN, L_BASE };
static size_t bias_at(const llmc_train_config *c) { (void)c; return L_BASE; }
static size_t qknorm_at(const llmc_train_config *c) { return L_BASE + (c->qkv_bias ? 3 : 0); }
static size_t per_layer(const llmc_train_config *c) {
    return c->arch == LLMC_TRAIN_GPT2 ? 12 : L_BASE + (c->qkv_bias ? 3 : 0) + (c->qk_norm ? 2 : 0);
}
static size_t first_layer(const llmc_train_config *c) { return c->arch == LLMC_TRAIN_GPT2 ? 2 : 1; }

size_t llmc_train_n_tensors(const llmc_train_config *c) {
    size_t n = first_layer(c) + per_layer(c) * c->n_layers;
    if (c->arch == LLMC_TRAIN_GPT2) return n + 2;  /* ln_f weight, bias (lm_head tied to wte) */
    return n + 1 + (c->tied ? 0 : 1) + moe_train_tail_tensors(c); /* norm, lm_head, the MoE tail (moe_train.h) */
}

/* the llama family's tensors before the MoE tail */
static size_t dense_tensors(const llmc_train_config *c) { return first_layer(c) + per_layer(c) * c->n_layers + 1 + !c->tied; }

llmc_status llmc_train_tensor_info(const llmc_train_config *c, size_t i, char *name, size_t cap, size_t shape[2],
                                   int *ndim) {
    const size_t d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, ff = c->d_ff;
    const size_t n = llmc_train_n_tensors(c), L0 = first_layer(c), P = per_layer(c);
    if (i >= n) return llmc_fail(LLMC_ERR_INVALID, "tensor index %zu out of range (%zu tensors)", i, n);
    shape[1] = 0;
    *ndim = 2;
#define SET(fmt, r, cc)                                                                                                \
    do {                                                                                                               \
        snprintf(name, cap, fmt, l);                                                                                   \
        shape[0] = (r);                                                                                                \
        shape[1] = (cc);                                                                                               \
        *ndim = ((cc) != 0) ? 2 : 1;                                                                                   \
    } while (0)
    size_t l = 0;
    if (c->arch == LLMC_TRAIN_GPT2) {
        if (i == 0) { snprintf(name, cap, "transformer.wte.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
        if (i == 1) { snprintf(name, cap, "transformer.wpe.weight"); shape[0] = c->n_positions; shape[1] = d; return LLMC_OK; }
        if (i >= L0 + P * c->n_layers) {
            snprintf(name, cap, i == n - 2 ? "transformer.ln_f.weight" : "transformer.ln_f.bias");
            shape[0] = d; *ndim = 1;
            return LLMC_OK;
        }
        l = (i - L0) / P;
        switch ((i - L0) % P) {
        case 0: SET("transformer.h.%zu.ln_1.weight", d, 0); break;
        case 1: SET("transformer.h.%zu.ln_1.bias", d, 0); break;
        case 2: SET("transformer.h.%zu.attn.c_attn.weight", d, 3 * d); break; /* Conv1D: (in, out) */
        case 3: SET("transformer.h.%zu.attn.c_attn.bias", 3 * d, 0); break;
        case 4: SET("transformer.h.%zu.attn.c_proj.weight", d, d); break;
        case 5: SET("transformer.h.%zu.attn.c_proj.bias", d, 0); break;
        case 6: SET("transformer.h.%zu.ln_2.weight", d, 0); break;
        case 7: SET("transformer.h.%zu.ln_2.bias", d, 0); break;
        case 8: SET("transformer.h.%zu.mlp.c_fc.weight", d, ff); break;
        case 9: SET("transformer.h.%zu.mlp.c_fc.bias", ff, 0); break;
        case 10: SET("transformer.h.%zu.mlp.c_proj.weight", ff, d); break;
        default: SET("transformer.h.%zu.mlp.c_proj.bias", d, 0); break;
        }
        return LLMC_OK;
    }
    if (i >= dense_tensors(c)) {
        moe_train_tail_info(c, i - dense_tensors(c), name, cap, shape, ndim);
        return LLMC_OK;
    }
    if (i == 0) { snprintf(name, cap, "model.embed_tokens.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
    if (i == L0 + P * c->n_layers) { snprintf(name, cap, "model.norm.weight"); shape[0] = d; *ndim = 1; return LLMC_OK; }
    if (i == L0 + P * c->n_layers + 1) { snprintf(name, cap, "lm_head.weight"); shape[0] = c->vocab; shape[1] = d; return LLMC_OK; }
    l = (i - L0) / P;
    const size_t j = (i - L0) % P;
    if (j >= L_BASE) { /* the optional tensors */
        if (c->qkv_bias && j < qknorm_at(c)) {
            if (j == bias_at(c)) SET("model.layers.%zu.self_attn.q_proj.bias", qd, 0);
            else if (j == bias_at(c) + 1) SET("model.layers.%zu.self_attn.k_proj.bias", kvd, 0);
            else SET("model.layers.%zu.self_attn.v_proj.bias", kvd, 0);
        } else if (j == qknorm_at(c)) {
            SET("model.layers.%zu.self_attn.q_norm.weight", hd, 0);
        } else {
            SET("model.layers.%zu.self_attn.k_norm.weight", hd, 0);
        }
        return LLMC_OK;
    }
    if (j >= L_GATE && j <= L_DOWN && moe_train_sparse(c, l)) { /* a sparse layer's MLP slots hold expert 0 */
        moe_train_slot_info(c, l, (int)(j - L_GATE), name, cap, shape);
        return LLMC_OK;
    }
    switch (j) {
    case 0: SET("model.layers.%zu.input_layernorm.weight", d, 0); break;
    case 1: SET("model.layers.%zu.self_attn.q_proj.weight", qd, d); break; /* nn.Linear: (out, in) */
    case 2: SET("model.layers.%zu.self_attn.k_proj.weight", kvd, d); break;
    case 3: SET("model.layers.%zu.self_attn.v_proj.weight", kvd, d); break;
    case 4: SET("model.layers.%zu.self_attn.o_proj.weight", d, qd); break;
    case 5: SET("model.layers.%zu.post_attention_layernorm.weight", d, 0); break;
    case 6: SET("model.layers.%zu.mlp.gate_proj.weight", ff, d); break;
    case 7: SET("model.layers.%zu.mlp.up_proj.weight", ff, d); break;
    default: SET("model.layers.%zu.mlp.down_proj.weight", d, ff); break;
    }
#undef SET
    return LLMC_OK;
}

/* ---------------------------------------------------------------- create / free */
static llmc_status check_config(const llmc_train_config *c) {
    if (c->arch != LLMC_TRAIN_GPT2 && c->arch != LLMC_TRAIN_LLAMA)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "training supports the gpt2 and llama architectures (got arch %d)", c->arch);
    llmc_status mst = moe_train_check(c);
    if (mst) return mst;
    if (c->precision != LLMC_PRECISION_FP32 && c->precision != LLMC_PRECISION_BF16)
        return llmc_fail(LLMC_ERR_INVALID, "training precision must be fp32 (0) or bf16 (1), got %d", c->precision);
    if (!c->n_layers || !c->d_model || !c->n_heads || !c->n_kv_heads || !c->head_dim || !c->d_ff || !c->vocab)
        return llmc_fail(LLMC_ERR_INVALID, "training config has a zero size (layers %zu, d_model %zu, heads %zu/%zu, "
                         "head_dim %zu, d_ff %zu, vocab %zu)", c->n_layers, c->d_model, c->n_heads, c->n_kv_heads,
                         c->head_dim, c->d_ff, c->vocab);
    if (c->n_heads % c->n_kv_heads)
        return llmc_fail(LLMC_ERR_INVALID, "n_heads (%zu) must be a multiple of n_kv_heads (%zu)", c->n_heads, c->n_kv_heads);
    if (c->arch == LLMC_TRAIN_GPT2) {
        if (c->n_heads != c->n_kv_heads || c->n_heads * c->head_dim != c->d_model)
            return llmc_fail(LLMC_ERR_INVALID, "gpt2 needs n_heads * head_dim == d_model and no grouped-query heads");
        if (c->window || c->qkv_bias || c->qk_norm || c->rope.llama3 || c->rope_divisors || !c->tied)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "gpt2 training has tied embeddings and no sliding window, q/k/v "
                             "bias flag, q/k norms or RoPE (window %zu, qkv_bias %d, qk_norm %d, tied %d)", c->window,
                             c->qkv_bias, c->qk_norm, c->tied);
    } else {
        if (c->head_dim % 2) return llmc_fail(LLMC_ERR_INVALID, "RoPE needs an even head_dim, got %zu", c->head_dim);
        if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
            return llmc_fail(LLMC_ERR_INVALID, "rope_theta must be positive and finite, got %g", (double)c->rope_theta);
        const llmc_rope_scaling *r = &c->rope;
        if (r->llama3 && !(r->factor > 0 && r->low_freq_factor > 0 && r->high_freq_factor > r->low_freq_factor &&
                           r->original_context > 0))
            return llmc_fail(LLMC_ERR_INVALID, "llama3 RoPE scaling needs factor > 0, 0 < low_freq_factor < "
                             "high_freq_factor and original_max_position_embeddings > 0 (got %g, %g, %g, %zu)",
                             (double)r->factor, (double)r->low_freq_factor, (double)r->high_freq_factor,
                             r->original_context);
        for (size_t i = 0; c->rope_divisors && i < c->head_dim / 2; i++)
            if (!(c->rope_divisors[i] > 0) || !isfinite(c->rope_divisors[i]))
                return llmc_fail(LLMC_ERR_INVALID, "RoPE frequency divisor %zu is %g (must be positive and finite)", i,
                                 (double)c->rope_divisors[i]);
    }
    return LLMC_OK;
}

/* Is tensor i read by a matmul (and so needs a bf16 copy in mixed precision)? The 2-D weights, except gpt2's
 * position table and an untied llama's embedding matrix, which are only looked up. */
static int is_matmul_weight(const llmc_train_config *c, size_t i, int ndim) {
    if (ndim != 2) return 0;
    if (c->arch == LLMC_TRAIN_GPT2) return i != 1;
    return i != 0 || c->tied;
}

llmc_status llmc_trainer_create(const llmc_train_config *c, size_t B, size_t T, llmc_trainer **out) {
    *out = NULL;
    llmc_status st = check_config(c);
    if (st) return st;
    if (!B || !T) return llmc_fail(LLMC_ERR_INVALID, "batch size and sequence length must be >= 1 (got %zu, %zu)", B, T);
    /* gpt2 has a learned position table of n_positions rows; llama's RoPE could rotate any position, but the
     * model is only trained (and, by transformers, only run) within max_position_embeddings: honour it for both */
    if (T > c->n_positions)
        return llmc_fail(LLMC_ERR_INVALID, "sequence length %zu exceeds the model's context window of %zu positions "
                         "(%s)", T, c->n_positions, c->arch == LLMC_TRAIN_GPT2 ? "n_positions" : "max_position_embeddings");
    const size_t L = c->n_layers, d = c->d_model, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    const size_t ff = c->d_ff, V = c->vocab, W3 = qd + 2 * kvd, half = hd / 2;
    const int bf16 = c->precision == LLMC_PRECISION_BF16;
    size_t N;
    if (!llmc_mul_ok(B, T, &N)) return llmc_fail(LLMC_ERR_NOMEM, "B * T overflows");
    /* floats per layer and in total, overflow-checked: every term is N * (a width) */
    size_t widths_layer = 4 * d + qd + 2 * kvd + qd + 3 * ff; /* x_in xn1 x_mid xn2 | q k v | att_t | 3 ff */
    if (c->qk_norm) widths_layer += qd + kvd;                  /* qr kr */
    size_t widths_global = 2 * d + V + W3 + qd + 2 * d + W3 + qd + 2 * kvd + 2 * qd + 3 * ff + (bf16 ? d : 0);
    const size_t nthr = (size_t)llmc_threads(); /* attention backward runs one (sequence, KV head) per thread */
    size_t per, total, fl, tt, rope_n = 0;
    if (c->arch == LLMC_TRAIN_LLAMA && !llmc_size3(T, half, 2, 1, &rope_n))
        return llmc_fail(LLMC_ERR_NOMEM, "RoPE tables for T=%zu overflow size_t", T);
    if (!llmc_mul_ok(N, widths_layer, &per) || !llmc_mul_ok(per, L, &total) || !llmc_mul_ok(N, widths_global, &fl) ||
        !llmc_add_ok(total, fl, &total) || !llmc_size3(T, T, 2 * nthr, 1, &tt) || !llmc_add_ok(total, tt, &total) ||
        !llmc_add_ok(total, rope_n, &total) || !llmc_mul_ok(total, sizeof(float), &total))
        return llmc_fail(LLMC_ERR_NOMEM, "training activations for B=%zu, T=%zu overflow size_t", B, T);
    llmc_trainer *t = llmc_calloc(1, sizeof *t, "trainer");
    if (!t) return LLMC_ERR_NOMEM;
    t->c = *c;
    t->c.rope_divisors = NULL; /* used below, not kept */
    t->B = B;
    t->T = T;
    float ***lists[] = {&t->x_in, &t->xn1, &t->q,     &t->k,   &t->v,    &t->qr,   &t->kr,
                        &t->att_t, &t->x_mid, &t->xn2, &t->ff_a, &t->ff_b, &t->ff_c};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        if (!(*lists[i] = llmc_calloc(L, sizeof(float *), "trainer tables"))) goto nomem;
    t->mem = llmc_malloc(total, "training activations");
    if (!t->mem) goto nomem;
    float *p = t->mem;
#define TAKE(dst, n) (dst = p, p += (n))
    for (size_t l = 0; l < L; l++) {
        TAKE(t->x_in[l], N * d); TAKE(t->xn1[l], N * d); TAKE(t->x_mid[l], N * d); TAKE(t->xn2[l], N * d);
        TAKE(t->q[l], N * qd); TAKE(t->k[l], N * kvd); TAKE(t->v[l], N * kvd); TAKE(t->att_t[l], N * qd);
        TAKE(t->ff_a[l], N * ff); TAKE(t->ff_b[l], N * ff); TAKE(t->ff_c[l], N * ff);
        if (c->qk_norm) { TAKE(t->qr[l], N * qd); TAKE(t->kr[l], N * kvd); }
    }
    TAKE(t->x_last, N * d); TAKE(t->xf, N * d); TAKE(t->logits, N * V); TAKE(t->qkv, N * W3); TAKE(t->att, N * qd);
    TAKE(t->dres, N * d); TAKE(t->dxn, N * d); TAKE(t->dqkv, N * W3); TAKE(t->dq, N * qd); TAKE(t->dk, N * kvd);
    TAKE(t->dv, N * kvd); TAKE(t->datt, N * qd); TAKE(t->datt_t, N * qd); TAKE(t->dff_a, N * ff);
    TAKE(t->dff_b, N * ff); TAKE(t->dff_c, N * ff); TAKE(t->att_scratch, 2 * T * T * nthr);
    if (bf16) TAKE(t->dres_mm, N * d);
    if (c->arch == LLMC_TRAIN_LLAMA) { TAKE(t->rope_cos, T * half); TAKE(t->rope_sin, T * half); }
    t->scratch_threads = nthr;
#undef TAKE
    if (c->arch == LLMC_TRAIN_LLAMA) {
        /* angle = position * inv_freq in float32, as transformers and the inference forward compute it */
        float *inv_freq = llmc_malloc((half + 1) * sizeof(float), "RoPE frequencies");
        if (!inv_freq) goto nomem;
        llmc_rope_inv_freq(c->rope_theta, hd, &c->rope, c->rope_divisors, inv_freq);
        for (size_t pos = 0; pos < T; pos++)
            for (size_t i = 0; i < half; i++) {
                float a = (float)pos * inv_freq[i];
                t->rope_cos[pos * half + i] = cosf(a);
                t->rope_sin[pos * half + i] = sinf(a);
            }
        llmc_free(inv_freq);
    }
    if ((st = moe_train_create(c, N, &t->moe))) {
        llmc_trainer_free(t);
        return st;
    }
    if (bf16) { /* the bf16 copies of the matmul weights */
        const size_t n = llmc_train_n_tensors(c);
        size_t wtotal = 0;
        if (!(t->wmm = llmc_calloc(n, sizeof(float *), "bf16 weight table"))) goto nomem;
        for (int pass = 0; pass < 2; pass++) { /* 0: count and allocate, 1: hand out */
            float *w = t->wmm_mem;
            for (size_t i = 0; i < n; i++) {
                char name[8]; /* unused: only the shape is wanted */
                size_t shape[2], cnt;
                int nd;
                llmc_train_tensor_info(c, i, name, sizeof name, shape, &nd);
                if (!is_matmul_weight(c, i, nd)) continue;
                if (!llmc_mul_ok(shape[0], shape[1], &cnt) || (!pass && !llmc_add_ok(wtotal, cnt, &wtotal))) {
                    llmc_trainer_free(t);
                    return llmc_fail(LLMC_ERR_NOMEM, "bf16 weight copies overflow size_t");
                }
                if (pass) {
                    t->wmm[i] = w;
                    w += cnt;
                }
            }
            if (!pass && !(t->wmm_mem = llmc_malloc(wtotal * sizeof(float) + sizeof(float), "bf16 weight copies")))
                goto nomem;
        }
    }
    *out = t;
    return LLMC_OK;
nomem:
    llmc_trainer_free(t);
    return LLMC_ERR_NOMEM;
}

void llmc_trainer_free(llmc_trainer *t) {
    if (!t) return;
    moe_train_free(t->moe);
    llmc_free(t->mem);
    llmc_free(t->wmm_mem);
    llmc_free(t->wmm);
    float **lists[] = {t->x_in, t->xn1, t->q, t->k, t->v, t->qr, t->kr, t->att_t, t->x_mid, t->xn2, t->ff_a, t->ff_b,
                       t->ff_c};
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) llmc_free(lists[i]);
    llmc_free(t);
}

/* ---------------------------------------------------------------- building blocks */
/* y (N, out) [row stride ldy] = beta * y + x (N, in) [row stride ldx] @ W^T (+ b).
 * w_in_out = 0: W is (out, in) (nn.Linear); 1: W is (in, out) (GPT-2's Conv1D, y = x @ W). */
static llmc_status lin_fwd(const float *x, size_t ldx, const float *w, const float *b, float *y, size_t ldy, size_t N,
                           size_t in, size_t out, int w_in_out, float beta) {
    llmc_status st = w_in_out ? llmc_sgemm(0, 0, N, out, in, 1.0f, x, ldx, w, out, beta, y, ldy)
                              : llmc_sgemm(0, 1, N, out, in, 1.0f, x, ldx, w, in, beta, y, ldy);
    if (!st && b)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(y + n * ldy, 1.0f, b, out);
    return st;
}

/* Gradients of lin_fwd's product: dx (N, in) = dx_beta * dx + dy @ W (or W^T); dW += dy^T x (or x^T dy). */
static llmc_status lin_bwd(const float *dy, size_t lddy, const float *x, size_t ldx, const float *w, float *dx,
                           float dx_beta, float *dw, size_t N, size_t in, size_t out, int w_in_out) {
    llmc_status st;
    if (w_in_out) {
        if ((st = llmc_sgemm(0, 1, N, in, out, 1.0f, dy, lddy, w, out, dx_beta, dx, in))) return st;
        return llmc_sgemm(1, 0, in, out, N, 1.0f, x, ldx, dy, lddy, 1.0f, dw, out);
    }
    if ((st = llmc_sgemm(0, 0, N, in, out, 1.0f, dy, lddy, w, in, dx_beta, dx, in))) return st;
    return llmc_sgemm(1, 0, out, in, N, 1.0f, dy, lddy, x, ldx, 1.0f, dw, in);
}

/* db (out,) += column sums of dy (N, out) [row stride lddy] */
static void bias_grad(float *db, const float *dy, size_t lddy, size_t N, size_t out) {
    for (size_t n = 0; n < N; n++) llmc_k->axpy(db, 1.0f, dy + n * lddy, out);
}

/* Mixed precision: a matmul operand x (n,) rounded to bf16 in place (no-op in fp32) ... */
static void mm_round(const llmc_trainer *t, float *x, size_t n) {
    if (t->c.precision == LLMC_PRECISION_BF16) llmc_round_bf16(x, x, n);
}
/* ... or the residual gradient dres (N, d) as the matmuls read it: itself, or its rounded copy */
static const float *mm_dres(const llmc_trainer *t, size_t n) {
    if (t->c.precision != LLMC_PRECISION_BF16) return t->dres;
    llmc_round_bf16(t->dres, t->dres_mm, n);
    return t->dres_mm;
}
/* ... and weight i as the matmuls read it */
static const float *mm_w(const llmc_trainer *t, float *const *P, size_t i) { return t->wmm ? t->wmm[i] : P[i]; }

/* rows (B*T, W3) holding [q heads | k heads | v heads] <-> packed heads q: (B, Hq, T, hd), k, v: (B, Hkv, T, hd).
 * to_heads = 1 splits rows into heads, 0 merges heads back into rows (overwriting them). */
static void heads_rows(float *rows, float *q, float *k, float *v, size_t B, size_t T, size_t Hq, size_t Hkv,
                       size_t hd, int to_heads) {
    const size_t W3 = (Hq + 2 * Hkv) * hd;
#pragma omp parallel for num_threads(llmc_threads_for(B * T * W3)) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t t = 0; t < T; t++) {
            float *row = rows + (b * T + t) * W3;
            for (size_t h = 0; h < Hq + 2 * Hkv; h++) {
                float *head;
                if (h < Hq) head = q + ((b * Hq + h) * T + t) * hd;
                else if (h < Hq + Hkv) head = k + ((b * Hkv + (h - Hq)) * T + t) * hd;
                else head = v + ((b * Hkv + (h - Hq - Hkv)) * T + t) * hd;
                if (to_heads) memcpy(head, row + h * hd, hd * sizeof(float));
                else memcpy(row + h * hd, head, hd * sizeof(float));
            }
        }
}

/* att heads (B, H, T, hd) <-> rows (B*T, H*hd) */
static void att_rows(float *heads, float *rows, size_t B, size_t T, size_t H, size_t hd, int to_rows) {
#pragma omp parallel for num_threads(llmc_threads_for(B * T * H * hd)) schedule(static)
    for (size_t b = 0; b < B; b++)
        for (size_t h = 0; h < H; h++)
            for (size_t t = 0; t < T; t++) {
                float *hp = heads + ((b * H + h) * T + t) * hd, *rp = rows + (b * T + t) * H * hd + h * hd;
                if (to_rows) memcpy(rp, hp, hd * sizeof(float));
                else memcpy(hp, rp, hd * sizeof(float));
            }
}

/* RoPE (rotate-half layout) in place on x: (outer, T, hd), position = time index. dir = +1 rotates by the angle
 * (forward); dir = -1 by minus the angle, the transpose of the rotation (backward). */
static void rope(const llmc_trainer *t, float *x, size_t outer, size_t T, float dir) {
    const size_t hd = t->c.head_dim, half = hd / 2;
#pragma omp parallel for num_threads(llmc_threads_for(outer * T * hd * 2)) schedule(static)
    for (size_t o = 0; o < outer; o++)
        for (size_t p = 0; p < T; p++) {
            float *r = x + (o * T + p) * hd;
            const float *c = t->rope_cos + p * half, *s = t->rope_sin + p * half;
            for (size_t i = 0; i < half; i++) {
                /* the pair (a, b) = (r[i], r[i + half]) turns by dir * angle */
                float a = r[i], b = r[i + half], sn = dir * s[i];
                r[i] = a * c[i] - b * sn;
                r[i + half] = a * sn + b * c[i];
            }
        }
}

/* ---------------------------------------------------------------- forward */
static llmc_status forward(llmc_trainer *t, float *const *P, const int64_t *ids, size_t B, size_t T) {
    const llmc_train_config *c = &t->c;
    const int gpt2 = c->arch == LLMC_TRAIN_GPT2;
    const size_t N = B * T, d = c->d_model, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    const size_t qd = Hq * hd, kvd = Hkv * hd, W3 = qd + 2 * kvd, ff = c->d_ff, L0 = first_layer(c), PL = per_layer(c);
    const size_t ib = bias_at(c), in = qknorm_at(c);
    llmc_status st;
    /* embeddings: x = wte[ids] (+ wpe[t] for gpt2); lookups read the float32 masters */
    float *x = c->n_layers ? t->x_in[0] : t->x_last;
    if ((st = llmc_embedding(P[0], c->vocab, d, ids, N, x))) return st;
    if (gpt2)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(x + n * d, 1.0f, P[1] + (n % T) * d, d);
    for (size_t l = 0; l < c->n_layers; l++) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* Ctrl-C: stop before any weight changes */
        float *const *w = P + L0 + PL * l;
#define MW(j) mm_w(t, P, L0 + PL * l + (j)) /* weight j of this layer as the matmuls read it */
        float *xin = t->x_in[l], *xout = l + 1 < c->n_layers ? t->x_in[l + 1] : t->x_last;
        /* attention sub-block: xn1 = norm(x); q, k, v projections; (q/k norms, RoPE); causal attention; output
         * projection */
        if (gpt2) {
            if ((st = llmc_layer_norm(xin, w[0], w[1], t->xn1[l], N, d, c->eps))) return st;
            mm_round(t, t->xn1[l], N * d);
            if ((st = lin_fwd(t->xn1[l], d, MW(2), w[3], t->qkv, W3, N, d, W3, 1, 0.0f))) return st;
        } else {
            if ((st = llmc_rms_norm(xin, w[L_LN1], t->xn1[l], N, d, c->eps))) return st;
            mm_round(t, t->xn1[l], N * d);
            const float *bq = c->qkv_bias ? w[ib] : NULL, *bk = c->qkv_bias ? w[ib + 1] : NULL;
            const float *bv = c->qkv_bias ? w[ib + 2] : NULL;
            if ((st = lin_fwd(t->xn1[l], d, MW(L_Q), bq, t->qkv, W3, N, d, qd, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn1[l], d, MW(L_K), bk, t->qkv + qd, W3, N, d, kvd, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn1[l], d, MW(L_V), bv, t->qkv + qd + kvd, W3, N, d, kvd, 0, 0.0f))) return st;
        }
        /* with q/k norms the projections are kept as qr, kr and their normed heads become q, k */
        heads_rows(t->qkv, c->qk_norm ? t->qr[l] : t->q[l], c->qk_norm ? t->kr[l] : t->k[l], t->v[l], B, T, Hq, Hkv,
                   hd, 1);
        if (c->qk_norm) {
            if ((st = llmc_rms_norm(t->qr[l], w[in], t->q[l], B * Hq * T, hd, c->eps))) return st;
            if ((st = llmc_rms_norm(t->kr[l], w[in + 1], t->k[l], B * Hkv * T, hd, c->eps))) return st;
        }
        if (!gpt2) { /* rotate q and k in place; the saved q, k are the rotated ones attention saw */
            rope(t, t->q[l], B * Hq, T, 1.0f);
            rope(t, t->k[l], B * Hkv, T, 1.0f);
        }
        llmc_attention_args a = {0};
        a.q = t->q[l]; a.k = t->k[l]; a.v = t->v[l]; a.out = t->att;
        a.B = B; a.Hq = Hq; a.Hkv = Hkv; a.Tq = T; a.Tk = T; a.d = hd;
        a.impl = LLMC_ATTN_FLASH; a.causal = 1; a.window = c->window; a.scale = 1.0f / sqrtf((float)hd);
        if ((st = llmc_attention(&a))) return st;
        att_rows(t->att, t->att_t[l], B, T, Hq, hd, 1);
        mm_round(t, t->att_t[l], N * qd);
        memcpy(t->x_mid[l], xin, N * d * sizeof(float)); /* residual: x_mid = x + proj(att) */
        if ((st = lin_fwd(t->att_t[l], qd, MW(4), gpt2 ? w[5] : NULL, t->x_mid[l], d, N, qd, d, gpt2, 1.0f)))
            return st;
        /* MLP sub-block */
        memcpy(xout, t->x_mid[l], N * d * sizeof(float));
        if (gpt2) {
            /* ff_a = fc pre-activation, ff_b = gelu(ff_a); out += ff_b @ W_proj + b */
            if ((st = llmc_layer_norm(t->x_mid[l], w[6], w[7], t->xn2[l], N, d, c->eps))) return st;
            mm_round(t, t->xn2[l], N * d);
            if ((st = lin_fwd(t->xn2[l], d, MW(8), w[9], t->ff_a[l], ff, N, d, ff, 1, 0.0f))) return st;
            if ((st = llmc_gelu(t->ff_a[l], t->ff_b[l], N * ff, 1))) return st;
            mm_round(t, t->ff_b[l], N * ff);
            if ((st = lin_fwd(t->ff_b[l], ff, MW(10), w[11], xout, d, N, ff, d, 1, 1.0f))) return st;
        } else {
            /* ff_a = gate, ff_b = up, ff_c = silu(gate) * up (SwiGLU); out += ff_c @ W_down^T */
            if ((st = llmc_rms_norm(t->x_mid[l], w[L_LN2], t->xn2[l], N, d, c->eps))) return st;
            mm_round(t, t->xn2[l], N * d);
            if (moe_train_sparse(c, l)) { /* a mixture of experts instead (moe_train.c) */
                const moe_train_where mw = moe_train_locate(c, l, L0 + PL * l + L_GATE, dense_tensors(c));
                if ((st = moe_train_forward(t->moe, &mw, P, t->xn2[l], N, xout))) return st;
                continue;
            }
            if ((st = lin_fwd(t->xn2[l], d, MW(L_GATE), NULL, t->ff_a[l], ff, N, d, ff, 0, 0.0f))) return st;
            if ((st = lin_fwd(t->xn2[l], d, MW(L_UP), NULL, t->ff_b[l], ff, N, d, ff, 0, 0.0f))) return st;
            if ((st = llmc_silu(t->ff_a[l], t->ff_c[l], N * ff))) return st;
            for (size_t i = 0; i < N * ff; i++) t->ff_c[l][i] *= t->ff_b[l][i];
            mm_round(t, t->ff_c[l], N * ff);
            if ((st = lin_fwd(t->ff_c[l], ff, MW(L_DOWN), NULL, xout, d, N, ff, d, 0, 1.0f))) return st;
        }
#undef MW
    }
    /* final norm and tied / untied head */
    const size_t fn = L0 + PL * c->n_layers;
    if (gpt2) st = llmc_layer_norm(t->x_last, P[fn], P[fn + 1], t->xf, N, d, c->eps);
    else st = llmc_rms_norm(t->x_last, P[fn], t->xf, N, d, c->eps);
    if (st) return st;
    mm_round(t, t->xf, N * d);
    const float *head = mm_w(t, P, (gpt2 || c->tied) ? 0 : fn + 1);
    return lin_fwd(t->xf, d, head, NULL, t->logits, c->vocab, N, d, c->vocab, 0, 0.0f);
}

/* ---------------------------------------------------------------- backward */
static llmc_status backward(llmc_trainer *t, float *const *P, float *const *G, const int64_t *ids, size_t B, size_t T) {
    const llmc_train_config *c = &t->c;
    const int gpt2 = c->arch == LLMC_TRAIN_GPT2;
    const size_t N = B * T, d = c->d_model, hd = c->head_dim, Hq = c->n_heads, Hkv = c->n_kv_heads;
    const size_t qd = Hq * hd, kvd = Hkv * hd, W3 = qd + 2 * kvd, ff = c->d_ff, L0 = first_layer(c), PL = per_layer(c);
    const size_t fn = L0 + PL * c->n_layers, ib = bias_at(c), in = qknorm_at(c);
    llmc_status st;
    /* t->logits holds dloss/dlogits. Head: dxf = dlogits @ W_head; dW_head += dlogits^T xf */
    const size_t head = (gpt2 || c->tied) ? 0 : fn + 1;
    mm_round(t, t->logits, N * c->vocab);
    if ((st = lin_bwd(t->logits, c->vocab, t->xf, d, mm_w(t, P, head), t->dxn, 0.0f, G[head], N, d, c->vocab, 0)))
        return st;
    memset(t->dres, 0, N * d * sizeof(float));
    if (gpt2) st = llmc_layer_norm_backward(t->dxn, t->x_last, P[fn], t->dres, G[fn], G[fn + 1], N, d, c->eps);
    else st = llmc_rms_norm_backward(t->dxn, t->x_last, P[fn], t->dres, G[fn], N, d, c->eps);
    if (st) return st;
    for (size_t li = c->n_layers; li-- > 0;) {
        if (llmc_interrupted()) return LLMC_ERR_INTERRUPTED; /* gradients are partial: the caller zeroes them */
        float *const *w = P + L0 + PL * li;
        float *const *g = G + L0 + PL * li;
#define MW(j) mm_w(t, P, L0 + PL * li + (j))
        /* dres = d(layer output). MLP: out = x_mid + mlp(norm(x_mid)) */
        const float *dres_mm = mm_dres(t, N * d);
        if (gpt2) {
            /* dff_b = d gelu output = dres @ W_proj^T; then through gelu into dff_a */
            bias_grad(g[11], t->dres, d, N, d);
            if ((st = lin_bwd(dres_mm, d, t->ff_b[li], ff, MW(10), t->dff_b, 0.0f, g[10], N, ff, d, 1))) return st;
            memset(t->dff_a, 0, N * ff * sizeof(float));
            if ((st = llmc_gelu_backward(t->dff_b, t->ff_a[li], t->dff_a, N * ff, 1))) return st;
            bias_grad(g[9], t->dff_a, ff, N, ff);
            mm_round(t, t->dff_a, N * ff);
            if ((st = lin_bwd(t->dff_a, ff, t->xn2[li], d, MW(8), t->dxn, 0.0f, g[8], N, d, ff, 1))) return st;
            if ((st = llmc_layer_norm_backward(t->dxn, t->x_mid[li], w[6], t->dres, g[6], g[7], N, d, c->eps))) return st;
        } else {
            if (moe_train_sparse(c, li)) { /* a mixture of experts (moe_train.c): dxn, then through the norm */
                const moe_train_where mw = moe_train_locate(c, li, L0 + PL * li + L_GATE, dense_tensors(c));
                if ((st = moe_train_backward(t->moe, &mw, P, G, t->xn2[li], t->dres, N, t->dxn)) ||
                    (st = llmc_rms_norm_backward(t->dxn, t->x_mid[li], w[L_LN2], t->dres, g[L_LN2], N, d, c->eps)))
                    return st;
                goto attention;
            }
            /* dff_c = d(silu(gate) * up) = dres @ W_down */
            if ((st = lin_bwd(dres_mm, d, t->ff_c[li], ff, MW(L_DOWN), t->dff_c, 0.0f, g[L_DOWN], N, ff, d, 0)))
                return st;
            /* d up = dff_c * silu(gate) (into dff_b); d gate = silu'(gate) * (dff_c * up) (into dff_a) */
            if ((st = llmc_silu(t->ff_a[li], t->dff_b, N * ff))) return st;
            for (size_t i = 0; i < N * ff; i++) {
                t->dff_b[i] *= t->dff_c[i];
                t->dff_c[i] *= t->ff_b[li][i];
            }
            memset(t->dff_a, 0, N * ff * sizeof(float));
            if ((st = llmc_silu_backward(t->dff_c, t->ff_a[li], t->dff_a, N * ff))) return st;
            mm_round(t, t->dff_a, N * ff);
            mm_round(t, t->dff_b, N * ff);
            if ((st = lin_bwd(t->dff_a, ff, t->xn2[li], d, MW(L_GATE), t->dxn, 0.0f, g[L_GATE], N, d, ff, 0))) return st;
            if ((st = lin_bwd(t->dff_b, ff, t->xn2[li], d, MW(L_UP), t->dxn, 1.0f, g[L_UP], N, d, ff, 0))) return st;
            if ((st = llmc_rms_norm_backward(t->dxn, t->x_mid[li], w[L_LN2], t->dres, g[L_LN2], N, d, c->eps)))
                return st;
        }
    attention:
        /* dres = d x_mid. Attention: x_mid = x_in + proj(att) */
        dres_mm = mm_dres(t, N * d);
        if (gpt2) bias_grad(g[5], t->dres, d, N, d);
        if ((st = lin_bwd(dres_mm, d, t->att_t[li], qd, MW(4), t->datt_t, 0.0f, g[4], N, qd, d, gpt2))) return st;
        att_rows(t->datt, t->datt_t, B, T, Hq, hd, 0);
        memset(t->dq, 0, N * qd * sizeof(float));
        memset(t->dk, 0, N * kvd * sizeof(float));
        memset(t->dv, 0, N * kvd * sizeof(float));
        /* one task per (sequence, KV head): it owns dk, dv of that head and dq of its G query heads, so tasks
         * never write the same memory; the GEMMs inside run single-threaded (we are in a parallel region) */
        const size_t grp = Hq / Hkv, tasks = B * Hkv;
        const int nt = (int)(tasks < t->scratch_threads ? tasks : t->scratch_threads);
        llmc_status att_st = LLMC_OK;
#pragma omp parallel for num_threads(nt) schedule(dynamic)
        for (size_t task = 0; task < tasks; task++) {
            const size_t b = task / Hkv, kh = task % Hkv;
            const size_t oq = (b * Hq + kh * grp) * T * hd, okv = (b * Hkv + kh) * T * hd;
            float *scratch = t->att_scratch + (size_t)omp_get_thread_num() * 2 * T * T;
            llmc_status s1 = llmc_attention_backward_ws(t->q[li] + oq, t->k[li] + okv, t->v[li] + okv, t->datt + oq,
                                                        t->dq + oq, t->dk + okv, t->dv + okv, grp, 1, T, hd,
                                                        1.0f / sqrtf((float)hd), 1, c->window, scratch);
            if (s1) {
#pragma omp critical(llmc_train_att)
                att_st = s1;
            }
        }
        if (att_st) return llmc_fail(att_st, "attention backward failed in layer %zu", li);
        if (!gpt2) { /* through RoPE: rotate the gradients back */
            rope(t, t->dq, B * Hq, T, -1.0f);
            rope(t, t->dk, B * Hkv, T, -1.0f);
        }
        if (c->qk_norm) { /* through the per-head norms, via datt (free now) as the accumulation buffer */
            memset(t->datt, 0, N * qd * sizeof(float));
            if ((st = llmc_rms_norm_backward(t->dq, t->qr[li], w[in], t->datt, g[in], B * Hq * T, hd, c->eps))) return st;
            memcpy(t->dq, t->datt, N * qd * sizeof(float));
            memset(t->datt, 0, N * kvd * sizeof(float));
            if ((st = llmc_rms_norm_backward(t->dk, t->kr[li], w[in + 1], t->datt, g[in + 1], B * Hkv * T, hd, c->eps)))
                return st;
            memcpy(t->dk, t->datt, N * kvd * sizeof(float));
        }
        heads_rows(t->dqkv, t->dq, t->dk, t->dv, B, T, Hq, Hkv, hd, 0);
        if (gpt2) {
            bias_grad(g[3], t->dqkv, W3, N, W3);
            mm_round(t, t->dqkv, N * W3);
            if ((st = lin_bwd(t->dqkv, W3, t->xn1[li], d, MW(2), t->dxn, 0.0f, g[2], N, d, W3, 1))) return st;
            if ((st = llmc_layer_norm_backward(t->dxn, t->x_in[li], w[0], t->dres, g[0], g[1], N, d, c->eps))) return st;
        } else {
            if (c->qkv_bias) {
                bias_grad(g[ib], t->dqkv, W3, N, qd);
                bias_grad(g[ib + 1], t->dqkv + qd, W3, N, kvd);
                bias_grad(g[ib + 2], t->dqkv + qd + kvd, W3, N, kvd);
            }
            mm_round(t, t->dqkv, N * W3);
            if ((st = lin_bwd(t->dqkv, W3, t->xn1[li], d, MW(L_Q), t->dxn, 0.0f, g[L_Q], N, d, qd, 0))) return st;
            if ((st = lin_bwd(t->dqkv + qd, W3, t->xn1[li], d, MW(L_K), t->dxn, 1.0f, g[L_K], N, d, kvd, 0))) return st;
            if ((st = lin_bwd(t->dqkv + qd + kvd, W3, t->xn1[li], d, MW(L_V), t->dxn, 1.0f, g[L_V], N, d, kvd, 0)))
                return st;
            if ((st = llmc_rms_norm_backward(t->dxn, t->x_in[li], w[L_LN1], t->dres, g[L_LN1], N, d, c->eps)))
                return st;
        }
#undef MW
    }
    /* embeddings */
    if ((st = llmc_embedding_backward(t->dres, ids, N, d, G[0], c->vocab))) return st;
    if (gpt2)
        for (size_t n = 0; n < N; n++) llmc_k->axpy(G[1] + (n % T) * d, 1.0f, t->dres + n * d, d);
    return LLMC_OK;
}

llmc_status llmc_trainer_step(llmc_trainer *t, float *const *params, float *const *grads, const int64_t *inputs,
                              const int64_t *targets, size_t B, size_t T, float grad_scale, double *loss_mean) {
    if (B == 0 || T == 0 || T > t->T || B * T > t->B * t->T)
        return llmc_fail(LLMC_ERR_INVALID, "batch (%zu, %zu) does not fit the trainer's (%zu, %zu)", B, T, t->B, t->T);
    const size_t N = B * T, V = t->c.vocab;
    for (size_t i = 0; i < N; i++)
        if (targets[i] < 0 || (uint64_t)targets[i] >= V)
            return llmc_fail(LLMC_ERR_INVALID, "target %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)targets[i], i, V);
    if (t->wmm) { /* mixed precision: this step's bf16 copies of the (possibly just updated) float32 weights */
        const size_t n = llmc_train_n_tensors(&t->c);
        for (size_t i = 0; i < n; i++) {
            char name[8];
            size_t shape[2];
            int nd;
            if (!t->wmm[i]) continue;
            llmc_train_tensor_info(&t->c, i, name, sizeof name, shape, &nd);
            llmc_round_bf16(params[i], t->wmm[i], shape[0] * shape[1]);
        }
    }
    llmc_status st = forward(t, params, inputs, B, T);
    if (st) return st;
    /* the logits buffer becomes dloss/dlogits; grad_scale is usually 1 / (N * accumulation steps) */
    double sum = llmc_cross_entropy_grad_inplace(t->logits, targets, N, V, grad_scale);
    const double aux = moe_train_aux(t->moe, N, grad_scale); /* coef * load-balancing loss (0 when dense) */
    if (loss_mean) *loss_mean = sum / (double)N + aux;
    if (!grads) return LLMC_OK;
    return backward(t, params, grads, inputs, B, T);
}

/* ---------------------------------------------------------------- batches */
// out: (n,) window starts in [0, max_start]
void llmc_random_starts(uint64_t seed, uint64_t step, size_t n, size_t max_start, int64_t *out) {
    /* a counter-based stream (splitmix64 of seed, step, i): the batch of step s does not depend on how many batches
     * were drawn before, so a resumed run sees exactly the batches an uninterrupted one would */
    for (size_t i = 0; i < n; i++) {
        uint64_t z = seed * 0x9E3779B97F4A7C15ull + step * 0xD1B54A32D192ED03ull + (uint64_t)i * 0x8CB92BA72F3D8DD7ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        /* multiply-shift maps 64 random bits onto [0, max_start] without modulo bias worth noticing */
        out[i] = (int64_t)(((unsigned __int128)z * ((unsigned __int128)max_start + 1)) >> 64);
    }
}
