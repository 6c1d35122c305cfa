/* ops.c: the numeric building blocks: matmul, the softmax family, cross-entropy, norms, activations, positional
 * encodings and embedding lookup. Rows are processed in parallel with OpenMP; the inner loops are the SIMD
 * primitives of simd.h. */
#include <math.h>
#include <string.h>
#include <omp.h>

#include "blas.h"
#include "internal.h"
#include "simd.h"

/* ---------------------------------------------------------------- matmul */
// a: (batch, m, k) or (m, k); b: (batch, k, n) or (k, n); out: (batch, m, n)
llmc_status llmc_matmul(const float *a, const float *b, float *out, size_t batch, size_t m, size_t k, size_t n,
                        int a_batched, int b_batched) {
    for (size_t i = 0; i < batch; i++) {
        /* one BLAS call per batch item: OpenBLAS parallelises inside each call, so we do not thread this loop */
        llmc_status st = llmc_sgemm(0, 0, m, n, k, 1.0f, a + (a_batched ? i * m * k : 0), k,
                                    b + (b_batched ? i * k * n : 0), n, 0.0f, out + i * m * n, n);
        if (st) return st;
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- softmax family */
static llmc_status check_temperature(float temperature) {
    if (!(temperature > 0.0f) || isinf(temperature))
        return llmc_fail(LLMC_ERR_INVALID, "temperature must be a finite number > 0, got %g", (double)temperature);
    return LLMC_OK;
}

/* Softmax of one contiguous row x: (n,). Returns 0, or 1 if every entry is -inf.
 * NaN semantics are NumPy's: a row holding a NaN or a +inf (+inf - +inf = NaN in the shift) comes out all NaN. */
static int softmax_row(const float *x, float *out, size_t n, float inv_t, int log_output) {
    float m = llmc_k->max(x, n);
    if (m == -INFINITY) return 1;
    if (isnan(m) || m == INFINITY) { /* the vector exp clamps its input, so NaN is written, not computed */
        for (size_t i = 0; i < n; i++) out[i] = NAN;
        return 0;
    }
    if (log_output) {
        /* log softmax = (x - m)/t - log(sum exp((x - m)/t)); computing x - m first keeps it exact for close values */
        float s = llmc_k->exp_shift_sum(x, out, m, inv_t, n);
        llmc_k->shift_scale_add(x, out, m, inv_t, -logf(s), n);
    } else {
        float s = llmc_k->exp_shift_sum(x, out, m, inv_t, n);
        llmc_k->scale(out, 1.0f / s, n);
    }
    return 0;
}

/* Softmax along the middle axis of (outer, n, inner) with inner > 1: the n entries of one slice are `inner` apart,
 * so we walk the slices of one outer block side by side, which keeps the memory access contiguous. */
static int softmax_strided(const float *x, float *out, size_t n, size_t inner, float inv_t, int log_output,
                           float *buf /* (2 * inner) */) {
    float *mx = buf, *sum = buf + inner;
    for (size_t j = 0; j < inner; j++) mx[j] = -INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < inner; j++) /* a NaN sticks (NaN > x is false), so the slice comes out NaN */
            mx[j] = x[i * inner + j] > mx[j] || isnan(x[i * inner + j]) ? x[i * inner + j] : mx[j];
    for (size_t j = 0; j < inner; j++)
        if (mx[j] == -INFINITY) return 1;
    memset(sum, 0, inner * sizeof(float));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < inner; j++) {
            float e = expf((x[i * inner + j] - mx[j]) * inv_t);
            out[i * inner + j] = e;
            sum[j] += e;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < inner; j++)
            out[i * inner + j] = log_output ? (x[i * inner + j] - mx[j]) * inv_t - logf(sum[j])
                                            : out[i * inner + j] / sum[j];
    return 0;
}

