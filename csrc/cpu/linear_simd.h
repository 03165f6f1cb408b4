// linear for a SIMD ISA S: y = x . W^T for the few rows of a decode step, weights streamed once per call.
//
// x is converted once to fp32 and packed per row tile (pack_x: zero-padded, columns in the lane order of
// S::load2, the tile's rows interleaved per vector), so a weight chunk is one load2 (for bf16: one 64-byte
// load and two bit operations on AVX-512) and x is read sequentially. A tile is MR rows of x times NR rows
// of W with MR * NR fp32 accumulators in registers, reduced horizontally once at the end of K. With a gate, a tile's NR rows are NR/2 rows of W
// and the same NR/2 rows of the gate weight, so both sums of an output come from one tile.
//
// Blocking: each thread takes a contiguous range of output blocks; for M > MR the range is cut into chunks of
// about 256 KiB of weights that stay in L2 while every MR-row tile of x passes over them.
#pragma once
#include <algorithm>

#include "linear_common.h"
#include "numeric.h"
#include "parallel.h"
#include "lfm25/static_switch.h"

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

// Rows are taken in tiles of mr_max while they last, then of halves: the tile at row m0 has next_mr rows.
inline int next_mr(int mr_max, int64_t rows_left) {
  int mr = mr_max;
  while (mr > rows_left) mr /= 2;
  return mr;
}

// The driver, for a Tile policy (FmaTile above; linear_avx512_bf16.cpp has another) with NR weight rows.
template <class Tile, DType DT, int NR>
Status linear_run(const LinearParams& p, int mr_max) {
  using T = typename Storage<DT>::T;
  const int64_t M = p.rows, K = p.in_features, N = p.out_features, Kp = Tile::padded(K);
  // the tile at row m0 starts at xs + m0 * Kp; 64-byte aligned, so no vector load of x straddles two lines
  using X = typename Tile::X;
  constexpr int64_t kAlign = 64 / sizeof(X);
  Scratch<X> xf(M * Kp + kAlign);
  X* xs = xf.data() + (kAlign - int64_t(reinterpret_cast<uintptr_t>(xf.data()) % 64) / int64_t(sizeof(X))) % kAlign;
  for (int64_t m0 = 0; m0 < M;) {
    const int mr = next_mr(mr_max, M - m0);
    Tile::pack(p, m0, mr, xs + m0 * Kp);
    m0 += mr;
  }
  const bool gated = p.gate_weight != nullptr;
  const int H = gated ? NR / 2 : NR;   // outputs per tile
  const int64_t n_blocks = (N + H - 1) / H;
  const int64_t block_bytes = int64_t(NR) * K * int64_t(sizeof(T));
  const int64_t chunk = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(block_bytes, 1));
  const T* W = static_cast<const T*>(p.weight);
  const T* G = static_cast<const T*>(p.gate_weight);
  T* Y = static_cast<T*>(p.y);
  // a thread's share is at least ~64 KiB of weights: less costs more in wake-up than it saves
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(block_bytes, 1));
  parallel_for(n_blocks, p.num_threads, grain, [&](int64_t b0, int64_t b1) {
    float sums[8 * NR];
    const T* rows[NR];
    for (int64_t c0 = b0; c0 < b1; c0 += chunk) {
      const int64_t c1 = std::min(b1, c0 + chunk);
      for (int64_t m0 = 0; m0 < M;) {
        const int mr = next_mr(mr_max, M - m0);
        const X* xt = xs + m0 * Kp;
        for (int64_t b = c0; b < c1; ++b) {
          const int64_t n0 = b * H;
          for (int j = 0; j < H; ++j) {   // past N: repeat the last row, its sums are not stored
            const int64_t n = std::min(n0 + j, N - 1);
            rows[j] = W + n * p.weight_row_stride;
            if (gated) rows[H + j] = G + n * p.gate_row_stride;
          }
          switch (mr) {
            case 8: if constexpr (8 * NR <= Tile::kRegisters / 2) Tile::template run<8, NR>(xt, rows, K, sums); break;
            case 4: if constexpr (4 * NR <= Tile::kRegisters / 2) Tile::template run<4, NR>(xt, rows, K, sums); break;
            case 2: Tile::template run<2, NR>(xt, rows, K, sums); break;
            default: Tile::template run<1, NR>(xt, rows, K, sums); break;
          }
          const int h = int(std::min<int64_t>(H, N - n0));
          for (int i = 0; i < mr; ++i)
            for (int j = 0; j < h; ++j)
              Y[(m0 + i) * p.y_row_stride + n0 + j] =
                  linear_output<DT>(sums[i * NR + j], gated ? sums[i * NR + H + j] : 0.0f, gated);
        }
        m0 += mr;
      }
    }
  });
  return Status::kOk;
}

}  // namespace

// Tile shape from the register file: at most half the registers hold accumulators, the rest weights and x.
template <class Tile, DType DT>
Status linear_with(const LinearParams& p) {
  constexpr int kAcc = Tile::kRegisters / 2;
  const int64_t M = p.rows;
  int mr_max = 1;
  while (mr_max < 8 && 2 * mr_max <= M && 2 * mr_max * 2 <= kAcc) mr_max *= 2;
  const int nr = std::clamp(kAcc / mr_max, 2, 8);
  return nr >= 8 ? linear_run<Tile, DT, 8>(p, mr_max) : nr >= 4 ? linear_run<Tile, DT, 4>(p, mr_max)
                                                       : linear_run<Tile, DT, 2>(p, mr_max);
}

template <class S>
Status linear_dispatch(const LinearParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] { return linear_with<FmaTile<S, DT>, DT>(p); });
}

}  // namespace lfm25::cpu::simd
