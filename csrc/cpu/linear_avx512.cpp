// linear, AVX-512 (F/BW/VL/DQ), 16 fp32 lanes: the SIMD template linear_simd.h on simd_avx512.h.
#include "kernels.h"
#include "linear_simd.h"
#include "simd_avx512.h"

namespace lfm25::cpu {

Status linear_avx512(const LinearParams& p) { return simd::linear_dispatch<Avx512>(p); }

}  // namespace lfm25::cpu
