// rms_norm for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel rms_norm is at the end.
// Per row, h = x (+ residual, rounded and stored to residual_out), sum of squares in S::kLanes fp32 partial
// sums, then y = w * h * rsqrt(mean + eps) in a second pass over the (cached) row.
#include <algorithm>
#include <cmath>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

template <class S, DType DT>
Status rms_norm(const RmsNormParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes;
  const int64_t D = p.dim, Dv = (D + L - 1) / L * L;
  Scratch<float> w(Dv);
  for (int64_t c = 0; c < D; ++c) w[c] = load_as_f32(p.weight, p.weight_dtype, c);
  parallel_for(p.rows, p.num_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
      const T* h = x;  // the row that is normalised
      auto ss = S::zero();
      if (p.residual_given) {
        const T* res = static_cast<const T*>(p.residual) + r * p.residual_row_stride;
        T* ho = static_cast<T*>(p.residual_out) + r * D;
        for (int64_t c = 0; c < D; c += L) {
          const auto m = S::mask(D - c);
          const auto v = S::template round<DT>(S::add(S::template load<DT>(x + c, m), S::template load<DT>(res + c, m)));
          S::template store<DT>(ho + c, v, m);
          ss = S::fma(v, v, ss);
        }
        h = ho;
      } else {
        for (int64_t c = 0; c < D; c += L) {
          const auto v = S::template load<DT>(x + c, S::mask(D - c));
          ss = S::fma(v, v, ss);
        }
      }
      const auto inv = S::set1(1.0f / std::sqrt(S::reduce_add(ss) / float(D) + float(p.eps)));
      T* y = static_cast<T*>(p.y) + r * D;
      for (int64_t c = 0; c < D; c += L) {
        const auto m = S::mask(D - c);
        S::template store<DT>(y + c, S::mul(S::loadf(w.data() + c), S::mul(S::template load<DT>(h + c, m), inv)), m);
      }
    }
  });
  return Status::kOk;
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status rms_norm(const RmsNormParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] { return simd::rms_norm<Vec, DT>(p); });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
