// short_conv, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template short_conv_simd.h on simd_avx2.h.
#include "kernels.h"
#include "short_conv_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status short_conv_avx2(const ShortConvParams& p) { return simd::short_conv_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
