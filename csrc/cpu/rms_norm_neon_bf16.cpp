// rms_norm, NEON with the ARMv8.6 BF16 conversion instructions: the SIMD template rms_norm_simd.h on
// simd_neon_bf16.h.
#include "kernels.h"
#include "rms_norm_simd.h"
#include "simd_neon_bf16.h"

namespace lfm25::cpu {

Status rms_norm_neon_bf16(const RmsNormParams& p) { return simd::rms_norm_dispatch<NeonBf16>(p); }

}  // namespace lfm25::cpu
