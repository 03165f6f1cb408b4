// linear, NEON (AArch64 Advanced SIMD), 4 fp32 lanes: the SIMD template linear_simd.h on simd_neon.h.
#include "kernels.h"
#include "linear_simd.h"
#include "simd_neon.h"

namespace lfm25::cpu {

Status linear_neon(const LinearParams& p) { return simd::linear_dispatch<Neon>(p); }

}  // namespace lfm25::cpu
