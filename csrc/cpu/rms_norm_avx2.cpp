// rms_norm, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template rms_norm_simd.h on simd_avx2.h.
#include "kernels.h"
#include "rms_norm_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status rms_norm_avx2(const RmsNormParams& p) { return simd::rms_norm_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