static llmc_status softmax_any(const float *x, float *out, size_t outer, size_t n, size_t inner, float temperature,
                               int log_output) {
    llmc_status st = check_temperature(temperature);
    if (st) return st;
    if (n == 0 || outer == 0 || inner == 0) return LLMC_OK;
    const float inv_t = 1.0f / temperature;
    size_t bad = (size_t)-1; /* the first slice found all -inf (any one is enough for the message) */
    float *buf = NULL;
    if (inner > 1 && !(buf = llmc_malloc(2 * inner * sizeof(float) * (size_t)llmc_threads(), "softmax scratch")))
        return LLMC_ERR_NOMEM;
    const size_t rows = outer * inner;
    const int nt = llmc_threads_for(rows * n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t o = 0; o < (inner == 1 ? rows : outer); o++) {
        int all_neg_inf;
        if (inner == 1) {
            all_neg_inf = softmax_row(x + o * n, out + o * n, n, inv_t, log_output);
        } else {
            float *mybuf = buf + 2 * inner * (size_t)omp_get_thread_num();
            all_neg_inf = softmax_strided(x + o * n * inner, out + o * n * inner, n, inner, inv_t, log_output, mybuf);
        }
        if (all_neg_inf) {
#pragma omp critical(llmc_softmax_bad)
            if (o < bad) bad = o;
        }
    }
    llmc_free(buf);
    if (bad != (size_t)-1)
        return llmc_fail(LLMC_ERR_INVALID,
                         "softmax over a slice whose %zu entries are all -inf is undefined (slice %zu)", n, bad);
    return LLMC_OK;
}

llmc_status llmc_softmax(const float *x, float *out, size_t outer, size_t n, size_t inner, float temperature) {
    return softmax_any(x, out, outer, n, inner, temperature, 0);
}

llmc_status llmc_log_softmax(const float *x, float *out, size_t outer, size_t n, size_t inner, float temperature) {
    return softmax_any(x, out, outer, n, inner, temperature, 1);
}

// x, out: (outer, n, inner)
llmc_status llmc_hardmax(const float *x, float *out, size_t outer, size_t n, size_t inner) {
    if (n == 0) return LLMC_OK;
    memset(out, 0, outer * n * inner * sizeof(float));
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < inner; j++) {
            const float *col = x + o * n * inner + j;
            size_t best = 0;
            float bv = col[0];
            for (size_t i = 1; i < n; i++) {
                float v = col[i * inner];
                /* strictly greater keeps the lowest index on ties; a NaN wins, like numpy.argmax */
                if (!isnan(bv) && (v > bv || isnan(v))) {
                    bv = v;
                    best = i;
                }
            }
            out[o * n * inner + best * inner + j] = 1.0f;
        }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- cross-entropy */
// logits: (T, V), targets: (T,)
llmc_status llmc_cross_entropy(const float *logits, const int64_t *targets, size_t T, size_t V, double *mean_nll) {
    if (T == 0) return llmc_fail(LLMC_ERR_INVALID, "cross_entropy needs at least one position (T = 0)");
    if (V == 0) return llmc_fail(LLMC_ERR_INVALID, "cross_entropy needs a vocabulary of at least 1 (V = 0)");
    for (size_t t = 0; t < T; t++)
        if (targets[t] < 0 || (uint64_t)targets[t] >= V)
            return llmc_fail(LLMC_ERR_INVALID, "target %lld at position %zu is outside the vocabulary [0, %zu)",
                             (long long)targets[t], t, V);
    double total = 0.0;
    size_t bad = (size_t)-1;
    const int nt = llmc_threads_for(T * V);
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
    for (size_t t = 0; t < T; t++) {
        const float *row = logits + t * V;
        float m = llmc_k->max(row, V);
        if (m == -INFINITY) {
#pragma omp critical(llmc_ce_bad)
            if (t < bad) bad = t;
            continue;
        }
        /* nll = log(sum exp(x - m)) + m - x[target], summed in double across positions */
        double s = 0.0;
        for (size_t i = 0; i < V; i++) s += exp((double)row[i] - m);
        total += log(s) + (double)m - (double)row[targets[t]];
    }
    if (bad != (size_t)-1)
        return llmc_fail(LLMC_ERR_INVALID, "logits at position %zu are all -inf", bad);
    *mean_nll = total / (double)T;
    return LLMC_OK;
}

