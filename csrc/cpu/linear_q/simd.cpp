// linear_q for a SIMD ISA, compiled once per ISA: the driver of linear_q/common.h with the ISA's Dot policy
// (x86.h, neon.h). The avx512_bf16 and amx tables run vnni.cpp's instead, and the NEON tables neon_dotprod.cpp's
// or neon_i8mm.cpp's where the CPU has those extensions (dispatch.cpp).
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "simd/isa.h"
#if defined(LFM25_CPU_X86_SIMD)
#include "linear_q/x86.h"
#else
#include "linear_q/neon.h"
#endif

namespace lfm25::cpu::LFM25_SIMD_ISA {

#if LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 1
Status linear_q(const LinearQParams& p) { return linear_q_with<Avx2Dot, 2>(p); }
#elif LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 2
Status linear_q(const LinearQParams& p) { return linear_q_with<Avx512BwDot, 4>(p); }
#else
Status linear_q(const LinearQParams& p) { return linear_q_with<NeonDot, 4>(p); }
#endif

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
