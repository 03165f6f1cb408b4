// gqa_decode, NEON with the ARMv8.6 BF16 conversion instructions: the SIMD template gqa_decode_simd.h on
// simd_neon_bf16.h.
#include "kernels.h"
#include "gqa_decode_simd.h"
#include "simd_neon_bf16.h"

namespace lfm25::cpu {

Status gqa_decode_neon_bf16(const GqaDecodeParams& p) { return simd::gqa_decode_dispatch<NeonBf16>(p); }

}  // namespace lfm25::cpu
