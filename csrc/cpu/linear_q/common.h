// linear_q: what every ISA shares. The quantization of x (per row, per group of 32 inputs), and the driver of
// the tile over the packed weights, for an ISA's Dot policy (portable.cpp, x86.h, neon.h).
//
// Layout (docs/DESIGN.md section 4): a tile is two blocks of 16 output rows; per group of 32 inputs it holds
// each block's codes, 8 quads of 4 inputs (int8: each quad 16 rows x 4 codes, 64 bytes) or 4 pairs of quads
// (q4: 16 rows x 4 bytes, the low nibbles the first quad, the high nibbles the second), then the two blocks'
// 16 fp16 scales of the group: a tile is one stream, which the hardware prefetchers follow at a decode step's
// single row of x better than the separate streams of codes and scales. A vector lane is one output row and a
// 32-bit quad of its codes, so one multiply-add of codes (VPDPBUSD, SDOT by element, ...) takes the quad of x
// broadcast to every lane: x is read as it is stored and no horizontal sum is needed.
//
// Policy Dot (kLanes rows per vector, one int32 and one fp32 accumulator per lane):
//   I, F, W                            int32 sums, fp32 sums, weight codes prepared for dot
//   kRegisters                         vector registers of the ISA
//   zero_point<FMT>                    what dot sees a code of value 0 as (the driver subtracts it per group)
//   load8(p) -> W                      the int8 codes of a quad, kLanes rows x 4 bytes
//   load4(p, lo, hi)                   the q4 codes of two quads, kLanes rows x 4 bytes
//   dot<FMT>(I acc, W w, const int8_t* x4) -> I   acc + per lane sum_j w[lane][j] * x4[j]
//   splat(int32) -> I, zero() -> F, scales(const uint16_t* fp16 x kLanes) -> F
//   fma_scaled(F acc, I sum, F d, float s) -> F     acc + float(sum) * fl(d * s), one rounding: fma
//   store(float*, F)
//   XGroup                             optional: quantize_row's group in vectors (see ScalarGroup)
// Each thread takes a contiguous range of tiles (2 blocks: 32 rows, or 16 rows with their gate); for M > MR
// the range is cut into chunks of about 256 KiB of codes that stay in L2 while every MR-row tile of x passes.
// The first row pass over a range streams its int8 weights from memory; there each group asks for the bytes
// kPrefetchAhead further on into L2 (prefetcht1, the range's own bytes only): a core keeps more lines in
// flight so, where the hardware prefetchers alone fall behind int8's one load per multiply-add, most of all
// when other cores contend for memory. q4 does not: its unpacking between the loads leaves the hardware
// prefetchers time, and prefetch instructions there only take issue slots (slower when measured).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "common/numeric.h"
#include "common/parallel.h"
#include "linear/common.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

constexpr int kQGroup = 32;        // inputs per scale
constexpr int kQBlockRows = 16;    // output rows per block

// A block's bytes of codes per group, and a tile's bytes per group: the two blocks' codes, then their scales.
constexpr int64_t q_group_bytes(QuantFormat f) { return f == QuantFormat::kInt8 ? 512 : 256; }
constexpr int64_t q_tile_group_bytes(QuantFormat f) { return 2 * q_group_bytes(f) + 2 * kQBlockRows * 2; }
// The 16 fp16 scales of block b (0 or 1) in a tile's bytes of one group.
template <QuantFormat FMT>
inline const uint16_t* q_scales(const uint8_t* tile_group, int b) {
  return reinterpret_cast<const uint16_t*>(tile_group + 2 * q_group_bytes(FMT)) + b * kQBlockRows;
}

