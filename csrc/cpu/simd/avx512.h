// Avx512: AVX-512 (F/BW/VL/DQ) vector traits for the SIMD kernel templates (<op>/simd.cpp): 16 fp32 lanes,
// loads from and stores to fp32, fp16 or bf16 storage with a lane mask for tails. Rounding to fp16/bf16 is
// round-to-nearest-even, bit-identical to numeric.h (and so to torch).
// NOTE: bf16 is rounded with integer arithmetic, not VCVTNEPS2BF16, which flushes denormals to zero.
#pragma once
#include <immintrin.h>

#include <cstdint>

#include "common/numeric.h"

namespace lfm25::cpu {

struct Avx512 {
  using F = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;  // vector registers (tiles of linear/simd.cpp)

  static Mask mask(int64_t n) { return n >= 16 ? Mask(0xffff) : n <= 0 ? Mask(0) : Mask((1u << n) - 1); }
  static constexpr Mask full() { return Mask(0xffff); }

  // NOTE: masked loads only for tails: an unmasked load is cheaper on some cores
  template <DType DT> static F load(const typename Storage<DT>::T* p, Mask m = full()) {
    if constexpr (DT == DType::kF32) {
      return m == full() ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
    } else {
      const __m256i h = m == full() ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi16(m, p);
      if constexpr (DT == DType::kF16) {
        return _mm512_cvtph_ps(h);
      } else {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      }
    }
  }

  template <DType DT> static void store(typename Storage<DT>::T* p, F v, Mask m = full()) {
    if constexpr (DT == DType::kF32) {
      if (m == full()) {
        _mm512_storeu_ps(p, v);
      } else {
        _mm512_mask_storeu_ps(p, m, v);
      }
    } else if constexpr (DT == DType::kF16) {
      const __m256i h = _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      if (m == full()) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), h);
      } else {
        _mm256_mask_storeu_epi16(p, m, h);
      }
    } else {
      // gather the upper halves (the rounded bf16) into the low 256 bits: one vpermw, a plain 32-byte store
      const __m512i odd = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27,
                                           25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
      const __m256i packed = _mm512_castsi512_si256(_mm512_permutexvar_epi16(odd, bf16_round_bits(v)));
      if (m == full()) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), packed);
      } else {
        _mm256_mask_storeu_epi16(p, m, packed);
      }
    }
  }

  // v rounded to the storage dtype and back to fp32
  template <DType DT> static F round(F v) {
    if constexpr (DT == DType::kF32) {
      return v;
    } else if constexpr (DT == DType::kF16) {
      return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    } else {
      return _mm512_castsi512_ps(_mm512_and_si512(bf16_round_bits(v), _mm512_set1_epi32(int(0xffff0000u))));
    }
  }

  // Two vectors (2 * kLanes channels) at once. bf16 splits even and odd channels (one shift or mask per
  // vector, one 64-byte store); other dtypes are two plain vectors. pair_channel(j) is the channel offset that
  // lane j of the pair holds (lanes 0..15 the first vector, 16..31 the second).
  template <DType DT> static void load2(const typename Storage<DT>::T* p, F& a, F& b) {
    if constexpr (DT == DType::kBF16) {
      const __m512i v = _mm512_loadu_si512(p);
      a = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      b = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(int(0xffff0000u))));
    } else {
      a = load<DT>(p);
      b = load<DT>(p + kLanes);
    }
  }
  template <DType DT> static void store2(typename Storage<DT>::T* p, F a, F b) {
    if constexpr (DT == DType::kBF16) {
      const __m512i lo = _mm512_srli_epi32(bf16_round_bits(a), 16);
      _mm512_storeu_si512(p, _mm512_ternarylogic_epi32(lo, bf16_round_bits(b), _mm512_set1_epi32(int(0xffff0000u)),
                                                       0xf8));  // lo | (hi & mask)
    } else {
      store<DT>(p, a);
      store<DT>(p + kLanes, b);
    }
  }
  template <DType DT> static constexpr int pair_channel(int j) {
    return DT == DType::kBF16 ? (j < kLanes ? 2 * j : 2 * (j - kLanes) + 1) : j;
  }

  static F loadf(const float* p) { return _mm512_loadu_ps(p); }
  static void storef(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F set1(float f) { return _mm512_set1_ps(f); }
  static void in_register(F& v) { asm("" : "+v"(v)); }   // v stays a register (no folded reloads)
  static F zero() { return _mm512_setzero_ps(); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }       // a * b + c
  static F fnma(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }     // c - a * b
  static F max(F a, F b) { return _mm512_max_ps(a, b); }
  static float reduce_add(F v) { return _mm512_reduce_add_ps(v); }
  static float reduce_max(F v) { return _mm512_reduce_max_ps(v); }
  static F select(Mask m, F a, F b) { return _mm512_mask_blend_ps(m, b, a); }  // m ? a : b
  static F round_int(F v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
  static F scale_pow2(F v, F n) { return _mm512_scalef_ps(v, n); }             // v * 2^n

 private:
  static __m512i bf16_round_bits(F v) {  // RNE into the upper 16 bits; NaN stays NaN (quiet), as numeric.h
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
  }
};

}  // namespace lfm25::cpu
