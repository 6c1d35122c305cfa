/* batch_kernels.h: SIMD kernels of batched decoding (batch.c picks them at run time). */
#ifndef LLMC_BATCH_KERNELS_H
#define LLMC_BATCH_KERNELS_H

#include <stddef.h>

/* W: (nb, in) F32 rows; x: (T, in); y[t * ldy + j] = (accumulate ? y[t * ldy + j] : 0) + dot(W[j], x[t]).
 * Each output is the same sum whatever T and the row's place in x. AVX2 + FMA only. */
void llmc_batch_dots_avx2(const float *W, size_t nb, size_t in, const float *x, size_t T, float *y, size_t ldy,
                          int accumulate);

#endif
