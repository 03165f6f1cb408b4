// linear, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template linear_simd.h on simd_avx2.h.
#include "kernels.h"
#include "linear_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status linear_avx2(const LinearParams& p) { return simd::linear_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
