// neon_i8mm::linear_q, for the NEON tables on CPUs with the int8 matrix multiply extension (ARMv8.6 FEAT_I8MM,
// which comes with the dot-product extension; dispatch.cpp): the driver of linear_q/common.h with USMMLA for
// pairs of rows of x, and USDOT by element (the lane tile of linear_q/neon.h) for a single row: a decode step's,
// or the last of an odd count. Compiled with +dotprod+i8mm.
//
// USMMLA multiplies a 2 x 8 matrix of unsigned bytes by the transpose of a 2 x 8 matrix of signed bytes into
// the 2 x 2 int32 sums: twice SDOT's products per instruction. The first operand is two rows of codes over an
// octet of inputs: a 32-bit zip of the layout's quads 2o and 2o + 1 (4 rows each) gives rows 0-1 and (zip2)
// 2-3, shared by every pair of x; the codes are the stored bytes (unsigned: zero point 128, or 8 for a nibble).
// The second is two rows of x over the same octet, a 64-bit zip of the rows' codes. A sum vector holds
// (n, m), (n, m + 1), (n + 1, m), (n + 1, m + 1) for weight rows n, n + 1 and x rows m, m + 1; each lane is
// scaled by fl(d_n * s_m) and added with one fma per group, in group order, as every other kernel does. The 32
// rows of a tile are taken in MR passes of 32 / MR rows: 8 int32 and 8 fp32 sums, 2 * MR vectors of x pairs,
// 8 / MR of codes; 28 of the 32 registers.
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "linear_q/neon.h"

namespace lfm25::cpu::neon_i8mm {
namespace {

// A single row of x: USDOT by element, SDOT on the stored bytes as unsigned (no sign flip of the int8 codes).
struct NeonUsdot : NeonLaneTile<NeonUsdot> {
  using W = uint8x16_t;
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = FMT == QuantFormat::kInt8 ? 128 : 8;
  static W load8(const uint8_t* p) { return vld1q_u8(p); }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    const uint8x16_t b = vld1q_u8(p);
    lo = vandq_u8(b, vdupq_n_u8(15));
    hi = vshrq_n_u8(b, 4);
  }
  template <int LANE>
  static int32x4_t dot(int32x4_t acc, W w, int8x16_t x) { return vusdotq_laneq_s32(acc, w, x, LANE); }
};

struct NeonUsmmla {
  template <QuantFormat FMT, int MR>
  static void tile(const QuantizedX& xq, int64_t m0, const uint8_t* w, int64_t groups, float* out) {
    if constexpr (MR == 1) {
      NeonUsdot::tile<FMT, 1>(xq, m0, w, groups, out);
    } else {
      pairs<FMT, MR / 2>(xq, m0, w, groups, out);
    }
  }

