/* simd.c: picks the vector primitives once, at start-up, from what the CPU reports. */
#include "internal.h"
#include "simd.h"

_Atomic(const llmc_simd_kernels *) llmc_k = &llmc_simd_scalar;
/* process-wide settings, atomic so that concurrent readers and a writer never race (written once at load time,
 * then only by llmc_simd_set_level) */
static _Atomic int best_level = LLMC_SIMD_SCALAR;
static _Atomic int current_level = LLMC_SIMD_SCALAR;

static const llmc_simd_kernels *table_for(int level) {
    switch (level) {
    case LLMC_SIMD_AVX512: return &llmc_simd_avx512;
    case LLMC_SIMD_AVX2: return &llmc_simd_avx2;
    default: return &llmc_simd_scalar;
    }
}

__attribute__((constructor)) static void llmc_simd_init(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) best_level = LLMC_SIMD_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best_level = LLMC_SIMD_AVX2;
#endif
    current_level = best_level;
    llmc_k = table_for(best_level);
}

int llmc_simd_best_level(void) { return best_level; }
int llmc_simd_get_level(void) { return current_level; }

const char *llmc_simd_level_name(int level) {
    switch (level) {
    case LLMC_SIMD_SCALAR: return "scalar";
    case LLMC_SIMD_AVX2: return "avx2";
    case LLMC_SIMD_AVX512: return "avx512";
    default: return "unknown";
    }
}

llmc_status llmc_simd_set_level(int level) {
    if (level < LLMC_SIMD_SCALAR || level > LLMC_SIMD_AVX512)
        return llmc_fail(LLMC_ERR_INVALID, "unknown SIMD level %d (0 = scalar, 1 = avx2, 2 = avx512)", level);
    if (level > best_level)
        return llmc_fail(LLMC_ERR_UNSUPPORTED, "this CPU does not support %s (best available: %s)",
                         llmc_simd_level_name(level), llmc_simd_level_name(best_level));
    current_level = level;
    llmc_k = table_for(level);
    return LLMC_OK;
}
