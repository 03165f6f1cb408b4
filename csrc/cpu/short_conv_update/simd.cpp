// short_conv_update for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel short_conv_update
// is at the end. One token per sequence, S::kLanes channels per vector (masked tail). Same arithmetic and
// order as short_conv/simd.cpp (z = w0*s0, then fma), so a step equals a one-token prefill bit for bit.
// Weights are transposed once per call to fp32 [K][D] so each tap is one vector load.
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "short_conv_update/common.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

template <class S, DType DT, int K>
Status short_conv_update(const ShortConvUpdateParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes;
  const int64_t D = p.dim, Dv = (D + L - 1) / L * L;
  Scratch<float> wt(K * Dv);
  for (int64_t c = 0; c < D; ++c)
    for (int k = 0; k < K; ++k) wt[k * Dv + c] = load_as_f32(p.weight, p.weight_dtype, c * p.weight_stride + k);
  // sequences in chunks of at least 4: one row (3D elements in, 3(K-1)D state) is too little for a thread
  return short_conv_update_drive<DT>(p, 4, [&](const T* x, T* y, T* st) {
    for (int64_t c = 0; c < D; c += L) {
      const auto m = S::mask(D - c);
      typename S::F s[K - 1];
      for (int j = 0; j < K - 1; ++j) s[j] = S::template load<DT>(st + j * p.state_row_stride + c, m);
      const auto u = S::template round<DT>(S::mul(S::template load<DT>(x + c, m), S::template load<DT>(x + 2 * D + c, m)));
      auto z = S::mul(S::loadf(wt.data() + c), s[0]);
      for (int k = 1; k < K - 1; ++k) z = S::fma(S::loadf(wt.data() + k * Dv + c), s[k], z);
      z = S::fma(S::loadf(wt.data() + (K - 1) * Dv + c), u, z);
      S::template store<DT>(y + c, S::mul(S::template load<DT>(x + D + c, m), z), m);
      for (int j = 0; j < K - 2; ++j) S::template store<DT>(st + j * p.state_row_stride + c, s[j + 1], m);
      S::template store<DT>(st + (K - 2) * p.state_row_stride + c, u, m);
    }
  });
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status short_conv_update(const ShortConvUpdateParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return simd::short_conv_update<Vec, DT, K>(p); });
  });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
