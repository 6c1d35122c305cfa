/* optim.c: AdamW, gradient-norm clipping and the warmup + cosine learning-rate schedule. */
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* baseline on x86-64: no run-time dispatch needed */
#endif

#include "internal.h"
#include "simd.h"

/* AdamW on one span (see llmc_adamw_step for the arithmetic).
 * The SSE2 lanes do exactly the scalar operations in the same order (sqrt is correctly rounded in both), so the
 * result does not depend on n's remainder. (A scalar loop stays scalar: sqrtf's errno path keeps a libm call in
 * it, and AdamW was ~4% of a GPT-2 step.) */
// param, grad, m, v: (n,)
static void adamw_span(float *param, const float *grad, float *m, float *v, size_t n, float decay, float beta1,
                       float beta2, float step_size, float bc2_sqrt, float eps) {
    size_t i = 0;
#if defined(__SSE2__)
    const __m128 vd = _mm_set1_ps(decay), b1 = _mm_set1_ps(beta1), c1 = _mm_set1_ps(1.0f - beta1);
    const __m128 b2 = _mm_set1_ps(beta2), c2 = _mm_set1_ps(1.0f - beta2), ss = _mm_set1_ps(step_size);
    const __m128 bc = _mm_set1_ps(bc2_sqrt), ve = _mm_set1_ps(eps);
    for (; i + 4 <= n; i += 4) {
        __m128 g = _mm_loadu_ps(grad + i);
        __m128 p = _mm_mul_ps(_mm_loadu_ps(param + i), vd);
        __m128 mm = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m + i)), _mm_mul_ps(c1, g));
        __m128 vv = _mm_add_ps(_mm_mul_ps(b2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(c2, g), g));
        __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vv), bc), ve);
        p = _mm_sub_ps(p, _mm_div_ps(_mm_mul_ps(ss, mm), den));
        _mm_storeu_ps(param + i, p);
        _mm_storeu_ps(m + i, mm);
        _mm_storeu_ps(v + i, vv);
    }
#endif
    for (; i < n; i++) {
        float g = grad[i];
        param[i] *= decay;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        param[i] -= step_size * m[i] / (sqrtf(v[i]) / bc2_sqrt + eps);
    }
}

// param, grad, m, v: (n,)
llmc_status llmc_adamw_step(float *param, const float *grad, float *m, float *v, size_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, int64_t step) {
    if (step < 1) return llmc_fail(LLMC_ERR_INVALID, "AdamW step must be >= 1 (it counts from 1), got %lld", (long long)step);
    /* the same arithmetic as torch.optim.AdamW (single-tensor path):
     * p *= 1 - lr wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
     * p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
    const float bc1 = 1.0f - powf(beta1, (float)step), bc2_sqrt = sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1, decay = 1.0f - lr * weight_decay;
    const size_t chunk = 1 << 14, chunks = (n + chunk - 1) / chunk;
    const int nt = llmc_threads_for(n * 4);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        const size_t i = c * chunk, len = n - i < chunk ? n - i : chunk;
        adamw_span(param + i, grad + i, m + i, v + i, len, decay, beta1, beta2, step_size, bc2_sqrt, eps);
    }
    return LLMC_OK;
}

// g: (n,)
double llmc_sumsq(const float *g, size_t n) {
    double total = 0.0;
    const size_t chunk = 1 << 16;
    for (size_t i = 0; i < n; i += chunk) total += llmc_k->sumsq(g + i, n - i < chunk ? n - i : chunk);
    return total;
}

float llmc_lr_cosine(int64_t step, int64_t warmup, int64_t total, float lr_max, float lr_min) {
    /* linear warmup from lr_max / warmup to lr_max over `warmup` steps, then a half cosine down to lr_min at `total` */
    if (step < warmup) return lr_max * (float)(step + 1) / (float)warmup;
    if (step >= total) return lr_min;
    double progress = (double)(step - warmup) / (double)(total - warmup > 0 ? total - warmup : 1);
    return lr_min + (float)(0.5 * (1.0 + cos(M_PI * progress))) * (lr_max - lr_min);
}
