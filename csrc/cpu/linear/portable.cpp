// portable::linear, plain C++: one output at a time, 4 partial sums over K.
#include <algorithm>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "linear/common.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT>
float dot(const typename Storage<DT>::T* x, const typename Storage<DT>::T* w, int64_t K) {
  using S = Storage<DT>;
  float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t k = 0;
  for (; k + 4 <= K; k += 4)
    for (int j = 0; j < 4; ++j) s[j] += S::load(x[k + j]) * S::load(w[k + j]);
  for (; k < K; ++k) s[0] += S::load(x[k]) * S::load(w[k]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

template <DType DT>
Status run(const LinearParams& p) {
  using T = typename Storage<DT>::T;
  const int64_t M = p.rows, K = p.in_features, N = p.out_features;
  const T* x = static_cast<const T*>(p.x);
  const T* w = static_cast<const T*>(p.weight);
  const T* g = static_cast<const T*>(p.gate_weight);
  T* y = static_cast<T*>(p.y);
  parallel_for(N, p.num_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)), [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t m = 0; m < M; ++m) {
        const T* xm = x + m * p.x_row_stride;
        const float up = dot<DT>(xm, w + n * p.weight_row_stride, K);
        const float gate = g ? dot<DT>(xm, g + n * p.gate_row_stride, K) : 0.0f;
        y[m * p.y_row_stride + n] = linear_output<DT>(up, gate, g != nullptr);
      }
  });
  return Status::kOk;
}

}  // namespace

Status linear(const LinearParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] { return run<DT>(p); });
}

}  // namespace lfm25::cpu::portable
