// qk_norm_rope_append, NEON with the ARMv8.6 BF16 conversion instructions: the SIMD template qk_norm_rope_append_simd.h on
// simd_neon_bf16.h.
#include "kernels.h"
#include "qk_norm_rope_append_simd.h"
#include "simd_neon_bf16.h"

namespace lfm25::cpu {

Status qk_norm_rope_append_neon_bf16(const QkNormRopeAppendParams& p) { return simd::qk_norm_rope_append_dispatch<NeonBf16>(p); }

}  // namespace lfm25::cpu