// x quantized, row by row: per group of 32 the int8 codes round-to-nearest-even(x * 127 / amax), the scale
// amax / 127 and the int32 correction -zero_point * sum(codes) that turns the policy's sums into sums of codes
// times signed weights. A group holding a NaN or an infinity gets the scale NaN (its row's outputs are NaN)
// and codes 0. The codes of a row are 64-byte aligned, zero past K.
struct QuantizedX {
  int64_t Kp, groups;
  Scratch<int8_t> code_buffer;
  Scratch<float> scale_buffer;
  Scratch<int32_t> sum_buffer;
  int8_t* codes;   // [M, Kp]
  float* scale;    // [M, groups]
  int32_t* sums;   // [M, groups]

  QuantizedX(int64_t M, int64_t K)
      : Kp((K + 63) / 64 * 64), groups((K + kQGroup - 1) / kQGroup), code_buffer(M * Kp + 64),
        scale_buffer(M * groups), sum_buffer(M * groups) {
    codes = code_buffer.data() + (64 - int64_t(reinterpret_cast<uintptr_t>(code_buffer.data()) % 64)) % 64;
    scale = scale_buffer.data();
    sums = sum_buffer.data();
  }
  const int8_t* row(int64_t m) const { return codes + m * Kp; }
};

// A group of 32 inputs of x widened to fp32, for quantize_row: in plain C++ (portable, NEON), or in vectors (the
// x86 policies' XGroup, linear_q/x86.h). Each step is one IEEE operation (|x| compared as bits, x * inv, the
// rounding to nearest even), so every XGroup gives the same codes.
//   V                                  the group's 32 values
//   load<DT>(x, n) -> V                n <= 32 inputs, zero past n
//   amax_bits(V) -> uint32_t           the largest |x| as bits: ordered as the floats, >= inf's for inf and NaN
//   codes(V, inv, int8_t* c) -> int32  c[j] = round-half-even(x[j] * inv), and their sum
struct ScalarGroup {
  struct V {
    float v[kQGroup];
  };
  template <DType DT>
  static V load(const typename Storage<DT>::T* x, int64_t n) {
    V g;
    for (int j = 0; j < kQGroup; ++j) g.v[j] = j < n ? Storage<DT>::load(x[j]) : 0.0f;
    return g;
  }
  static uint32_t amax_bits(const V& g) {
    uint32_t bits = 0;
    for (float v : g.v) bits = std::max(bits, f32_to_bits(v) & 0x7fffffffu);
    return bits;
  }
  static int32_t codes(const V& g, float inv, int8_t* c) {
    int32_t total = 0;
    for (int j = 0; j < kQGroup; ++j) total += c[j] = int8_t(std::nearbyint(g.v[j] * inv));
    return total;
  }
};

template <class XG, DType DT>
void quantize_row(const typename Storage<DT>::T* x, int64_t K, int8_t* codes, float* scale, int32_t* sums,
                  int64_t groups, int64_t Kp) {
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t k0 = g * kQGroup;
    const typename XG::V v = XG::template load<DT>(x + k0, std::min<int64_t>(kQGroup, K - k0));
    const uint32_t amax_bits = XG::amax_bits(v);
    if (amax_bits >= 0x7f800000u) {   // a NaN or an infinity
      std::memset(codes + k0, 0, kQGroup);
      scale[g] = NAN, sums[g] = 0;
      continue;
    }
    const float amax = bits_to_f32(amax_bits);
    sums[g] = XG::codes(v, amax > 0.0f ? 127.0f / amax : 0.0f, codes + k0);
    scale[g] = amax / 127.0f;
  }
  std::memset(codes + groups * kQGroup, 0, Kp - groups * kQGroup);
}

// The policy's XGroup when it has one, else ScalarGroup.
template <class Q, class = void>
struct XGroupOf {
  using type = ScalarGroup;
};
template <class Q>
struct XGroupOf<Q, std::void_t<typename Q::XGroup>> {
  using type = typename Q::XGroup;
};

