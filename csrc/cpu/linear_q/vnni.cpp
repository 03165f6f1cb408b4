// avx512_vnni::linear_q, the linear_q of the "avx512_bf16" and "amx" tables (every CPU with AVX512_BF16 has
// AVX512_VNNI): the driver of linear_q/common.h with VPDPBUSD (linear_q/x86.h).
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "linear_q/x86.h"

namespace lfm25::cpu::avx512_vnni {

Status linear_q(const LinearQParams& p) { return linear_q_with<Avx512VnniDot, 4>(p); }

}  // namespace lfm25::cpu::avx512_vnni
