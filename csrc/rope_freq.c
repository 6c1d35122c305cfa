/* rope_freq.c: RoPE inverse frequencies, with Llama 3's frequency-dependent scaling and GGUF's per-frequency
 * divisors; shared by the model (weights.c) and the trainer (train.c), so both rotate by the same angles. */
#include <math.h>

#include "internal.h"

// out: (head_dim / 2,); divisors: (head_dim / 2,) or NULL
void llmc_rope_inv_freq(float theta, size_t head_dim, const llmc_rope_scaling *s, const float *divisors, float *out) {
    const size_t half = head_dim / 2;
    for (size_t i = 0; i < half; i++) {
        /* theta^(-2i/d) in float32, like transformers' inv_freq buffer */
        float f = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        if (s && s->llama3) {
            /* wavelengths longer than the original context / low_freq_factor are slowed down by `factor`, shorter
             * than original / high_freq_factor are kept, and the band between is interpolated smoothly */
            const float orig = (float)s->original_context;
            const float low_wl = orig / s->low_freq_factor, high_wl = orig / s->high_freq_factor;
            const float wl = 2.0f * (float)M_PI / f;
            if (wl > low_wl) {
                f = f / s->factor;
            } else if (wl >= high_wl) {
                float smooth = (orig / wl - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
                f = (1.0f - smooth) * f / s->factor + smooth * f;
            }
        }
        if (divisors) f /= divisors[i]; /* llama.cpp's rope_freqs (Llama 3 scaling from GGUF) */
        out[i] = f;
    }
}