template <class Q, DType DT>
void quantize_x(const LinearQParams& p, QuantizedX& q) {
  using T = typename Storage<DT>::T;
  const T* x = static_cast<const T*>(p.x);
  const int64_t K = p.in_features, G = q.groups;
  parallel_for(p.rows, p.num_threads, std::max<int64_t>(1, 16384 / std::max<int64_t>(K, 1)),
               [&](int64_t m0, int64_t m1) {
                 for (int64_t m = m0; m < m1; ++m)
                   quantize_row<typename XGroupOf<Q>::type, DT>(x + m * p.x_row_stride, K, q.codes + m * q.Kp,
                                                                q.scale + m * G, q.sums + m * G, G, q.Kp);
               });
}

template <QuantFormat FMT>
constexpr int64_t kPrefetchAhead = FMT == QuantFormat::kInt8 ? 16 << 10 : 0;

// out[i * 32 + j]: the fp32 sums of the MR rows of x from m0 against the 32 rows of the tile at w. `streamed`:
// the bytes from w to the end of the range being streamed from memory (0 when the tile is in cache).
template <class Q, QuantFormat FMT, int MR>
void linear_q_tile(const QuantizedX& xq, int64_t m0, const uint8_t* w, int64_t groups, float* out,
                   int64_t streamed) {
  constexpr int V = kQBlockRows / Q::kLanes;   // vectors per block
  constexpr int NV = 2 * V;
  constexpr int64_t GB = q_group_bytes(FMT), TGB = q_tile_group_bytes(FMT);
  constexpr int32_t zp = Q::template zero_point<FMT>;
  typename Q::F acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[i][v] = Q::zero();
  for (int64_t g = 0; g < groups; ++g) {
    typename Q::I sum[MR][NV];
    const int8_t* x[MR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const int64_t r = (m0 + i) * xq.groups + g;
      x[i] = xq.row(m0 + i) + g * kQGroup;
      const typename Q::I c = Q::splat(-zp * xq.sums[r]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) sum[i][v] = c;
    }
    // The group's bytes in the order they lie (block 0's quads, then block 1's): at one row of x the loads
    // go out in program order, and a back-and-forth between the blocks keeps the prefetchers from running ahead.
    const uint8_t* wg = w + g * TGB;
    if constexpr (kPrefetchAhead<FMT> > 0)
      if (g * TGB + kPrefetchAhead<FMT> + TGB <= streamed)
#pragma GCC unroll 32
        for (int64_t l = 0; l < TGB; l += 64) __builtin_prefetch(wg + kPrefetchAhead<FMT> + l, 0, 2);
#pragma GCC unroll 2
    for (int b = 0; b < 2; ++b) {
      if constexpr (FMT == QuantFormat::kInt8) {
#pragma GCC unroll 8
        for (int q = 0; q < 8; ++q)
#pragma GCC unroll 8
          for (int u = 0; u < V; ++u) {
            const int v = b * V + u;
            const auto wv = Q::load8(wg + b * GB + q * 64 + u * 4 * Q::kLanes);
#pragma GCC unroll 8
            for (int i = 0; i < MR; ++i) sum[i][v] = Q::template dot<FMT>(sum[i][v], wv, x[i] + 4 * q);
          }
      } else {
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q)
#pragma GCC unroll 8
          for (int u = 0; u < V; ++u) {
            const int v = b * V + u;
            typename Q::W lo, hi;
            Q::load4(wg + b * GB + q * 64 + u * 4 * Q::kLanes, lo, hi);
#pragma GCC unroll 8
            for (int i = 0; i < MR; ++i)
              sum[i][v] = Q::template dot<FMT>(Q::template dot<FMT>(sum[i][v], lo, x[i] + 8 * q), hi, x[i] + 8 * q + 4);
          }
      }
    }
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      const typename Q::F d = Q::scales(q_scales<FMT>(wg, v / V) + (v % V) * Q::kLanes);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i)
        acc[i][v] = Q::fma_scaled(acc[i][v], sum[i][v], d, xq.scale[(m0 + i) * xq.groups + g]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) Q::store(out + i * 2 * kQBlockRows + v * Q::kLanes, acc[i][v]);
}

