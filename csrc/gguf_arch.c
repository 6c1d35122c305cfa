/* gguf_arch.c: what a GGUF model file means for llmc's models: hyperparameters from the {arch}.* keys, tensor names
 * (llama.cpp's blk.N.attn_q.weight <-> the Hugging Face checkpoint names llmc's models use), and the one change
 * llama.cpp's converter makes to the weights (the q/k row permutation of `llama`). See gguf_arch.h. */
#include <stdio.h>
#include <string.h>

#include "gguf_arch.h"
#include "internal.h"

/* ---------------------------------------------------------------- hyperparameters */
static llmc_status key_size(const llmc_gguf *g, const char *arch, const char *key, int required, size_t def,
                            size_t *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (!llmc_gguf_find_kv(g, full)) {
        if (required)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: missing metadata key '%s'", llmc_gguf_path(g), full);
        *out = def;
        return LLMC_OK;
    }
    uint64_t v;
    llmc_status s = llmc_gguf_get_uint(g, full, &v);
    if (s) return s;
    if (v == 0 || v > ((uint64_t)1 << 40))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: metadata key '%s' = %llu is out of range", llmc_gguf_path(g), full,
                         (unsigned long long)v);
    *out = (size_t)v;
    return LLMC_OK;
}

static llmc_status key_float(const llmc_gguf *g, const char *arch, const char *key, double def, double *out) {
    char full[128];
    snprintf(full, sizeof full, "%s.%s", arch, key);
    if (!llmc_gguf_find_kv(g, full)) {
        *out = def;
        return LLMC_OK;
    }
    llmc_status s = llmc_gguf_get_float(g, full, out);
    if (!s && !(*out > 0 && *out < 1e30))
        return llmc_fail(LLMC_ERR_FORMAT, "%s: metadata key '%s' = %g must be positive", llmc_gguf_path(g), full, *out);
    return s;
}

