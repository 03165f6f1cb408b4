// qk_norm_rope_append, AVX-512 (F/BW/VL/DQ), 16 fp32 lanes: the SIMD template qk_norm_rope_append_simd.h on simd_avx512.h.
#include "kernels.h"
#include "qk_norm_rope_append_simd.h"
#include "simd_avx512.h"

namespace lfm25::cpu {

Status qk_norm_rope_append_avx512(const QkNormRopeAppendParams& p) { return simd::qk_norm_rope_append_dispatch<Avx512>(p); }

}  // namespace lfm25::cpu
