// portable::short_conv_update, plain C++: one token per sequence. u = round(B * X); y = round(C * (sum_k
// w[k] * [state rows, u][k])); the state shifts up one row and u becomes its last row. Same arithmetic, in
// the same order, as short_conv/portable.cpp, so a step equals a one-token prefill bit for bit.
#include <cstring>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT, int K>
Status run(const ShortConvUpdateParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  const int64_t D = p.dim;
  parallel_for(p.batch, p.num_threads, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride;
      T* y = static_cast<T*>(p.y) + b * p.y_batch_stride;
      const int64_t slot = p.state_indices ? p.state_indices[b] : b;
      if (slot < 0) {
        std::memset(y, 0, size_t(D) * sizeof(T));
        continue;
      }
      T* st = static_cast<T*>(p.state) + slot * p.state_slot_stride;
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
    }
  });
  return Status::kOk;
}

}  // namespace

Status short_conv_update(const ShortConvUpdateParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return run<DT, K>(p); });
  });
}

}  // namespace lfm25::cpu::portable
