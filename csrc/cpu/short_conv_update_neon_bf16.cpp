// short_conv_update, NEON with the ARMv8.6 BF16 conversion instructions: the SIMD template short_conv_update_simd.h on
// simd_neon_bf16.h.
#include "kernels.h"
#include "short_conv_update_simd.h"
#include "simd_neon_bf16.h"

namespace lfm25::cpu {

Status short_conv_update_neon_bf16(const ShortConvUpdateParams& p) { return simd::short_conv_update_dispatch<NeonBf16>(p); }

}  // namespace lfm25::cpu
