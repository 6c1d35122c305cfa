/* seq2seq_attn.c: T5's relative position buckets and the attention with an additive per-head position bias.
 *
 * T5 has no position embeddings: each head adds a learned scalar to the score of (query i, key j) chosen by the
 * bucket of the distance j - i. Small distances get a bucket each; larger ones share logarithmically wider
 * buckets up to max_distance. The encoder's buckets are bidirectional (half for keys after the query); the
 * decoder's only look back. Only layer 0 owns the (num_buckets, H) table; every layer reuses its bias. Scores are
 * not scaled by 1/sqrt(hd) (T5 folds that into its initialisation). */
#include <math.h>
#include <string.h>
#include <omp.h>

#include "blas.h"
#include "seq2seq.h"
#include "simd.h"

int64_t llmc_t5_bucket(int64_t rel, int bidirectional, size_t num_buckets, size_t max_distance) {
    int64_t ret = 0, n = (int64_t)num_buckets;
    if (bidirectional) {
        n /= 2;
        if (rel > 0) ret += n; /* keys after the query: the upper half */
        rel = rel < 0 ? -rel : rel;
    } else {
        rel = rel < 0 ? -rel : 0; /* the decoder sees only keys at or before the query */
    }
    const int64_t max_exact = n / 2;
    if (rel < max_exact) return ret + rel;
    /* transformers computes this in float32: log(rel / max_exact) / log(max_distance / max_exact) * (n - max_exact),
     * truncated; the divisor is a Python double rounded to float32 by the tensor op */
    const float num = logf((float)rel / (float)max_exact);
    const float den = (float)log((double)max_distance / (double)max_exact);
    const float f = num / den * (float)(n - max_exact);
    int64_t large = n - 1;
    if (f < (float)(n - 1 - max_exact)) large = max_exact + (int64_t)f; /* also false for NaN: clamped */
    return ret + large;
}

void s2s_rel_table(const llmc_s2s_config *c, const float *w, size_t H, size_t Tq, size_t Tk, int bidirectional,
                   float *rel) {
    const size_t W = Tq + Tk - 1;
    for (size_t r = 0; r < W; r++) {
        const int64_t d = (int64_t)r - (int64_t)(Tk - 1); /* key position - query position */
        const int64_t bucket = llmc_t5_bucket(d, bidirectional, c->num_buckets, c->max_distance);
        for (size_t h = 0; h < H; h++) rel[h * W + r] = w[(size_t)bucket * H + h]; // w: (num_buckets, H)
    }
}

#define S2S_QB 32 /* queries per task: the score tile is (S2S_QB, Tk) */

size_t s2s_biased_scratch(size_t Tk) { return (S2S_QB * Tk + 15) / 16 * 16; }

/* One block of m queries [i0, i0 + m) of head h of beam b. S: (m, Tk) scores, then probabilities. */
static void biased_block(const float *q, const float *k, const float *v, float *out, size_t m, size_t i0, size_t Tq,
                         size_t Tk, size_t hd, const float *rel_h, int causal, float *S) {
    // S (m, Tk) = q (m, hd) @ k^T (hd, Tk); the sizes were checked to fit BLAS, so this cannot fail
    (void)llmc_sgemm(0, 1, m, Tk, hd, 1.0f, q, hd, k, hd, 0.0f, S, Tk);
    for (size_t i = 0; i < m; i++) {
        const size_t p = Tk - Tq + i0 + i, hi = causal ? p + 1 : Tk; /* query position; keys [0, hi) visible */
        float *row = S + i * Tk;
        const float *bias = rel_h + (Tk - 1) - p; /* bias[j] = rel_h[(j - p) + Tk - 1] */
        for (size_t j = 0; j < hi; j++) row[j] += bias[j];
        const float mx = llmc_k->max(row, hi);
        const float sum = llmc_k->exp_shift_sum(row, row, mx, 1.0f, hi); /* exp(s - max): no overflow */
        llmc_k->scale(row, 1.0f / sum, hi);
        memset(row + hi, 0, (Tk - hi) * sizeof(float));
    }
    // out (m, hd) = P (m, Tk) @ v (Tk, hd)
    (void)llmc_sgemm(0, 0, m, hd, Tk, 1.0f, S, Tk, v, hd, 0.0f, out, hd);
}

llmc_status s2s_biased_attention(const float *q, const float *k, const float *v, size_t k_sb, size_t k_sh,
                                 float *out, size_t B, size_t H, size_t Tq, size_t Tk, size_t hd, const float *rel,
                                 int causal, float *probs, float *scratch) {
    const size_t lim = 2147483647u;
    if (Tq > lim || Tk > lim || hd > lim)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "attention of %zu queries over %zu keys exceeds 32-bit BLAS", Tq, Tk);
    if (probs && B != 1) return llmc_fail(LLMC_ERR_INTERNAL, "attention weights of more than one beam");
    const size_t nqb = (Tq + S2S_QB - 1) / S2S_QB, tasks = B * H * nqb, W = Tq + Tk - 1;
    size_t work;
    int nt = llmc_size3(tasks, S2S_QB * Tk, hd, 1, &work) ? llmc_threads_for(work / 4) : llmc_threads();
    if ((size_t)nt > tasks) nt = (int)tasks;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (size_t task = 0; task < tasks; task++) {
        const size_t b = task / (H * nqb), h = task / nqb % H, i0 = task % nqb * S2S_QB;
        const size_t m = Tq - i0 < S2S_QB ? Tq - i0 : S2S_QB;
        float *S = probs ? probs + (h * Tq + i0) * Tk : scratch + (size_t)omp_get_thread_num() * s2s_biased_scratch(Tk);
        const size_t qo = ((b * H + h) * Tq + i0) * hd; // q, out: (B, H, Tq, hd)
        biased_block(q + qo, k + b * k_sb + h * k_sh, v + b * k_sb + h * k_sh, out + qo, m, i0, Tq, Tk, hd,
                     rel + h * W, causal, S);
    }
    return LLMC_OK;
}
