// NeonBf16: NEON traits for CPUs with the ARMv8.6 BF16 extension: as simd/neon.h, but fp32 -> bf16 rounding
// is one BFCVTN (round-to-nearest-even, denormals kept, NaN quietened: the same bits as numeric.h) instead of
// six integer operations. Compiled with +bf16; dispatch.cpp picks it only when the CPU reports BF16.
#pragma once
#include <arm_neon.h>

#include "simd/neon.h"

namespace lfm25::cpu {

struct NeonBf16 : Neon {
  template <DType DT> static void store(typename Storage<DT>::T* p, F v, Mask m = full()) {
    if constexpr (DT == DType::kBF16) {
      if (m == full()) {
        vst1_u16(p, vreinterpret_u16_bf16(vcvt_bf16_f32(v)));
        return;
      }
    }
    Neon::store<DT>(p, v, m);
  }
  template <DType DT> static F round(F v) {
    if constexpr (DT == DType::kBF16) {
      return vcvt_f32_bf16(vcvt_bf16_f32(v));
    } else {
      return Neon::round<DT>(v);
    }
  }
  template <DType DT> static void store2(typename Storage<DT>::T* p, F a, F b) {
    store<DT>(p, a);
    store<DT>(p + kLanes, b);
  }
};

}  // namespace lfm25::cpu
