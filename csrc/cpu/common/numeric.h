// Scalar storage conversions shared by the CPU kernels: fp16/bf16 <-> fp32 with round-to-nearest-even,
// bit-identical to torch's conversions (NaN stays NaN), as Storage<DType> and load_as_f32; and Scratch, the
// kernels' zeroed heap array. Plain integer code, valid on every ISA.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>

#include "lfm25/ops.h"

namespace lfm25::cpu {
// NOTE: everything in the CPU headers has internal linkage (unnamed namespace). Each ISA's translation unit is
// compiled with its own -m flags; shared inline code with external linkage would be merged by the linker, and
// an AVX-512 copy could end up called on a CPU without AVX-512.
namespace {

inline float bits_to_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t f32_to_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }

inline float bf16_to_f32(uint16_t h) { return bits_to_f32(uint32_t(h) << 16); }
inline uint16_t f32_to_bf16(float f) {
  uint32_t u = f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_f32(sign | 0x7f800000u | (man << 13));
  if (exp != 0) return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
  // subnormal or zero: man * 2^-24 is exact in fp32
  float f = float(man) * 5.9604644775390625e-8f;
  return sign ? -f : f;
}
inline uint16_t f32_to_f16(float f) {
  const uint32_t u = f32_to_bits(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u);        // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);       // rounds to >= 65520: inf
  if (a < 0x38800000u) {                                       // below 2^-14: subnormal half
    // round-to-nearest-even of a * 2^24 as an integer, via the fp32 adder
    const float r = bits_to_f32(a) + 0.5f;                     // 0.5 = 2^-1: ulp there is 2^-24
    return uint16_t(sign | uint16_t(f32_to_bits(r) - 0x3f000000u));
  }
  uint32_t m = a + 0xc8000fffu + ((a >> 13) & 1u);             // rebias exponent (-112 << 23) and round
  return uint16_t(sign | uint16_t(m >> 13));
}

// Storage type <-> fp32 for the portable and SIMD tails.
template <DType D> struct Storage;
template <> struct Storage<DType::kF32> {
  using T = float;
  static float load(T v) { return v; }
  static T store(float f) { return f; }
};
template <> struct Storage<DType::kF16> {
  using T = uint16_t;
  static float load(T v) { return f16_to_f32(v); }
  static T store(float f) { return f32_to_f16(f); }
};
template <> struct Storage<DType::kBF16> {
  using T = uint16_t;
  static float load(T v) { return bf16_to_f32(v); }
  static T store(float f) { return f32_to_bf16(f); }
};

inline int64_t dtype_size(DType d) { return d == DType::kF32 ? 4 : 2; }

// Reads element i of an array stored as `d` (weights may be fp32 or the activation dtype).
inline float load_as_f32(const void* p, DType d, int64_t i) {
  switch (d) {
    case DType::kF32: return static_cast<const float*>(p)[i];
    case DType::kF16: return f16_to_f32(static_cast<const uint16_t*>(p)[i]);
    default: return bf16_to_f32(static_cast<const uint16_t*>(p)[i]);
  }
}

// A zero-initialised heap array. Used instead of std::vector in code compiled for several ISAs, so that no
// std template instantiation (a fill loop, vectorised for one ISA) is shared between translation units.
template <class T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : p_(new T[size_t(n > 0 ? n : 1)]()) {}
  T* data() { return p_.get(); }
  T& operator[](int64_t i) { return p_[size_t(i)]; }

 private:
  std::unique_ptr<T[]> p_;
};

}  // namespace
}  // namespace lfm25::cpu
