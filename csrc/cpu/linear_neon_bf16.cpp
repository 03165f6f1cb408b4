// linear, NEON with the ARMv8.6 BF16 conversion instructions: the SIMD template linear_simd.h on simd_neon_bf16.h.
#include "kernels.h"
#include "linear_simd.h"
#include "simd_neon_bf16.h"

namespace lfm25::cpu {

Status linear_neon_bf16(const LinearParams& p) { return simd::linear_dispatch<NeonBf16>(p); }

}  // namespace lfm25::cpu
