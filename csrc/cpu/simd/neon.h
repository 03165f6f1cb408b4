// Neon: AArch64 Advanced SIMD vector traits for the SIMD kernel templates (<op>/simd.cpp): 4 fp32 lanes. fp16
// storage converts with FCVTL/FCVTN (base ARMv8-A, round-to-nearest-even); bf16 with integer arithmetic,
// bit-identical to numeric.h. A tail of n < 4 lanes goes through a small stack buffer.
#pragma once
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "common/numeric.h"

namespace lfm25::cpu {

struct Neon {
  using F = float32x4_t;
  using Mask = int;  // number of valid lanes from the start, 0..4
  static constexpr int kLanes = 4;
  static constexpr int kRegisters = 32;  // vector registers (tiles of linear/simd.cpp)

  static Mask mask(int64_t n) { return n >= 4 ? 4 : n <= 0 ? 0 : int(n); }
  static constexpr Mask full() { return 4; }

  template <DType DT> static F load(const typename Storage<DT>::T* p, Mask m = full()) {
    using T = typename Storage<DT>::T;
    if (m < 4) {
      T tmp[4] = {};
      std::memcpy(tmp, p, size_t(m) * sizeof(T));
      return load<DT>(tmp, 4);
    }
    if constexpr (DT == DType::kF32) {
      return vld1q_f32(p);
    } else if constexpr (DT == DType::kF16) {
      return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
    } else {
      return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
    }
  }

  template <DType DT> static void store(typename Storage<DT>::T* p, F v, Mask m = full()) {
    using T = typename Storage<DT>::T;
    if (m < 4) {
      T tmp[4];
      store<DT>(tmp, v, 4);
      std::memcpy(p, tmp, size_t(m) * sizeof(T));
      return;
    }
    if constexpr (DT == DType::kF32) {
      vst1q_f32(p, v);
    } else if constexpr (DT == DType::kF16) {
      vst1_u16(p, vreinterpret_u16_f16(vcvt_f16_f32(v)));
    } else {
      vst1_u16(p, vshrn_n_u32(bf16_round_bits(v), 16));
    }
  }

  template <DType DT> static F round(F v) {
    if constexpr (DT == DType::kF32) {
      return v;
    } else if constexpr (DT == DType::kF16) {
      return vcvt_f32_f16(vcvt_f16_f32(v));
    } else {
      return vreinterpretq_f32_u32(vandq_u32(bf16_round_bits(v), vdupq_n_u32(0xffff0000u)));
    }
  }

  // Two vectors at once (natural channel order on NEON).
  template <DType DT> static void load2(const typename Storage<DT>::T* p, F& a, F& b) {
    a = load<DT>(p);
    b = load<DT>(p + kLanes);
  }
  template <DType DT> static void store2(typename Storage<DT>::T* p, F a, F b) {
    store<DT>(p, a);
    store<DT>(p + kLanes, b);
  }
  template <DType DT> static constexpr int pair_channel(int j) { return j; }

  static F loadf(const float* p) { return vld1q_f32(p); }
  static void storef(float* p, F v) { vst1q_f32(p, v); }
  static F set1(float f) { return vdupq_n_f32(f); }
  static void in_register(F& v) { asm("" : "+w"(v)); }   // v stays a register (no folded reloads)
  static F zero() { return vdupq_n_f32(0.0f); }
  static F add(F a, F b) { return vaddq_f32(a, b); }
  static F sub(F a, F b) { return vsubq_f32(a, b); }
  static F mul(F a, F b) { return vmulq_f32(a, b); }
  static F fma(F a, F b, F c) { return vfmaq_f32(c, a, b); }      // a * b + c
  static F fnma(F a, F b, F c) { return vfmsq_f32(c, a, b); }     // c - a * b
  static F max(F a, F b) { return vmaxq_f32(a, b); }
  static float reduce_add(F v) { return vaddvq_f32(v); }
  static float reduce_max(F v) { return vmaxvq_f32(v); }
  static F select(Mask m, F a, F b) {  // first m lanes from a, the rest from b
    const int32x4_t lane = {0, 1, 2, 3};
    return vbslq_f32(vcltq_s32(lane, vdupq_n_s32(m)), a, b);
  }
  static F round_int(F v) { return vrndnq_f32(v); }
  static F scale_pow2(F v, F n) {  // v * 2^n for integral n in [-126, 127]
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(v, vreinterpretq_f32_s32(e));
  }

 private:
  static uint32x4_t bf16_round_bits(F v) {  // RNE into the upper 16 bits; NaN stays NaN (quiet), as numeric.h
    const uint32x4_t u = vreinterpretq_u32_f32(v);
    const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
    const uint32x4_t r = vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb);
    const uint32x4_t is_num = vceqq_f32(v, v);
    return vbslq_u32(is_num, r, vorrq_u32(u, vdupq_n_u32(0x400000)));
  }
};

}  // namespace lfm25::cpu
