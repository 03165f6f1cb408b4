// linear_q on aarch64 (linear_q/common.h's driver, with a policy that brings its own tile): NeonLaneTile, the
// tile of the lane-dot policies, and NeonDot, the policy of CPUs without the dot-product extension (the simd.cpp
// of the neon and neon_bf16 tables). neon_dotprod.h (SDOT) and neon_i8mm.cpp (USMMLA) build on this;
// dispatch.cpp gives the NEON tables the best of the three this CPU has.
//
// A vector lane is one output row and a 32-bit quad of its codes (the layout's quad, 4 rows x 4 codes per
// 128 bits); a group of x (32 codes) is two vectors, and the dot of quad q takes quad q % 4 of vector q / 4
// by lane index, so x is loaded once per group and row. The 32 rows of a tile are taken in MR passes of
// 32 / MR rows: 8 int32 sums and 8 fp32 sums live across a pass whatever MR is (the chains that hide the
// latency of the multiply-adds), 2 * MR vectors of x and 8 / MR of codes; 26 of the 32 registers.
#pragma once
#include <arm_neon.h>

#include <type_traits>
#include <utility>

#include "linear_q/common.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

// f(std::integral_constant<int, i>) for i in [0, N): a lane index must be a constant
template <class F, int... I>
inline void unroll_each(F&& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
inline void unroll(F&& f) {
  unroll_each(f, std::make_integer_sequence<int, N>{});
}

// The tile for a lane-dot policy L:
//   W                                           16 codes as dot takes them (int8x16_t or uint8x16_t)
//   zero_point<FMT>                             what dot sees a code of value 0 as
//   load8(p) -> W                               the int8 codes of a quad, 4 rows x 4 bytes
//   load4(p, W& lo, W& hi)                      the q4 codes of two quads
//   dot<LANE>(int32x4_t acc, W w, int8x16_t x)  acc + per lane sum_j w[lane][j] * x[4 * LANE + j]
template <class L>
struct NeonLaneTile {
  template <QuantFormat FMT, int MR>
  static void tile(const QuantizedX& xq, int64_t m0, const uint8_t* w, int64_t groups, float* out) {
    constexpr int VR = 8 / MR;   // vectors of 4 rows per pass
    constexpr int64_t GB = q_group_bytes(FMT), TGB = q_tile_group_bytes(FMT);
    constexpr int32_t zp = L::template zero_point<FMT>;
    for (int c0 = 0; c0 < 2 * kQBlockRows; c0 += 4 * VR) {
      const uint8_t* wv[VR];    // rows c0 + 4v.. of vector v in group 0 (a pass of 32 rows spans both blocks)
      const uint16_t* sv[VR];
#pragma GCC unroll 8
      for (int v = 0; v < VR; ++v) {
        const int r = c0 + 4 * v;
        wv[v] = w + (r / kQBlockRows) * GB + (r % kQBlockRows) * 4;
        sv[v] = q_scales<FMT>(w, r / kQBlockRows) + r % kQBlockRows;
      }
      float32x4_t acc[MR][VR];
      #pragma GCC unroll 8
      for (auto& a : acc)
        #pragma GCC unroll 8
        for (auto& v : a) v = vdupq_n_f32(0.0f);
      for (int64_t g = 0; g < groups; ++g) {
        int8x16_t x[MR][2];
        int32x4_t sum[MR][VR];
        #pragma GCC unroll 8
        for (int i = 0; i < MR; ++i) {
          const int8_t* xr = xq.row(m0 + i) + g * kQGroup;
          x[i][0] = vld1q_s8(xr);
          x[i][1] = vld1q_s8(xr + 16);
          const int32x4_t c = vdupq_n_s32(-zp * xq.sums[(m0 + i) * xq.groups + g]);
          #pragma GCC unroll 8
          for (auto& v : sum[i]) v = c;
        }
        if constexpr (FMT == QuantFormat::kInt8) {
          unroll<8>([&](auto q) {
            constexpr int Q = decltype(q)::value;
            #pragma GCC unroll 8
            for (int v = 0; v < VR; ++v) {
              const typename L::W c = L::load8(wv[v] + g * TGB + Q * 64);
              #pragma GCC unroll 8
              for (int i = 0; i < MR; ++i) sum[i][v] = L::template dot<Q % 4>(sum[i][v], c, x[i][Q / 4]);
            }
          });
        } else {
          unroll<4>([&](auto q) {
            constexpr int Q = decltype(q)::value;
            #pragma GCC unroll 8
            for (int v = 0; v < VR; ++v) {
              typename L::W lo, hi;
              L::load4(wv[v] + g * TGB + Q * 64, lo, hi);
              #pragma GCC unroll 8
              for (int i = 0; i < MR; ++i)
                sum[i][v] = L::template dot<2 * Q % 4 + 1>(L::template dot<2 * Q % 4>(sum[i][v], lo, x[i][Q / 2]),
                                                          hi, x[i][Q / 2]);
            }
          });
        }
        #pragma GCC unroll 8
        for (int v = 0; v < VR; ++v) {
          const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sv[v] + g * (TGB / 2))));
          #pragma GCC unroll 8
          for (int i = 0; i < MR; ++i)
            acc[i][v] = vfmaq_f32(acc[i][v], vcvtq_f32_s32(sum[i][v]),
                                  vmulq_n_f32(d, xq.scale[(m0 + i) * xq.groups + g]));
        }
      }
      #pragma GCC unroll 8
      for (int i = 0; i < MR; ++i)
        #pragma GCC unroll 8
        for (int v = 0; v < VR; ++v) vst1q_f32(out + i * 2 * kQBlockRows + c0 + v * 4, acc[i][v]);
    }
  }
};

// ARMv8.0: SMULL multiplies 8 codes by x's quad (broadcast from its lane) twice over into 16-bit products
// (each within 127 * 127), and two pairwise adds sum each row's quad.
struct NeonDot : NeonLaneTile<NeonDot> {
  using W = int8x16_t;
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = FMT == QuantFormat::kInt8 ? 0 : 8;
  static int8x16_t load8(const uint8_t* p) { return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80))); }
  static void load4(const uint8_t* p, int8x16_t& lo, int8x16_t& hi) {
    const uint8x16_t b = vld1q_u8(p);
    lo = vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15)));
    hi = vreinterpretq_s8_u8(vshrq_n_u8(b, 4));
  }
  template <int LANE>
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) {
    const int8x16_t xq = vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(x), LANE));
    const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(xq)));
    const int32x4_t hi = vpaddlq_s16(vmull_high_s8(w, xq));
    return vaddq_s32(acc, vpaddq_s32(lo, hi));
  }
};

}  // namespace
}  // namespace lfm25::cpu
