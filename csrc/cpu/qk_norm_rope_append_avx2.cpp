// qk_norm_rope_append, AVX2 + FMA + F16C, 8 fp32 lanes: the SIMD template qk_norm_rope_append_simd.h on simd_avx2.h.
#include "kernels.h"
#include "qk_norm_rope_append_simd.h"
#include "simd_avx2.h"

namespace lfm25::cpu {

Status qk_norm_rope_append_avx2(const QkNormRopeAppendParams& p) { return simd::qk_norm_rope_append_dispatch<Avx2>(p); }

}  // namespace lfm25::cpu
