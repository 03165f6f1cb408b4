// short_conv, AVX-512 (F/BW/VL/DQ), 16 fp32 lanes: the SIMD template short_conv_simd.h on simd_avx512.h.
#include "kernels.h"
#include "short_conv_simd.h"
#include "simd_avx512.h"

namespace lfm25::cpu {

Status short_conv_avx512(const ShortConvParams& p) { return simd::short_conv_dispatch<Avx512>(p); }

}  // namespace lfm25::cpu
