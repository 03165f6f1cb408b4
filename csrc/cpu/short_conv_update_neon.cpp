// short_conv_update, NEON (AArch64 Advanced SIMD), 4 fp32 lanes: the SIMD template short_conv_update_simd.h on simd_neon.h.
#include "kernels.h"
#include "short_conv_update_simd.h"
#include "simd_neon.h"

namespace lfm25::cpu {

Status short_conv_update_neon(const ShortConvUpdateParams& p) { return simd::short_conv_update_dispatch<Neon>(p); }

}  // namespace lfm25::cpu
