/* sampling.c: the sampler chain that turns the logits of the last position into the next token.
 *
 * Order and semantics follow Hugging Face transformers' generate():
 *   repetition penalty -> no-repeat n-grams -> temperature -> top-k -> top-p -> min-p -> softmax -> draw
 * Filtered tokens get -inf. The random generator is our own (xoshiro256**, seeded through splitmix64), so a seed
 * gives the same tokens on every machine. All scratch memory is allocated once, at creation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "simd.h"

/* qsort has no context argument in C11, so each item carries its key: no global for the comparator to read, and
 * any number of threads can sample at once (each with its own sampler). */
typedef struct {
    float key;
    int32_t id;
} sort_item;

struct llmc_sampler {
    llmc_sampler_params p;
    size_t vocab;
    uint64_t rng[4];
    sort_item *order; /* (vocab,) (logit, token) pairs for sorting */
    float *probs;    /* (vocab,) */
    uint8_t *banned; /* (vocab,) marks: seen tokens, banned n-gram completions */
};

/* ---------------------------------------------------------------- RNG */
static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(uint64_t s[4]) {
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* uniform double in [0, 1) from the top 53 bits */
static double next_double(uint64_t s[4]) { return (double)(next_u64(s) >> 11) * 0x1.0p-53; }

void llmc_sampler_seed(llmc_sampler *s, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = llmc_splitmix64(&x);
}

/* ---------------------------------------------------------------- create / free */
llmc_status llmc_sampler_create(const llmc_sampler_params *p, size_t vocab, llmc_sampler **out) {
    *out = NULL;
    if (vocab == 0 || vocab > INT32_MAX) return llmc_fail(LLMC_ERR_INVALID, "sampler vocabulary size must be in [1, 2^31), got %zu", vocab);
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return llmc_fail(LLMC_ERR_INVALID, "temperature must be a finite number >= 0, got %g", (double)p->temperature);
    if (p->top_k < 0) return llmc_fail(LLMC_ERR_INVALID, "top_k must be >= 0 (0 = off), got %d", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return llmc_fail(LLMC_ERR_INVALID, "top_p must be in (0, 1], got %g", (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return llmc_fail(LLMC_ERR_INVALID, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
        return llmc_fail(LLMC_ERR_INVALID, "repetition_penalty must be a finite number > 0, got %g",
                         (double)p->repetition_penalty);
    if (p->no_repeat_ngram_size < 0)
        return llmc_fail(LLMC_ERR_INVALID, "no_repeat_ngram_size must be >= 0, got %d", p->no_repeat_ngram_size);
    llmc_sampler *s = llmc_calloc(1, sizeof *s, "sampler");
    if (!s) return LLMC_ERR_NOMEM;
    s->p = *p;
    s->vocab = vocab;
    s->order = llmc_malloc(vocab * sizeof(sort_item), "sampler sort buffer");
    s->probs = llmc_malloc(vocab * sizeof(float), "sampler probabilities");
    s->banned = llmc_malloc(vocab, "sampler n-gram marks");
    if (!s->order || !s->probs || !s->banned) {
        llmc_sampler_free(s);
        return LLMC_ERR_NOMEM;
    }
    llmc_sampler_seed(s, p->seed);
    *out = s;
    return LLMC_OK;
}

void llmc_sampler_free(llmc_sampler *s) {
    if (!s) return;
    llmc_free(s->order);
    llmc_free(s->probs);
    llmc_free(s->banned);
    llmc_free(s);
}

/* ---------------------------------------------------------------- the processors */
// logits: (V,), history: (n,), seen: (V,) scratch
static void repetition_penalty(float *logits, const int64_t *history, size_t n, float penalty, uint8_t *seen,
                               size_t V) {
    /* CTRL rule: a token already seen is made less likely: positive logits divided, negative ones multiplied.
     * Each distinct token is penalised once, however often it occurred (transformers gathers then scatters). */
    memset(seen, 0, V);
    for (size_t i = 0; i < n; i++) {
        int64_t t = history[i];
        if (seen[t]) continue;
        seen[t] = 1;
        logits[t] = logits[t] < 0 ? logits[t] * penalty : logits[t] / penalty;
    }
}

// logits: (V,), history: (n,)
static void no_repeat_ngram(float *logits, const int64_t *history, size_t n, size_t ng, uint8_t *banned, size_t V) {
    /* ban every token that would complete an n-gram already present: the last ng-1 tokens are the prefix, and any
     * earlier occurrence of that prefix bans the token that followed it */
    if (ng == 0 || n + 1 < ng) return;
    if (ng == 1) { /* unigrams: every token seen so far */
        for (size_t i = 0; i < n; i++) logits[history[i]] = -INFINITY;
        return;
    }
    const int64_t *prefix = history + n - (ng - 1);
    memset(banned, 0, V);
    for (size_t start = 0; start + ng <= n; start++)
        if (memcmp(history + start, prefix, (ng - 1) * sizeof(int64_t)) == 0) banned[history[start + ng - 1]] = 1;
    for (size_t v = 0; v < V; v++)
        if (banned[v]) logits[v] = -INFINITY;
}

static int cmp_ascending(const void *a, const void *b) {
    const sort_item *x = a, *y = b;
    if (x->key < y->key) return -1;
    if (x->key > y->key) return 1;
    return x->id - y->id; /* ties: lower index first, so the result is deterministic */
}

// logits: (V,)
static void top_k(float *logits, size_t V, size_t k, sort_item *order) {
    if (k == 0 || k >= V) return;
    /* keep every token whose logit is >= the k-th largest (ties at the boundary are kept, as in transformers) */
    for (size_t v = 0; v < V; v++) order[v] = (sort_item){logits[v], (int32_t)v};
    qsort(order, V, sizeof *order, cmp_ascending);
    float kth = order[V - k].key;
    for (size_t v = 0; v < V; v++)
        if (logits[v] < kth) logits[v] = -INFINITY;
}

// logits: (V,)
static void top_p(float *logits, size_t V, float p, sort_item *order, float *probs) {
    if (p >= 1.0f) return;
    /* transformers: sort ascending, cumulative softmax, drop tokens whose cumulative mass is <= 1 - p, always keep
     * the most likely token. Only finite logits can survive, so only they are sorted. */
    size_t n = 0;
    for (size_t v = 0; v < V; v++)
        if (logits[v] != -INFINITY) order[n++] = (sort_item){logits[v], (int32_t)v};
    if (n == 0) return;
    qsort(order, n, sizeof *order, cmp_ascending);
    float m = order[n - 1].key, sum = 0.0f;
    for (size_t i = 0; i < n; i++) sum += (probs[i] = expf(order[i].key - m));
    float cum = 0.0f;
    for (size_t i = 0; i + 1 < n; i++) { /* i = n - 1 (the top token) is always kept */
        cum += probs[i] / sum;
        if (cum <= 1.0f - p) logits[order[i].id] = -INFINITY;
        else break; /* cumulative sums only grow: everything above is kept */
    }
}

// logits: (V,)
static void min_p(float *logits, size_t V, float mp) {
    if (mp <= 0.0f) return;
    /* drop tokens whose probability is below min_p times the top token's: p_v < min_p * p_max
     * <=> logit_v < logit_max + log(min_p) (the softmax normaliser cancels) */
    float m = llmc_k->max(logits, V);
    float cut = m + logf(mp);
    for (size_t v = 0; v < V; v++)
        if (logits[v] < cut) logits[v] = -INFINITY;
}

llmc_status llmc_sampler_process(llmc_sampler *s, float *logits, const int64_t *history, size_t n_history) {
    const size_t V = s->vocab;
    /* NaN semantics: no token can be drawn from a distribution with a NaN (or +inf) in it, so it is an error naming
     * the token, as torch.multinomial refuses such probabilities. One SIMD max finds out; the scan runs only then. */
    if (!(llmc_k->max(logits, V) < INFINITY))
        for (size_t v = 0; v < V; v++)
            if (isnan(logits[v]) || logits[v] == INFINITY)
                return llmc_fail(LLMC_ERR_INVALID, "the logit of token %zu is %s: no token can be chosen", v,
                                 isnan(logits[v]) ? "NaN" : "+inf");
    for (size_t i = 0; i < n_history; i++)
        if (history[i] < 0 || (uint64_t)history[i] >= V)
            return llmc_fail(LLMC_ERR_INVALID, "history token %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)history[i], i, V);
    if (s->p.repetition_penalty != 1.0f)
        repetition_penalty(logits, history, n_history, s->p.repetition_penalty, s->banned, V);
    if (s->p.no_repeat_ngram_size > 0)
        no_repeat_ngram(logits, history, n_history, (size_t)s->p.no_repeat_ngram_size, s->banned, V);
    if (!llmc_sampler_is_sampling(s)) return LLMC_OK; /* greedy: the warpers below cannot change the argmax */
    if (s->p.temperature != 1.0f) llmc_k->scale(logits, 1.0f / s->p.temperature, V);
    top_k(logits, V, (size_t)s->p.top_k, s->order);
    top_p(logits, V, s->p.top_p, s->order, s->probs);
    min_p(logits, V, s->p.min_p);
    return LLMC_OK;
}

int llmc_sampler_is_sampling(const llmc_sampler *s) { return s->p.do_sample && s->p.temperature > 0.0f; }

llmc_status llmc_sampler_sample(llmc_sampler *s, float *logits, const int64_t *history, size_t n_history,
                                int64_t *token, float *logprob) {
    const size_t V = s->vocab;
    llmc_status st = llmc_sampler_process(s, logits, history, n_history);
    if (st) return st;
    float m = llmc_k->max(logits, V);
    if (m == -INFINITY) return llmc_fail(LLMC_ERR_INVALID, "every token was filtered out (all logits are -inf)");
    if (!(m < INFINITY)) /* finite logits over a tiny temperature */
        return llmc_fail(LLMC_ERR_INVALID, "temperature %g overflows the logits to +inf", (double)s->p.temperature);
    /* probabilities of the processed distribution; the chosen token's log-probability is reported under it */
    float sum = llmc_k->exp_shift_sum(logits, s->probs, m, 1.0f, V);
    size_t pick = 0;
    if (!llmc_sampler_is_sampling(s)) {
        while (logits[pick] != m) pick++; /* greedy: the first index holding the maximum */
    } else {
        /* inverse-CDF draw: the first token whose running mass exceeds u * total */
        double u = next_double(s->rng) * (double)sum, cum = 0.0;
        size_t last_nonzero = 0;
        for (pick = 0; pick < V; pick++) {
            if (s->probs[pick] > 0.0f) last_nonzero = pick;
            cum += s->probs[pick];
            if (cum > u && s->probs[pick] > 0.0f) break;
        }
        if (pick == V) pick = last_nonzero; /* rounding left u just above the total */
    }
    *token = (int64_t)pick;
    if (logprob) *logprob = (logits[pick] - m) - logf(sum);
    return LLMC_OK;
}
