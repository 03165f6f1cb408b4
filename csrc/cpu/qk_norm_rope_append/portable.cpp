// portable::qk_norm_rope_append, plain C++. Per token n and head h (d = head_dim, half = d/2):
//   x' = w * x / sqrt(mean(x^2) + eps)                     (fp32, weights shared by heads)
//   out[i] = x'[i] cos(a_i) - x'[i+half] sin(a_i),  out[i+half] = x'[i+half] cos(a_i) + x'[i] sin(a_i)
//   a_i = float(pos) * inv_freq[i]
// q heads go to q_out; k heads (same transform) and v heads (copied) go to cache slot slot_mapping[n], in the
// cache's dtype.
// NOTE: the normalised value is not rounded to the activation dtype before RoPE, and cos/sin stay fp32: one
// rounding at the output instead of transformers' three.
#include <cmath>

#include "kernels.h"
#include "lfm25/static_switch.h"
#include "qk_norm_rope_append/common.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT, DType CDT, int HD>
Status run(const QkNormRopeAppendParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int kHalf = HD / 2;
  const auto norm_rope = [&](auto out, const T* src, auto* dst, const float* w, const float* cs, const float* sn) {
    using O = Storage<decltype(out)::value>;
    float xf[HD];
    float ss = 0.f;
    for (int i = 0; i < HD; ++i) xf[i] = S::load(src[i]), ss += xf[i] * xf[i];
    const float r = 1.0f / std::sqrt(ss / float(HD) + float(p.eps));
    for (int i = 0; i < HD; ++i) xf[i] = w[i] * (xf[i] * r);
    for (int i = 0; i < kHalf; ++i) {
      dst[i] = O::store(xf[i] * cs[i] - xf[i + kHalf] * sn[i]);
      dst[i + kHalf] = O::store(xf[i + kHalf] * cs[i] + xf[i] * sn[i]);
    }
  };
  return qk_norm_rope_append_drive<DT, CDT, HD>(p, norm_rope);
}

}  // namespace

Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return run<DT, CDT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::portable
