// qk_norm_rope_append for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel
// qk_norm_rope_append is at the end. head_dim HD is a multiple of 32, so of S::kLanes: no tails.
// Per token: cos/sin of the HD/2 angles once (scalar libm, accurate at large positions), then per head: sum
// of squares, x * rsqrt(mean + eps) * w, and the rotate-half RoPE on lane vectors.
#include <cmath>

#include "kernels.h"
#include "lfm25/static_switch.h"
#include "qk_norm_rope_append/common.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

template <class S, DType DT, DType CDT, int HD>
Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes, kHalf = HD / 2;
  static_assert(kHalf % L == 0, "head_dim / 2 must be a multiple of the vector width");
  const auto norm_rope = [&](auto out, const T* src, auto* dst, const float* w, const float* cs, const float* sn) {
    constexpr DType O = decltype(out)::value;
    typename S::F v[HD / L];
    auto ss = S::zero();
    for (int i = 0; i < HD / L; ++i) v[i] = S::template load<DT>(src + i * L), ss = S::fma(v[i], v[i], ss);
    const auto r = S::set1(1.0f / std::sqrt(S::reduce_add(ss) / float(HD) + float(p.eps)));
    for (int i = 0; i < HD / L; ++i) v[i] = S::mul(S::loadf(w + i * L), S::mul(v[i], r));
    for (int i = 0; i < kHalf / L; ++i) {
      const auto lo = v[i], hi = v[i + kHalf / L], c = S::loadf(cs + i * L), s = S::loadf(sn + i * L);
      S::template store<O>(dst + i * L, S::fnma(hi, s, S::mul(lo, c)));
      S::template store<O>(dst + kHalf + i * L, S::fma(lo, s, S::mul(hi, c)));
    }
  };
  return qk_norm_rope_append_drive<DT, CDT, HD>(p, norm_rope);
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return simd::qk_norm_rope_append<Vec, DT, CDT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
