/* quant_simd.c: which vector kernels the typed matmul uses at each SIMD level, chosen from what the CPU reports. */
#include "internal.h"
#include "quant.h"

/* The portable level: every entry NULL, so the traits table's reference dot products run. */
const llmc_quant_kernels llmc_quant_scalar = {.name = "scalar"};

const llmc_quant_kernels *llmc_quant_kernels_for(int level) {
    (void)level;
    return &llmc_quant_scalar;
}
