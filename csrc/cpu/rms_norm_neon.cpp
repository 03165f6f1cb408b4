// rms_norm, NEON (AArch64 Advanced SIMD), 4 fp32 lanes: the SIMD template rms_norm_simd.h on simd_neon.h.
#include "kernels.h"
#include "rms_norm_simd.h"
#include "simd_neon.h"

namespace lfm25::cpu {

Status rms_norm_neon(const RmsNormParams& p) { return simd::rms_norm_dispatch<Neon>(p); }

}  // namespace lfm25::cpu