/* ---------------------------------------------------------------- norms */
/* one row: out = (x - mean) / sqrt(var + eps) * weight + bias; x, out: (cols,) */
void llmc_layer_norm_row(const float *x, const float *weight, const float *bias, float *out, size_t cols, float eps) {
    float mean = llmc_k->sum(x, cols) / (float)cols;
    /* two-pass variance: sum (x - mean)^2 does not cancel the way E[x^2] - mean^2 does */
    float var = llmc_k->sq_dev_sum(x, mean, cols) / (float)cols;
    llmc_k->norm_affine(x, out, mean, 1.0f / sqrtf(var + eps), weight, bias, cols);
}

/* one row: out = x / sqrt(mean(x^2) + eps) * weight; x, out: (cols,) */
void llmc_rms_norm_row(const float *x, const float *weight, float *out, size_t cols, float eps) {
    float ms = llmc_k->sumsq(x, cols) / (float)cols; /* mean of squares */
    llmc_k->norm_affine(x, out, 0.0f, 1.0f / sqrtf(ms + eps), weight, NULL, cols);
}

// x, out: (rows, cols); weight, bias: (cols,)
llmc_status llmc_layer_norm(const float *x, const float *weight, const float *bias, float *out, size_t rows,
                            size_t cols, float eps) {
    if (!(eps >= 0.0f)) return llmc_fail(LLMC_ERR_INVALID, "eps must be >= 0, got %g", (double)eps);
    if (cols == 0) return LLMC_OK;
    const int nt = llmc_threads_for(rows * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t r = 0; r < rows; r++) llmc_layer_norm_row(x + r * cols, weight, bias, out + r * cols, cols, eps);
    return LLMC_OK;
}

// x, out: (rows, cols); weight: (cols,)
llmc_status llmc_rms_norm(const float *x, const float *weight, float *out, size_t rows, size_t cols, float eps) {
    if (!(eps >= 0.0f)) return llmc_fail(LLMC_ERR_INVALID, "eps must be >= 0, got %g", (double)eps);
    if (cols == 0) return LLMC_OK;
    const int nt = llmc_threads_for(rows * cols);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t r = 0; r < rows; r++) llmc_rms_norm_row(x + r * cols, weight, out + r * cols, cols, eps);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- activations */
#define ELEMWISE_CHUNK 4096

llmc_status llmc_gelu(const float *x, float *out, size_t n, int tanh_approximation) {
    const size_t chunks = (n + ELEMWISE_CHUNK - 1) / ELEMWISE_CHUNK;
    const int nt = llmc_threads_for(n * 8); /* transcendental per element: worth threads sooner */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * ELEMWISE_CHUNK, len = n - lo < ELEMWISE_CHUNK ? n - lo : ELEMWISE_CHUNK;
        if (tanh_approximation) {
            llmc_k->gelu_tanh(x + lo, out + lo, len);
        } else {
            /* exact GELU: x * Phi(x) = 0.5 x erfc(-x / sqrt 2); erfc avoids the cancellation of 1 + erf(x / sqrt 2)
             * for negative x, where 1 + erf is tiny */
            for (size_t i = lo; i < lo + len; i++) out[i] = 0.5f * x[i] * erfcf(-x[i] * 0.70710678118654752f);
        }
    }
    return LLMC_OK;
}

llmc_status llmc_silu(const float *x, float *out, size_t n) {
    const size_t chunks = (n + ELEMWISE_CHUNK - 1) / ELEMWISE_CHUNK;
    const int nt = llmc_threads_for(n * 8);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * ELEMWISE_CHUNK, len = n - lo < ELEMWISE_CHUNK ? n - lo : ELEMWISE_CHUNK;
        llmc_k->silu(x + lo, out + lo, len);
    }
    return LLMC_OK;
}

