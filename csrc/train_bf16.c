/* train_bf16.c: rounding float32 to bfloat16 precision for mixed-precision training (llmc_train_config.precision).
 *
 * This CPU path has no bf16 multiply (AVX512_BF16 / AMX): a bf16 matmul with float32 accumulation is emulated
 * exactly by rounding both operands to bf16 (the values stay in float32 registers, low 16 bits zero) and running
 * the float32 sgemm. Products of two bf16 values are exact in float32 (8 + 8 significant bits), so the result
 * differs from vdpbf16ps only by summation order. */
#include <string.h>

#include "internal.h"

// src, dst: (n,); may alias
void llmc_round_bf16(const float *src, float *dst, size_t n) {
    const int nt = llmc_threads_for(n);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, src + i, 4);
        /* round half to even on the 16 bits dropped; a NaN stays NaN (quiet bit forced, so it cannot round to inf) */
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
        uint32_t q = (u & 0xffff0000u) | 0x00400000u;
        r = (u & 0x7fffffffu) > 0x7f800000u ? q : r;
        memcpy(dst + i, &r, 4);
    }
}
