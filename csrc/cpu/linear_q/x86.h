// linear_q's Dot policies on x86 (linear_q/common.h): lanes of 32 bits, one output row and a quad of its
// codes each, multiplied by a quad of x broadcast to every lane.
//   Avx512VnniDot  VPDPBUSD: unsigned codes times signed x, 4 products and the sum in one instruction, so a code
//               is its stored byte (zero point 128, or 8 for a nibble); the avx512_bf16 and amx tables.
//   Avx512BwDot    VPMADDUBSW + VPMADDWD (the avx512 table, for AVX-512 CPUs without VNNI) and
//   Avx2Dot        the same on 256 bits: the pair sums of VPMADDUBSW saturate at 16 bits, so int8 multiplies
//               |x| by the code with the sign of x (both within +-127: no saturation); a nibble times x fits.
// Each quantizes x a group of 32 inputs at a time in vectors (XGroup, linear_q/common.h): the conversion rounds
// to nearest even under the default rounding mode, as nearbyint does.
#pragma once
#include <immintrin.h>

#include "linear_q/common.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

inline int32_t load_quad(const int8_t* x4) {
  int32_t v;
  std::memcpy(&v, x4, 4);
  return v;
}

#if defined(__AVX512F__) && defined(__AVX512BW__)
struct Avx512DotCommon {
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  using I = __m512i;
  using F = __m512;
  using W = __m512i;
  static I splat(int32_t v) { return _mm512_set1_epi32(v); }
  static F zero() { return _mm512_setzero_ps(); }
  static F scales(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static F fma_scaled(F acc, I sum, F d, float s) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, _mm512_set1_ps(s)), acc);
  }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    const __m512i b = _mm512_loadu_si512(p), m = _mm512_set1_epi8(15);
    lo = _mm512_and_si512(b, m);
    hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m);
  }

  // two vectors of 16 inputs widened to fp32 (a masked load never faults)
  struct XGroup {
    struct V {
      __m512 lo, hi;
    };
    template <DType DT>
    static __m512 load16(const typename Storage<DT>::T* p, int64_t n) {
      const __mmask16 m = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
      if constexpr (DT == DType::kF32) return _mm512_maskz_loadu_ps(m, p);
      const __m256i h = _mm256_maskz_loadu_epi16(m, p);
      if constexpr (DT == DType::kF16) return _mm512_cvtph_ps(h);
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    template <DType DT>
    static V load(const typename Storage<DT>::T* x, int64_t n) {
      return {load16<DT>(x, n), load16<DT>(x + 16, n - 16)};
    }
    static uint32_t amax_bits(const V& g) {
      const __m512i abs = _mm512_set1_epi32(0x7fffffff);
      return _mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_and_si512(_mm512_castps_si512(g.lo), abs),
                                                      _mm512_and_si512(_mm512_castps_si512(g.hi), abs)));
    }
    static int32_t codes(const V& g, float inv, int8_t* c) {
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(g.lo, _mm512_set1_ps(inv)));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(g.hi, _mm512_set1_ps(inv)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(c + 16), _mm512_cvtepi32_epi8(q1));
      return _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
  };
};

#if defined(__AVX512VNNI__)
struct Avx512VnniDot : Avx512DotCommon {
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = FMT == QuantFormat::kInt8 ? 128 : 8;
  static W load8(const uint8_t* p) { return _mm512_loadu_si512(p); }
  template <QuantFormat FMT>
  static I dot(I acc, W w, const int8_t* x4) { return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(load_quad(x4))); }
};
#endif

struct Avx512BwDot : Avx512DotCommon {
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = FMT == QuantFormat::kInt8 ? 0 : 8;
  static W load8(const uint8_t* p) { return _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(char(0x80))); }
  template <QuantFormat FMT>
  static I dot(I acc, W w, const int8_t* x4) {
    const __m512i x = _mm512_set1_epi32(load_quad(x4));
    __m512i pairs;
    if constexpr (FMT == QuantFormat::kInt8) {
      const __m512i signed_w = _mm512_mask_sub_epi8(w, _mm512_movepi8_mask(x), _mm512_setzero_si512(), w);
      pairs = _mm512_maddubs_epi16(_mm512_abs_epi8(x), signed_w);
    } else {
      pairs = _mm512_maddubs_epi16(w, x);
    }
    return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
  }
};
#endif

#if defined(__AVX2__)
struct Avx2Dot {
  static constexpr int kLanes = 8;
  static constexpr int kRegisters = 16;
  using I = __m256i;
  using F = __m256;
  using W = __m256i;
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = FMT == QuantFormat::kInt8 ? 0 : 8;
  static W load8(const uint8_t* p) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), _mm256_set1_epi8(char(0x80)));
  }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), m = _mm256_set1_epi8(15);
    lo = _mm256_and_si256(b, m);
    hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
  }
  template <QuantFormat FMT>
  static I dot(I acc, W w, const int8_t* x4) {
    const __m256i x = _mm256_set1_epi32(load_quad(x4));
    const __m256i pairs = FMT == QuantFormat::kInt8 ? _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w, x))
                                                    : _mm256_maddubs_epi16(w, x);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
  static I splat(int32_t v) { return _mm256_set1_epi32(v); }
  static F zero() { return _mm256_setzero_ps(); }
  static F scales(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static F fma_scaled(F acc, I sum, F d, float s) {
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(d, _mm256_set1_ps(s)), acc);
  }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }

  // four vectors of 8 inputs widened to fp32; the last group is copied to a zero-padded buffer first
  struct XGroup {
    struct V {
      __m256 v[4];
    };
    template <DType DT>
    static V load(const typename Storage<DT>::T* x, int64_t n) {
      using T = typename Storage<DT>::T;
      T tail[kQGroup] = {};   // zero bits are +0 in every dtype
      if (n < kQGroup) x = static_cast<const T*>(std::memcpy(tail, x, size_t(n) * sizeof(T)));
      V g;
      for (int i = 0; i < 4; ++i) {
        if constexpr (DT == DType::kF32) {
          g.v[i] = _mm256_loadu_ps(x + 8 * i);
        } else {
          const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x + 8 * i));
          g.v[i] = DT == DType::kF16 ? _mm256_cvtph_ps(h)
                                     : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
        }
      }
      return g;
    }
    static uint32_t amax_bits(const V& g) {
      __m256i amax = _mm256_setzero_si256();
      for (const __m256 v : g.v) amax = _mm256_max_epu32(amax, _mm256_and_si256(_mm256_castps_si256(v),
                                                                                _mm256_set1_epi32(0x7fffffff)));
      __m128i m = _mm_max_epu32(_mm256_castsi256_si128(amax), _mm256_extracti128_si256(amax, 1));
      m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
      return uint32_t(_mm_cvtsi128_si32(_mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1))));
    }
    static int32_t codes(const V& g, float inv, int8_t* c) {
      __m256i q[4];
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(g.v[i], _mm256_set1_ps(inv)));
      // packs interleave the 128-bit lanes: dword j of the packed bytes is (vector j % 4, half j / 4)
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c),
                          _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
      return _mm_cvtsi128_si32(_mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1)));
    }
  };
};
#endif

}  // namespace
}  // namespace lfm25::cpu
