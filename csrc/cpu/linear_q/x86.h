// linear_q's Dot policies on x86 (linear_q/common.h): lanes of 32 bits, one output row and a quad of its
// codes each, multiplied by a quad of x broadcast to every lane.
//   Avx512VnniDot  VPDPBUSD: unsigned codes times signed x, 4 products and the sum in one instruction, so a code
//               is its stored byte (zero point 128, or 8 for a nibble); the avx512_bf16 and amx tables.
//   Avx512BwDot    VPMADDUBSW + VPMADDWD (the avx512 table, for AVX-512 CPUs without VNNI) and
//   Avx2Dot        the same on 256 bits: the pair sums of VPMADDUBSW saturate at 16 bits, so int8 multiplies
//               |x| by the code with the sign of x (both within +-127: no saturation); a nibble times x fits.
// Each also quantizes x a group of 32 inputs at a time in vectors (quantize_row: linear_q/common.h's bits, as
// every step is one IEEE operation: the largest |x| compared as bits, x * (127 / amax) rounded to nearest even
// by the conversion under the default rounding mode, as nearbyint rounds).
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

// A group's scale (and the multiplier inv of its inputs) from its largest |x| as bits, as quantize_row
// (linear_q/common.h) takes them; a group holding a NaN or an infinity gets codes 0 and the scale NaN here.
inline void quantize_group_scale(uint32_t amax_bits, int8_t* c, float* scale, int32_t* sum, float* inv) {
  if (amax_bits >= 0x7f800000u) {   // a NaN or an infinity
    std::memset(c, 0, kQGroup);
    *scale = NAN, *sum = 0, *inv = NAN;
    return;
  }
  const float amax = bits_to_f32(amax_bits);
  *inv = amax > 0.0f ? 127.0f / amax : 0.0f;
  *scale = amax / 127.0f;
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
  static F scales(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static F fma_scaled(F acc, I sum, F d, float s) {
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(d, _mm512_set1_ps(s)), acc);
  }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    const __m512i b = _mm512_loadu_si512(p), m = _mm512_set1_epi8(15);
    lo = _mm512_and_si512(b, m);
    hi = _mm512_and_si512(_mm512_srli_epi16(b, 4), m);
  }

  // n (<= 16) inputs widened to fp32, zero past n (a masked load never faults)
  template <DType DT>
  static __m512 load_f32(const typename Storage<DT>::T* p, int64_t n) {
    const __mmask16 m = n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
    if constexpr (DT == DType::kF32) return _mm512_maskz_loadu_ps(m, p);
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if constexpr (DT == DType::kF16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }

  template <DType DT>
  static void quantize_row(const typename Storage<DT>::T* x, int64_t K, int8_t* codes, float* scale, int32_t* sums,
                           int64_t groups, int64_t Kp) {
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * kQGroup, n = std::min<int64_t>(kQGroup, K - k0);
      const __m512 v0 = load_f32<DT>(x + k0, n), v1 = load_f32<DT>(x + k0 + 16, n - 16);
      const uint32_t amax_bits = _mm512_reduce_max_epu32(_mm512_max_epu32(
          _mm512_and_si512(_mm512_castps_si512(v0), abs_mask), _mm512_and_si512(_mm512_castps_si512(v1), abs_mask)));
      float inv;
      quantize_group_scale(amax_bits, codes + k0, scale + g, sums + g, &inv);
      if (amax_bits >= 0x7f800000u) continue;
      const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(inv)));
      const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(inv)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + k0), _mm512_cvtepi32_epi8(q0));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(codes + k0 + 16), _mm512_cvtepi32_epi8(q1));
      sums[g] = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    }
    std::memset(codes + groups * kQGroup, 0, Kp - groups * kQGroup);
  }
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

  template <DType DT>
  static __m256 load_f32(const typename Storage<DT>::T* p) {
    if constexpr (DT == DType::kF32) return _mm256_loadu_ps(p);
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    if constexpr (DT == DType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }

  template <DType DT>
  static void quantize_row(const typename Storage<DT>::T* x, int64_t K, int8_t* codes, float* scale, int32_t* sums,
                           int64_t groups, int64_t Kp) {
    using T = typename Storage<DT>::T;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * kQGroup, n = std::min<int64_t>(kQGroup, K - k0);
      T tail[kQGroup] = {};   // the last group's inputs, zero past K (zero bits are +0 in every dtype)
      const T* src = x + k0;
      if (n < kQGroup) src = static_cast<const T*>(std::memcpy(tail, src, size_t(n) * sizeof(T)));
      __m256 v[4];
      __m256i amax = _mm256_setzero_si256();
      for (int i = 0; i < 4; ++i) {
        v[i] = load_f32<DT>(src + 8 * i);
        amax = _mm256_max_epu32(amax, _mm256_and_si256(_mm256_castps_si256(v[i]), abs_mask));
      }
      __m128i m = _mm_max_epu32(_mm256_castsi256_si128(amax), _mm256_extracti128_si256(amax, 1));
      m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
      m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
      const uint32_t amax_bits = uint32_t(_mm_cvtsi128_si32(m));
      float inv;
      quantize_group_scale(amax_bits, codes + k0, scale + g, sums + g, &inv);
      if (amax_bits >= 0x7f800000u) continue;
      __m256i q[4];
      for (int i = 0; i < 4; ++i) q[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], _mm256_set1_ps(inv)));
      // packs interleave the 128-bit lanes: dword j of the packed bytes is (vector j % 4, half j / 4)
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(codes + k0),
                          _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
      const __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
      __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
      t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
      sums[g] = _mm_cvtsi128_si32(t);
    }
    std::memset(codes + groups * kQGroup, 0, Kp - groups * kQGroup);
  }
};
#endif

}  // namespace
}  // namespace lfm25::cpu
