// gqa_decode, AVX-512 (F/BW/VL/DQ), 16 fp32 lanes: the SIMD template gqa_decode_simd.h on simd_avx512.h.
#include "kernels.h"
#include "gqa_decode_simd.h"
#include "simd_avx512.h"

namespace lfm25::cpu {

Status gqa_decode_avx512(const GqaDecodeParams& p) { return simd::gqa_decode_dispatch<Avx512>(p); }

}  // namespace lfm25::cpu
