/* quant_simd.c: which quantized-dot kernels the typed matmul runs at each SIMD level, from what the CPU reports.
 *   scalar   the portable reference (quant_dot.c)
 *   avx2     AVX2 + FMA + F16C: vpmaddubsw integer dot products (quant_simd_avx2.c)
 *   avx512   the AVX2 kernels too: llmc has no AVX-512 quantized kernels (none of its development machines could
 *            run them, and untested kernels are not shipped)
 * F16 / BF16 weights: fp32 activations, exact conversion (F16C / a 16-bit shift) and FMA. AVX512_BF16's vdpbf16ps
 * would round the activations to bf16 and decode is bound by reading the weights, not by the multiply-adds, so
 * llmc does not use it even where the CPU has it (docs/quantization.md). */
#include "internal.h"
#include "quant.h"

/* The portable level: every entry NULL, so the traits table's reference dot products run. */
const llmc_quant_kernels llmc_quant_scalar = {.name = "scalar"};

#if defined(__x86_64__) || defined(__i386__)
extern const llmc_quant_kernels llmc_quant_avx2;
#endif

static int has_avx2_set(const llmc_cpu_features *f) { return f->avx2 && f->fma && f->f16c; }

const llmc_quant_kernels *llmc_quant_kernels_for(int level) {
#if defined(__x86_64__) || defined(__i386__)
    if (level >= LLMC_SIMD_AVX2 && has_avx2_set(llmc_cpu_get_features())) return &llmc_quant_avx2;
#endif
    (void)level;
    return &llmc_quant_scalar;
}

const char *llmc_quant_kernels_name(void) { return llmc_quant_kernels_for(llmc_simd_get_level())->name; }

const char *llmc_quant_kernels_reason(void) {
    const int level = llmc_simd_get_level();
    if (llmc_quant_kernels_for(level) == &llmc_quant_scalar)
        return level == LLMC_SIMD_SCALAR ? "SIMD level set to scalar: the portable reference dot products"
                                         : "the CPU lacks AVX2+FMA+F16C: the portable reference dot products";
    if (level >= LLMC_SIMD_AVX512)
        return "AVX2 vpmaddubsw integer dot products (llmc has no AVX-512/VNNI quantized kernels: they could not "
               "be tested on its development machines)";
    return "AVX2 + FMA + F16C: vpmaddubsw/vpmaddwd integer dot products";
}
