// linear_q's Dot policy on aarch64 without the dot-product extension (linear_q/common.h): lanes of 32 bits,
// one output row and a quad of its codes each, as signed bytes. SMULL multiplies 8 codes by the quad of x
// twice over into 16-bit products (each within 127 * 127), and two pairwise adds sum each row's quad.
#pragma once
#include <arm_neon.h>

#include "linear_q/common.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

struct NeonDot {
  static constexpr int kLanes = 4;
  static constexpr int kRegisters = 32;
  using I = int32x4_t;
  using F = float32x4_t;
  using W = int8x16_t;
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = 0;
  static W load8(const uint8_t* p) { return vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), vdupq_n_u8(0x80))); }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    const uint8x16_t b = vld1q_u8(p);
    lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(b, vdupq_n_u8(15))), vdupq_n_s8(8));
    hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(b, 4)), vdupq_n_s8(8));
  }
  template <QuantFormat FMT>
  static I dot(I acc, W w, const int8_t* x4) {
    int32_t q;
    std::memcpy(&q, x4, 4);
    const int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(q));
    const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(x)));
    const int32x4_t hi = vpaddlq_s16(vmull_high_s8(w, x));
    return vaddq_s32(acc, vpaddq_s32(lo, hi));
  }
  static I splat(int32_t v) { return vdupq_n_s32(v); }
  static F zero() { return vdupq_n_f32(0.0f); }
  static F scales(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static F fma_scaled(F acc, I sum, F d, float s) { return vfmaq_f32(acc, vcvtq_f32_s32(sum), vmulq_n_f32(d, s)); }
  static void store(float* p, F v) { vst1q_f32(p, v); }
};

}  // namespace
}  // namespace lfm25::cpu
