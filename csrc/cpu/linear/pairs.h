// linear on bf16 weights packed in pairs (WeightLayout::kPairs[Gated], lfm25_kernels.pack_weight(layout=
// "pairs")): the layout of the x86 tables without AMX, and its driver, for a Tile policy (simd.cpp's
// FmaPairTile: bf16 widened to fp32 and fma, every SIMD ISA; avx512_bf16.cpp's Bf16PairTile: VDPBF16PS).
//
// Layout (docs/DESIGN.md section 4): blocks of 64 output rows (gated: 32 rows of the weight, then the same 32
// rows of the gate); in a block, for each pair of inputs (2p, 2p + 1), the 64 rows' two bf16 side by side, so a
// block is [ceil(K / 2) pairs][64 rows][2] and one stream. A vector lane is one output row and a 32-bit pair of
// its weights, so a multiply-add takes x's pair broadcast to every lane: the weights are read as they are
// stored, each output's sum is one lane (no horizontal sum), and a row of x adds its pairs in order whatever the
// other rows of the call: the same bits for any batch.
//
// Each thread takes a contiguous range of blocks; for M > MR the range is cut into chunks of about 256 KiB of
// weights that stay in L2 while every MR-row tile of x passes over them.
//
// Policy Tile:
//   X, kPairWidth        x packed for the tile: kPairWidth X per pair of a row (a bf16 pair or two fp32)
//   kMaxRows             rows of x per tile that fit the registers next to a block's 64 sums per row
//   pack(x, K, dst)      one row of x [K] (bf16) to [ceil(K / 2) * kPairWidth] X, zero past K
//   run<MR>(x, stride, w, pairs, sums)   sums[i * 64 + r] = row i of x (x + i * stride) . row r of the block w
#pragma once
#include <algorithm>

#include "common/numeric.h"
#include "common/parallel.h"
#include "linear/common.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

constexpr int kPairBlockRows = 64;

template <class Tile>
Status linear_pairs_run(const LinearParams& p) {
  using T = typename Storage<DType::kBF16>::T;
  using X = typename Tile::X;
  const int64_t M = p.rows, K = p.in_features, N = p.out_features, pairs = (K + 1) / 2;
  const int64_t stride = pairs * Tile::kPairWidth;
  Scratch<X> xs(M * stride);
  const T* x = static_cast<const T*>(p.x);
  parallel_for(M, p.num_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)), [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) Tile::pack(x + m * p.x_row_stride, K, xs.data() + m * stride);
  });
  const bool gated = p.weight_layout == WeightLayout::kPairsGated;
  const int H = gated ? kPairBlockRows / 2 : kPairBlockRows;   // outputs per block
  const int64_t n_blocks = (N + H - 1) / H, block_elems = pairs * 2 * kPairBlockRows;
  const int64_t block_bytes = block_elems * int64_t(sizeof(T));
  const int64_t chunk = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(block_bytes, 1));
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / std::max<int64_t>(block_bytes, 1));
  const T* W = static_cast<const T*>(p.weight);
  T* Y = static_cast<T*>(p.y);
  parallel_for(n_blocks, p.num_threads, grain, [&](int64_t b0, int64_t b1) {
    alignas(64) float sums[Tile::kMaxRows * kPairBlockRows];
    for (int64_t c0 = b0; c0 < b1; c0 += chunk) {
      const int64_t c1 = std::min(b1, c0 + chunk);
      for (int64_t m0 = 0; m0 < M;) {
        const int mr = next_mr(Tile::kMaxRows, M - m0);
        const X* xt = xs.data() + m0 * stride;
        for (int64_t b = c0; b < c1; ++b) {
          const T* w = W + b * block_elems;
          switch (mr) {
            case 4: if constexpr (Tile::kMaxRows >= 4) Tile::template run<4>(xt, stride, w, pairs, sums); break;
            case 2: if constexpr (Tile::kMaxRows >= 2) Tile::template run<2>(xt, stride, w, pairs, sums); break;
            default: Tile::template run<1>(xt, stride, w, pairs, sums); break;
          }
          const int64_t n0 = b * H;
          const int h = int(std::min<int64_t>(H, N - n0));
          for (int i = 0; i < mr; ++i) {
            const float* s = sums + i * kPairBlockRows;
            for (int j = 0; j < h; ++j)
              Y[(m0 + i) * p.y_row_stride + n0 + j] = linear_output<DType::kBF16>(s[j], gated ? s[H + j] : 0.0f, gated);
          }
        }
        m0 += mr;
      }
    }
  });
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
