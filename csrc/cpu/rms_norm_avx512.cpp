// rms_norm, AVX-512 (F/BW/VL/DQ), 16 fp32 lanes: the SIMD template rms_norm_simd.h on simd_avx512.h.
#include "kernels.h"
#include "rms_norm_simd.h"
#include "simd_avx512.h"

namespace lfm25::cpu {

Status rms_norm_avx512(const RmsNormParams& p) { return simd::rms_norm_dispatch<Avx512>(p); }

}  // namespace lfm25::cpu