/* ---------------------------------------------------------------- positional encodings */
// out: (n_positions, dim)
llmc_status llmc_sinusoidal_positions(float *out, size_t n_positions, size_t dim) {
    if (dim % 2) return llmc_fail(LLMC_ERR_INVALID, "sinusoidal positions need an even dim, got %zu", dim);
    for (size_t p = 0; p < n_positions; p++)
        for (size_t i = 0; i < dim / 2; i++) {
            /* angle = p / 10000^(2i/dim), in double so large positions keep their digits */
            double angle = (double)p * pow(10000.0, -2.0 * (double)i / (double)dim);
            out[p * dim + 2 * i] = (float)sin(angle);
            out[p * dim + 2 * i + 1] = (float)cos(angle);
        }
    return LLMC_OK;
}

// x, out: (outer, T, d); positions: (T,)
llmc_status llmc_apply_rope(const float *x, float *out, size_t outer, size_t T, size_t d, const int64_t *positions,
                            float theta, int layout) {
    if (d % 2) return llmc_fail(LLMC_ERR_INVALID, "RoPE needs an even head dimension, got %zu", d);
    if (!(theta > 0.0f) || isinf(theta))
        return llmc_fail(LLMC_ERR_INVALID, "RoPE theta must be a finite number > 0, got %g", (double)theta);
    if (layout != LLMC_ROPE_HALF && layout != LLMC_ROPE_INTERLEAVED)
        return llmc_fail(LLMC_ERR_INVALID, "unknown RoPE layout %d", layout);
    const size_t half = d / 2;
    size_t table_n;
    if (!llmc_mul_ok(T, d, &table_n)) return llmc_fail(LLMC_ERR_NOMEM, "RoPE table size overflows");
    /* cos/sin table: (T, d/2) each; computed once, shared by every head */
    float *cs = llmc_malloc(table_n * sizeof(float), "RoPE cos/sin table");
    if (!cs) return LLMC_ERR_NOMEM;
    float *sn = cs + T * half;
    for (size_t i = 0; i < half; i++) {
        /* inverse frequency theta^(-2i/d) computed in float32 like transformers' inv_freq buffer */
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)d);
        for (size_t t = 0; t < T; t++) {
            float angle = (float)positions[t] * inv_freq;
            cs[t * half + i] = cosf(angle);
            sn[t * half + i] = sinf(angle);
        }
    }
    const int nt = llmc_threads_for(outer * T * d * 2);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t o = 0; o < outer; o++)
        for (size_t t = 0; t < T; t++) {
            const float *xr = x + (o * T + t) * d;
            float *yr = out + (o * T + t) * d;
            const float *c = cs + t * half, *s = sn + t * half;
            for (size_t i = 0; i < half; i++) {
                /* the pair (a, b) rotates by the angle: (a cos - b sin, a sin + b cos) */
                size_t ia = layout == LLMC_ROPE_HALF ? i : 2 * i, ib = layout == LLMC_ROPE_HALF ? i + half : 2 * i + 1;
                float a = xr[ia], b = xr[ib];
                yr[ia] = a * c[i] - b * s[i];
                yr[ib] = a * s[i] + b * c[i];
            }
        }
    llmc_free(cs);
    return LLMC_OK;
}

/* ---------------------------------------------------------------- embedding */
// table: (vocab, dim), ids: (n,), out: (n, dim)
llmc_status llmc_embedding(const float *table, size_t vocab, size_t dim, const int64_t *ids, size_t n, float *out) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= vocab)
            return llmc_fail(LLMC_ERR_INVALID, "token id %lld at index %zu is outside the vocabulary [0, %zu)",
                             (long long)ids[i], i, vocab);
    for (size_t i = 0; i < n; i++) memcpy(out + i * dim, table + (size_t)ids[i] * dim, dim * sizeof(float));
    return LLMC_OK;
}
