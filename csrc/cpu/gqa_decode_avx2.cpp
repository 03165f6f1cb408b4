// gqa_decode, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template gqa_decode_simd.h on simd_avx2.h.
#include "kernels.h"
#include "gqa_decode_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status gqa_decode_avx2(const GqaDecodeParams& p) { return simd::gqa_decode_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
