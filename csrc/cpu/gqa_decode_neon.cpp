// gqa_decode, NEON (AArch64 Advanced SIMD), 4 fp32 lanes: the SIMD template gqa_decode_simd.h on simd_neon.h.
#include "kernels.h"
#include "gqa_decode_simd.h"
#include "simd_neon.h"

namespace lfm25::cpu {

Status gqa_decode_neon(const GqaDecodeParams& p) { return simd::gqa_decode_dispatch<Neon>(p); }

}  // namespace lfm25::cpu
