/* weight_types.c: which type each tensor gets when a model is converted to a "dtype", following llama.cpp's
 * default rules (llama_tensor_get_type in src/llama-quant.cpp) for the types llmc stores. docs/quantization.md
 * has the table.
 *
 *  - Norm weights and biases (1-D) stay F32; so do position and token-type embeddings (llama.cpp never quantizes
 *    pos_embd / token_types).
 *  - f32 / bf16 / f16: every other 2-D weight becomes that type.
 *  - The output matrix (lm_head; the token embedding when the two are tied or there is no lm_head) becomes Q6_K
 *    for every quantized recipe except q8_0 (which keeps Q8_0), or Q8_0 when its rows are not a whole number of
 *    the recipe type's blocks.
 *  - _M recipes (q4_k = q4_k_m, q5_k = q5_k_m) give attn_v and ffn_down Q6_K in the layers use_more_bits picks
 *    (the first and last eighth and every third layer between), and gpt2's fused attn_qkv one step more (Q5_K /
 *    Q6_K); _S recipes give attn_v of the first 4 layers and ffn_down of the first eighth Q5_K (q4_k_s).
 *  - Rows that are not a whole number of blocks of the chosen type fall back as llama.cpp does: Q4_K -> Q5_0,
 *    Q5_K -> Q5_1, Q6_K -> Q8_0, and F16 when even that does not fit; for Q4_0 .. Q8_0 there is no fallback
 *    (llama.cpp stops too): LLMC_ERR_INVALID naming the tensor, its row length and the block size. */
#include <string.h>

#include "model_internal.h"

/* base type and mix of each recipe */
enum { MIX_NONE = 0, MIX_S = 1, MIX_M = 2 };
static const struct {
    const char *name;
    int type, mix;
} recipes[] = {
    {"f32", LLMC_TYPE_F32, MIX_NONE},     {"bf16", LLMC_TYPE_BF16, MIX_NONE},   {"f16", LLMC_TYPE_F16, MIX_NONE},
    {"q8_0", LLMC_TYPE_Q8_0, MIX_NONE},   {"q4_0", LLMC_TYPE_Q4_0, MIX_NONE},   {"q4_1", LLMC_TYPE_Q4_1, MIX_NONE},
    {"q5_0", LLMC_TYPE_Q5_0, MIX_NONE},   {"q5_1", LLMC_TYPE_Q5_1, MIX_NONE},   {"q4_k", LLMC_TYPE_Q4_K, MIX_M},
    {"q4_k_m", LLMC_TYPE_Q4_K, MIX_M},    {"q4_k_s", LLMC_TYPE_Q4_K, MIX_S},    {"q5_k", LLMC_TYPE_Q5_K, MIX_M},
    {"q5_k_m", LLMC_TYPE_Q5_K, MIX_M},    {"q5_k_s", LLMC_TYPE_Q5_K, MIX_S},    {"q6_k", LLMC_TYPE_Q6_K, MIX_NONE},
};
#define N_RECIPES (sizeof recipes / sizeof recipes[0])

static int find_recipe(const char *name) {
    for (size_t i = 0; i < N_RECIPES; i++)
        if (!strcmp(name, recipes[i].name)) return (int)i;
    return -1;
}

llmc_status model_recipe_check(const char *recipe) {
    if (find_recipe(recipe) >= 0) return LLMC_OK;
    return llmc_fail(LLMC_ERR_INVALID, "unknown dtype '%s' (expected one of f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, "
                                       "q5_1, q4_k, q4_k_s, q4_k_m, q5_k, q5_k_s, q5_k_m, q6_k)", recipe);
}

static int is_quantized(int type) { return type != LLMC_TYPE_F32 && type != LLMC_TYPE_F16 && type != LLMC_TYPE_BF16; }

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between */
static int use_more_bits(long i, long n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

llmc_status model_recipe_type(const llmc_model *m, const char *recipe, const tensor_spec *t, int *type) {
    llmc_status st = model_recipe_check(recipe);
    if (st) return st;
    const int r = find_recipe(recipe), base = recipes[r].type, mix = recipes[r].mix;
    if (t->ndim == 1 || t->role == ROLE_VECTOR || t->role == ROLE_POS_EMBD || t->role == ROLE_TOKEN_TYPES ||
        t->role == ROLE_FFN_ROUTER) {
        *type = LLMC_TYPE_F32;
        return LLMC_OK;
    }
    if (!is_quantized(base)) {
        *type = base;
        return LLMC_OK;
    }
    /* the row length the blocks tile: `in`, which is shape[0] of a Conv1D weight (stored transposed once quantized) */
    const size_t nx = t->conv1d ? t->shape[0] : t->shape[1];
    const long il = t->layer, nl = (long)m->c.n_layers;
    /* the output matrix: lm_head, or the token embedding when there is no separate lm_head */
    const int is_output = t->role == ROLE_OUTPUT ||
                          (t->role == ROLE_TOKEN_EMBD && (m->c.tied_embeddings || !m->c.has_lm_head));
    int ty = base;
    if (is_output) {
        if (nx % llmc_type_block_size(base) != 0) ty = LLMC_TYPE_Q8_0;
        else if (base != LLMC_TYPE_Q8_0) ty = LLMC_TYPE_Q6_K;
    } else if (t->role == ROLE_ATTN_V) {
        if (mix == MIX_M && use_more_bits(il, nl)) ty = LLMC_TYPE_Q6_K;
        else if (mix == MIX_S && base == LLMC_TYPE_Q4_K && il < 4) ty = LLMC_TYPE_Q5_K;
    } else if (t->role == ROLE_FFN_DOWN) {
        if (mix == MIX_M && use_more_bits(il, nl)) ty = LLMC_TYPE_Q6_K;
        else if (mix == MIX_S && base == LLMC_TYPE_Q4_K && il < nl / 8) ty = LLMC_TYPE_Q5_K;
    } else if (t->role == ROLE_ATTN_QKV && mix == MIX_M) {
        ty = base == LLMC_TYPE_Q4_K ? LLMC_TYPE_Q5_K : LLMC_TYPE_Q6_K;
    }
    if (nx % llmc_type_block_size(ty) != 0) {
        int fb = ty == LLMC_TYPE_Q4_K ? LLMC_TYPE_Q5_0 : ty == LLMC_TYPE_Q5_K ? LLMC_TYPE_Q5_1
                 : ty == LLMC_TYPE_Q6_K ? LLMC_TYPE_Q8_0 : -1;
        if (fb < 0)
            return llmc_fail(LLMC_ERR_INVALID, "tensor '%s': rows of %zu values are not a whole number of %s blocks "
                             "of %zu values", t->name, nx, llmc_type_name(ty), llmc_type_block_size(ty));
        if (nx % llmc_type_block_size(fb) != 0) fb = LLMC_TYPE_F16;
        ty = fb;
    }
    *type = ty;
    return LLMC_OK;
}
