// portable::rms_norm, plain C++: per row, h = x (+ residual, rounded to the activation dtype and stored to
// residual_out), y = w * h / sqrt(mean(h^2) + eps).
// NOTE: one rounding at the output; transformers rounds the normalised h before multiplying by w.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT>
Status run(const RmsNormParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  const int64_t D = p.dim;
  parallel_for(p.rows, p.num_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<float> h(static_cast<size_t>(D));
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
      float ss = 0.0f;
      if (p.residual_given) {
        const T* res = static_cast<const T*>(p.residual) + r * p.residual_row_stride;
        T* ho = static_cast<T*>(p.residual_out) + r * D;
        for (int64_t c = 0; c < D; ++c) {
          ho[c] = S::store(S::load(x[c]) + S::load(res[c]));
          h[size_t(c)] = S::load(ho[c]);
        }
      } else {
        for (int64_t c = 0; c < D; ++c) h[size_t(c)] = S::load(x[c]);
      }
      for (int64_t c = 0; c < D; ++c) ss += h[size_t(c)] * h[size_t(c)];
      const float inv = 1.0f / std::sqrt(ss / float(D) + float(p.eps));
      T* y = static_cast<T*>(p.y) + r * D;
      for (int64_t c = 0; c < D; ++c) y[c] = S::store(load_as_f32(p.weight, p.weight_dtype, c) * (h[size_t(c)] * inv));
    }
  });
  return Status::kOk;
}

}  // namespace

Status rms_norm(const RmsNormParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] { return run<DT>(p); });
}

}  // namespace lfm25::cpu::portable
