// short_conv_update, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template short_conv_update_simd.h on simd_avx2.h.
#include "kernels.h"
#include "short_conv_update_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status short_conv_update_avx2(const ShortConvUpdateParams& p) { return simd::short_conv_update_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
