// portable::short_conv, plain C++: the fallback and the second oracle for the SIMD paths.
// y[t, c] = C[t, c] * sum_k w[c, k] * U[t-(K-1)+k, c], U = round(B * X); per item, channels in blocks of 64
// with a K-1 row window of U carried along the tokens.
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "short_conv/common.h"

namespace lfm25::cpu::portable {
namespace {

constexpr int64_t kBlock = 64;

template <DType DT, int K>
Status run(const ShortConvParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  const ShortConvGeometry g{p};
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t D = p.dim;
  return short_conv_drive<DT>(p, [&](int64_t s, int64_t t0, int64_t t1, const float* init) {
    float w[K][kBlock], win[K - 1][kBlock];
    for (int64_t c0 = 0; c0 < D; c0 += kBlock) {
      const int64_t nc = std::min(kBlock, D - c0);
      for (int k = 0; k < K; ++k)
        for (int64_t c = 0; c < nc; ++c) w[k][c] = load_as_f32(p.weight, p.weight_dtype, (c0 + c) * p.weight_stride + k);
      for (int j = 0; j < K - 1; ++j) {
        const int64_t t = t0 - (K - 1) + j;
        const T* xr = t >= 0 ? x + g.x_offset(s, t) + c0 : nullptr;
        for (int64_t c = 0; c < nc; ++c)
          win[j][c] = xr ? S::load(S::store(S::load(xr[c]) * S::load(xr[2 * D + c])))
                         : (init ? init[(K - 1 + t) * D + c0 + c] : 0.0f);
      }
      for (int64_t t = t0; t < t1; ++t) {
        const T* xr = x + g.x_offset(s, t) + c0;
        T* yr = y + g.y_offset(s, t) + c0;
        for (int64_t c = 0; c < nc; ++c) {
          const float u = S::load(S::store(S::load(xr[c]) * S::load(xr[2 * D + c])));
          float z = w[0][c] * win[0][c];
          for (int k = 1; k < K - 1; ++k) z = z + w[k][c] * win[k][c];
          z = z + w[K - 1][c] * u;
          yr[c] = S::store(S::load(xr[D + c]) * z);
          for (int k = 0; k < K - 2; ++k) win[k][c] = win[k + 1][c];
          win[K - 2][c] = u;
        }
      }
    }
  });
}

}  // namespace

Status short_conv(const ShortConvParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return run<DT, K>(p); });
  });
}

}  // namespace lfm25::cpu::portable