// The policy's own tile when it has one (Q::tile<FMT, MR>, with linear_q_tile's contract: the NEON policies
// of linear_q/neon.h take the 32 rows in passes that fit their registers), else linear_q_tile.
template <class Q, class = void>
struct HasTile : std::false_type {};
template <class Q>
struct HasTile<Q, std::void_t<decltype(&Q::template tile<QuantFormat::kInt8, 1>)>> : std::true_type {};

template <class Q, QuantFormat FMT, int MR>
void run_tile(const QuantizedX& xq, int64_t m0, const uint8_t* w, int64_t groups, float* out, int64_t streamed) {
  if constexpr (HasTile<Q>::value)
    Q::template tile<FMT, MR>(xq, m0, w, groups, out);
  else
    linear_q_tile<Q, FMT, MR>(xq, m0, w, groups, out, streamed);
}

template <class Q, DType DT, QuantFormat FMT, int MR_MAX>
Status linear_q_run(const LinearQParams& p) {
  using T = typename Storage<DT>::T;
  const int64_t M = p.rows, N = p.out_features;
  QuantizedX xq(M, p.in_features);
  quantize_x<Q, DT>(p, xq);
  const bool gated = p.gated != 0;
  const int H = gated ? kQBlockRows : 2 * kQBlockRows;   // outputs per tile
  const int64_t tiles = (N + H - 1) / H, groups = xq.groups;
  const int64_t tile_bytes = groups * q_tile_group_bytes(FMT);
  const int64_t chunk = std::max<int64_t>(1, (256 << 10) / tile_bytes);
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / tile_bytes);
  const uint8_t* W = p.weight;
  T* Y = static_cast<T*>(p.y);
  parallel_for(tiles, p.num_threads, grain, [&](int64_t t0, int64_t t1) {
    alignas(64) float out[MR_MAX * 2 * kQBlockRows];
    for (int64_t c0 = t0; c0 < t1; c0 += chunk) {
      const int64_t c1 = std::min(t1, c0 + chunk);
      for (int64_t m0 = 0; m0 < M;) {
        const int mr = next_mr(MR_MAX, M - m0);
        for (int64_t t = c0; t < c1; ++t) {
          const uint8_t* w = W + t * tile_bytes;
          const int64_t streamed = m0 == 0 ? (t1 - t) * tile_bytes : 0;   // the first pass over the chunk
          switch (mr) {
            case 8: if constexpr (MR_MAX >= 8) run_tile<Q, FMT, 8>(xq, m0, w, groups, out, streamed); break;
            case 4: if constexpr (MR_MAX >= 4) run_tile<Q, FMT, 4>(xq, m0, w, groups, out, streamed); break;
            case 2: if constexpr (MR_MAX >= 2) run_tile<Q, FMT, 2>(xq, m0, w, groups, out, streamed); break;
            default: run_tile<Q, FMT, 1>(xq, m0, w, groups, out, streamed); break;
          }
          const int64_t n0 = t * H;
          const int h = int(std::min<int64_t>(H, N - n0));
          for (int i = 0; i < mr; ++i) {
            const float* o = out + i * 2 * kQBlockRows;
            for (int j = 0; j < h; ++j)
              Y[(m0 + i) * p.y_row_stride + n0 + j] = linear_output<DT>(o[j], gated ? o[kQBlockRows + j] : 0.0f, gated);
          }
        }
        m0 += mr;
      }
    }
  });
  return Status::kOk;
}

template <class Q, int MR_MAX>
Status linear_q_with(const LinearQParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return p.format == QuantFormat::kInt8 ? linear_q_run<Q, DT, QuantFormat::kInt8, MR_MAX>(p)
                                          : linear_q_run<Q, DT, QuantFormat::kQ4, MR_MAX>(p);
  });
}

}  // namespace
}  // namespace lfm25::cpu
