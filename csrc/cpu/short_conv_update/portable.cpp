// portable::short_conv_update, plain C++: one token per sequence. u = round(B * X); y = round(C * (sum_k
// w[k] * [state rows, u][k])); the state shifts up one row and u becomes its last row. Same arithmetic, in
// the same order, as short_conv/portable.cpp, so a step equals a one-token prefill bit for bit.
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "short_conv_update/common.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT, int K>
Status run(const ShortConvUpdateParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  const int64_t D = p.dim;
  return short_conv_update_drive<DT>(p, 1, [&](const T* x, T* y, T* st) {
    for (int64_t c = 0; c < D; ++c) {
      const float u = S::load(S::store(S::load(x[c]) * S::load(x[2 * D + c])));
      float win[K - 1];
      for (int k = 0; k < K - 1; ++k) win[k] = S::load(st[k * p.state_row_stride + c]);
      const int64_t wc = c * p.weight_stride;
      float z = load_as_f32(p.weight, p.weight_dtype, wc) * win[0];
      for (int k = 1; k < K - 1; ++k) z = z + load_as_f32(p.weight, p.weight_dtype, wc + k) * win[k];
      z = z + load_as_f32(p.weight, p.weight_dtype, wc + K - 1) * u;
      y[c] = S::store(S::load(x[D + c]) * z);
      for (int k = 0; k < K - 2; ++k) st[k * p.state_row_stride + c] = S::store(win[k + 1]);
      st[(K - 2) * p.state_row_stride + c] = S::store(u);
    }
  });
}

}  // namespace

Status short_conv_update(const ShortConvUpdateParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return run<DT, K>(p); });
  });
}

}  // namespace lfm25::cpu::portable