llmc_status llmc_gguf_model_config(const llmc_gguf *g, llmc_model_config *c, int *gelu_tanh) {
    const char *path = llmc_gguf_path(g);
    memset(c, 0, sizeof *c);
    *gelu_tanh = 0;
    const char *a;
    uint64_t alen;
    llmc_status s = llmc_gguf_get_str(g, "general.architecture", &a, &alen);
    if (s) return s;
    char arch[32];
    if (alen >= sizeof arch || memchr(a, 0, (size_t)alen))
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: general.architecture '%.40s' is not supported (llama, qwen2, qwen3, "
                         "gpt2)", path, a);
    memcpy(arch, a, (size_t)alen);
    arch[alen] = '\0';
    if (!strcmp(arch, "llama")) c->arch = LLMC_ARCH_LLAMA;
    else if (!strcmp(arch, "qwen2")) c->arch = LLMC_ARCH_QWEN2;
    else if (!strcmp(arch, "qwen3")) c->arch = LLMC_ARCH_QWEN3;
    else if (!strcmp(arch, "gpt2")) c->arch = LLMC_ARCH_GPT2;
    else
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: general.architecture '%s' is not supported by llmc (llama, qwen2, "
                         "qwen3, gpt2)", path, arch);
    if ((s = key_size(g, arch, "block_count", 1, 0, &c->n_layers)) ||
        (s = key_size(g, arch, "embedding_length", 1, 0, &c->d_model)) ||
        (s = key_size(g, arch, "attention.head_count", 1, 0, &c->n_heads)) ||
        (s = key_size(g, arch, "feed_forward_length", 1, 0, &c->d_ff)) ||
        (s = key_size(g, arch, "context_length", 1, 0, &c->context_length)) ||
        (s = key_size(g, arch, "attention.head_count_kv", 0, c->n_heads, &c->n_kv_heads)))
        return s;
    /* the vocabulary: {arch}.vocab_size, else the token embedding's rows */
    const llmc_gguf_tensor *te = llmc_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: missing 2-D tensor 'token_embd.weight'", path);
    if ((s = key_size(g, arch, "vocab_size", 0, (size_t)te->ne[1], &c->vocab))) return s;
    if (c->vocab != te->ne[1] || c->d_model != te->ne[0])
        return llmc_fail(LLMC_ERR_FORMAT, "%s: token_embd.weight has shape (%llu, %llu), the metadata says (%zu, %zu)",
                         path, (unsigned long long)te->ne[1], (unsigned long long)te->ne[0], c->vocab, c->d_model);
    c->causal = c->has_lm_head = 1;
    double eps, theta;
    if (c->arch == LLMC_ARCH_GPT2) {
        if ((s = key_float(g, arch, "attention.layer_norm_epsilon", 1e-5, &eps))) return s;
        if (c->d_model % c->n_heads)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: embedding_length %zu is not divisible by the %zu heads", path,
                             c->d_model, c->n_heads);
        c->head_dim = c->d_model / c->n_heads;
        c->n_kv_heads = c->n_heads;
        c->norm_eps = (float)eps;
        c->tied_embeddings = 1;
        *gelu_tanh = 1;
        return LLMC_OK;
    }
    if ((s = key_float(g, arch, "attention.layer_norm_rms_epsilon", 1e-6, &eps)) ||
        (s = key_float(g, arch, "rope.freq_base", 10000.0, &theta)) ||
        (s = key_size(g, arch, "attention.key_length", 0, c->d_model / c->n_heads, &c->head_dim)))
        return s;
    c->norm_eps = (float)eps;
    c->rope_theta = (float)theta;
    size_t vlen, rdim;
    if ((s = key_size(g, arch, "attention.value_length", 0, c->head_dim, &vlen)) ||
        (s = key_size(g, arch, "rope.dimension_count", 0, c->head_dim, &rdim)))
        return s;
    if (vlen != c->head_dim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: value_length %zu != key_length %zu is not supported", path, vlen,
                         c->head_dim);
    if (rdim != c->head_dim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: partial RoPE (rope.dimension_count %zu of head size %zu) is not "
                         "supported", path, rdim, c->head_dim);
    if (c->head_dim % 2) return llmc_fail(LLMC_ERR_FORMAT, "%s: head size %zu must be even for RoPE", path, c->head_dim);
    if (c->n_heads % c->n_kv_heads)
        return llmc_fail(LLMC_ERR_FORMAT, "%s: head_count %zu is not a multiple of head_count_kv %zu", path, c->n_heads,
                         c->n_kv_heads);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const llmc_gguf_kv *st = llmc_gguf_find_kv(g, key);
    if (st && st->type == LLMC_GGUF_STRING && !(st->len == 4 && !memcmp(st->data, "none", 4)))
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: %s = '%.*s' is not supported (llmc reads no scaling, and Llama 3's "
                         "as a rope_freqs.weight tensor)", path, key, (int)(st->len > 32 ? 32 : st->len),
                         (const char *)st->data);
    uint64_t window = 0;
    snprintf(key, sizeof key, "%s.attention.sliding_window", arch);
    if (llmc_gguf_find_kv(g, key) && (s = llmc_gguf_get_uint(g, key, &window))) return s;
    if (window && window < c->context_length) {
        if (c->arch != LLMC_ARCH_LLAMA)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: sliding-window attention is supported for llama (Mistral) only",
                             path);
        c->arch = LLMC_ARCH_MISTRAL;
        c->sliding_window = (size_t)window;
    }
    c->tied_embeddings = llmc_gguf_find_tensor(g, "output.weight") == NULL;
    /* a mixture of experts in llama's form (Mixtral): {arch}.expert_count > 0 experts of feed_forward_length,
     * {arch}.expert_used_count per token, weights renormalised */
    uint64_t n_exp = 0, n_used = 0;
    snprintf(key, sizeof key, "%s.expert_count", arch);
    if (llmc_gguf_find_kv(g, key) && (s = llmc_gguf_get_uint(g, key, &n_exp))) return s;
    if (n_exp) {
        if (c->arch != LLMC_ARCH_LLAMA && c->arch != LLMC_ARCH_MISTRAL)
            return llmc_fail(LLMC_ERR_UNSUPPORTED, "%s: experts (%s = %llu) are supported for llama (Mixtral) only",
                             path, key, (unsigned long long)n_exp);
        snprintf(key, sizeof key, "%s.expert_used_count", arch);
        if (!llmc_gguf_find_kv(g, key)) return llmc_fail(LLMC_ERR_FORMAT, "%s: missing metadata key '%s'", path, key);
        if ((s = llmc_gguf_get_uint(g, key, &n_used))) return s;
        if (n_exp > 65536 || n_used == 0 || n_used > n_exp)
            return llmc_fail(LLMC_ERR_FORMAT, "%s: %s = %llu must be in [1, expert_count = %llu] (at most 65536 experts)",
                             path, key, (unsigned long long)n_used, (unsigned long long)n_exp);
        c->arch = LLMC_ARCH_MIXTRAL;
        c->n_experts = (size_t)n_exp;
        c->n_experts_used = (size_t)n_used;
        c->moe_d_ff = c->d_ff;
        c->norm_topk_prob = 1;
        c->decoder_sparse_step = 1;
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- tensor names */
/* HF suffix of a block tensor (after "model.layers.N.") -> GGUF suffix (after "blk.N.") */
static const char *const LLAMA_BLOCK[][2] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.q_norm.weight", "attn_q_norm.weight"},
    {"self_attn.k_norm.weight", "attn_k_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"block_sparse_moe.gate.weight", "ffn_gate_inp.weight"}, /* Mixtral's router (its experts: model_gguf.c) */
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
static const char *const GPT2_BLOCK[][2] = {
    {"ln_1.weight", "attn_norm.weight"},       {"ln_1.bias", "attn_norm.bias"},
    {"attn.c_attn.weight", "attn_qkv.weight"}, {"attn.c_attn.bias", "attn_qkv.bias"},
    {"attn.c_proj.weight", "attn_output.weight"}, {"attn.c_proj.bias", "attn_output.bias"},
    {"ln_2.weight", "ffn_norm.weight"},        {"ln_2.bias", "ffn_norm.bias"},
    {"mlp.c_fc.weight", "ffn_up.weight"},      {"mlp.c_fc.bias", "ffn_up.bias"},
    {"mlp.c_proj.weight", "ffn_down.weight"},  {"mlp.c_proj.bias", "ffn_down.bias"},
};
static const char *const LLAMA_TOP[][2] = {
    {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};
static const char *const GPT2_TOP[][2] = {
    {"transformer.wte.weight", "token_embd.weight"}, {"transformer.wpe.weight", "position_embd.weight"},
    {"transformer.ln_f.weight", "output_norm.weight"}, {"transformer.ln_f.bias", "output_norm.bias"},
    {"lm_head.weight", "output.weight"},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* from = 0: HF -> GGUF; 1: GGUF -> HF */
static int map_name(int gpt2, int from, const char *in, char *out, size_t cap) {
    const char *const(*top)[2] = gpt2 ? GPT2_TOP : LLAMA_TOP;
    const char *const(*blk)[2] = gpt2 ? GPT2_BLOCK : LLAMA_BLOCK;
    size_t n_top = gpt2 ? N_OF(GPT2_TOP) : N_OF(LLAMA_TOP), n_blk = gpt2 ? N_OF(GPT2_BLOCK) : N_OF(LLAMA_BLOCK);
    for (size_t i = 0; i < n_top; i++)
        if (!strcmp(in, top[i][from])) return snprintf(out, cap, "%s", top[i][!from]) < (int)cap;
    const char *pre[2] = {gpt2 ? "transformer.h." : "model.layers.", "blk."};
    size_t pl = strlen(pre[from]);
    if (strncmp(in, pre[from], pl)) return 0;
    const char *p = in + pl;
    unsigned long layer = 0;
    size_t digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9' && digits < 9) layer = layer * 10 + (unsigned long)(p[digits++] - '0');
    if (!digits || p[digits] != '.') return 0;
    const char *suffix = p + digits + 1;
    for (size_t i = 0; i < n_blk; i++)
        if (!strcmp(suffix, blk[i][from]))
            return snprintf(out, cap, "%s%lu.%s", pre[!from], layer, blk[i][!from]) < (int)cap;
    return 0;
}

int llmc_gguf_name_from_hf(int arch, const char *hf, char *out, size_t cap) {
    return map_name(arch == LLMC_ARCH_GPT2, 0, hf, out, cap);
}

int llmc_gguf_name_to_hf(int arch, const char *gguf, char *out, size_t cap) {
    return map_name(arch == LLMC_ARCH_GPT2, 1, gguf, out, cap);
}

/* ---------------------------------------------------------------- the q/k permutation */
// src, dst: (n_head * hd) rows of row_bytes bytes each (any type: rows are whole blocks)
void llmc_gguf_permute_rows(const void *src, void *dst, size_t n_head, size_t hd, size_t row_bytes, int inverse) {
    const unsigned char *s = src;
    unsigned char *d = dst;
    const size_t half = hd / 2;
    for (size_t h = 0; h < n_head; h++)
        for (size_t j = 0; j < half; j++)
            for (size_t k = 0; k < 2; k++) {
                /* llama.cpp's converter: its row h*hd + 2j + k holds HF's row h*hd + k*hd/2 + j, so that the
                 * rotate-half pairs (j, j + hd/2) of HF become the adjacent pairs (2j, 2j+1) its RoPE rotates */
                size_t gguf_row = h * hd + 2 * j + k, hf_row = h * hd + k * half + j;
                size_t from = inverse ? gguf_row : hf_row, to = inverse ? hf_row : gguf_row;
                memcpy(d + to * row_bytes, s + from * row_bytes, row_bytes);
            }
}
