// short_conv for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel short_conv is at the end.
// Tokens in order, 2 * S::kLanes channels per step (a masked tail of single vectors). The U rows of the K-1
// previous tokens live in an fp32 ring of K-1 rows (L1-resident), so each input row is read once. Every output
// is z = w0*U[t-K+1], then fma(w_k, U[t-K+1+k], z): the order short_conv_update/simd.cpp uses too, so a
// decode step equals a one-token prefill bit for bit.
#include <cstring>

#include "kernels.h"
#include "lfm25/static_switch.h"
#include "short_conv/common.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

template <class S, DType DT, int K>
Status short_conv(const ShortConvParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes;
  const ShortConvGeometry g{p};
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  // NOTE: rows of the fp32 buffers are padded by one cache line so that they are never a multiple of 4 KiB
  // apart: stores to one ring row and loads from the others would otherwise 4K-alias.
  const int64_t D = p.dim, Dv = (D + L - 1) / L * L + 16;
  // Channels [0, D2) go 2L at a time through S::load2/store2, whose lanes may hold the channels in another
  // order (bf16: even, then odd); the fp32 buffers use that order there, the natural order in the tail.
  const int64_t D2 = D / (2 * L) * (2 * L);
  const auto channel_of = [D2](int64_t c) {
    return c < D2 ? c - c % (2 * L) + S::template pair_channel<DT>(int(c % (2 * L))) : c;
  };
  // position t of the ring lives in row (t + K) % (K - 1); t >= -(K-1), so the operand stays non-negative
  const auto ring_row = [](int64_t t) { return (t + K) % (K - 1); };
  Scratch<float> weights(K * Dv);        // [K][Dv] fp32 weights, once per call
  for (int64_t c = 0; c < D; ++c)
    for (int k = 0; k < K; ++k)
      weights[k * Dv + c] = load_as_f32(p.weight, p.weight_dtype, channel_of(c) * p.weight_stride + k);
  return short_conv_drive<DT>(p, [&](int64_t s, int64_t t0, int64_t t1, const float* init) {
    // one buffer, so that the rows of both are never 4 KiB apart (see above)
    Scratch<float> buf((2 * K - 1) * Dv);
    float* w = buf.data();                 // [K][Dv] fp32 weights
    float* ring = buf.data() + K * Dv;     // [K-1][Dv] U rows
    std::memcpy(w, weights.data(), size_t(K * Dv) * sizeof(float));
    // NOTE: locals, not captured references: the stores below could alias them, forcing reloads per vector
    const int64_t n = D, n2 = D2, nv = Dv;
    for (int64_t t = t0 - (K - 1); t < t0; ++t) {
      float* row = ring + ring_row(t) * nv;
      if (t >= 0) {
        const T* xb = x + g.x_offset(s, t);
        for (int64_t c = 0; c < n2; c += 2 * L) {
          typename S::F b0, b1, x0, x1;
          S::template load2<DT>(xb + c, b0, b1);
          S::template load2<DT>(xb + 2 * n + c, x0, x1);
          S::storef(row + c, S::template round<DT>(S::mul(b0, x0)));
          S::storef(row + c + L, S::template round<DT>(S::mul(b1, x1)));
        }
        for (int64_t c = n2; c < n; c += L) {
          const auto m = S::mask(n - c);
          S::storef(row + c, S::template round<DT>(S::mul(S::template load<DT>(xb + c, m),
                                                          S::template load<DT>(xb + 2 * n + c, m))));
        }
      } else {
        for (int64_t c = 0; c < n; ++c) row[c] = init ? init[(K - 1 + t) * n + channel_of(c)] : 0.0f;
      }
    }
    for (int64_t t = t0; t < t1; ++t) {
      const T* xb = x + g.x_offset(s, t);
      const T* xc = xb + n;
      const T* xx = xb + 2 * n;
      T* yr = y + g.y_offset(s, t);
      float* rows[K - 1];
      for (int j = 0; j < K - 1; ++j) rows[j] = ring + ring_row(t - (K - 1) + j) * nv;
      // z = w0*U[t-K+1], then fma(w_k, U[t-K+1+k], z); y = C * z
      const auto conv = [&](int64_t c, typename S::F u) {
        auto z = S::mul(S::loadf(w + c), S::loadf(rows[0] + c));
        for (int k = 1; k < K - 1; ++k) z = S::fma(S::loadf(w + k * nv + c), S::loadf(rows[k] + c), z);
        z = S::fma(S::loadf(w + (K - 1) * nv + c), u, z);
        S::storef(rows[0] + c, u);           // the oldest row becomes position t
        return z;
      };
      for (int64_t c = 0; c < n2; c += 2 * L) {
        typename S::F b0, b1, x0, x1, c0, c1;
        S::template load2<DT>(xb + c, b0, b1);
        S::template load2<DT>(xx + c, x0, x1);
        S::template load2<DT>(xc + c, c0, c1);
        const auto z0 = conv(c, S::template round<DT>(S::mul(b0, x0)));
        const auto z1 = conv(c + L, S::template round<DT>(S::mul(b1, x1)));
        S::template store2<DT>(yr + c, S::mul(c0, z0), S::mul(c1, z1));
      }
      for (int64_t c = n2; c < n; c += L) {
        const auto m = S::mask(n - c);
        const auto u = S::template round<DT>(S::mul(S::template load<DT>(xb + c, m), S::template load<DT>(xx + c, m)));
        S::template store<DT>(yr + c, S::mul(S::template load<DT>(xc + c, m), conv(c, u)), m);
      }
    }
  });
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status short_conv(const ShortConvParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return simd::short_conv<Vec, DT, K>(p); });
  });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