  // P pairs of rows of x from m0
  template <QuantFormat FMT, int P>
  static void pairs(const QuantizedX& xq, int64_t m0, const uint8_t* w, int64_t groups, float* out) {
    constexpr int VR = 4 / P;   // vectors of 4 rows per pass: 2 * VR sum vectors per pair of x
    constexpr int64_t GB = q_group_bytes(FMT), TGB = q_tile_group_bytes(FMT);
    constexpr int32_t zp = NeonUsdot::zero_point<FMT>;
    for (int c0 = 0; c0 < 2 * kQBlockRows; c0 += 4 * VR) {
      const uint8_t* wp = w + (c0 / kQBlockRows) * GB + (c0 % kQBlockRows) * 4;   // group 0's
      const uint16_t* sp = q_scales<FMT>(w, c0 / kQBlockRows) + c0 % kQBlockRows;
      float32x4_t acc[P][2 * VR];
      #pragma GCC unroll 8
      for (auto& a : acc)
        #pragma GCC unroll 8
        for (auto& v : a) v = vdupq_n_f32(0.0f);
      for (int64_t g = 0; g < groups; ++g) {
        int8x16_t x[P][4];   // octet o of rows 2p and 2p + 1
        int32x4_t sum[P][2 * VR];
        float32x4_t xs[P];   // s_m, s_m+1, s_m, s_m+1
        #pragma GCC unroll 8
        for (int p = 0; p < P; ++p) {
          const int64_t m = m0 + 2 * p, r = m * xq.groups + g;
          const int64x2_t a0 = vreinterpretq_s64_s8(vld1q_s8(xq.row(m) + g * kQGroup));
          const int64x2_t a1 = vreinterpretq_s64_s8(vld1q_s8(xq.row(m) + g * kQGroup + 16));
          const int64x2_t b0 = vreinterpretq_s64_s8(vld1q_s8(xq.row(m + 1) + g * kQGroup));
          const int64x2_t b1 = vreinterpretq_s64_s8(vld1q_s8(xq.row(m + 1) + g * kQGroup + 16));
          x[p][0] = vreinterpretq_s8_s64(vzip1q_s64(a0, b0));
          x[p][1] = vreinterpretq_s8_s64(vzip2q_s64(a0, b0));
          x[p][2] = vreinterpretq_s8_s64(vzip1q_s64(a1, b1));
          x[p][3] = vreinterpretq_s8_s64(vzip2q_s64(a1, b1));
          const int32x2_t c = {-zp * xq.sums[r], -zp * xq.sums[r + xq.groups]};
          #pragma GCC unroll 8
          for (auto& v : sum[p]) v = vcombine_s32(c, c);
          const float32x2_t sc = {xq.scale[r], xq.scale[r + xq.groups]};
          xs[p] = vcombine_f32(sc, sc);
        }
        const uint8_t* wg = wp + g * TGB;
        #pragma GCC unroll 8
        for (int o = 0; o < 4; ++o)
          #pragma GCC unroll 8
          for (int v = 0; v < VR; ++v) {
            uint8x16_t a, b;   // quads 2o and 2o + 1 of rows 4v..4v+3
            if constexpr (FMT == QuantFormat::kInt8) {
              a = vld1q_u8(wg + 2 * o * 64 + v * 16);
              b = vld1q_u8(wg + (2 * o + 1) * 64 + v * 16);
            } else {
              const uint8x16_t c = vld1q_u8(wg + o * 64 + v * 16);
              a = vandq_u8(c, vdupq_n_u8(15));
              b = vshrq_n_u8(c, 4);
            }
            const uint8x16_t lo = vreinterpretq_u8_u32(vzip1q_u32(vreinterpretq_u32_u8(a), vreinterpretq_u32_u8(b)));
            const uint8x16_t hi = vreinterpretq_u8_u32(vzip2q_u32(vreinterpretq_u32_u8(a), vreinterpretq_u32_u8(b)));
            #pragma GCC unroll 8
            for (int p = 0; p < P; ++p) {
              sum[p][2 * v] = vusmmlaq_s32(sum[p][2 * v], lo, x[p][o]);
              sum[p][2 * v + 1] = vusmmlaq_s32(sum[p][2 * v + 1], hi, x[p][o]);
            }
          }
        #pragma GCC unroll 8
        for (int v = 0; v < VR; ++v) {
          const float32x4_t d = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(sp + g * (TGB / 2) + v * 4)));
          const float32x4_t dd[2] = {vzip1q_f32(d, d), vzip2q_f32(d, d)};   // d_n, d_n, d_n+1, d_n+1
          #pragma GCC unroll 8
          for (int p = 0; p < P; ++p)
            #pragma GCC unroll 8
            for (int h = 0; h < 2; ++h)
              acc[p][2 * v + h] = vfmaq_f32(acc[p][2 * v + h], vcvtq_f32_s32(sum[p][2 * v + h]), vmulq_f32(dd[h], xs[p]));
        }
      }
      #pragma GCC unroll 8
      for (int p = 0; p < P; ++p)
        #pragma GCC unroll 8
        for (int v = 0; v < VR; ++v) {   // (n, m) lanes 0 and 2 of the two vectors, (n, m + 1) lanes 1 and 3
          float* o = out + 2 * p * 2 * kQBlockRows + c0 + v * 4;
          vst1q_f32(o, vuzp1q_f32(acc[p][2 * v], acc[p][2 * v + 1]));
          vst1q_f32(o + 2 * kQBlockRows, vuzp2q_f32(acc[p][2 * v], acc[p][2 * v + 1]));
        }
    }
  }
};

}  // namespace

Status linear_q(const LinearQParams& p) { return linear_q_with<NeonUsmmla, 4>(p); }

}  // namespace lfm25::cpu::neon_i8mm
