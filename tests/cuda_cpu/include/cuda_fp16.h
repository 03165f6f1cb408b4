// fp16 storage type and conversions of the CUDA headers, for tests/cuda_cpu: round to nearest even, as
// cvt.rn.f16.f32 (a NaN becomes the canonical 0x7fff, as on the GPU).
#pragma once
#include "cuda_runtime.h"

struct __half {
  uint16_t x;
};
inline __half __ushort_as_half(unsigned short u) { return __half{u}; }
inline unsigned short __half_as_ushort(__half h) { return h.x; }

inline float __half2float(__half h) {
  const uint32_t sign = uint32_t(h.x & 0x8000) << 16, exp = (h.x >> 10) & 0x1f, man = h.x & 0x3ff;
  if (exp == 0x1f) return __uint_as_float(sign | 0x7f800000u | (man << 13));   // inf, NaN
  if (exp != 0) return __uint_as_float(sign | ((exp + 112) << 23) | (man << 13));
  const float mag = std::ldexp(float(man), -24);                            // zero or subnormal, exact in fp32
  return sign ? -mag : mag;
}

inline __half __float2half_rn(float f) {
  const uint32_t u = __float_as_uint(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return __half{0x7fff};                         // NaN
  if (a >= 0x477ff000u) return __half{uint16_t(sign | 0x7c00)};       // rounds to inf (>= 65520) or is inf
  if (a >= 0x38800000u) {                                               // normal half: drop 13 bits, RNE
    const uint32_t r = a - 0x38000000u;                                 // rebias 127 -> 15
    return __half{uint16_t(sign | ((r + 0xfff + ((r >> 13) & 1)) >> 13))};
  }
  // subnormal half (or zero): the value in units of 2^-24, rounded to nearest even
  const uint32_t exp = a >> 23;
  if (exp < 102) return __half{uint16_t(sign)};                         // below 2^-25: rounds to zero
  const uint32_t man = (a & 0x7fffff) | 0x800000, shift = 126 - exp;    // value = man * 2^(exp - 150)
  const uint32_t q = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
  return __half{uint16_t(sign | (q + (rem > half || (rem == half && (q & 1)))))};
}
