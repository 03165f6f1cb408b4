// qk_norm_rope_append, NEON (AArch64 Advanced SIMD), 4 fp32 lanes: the SIMD template qk_norm_rope_append_simd.h on simd_neon.h.
#include "kernels.h"
#include "qk_norm_rope_append_simd.h"
#include "simd_neon.h"

namespace lfm25::cpu {

Status qk_norm_rope_append_neon(const QkNormRopeAppendParams& p) { return simd::qk_norm_rope_append_dispatch<Neon>(p); }

}  // namespace lfm25::cpu
