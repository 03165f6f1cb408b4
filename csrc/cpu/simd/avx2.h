// Avx2: AVX2 + FMA + F16C vector traits for the SIMD kernel templates (<op>/simd.cpp): 8 fp32 lanes. A tail
// of n < 8 lanes goes through a small stack buffer (AVX2 has no masked 16-bit loads). Rounding as numeric.h.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "common/numeric.h"

namespace lfm25::cpu {

struct Avx2 {
  using F = __m256;
  using Mask = int;  // number of valid lanes from the start, 0..8
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;  // vector registers (tiles of linear/simd.cpp)

  static Mask mask(int64_t n) { return n >= 8 ? 8 : n <= 0 ? 0 : int(n); }
  static constexpr Mask full() { return 8; }

  template <DType DT> static F load(const typename Storage<DT>::T* p, Mask m = full()) {
    using T = typename Storage<DT>::T;
    if (m < 8) {
      T tmp[8] = {};
      std::memcpy(tmp, p, size_t(m) * sizeof(T));
      return load<DT>(tmp, 8);
    }
    if constexpr (DT == DType::kF32) {
      return _mm256_loadu_ps(p);
    } else if constexpr (DT == DType::kF16) {
      return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    } else {
      const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }
  }

  template <DType DT> static void store(typename Storage<DT>::T* p, F v, Mask m = full()) {
    using T = typename Storage<DT>::T;
    if (m < 8) {
      T tmp[8];
      store<DT>(tmp, v, 8);
      std::memcpy(p, tmp, size_t(m) * sizeof(T));
      return;
    }
    if constexpr (DT == DType::kF32) {
      _mm256_storeu_ps(p, v);
    } else if constexpr (DT == DType::kF16) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      const __m256i r = _mm256_srli_epi32(bf16_round_bits(v), 16);  // 8 x u32 holding 16-bit values
      const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(p), packed);
    }
  }

  template <DType DT> static F round(F v) {
    if constexpr (DT == DType::kF32) {
      return v;
    } else if constexpr (DT == DType::kF16) {
      return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      return _mm256_castsi256_ps(_mm256_and_si256(bf16_round_bits(v), _mm256_set1_epi32(int(0xffff0000u))));
    }
  }

  // Two vectors at once; bf16 splits even and odd channels (see simd/avx512.h).
  template <DType DT> static void load2(const typename Storage<DT>::T* p, F& a, F& b) {
    if constexpr (DT == DType::kBF16) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      a = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      b = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(int(0xffff0000u))));
    } else {
      a = load<DT>(p);
      b = load<DT>(p + kLanes);
    }
  }
  template <DType DT> static void store2(typename Storage<DT>::T* p, F a, F b) {
    if constexpr (DT == DType::kBF16) {
      const __m256i lo = _mm256_srli_epi32(bf16_round_bits(a), 16);
      const __m256i hi = _mm256_and_si256(bf16_round_bits(b), _mm256_set1_epi32(int(0xffff0000u)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_or_si256(lo, hi));
    } else {
      store<DT>(p, a);
      store<DT>(p + kLanes, b);
    }
  }
  template <DType DT> static constexpr int pair_channel(int j) {
    return DT == DType::kBF16 ? (j < kLanes ? 2 * j : 2 * (j - kLanes) + 1) : j;
  }

  static F loadf(const float* p) { return _mm256_loadu_ps(p); }
  static void storef(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F set1(float f) { return _mm256_set1_ps(f); }
  static void in_register(F& v) { asm("" : "+x"(v)); }   // v stays a register (no folded reloads)
  static F zero() { return _mm256_setzero_ps(); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnma(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F max(F a, F b) { return _mm256_max_ps(a, b); }
  static float reduce_add(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float reduce_max(F v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static F select(Mask m, F a, F b) {  // first m lanes from a, the rest from b
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(m), lane)));
  }
  static F round_int(F v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F scale_pow2(F v, F n) {  // v * 2^n for integral n in [-126, 127]
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(v, _mm256_castsi256_ps(e));
  }

 private:
  static __m256i bf16_round_bits(F v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    const __m256i qnan = _mm256_or_si256(u, _mm256_set1_epi32(0x400000));
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(r), _mm256_castsi256_ps(qnan), nan));
  }
};

}  // namespace lfm25::cpu
