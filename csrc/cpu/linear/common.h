// linear: what every ISA shares. The output of one element from its fp32 sums, rounded as torch's eager ops
// round y = F.linear(x, w) and y = F.silu(F.linear(x, w1)) * F.linear(x, w3) in the activation dtype; and the
// driver of the tiled kernels (simd.cpp's fma tile, avx512_bf16.cpp's VDPBF16PS tile).
//
// Driver: a tile is MR rows of x times NR rows of W with MR * NR fp32 sums, computed by a Tile policy; with a
// gate, a tile's NR rows are NR/2 rows of W and the same NR/2 rows of the gate weight, so both sums of an
// output come from one tile. Each thread takes a contiguous range of output blocks; for M > MR the range is
// cut into chunks of about 256 KiB of weights that stay in L2 while every MR-row tile of x passes over them.
#pragma once
#include <algorithm>
#include <cmath>

#include "common/numeric.h"
#include "common/parallel.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

template <DType DT>
typename Storage<DT>::T linear_output(float up, float gate, bool gated) {
  using S = Storage<DT>;
  if (!gated) return S::store(up);
  const float u = S::load(S::store(up)), g = S::load(S::store(gate));
  const float s = S::load(S::store(g / (1.0f + std::exp(-g))));   // torch's silu: x / (1 + exp(-x))
  return S::store(s * u);
}

// Rows are taken in tiles of mr_max while they last, then of halves: the tile at row m0 has next_mr rows.
inline int next_mr(int mr_max, int64_t rows_left) {
  int mr = mr_max;
  while (mr > rows_left) mr /= 2;
  return mr;
}

// The driver, for a Tile policy (simd.cpp's FmaTile, avx512_bf16.cpp's Bf16DotTile) with NR weight rows.
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

}  // namespace
}  // namespace lfm25::cpu
