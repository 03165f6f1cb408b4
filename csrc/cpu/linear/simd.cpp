// linear for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel linear is at the end: the fma
// tile of the driver in linear/common.h, for the few rows of a decode step.
//
// Weights packed in pairs (linear/pairs.h) run FmaPairTile on the ISAs whose load2 splits bf16 pairs (x86).
//
// x is converted once to fp32 and packed per row tile (pack_x: zero-padded, columns in the lane order of
// S::load2, the tile's rows interleaved per vector), so a weight chunk is one load2 (for bf16: one 64-byte
// load and two bit operations on AVX-512) and x is read sequentially. A tile's MR * NR fp32 accumulators
// stay in registers and are reduced horizontally once at the end of K.
#include "kernels.h"
#include "linear/common.h"
#include "linear/pairs.h"
#include "lfm25/static_switch.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {
namespace {

// sums[i * NR + j] = sum_k x[i, k] * w[j][k] for i < MR, j < NR. xt is the tile's x, packed by pack_x: for
// each chunk of kLanes columns, the MR rows' vectors one after the other, so the loop reads x sequentially.
template <class S, DType DT, int MR, int NR>
inline void linear_tile(const float* xt, const typename Storage<DT>::T* const* w, int64_t K, float* sums) {
  using F = typename S::F;
  constexpr int L = S::kLanes;
  F acc[MR][NR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) acc[i][j] = S::zero();
  const int64_t K2 = K / (2 * L) * (2 * L);
  for (int64_t k = 0; k < K2; k += 2 * L, xt += 2 * MR * L) {
    F wa[NR], wb[NR];
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) S::template load2<DT>(w[j] + k, wa[j], wb[j]);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      F xa = S::loadf(xt + i * L), xb = S::loadf(xt + (MR + i) * L);
      S::in_register(xa);   // one load for the NR uses: the compiler would fold a load into each fma
      S::in_register(xb);
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) acc[i][j] = S::fma(xb, wb[j], S::fma(xa, wa[j], acc[i][j]));
    }
  }
  for (int64_t k = K2; k < K; k += L, xt += MR * L) {   // tail: at most two masked vectors, x zero-padded
    const auto m = S::mask(K - k);
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) {
      const F wv = S::template load<DT>(w[j] + k, m);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) acc[i][j] = S::fma(S::loadf(xt + i * L), wv, acc[i][j]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) sums[i * NR + j] = S::reduce_add(acc[i][j]);
}

// Rows [m0, m0 + mr) of x in fp32, in linear_tile's order: chunk c of kLanes columns holds, for each row, the
// columns of lanes c % 2 of a load2 pair (S::pair_channel) in the main part, plain columns in the tail.
template <class S, DType DT>
void pack_x(const LinearParams& p, int64_t m0, int mr, float* dst) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes;
  const int64_t K = p.in_features, K2 = K / (2 * L) * (2 * L), Kp = (K + L - 1) / L * L;
  for (int64_t c = 0; c < Kp / L; ++c)
    for (int i = 0; i < mr; ++i) {
      const T* x = static_cast<const T*>(p.x) + (m0 + i) * p.x_row_stride;
      for (int j = 0; j < L; ++j, ++dst) {
        const int64_t k = c * L < K2 ? (c / 2) * 2 * L + S::template pair_channel<DT>((c % 2) * L + j) : c * L + j;
        *dst = k < K ? Storage<DT>::load(x[k]) : 0.0f;
      }
    }
}

// The tile of every ISA: x packed in fp32, weights converted to fp32 as they are loaded, fma.
template <class S, DType DT>
struct FmaTile {
  using X = float;
  static constexpr int kRegisters = S::kRegisters;
  static int64_t padded(int64_t K) { return (K + S::kLanes - 1) / S::kLanes * S::kLanes; }
  static void pack(const LinearParams& p, int64_t m0, int mr, X* dst) { pack_x<S, DT>(p, m0, mr, dst); }
  template <int MR, int NR>
  static void run(const X* xt, const typename Storage<DT>::T* const* w, int64_t K, float* sums) {
    linear_tile<S, DT, MR, NR>(xt, w, K, sums);
  }
};

// The pairs tile of linear/pairs.h: load2 splits a vector of kLanes rows' pairs into their first and second
// halves widened to fp32, each multiplied by x's half of the pair broadcast (two roundings per pair, in order).
template <class S>
struct FmaPairTile {
  using X = float;
  static constexpr int kPairWidth = 2;
  static constexpr int kVectors = kPairBlockRows / S::kLanes;   // per block
  // accumulators, x's two broadcasts per row and the two halves of the weights in flight
  static constexpr int kMaxRows = 4 * (kVectors + 2) + 2 <= S::kRegisters ? 4
                                : 2 * (kVectors + 2) + 2 <= S::kRegisters ? 2 : 1;
  static constexpr bool kSplitsPairs =
      S::template pair_channel<DType::kBF16>(0) == 0 && S::template pair_channel<DType::kBF16>(S::kLanes) == 1;

  static void pack(const uint16_t* x, int64_t K, float* dst) {
    for (int64_t k = 0; k < (K + 1) / 2 * 2; ++k) dst[k] = k < K ? Storage<DType::kBF16>::load(x[k]) : 0.0f;
  }

  template <int MR>
  static void run(const float* x, int64_t stride, const uint16_t* w, int64_t pairs, float* sums) {
    using F = typename S::F;
    F acc[MR][kVectors];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < kVectors; ++v) acc[i][v] = S::zero();
    for (int64_t p = 0; p < pairs; ++p, w += 2 * kPairBlockRows) {
      F x0[MR], x1[MR];
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) x0[i] = S::set1(x[i * stride + 2 * p]), x1[i] = S::set1(x[i * stride + 2 * p + 1]);
#pragma GCC unroll 8
      for (int v = 0; v < kVectors; ++v) {
        F first, second;
        S::template load2<DType::kBF16>(w + v * 2 * S::kLanes, first, second);
#pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) acc[i][v] = S::fma(second, x1[i], S::fma(first, x0[i], acc[i][v]));
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int v = 0; v < kVectors; ++v) S::storef(sums + i * kPairBlockRows + v * S::kLanes, acc[i][v]);
  }
};

}  // namespace
}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status linear(const LinearParams& p) {
  if constexpr (simd::FmaPairTile<Vec>::kSplitsPairs) {
    if (in_pairs(p.weight_layout)) return linear_pairs_run<simd::FmaPairTile<Vec>>(p);
  }
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] { return linear_with<simd::FmaTile<Vec, DT>, DT>(p); });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
