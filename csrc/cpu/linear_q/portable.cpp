// portable::linear_q, plain C++: the driver of linear_q/common.h with a Dot policy on arrays of 16 lanes (one
// block per vector), codes as signed values. The same sums and roundings as every SIMD ISA, so the same bits.
#include <array>

#include "kernels.h"
#include "lfm25/static_switch.h"
#include "linear_q/common.h"

namespace lfm25::cpu::portable {
namespace {

struct PortableDot {
  static constexpr int kLanes = 16;
  static constexpr int kRegisters = 32;
  using I = std::array<int32_t, kLanes>;
  using F = std::array<float, kLanes>;
  using W = std::array<int8_t, 4 * kLanes>;   // signed codes, 4 per lane
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = 0;

  static W load8(const uint8_t* p) {
    W w;
    for (int j = 0; j < 4 * kLanes; ++j) w[j] = int8_t(int(p[j]) - 128);
    return w;
  }
  static void load4(const uint8_t* p, W& lo, W& hi) {
    for (int j = 0; j < 4 * kLanes; ++j) {
      lo[j] = int8_t((p[j] & 15) - 8);
      hi[j] = int8_t((p[j] >> 4) - 8);
    }
  }
  template <QuantFormat FMT>
  static I dot(I acc, const W& w, const int8_t* x4) {
    for (int l = 0; l < kLanes; ++l)
      for (int j = 0; j < 4; ++j) acc[l] += int32_t(w[4 * l + j]) * x4[j];
    return acc;
  }
  static I splat(int32_t v) {
    I r;
    r.fill(v);
    return r;
  }
  static F zero() { return F{}; }
  static F scales(const uint16_t* p) {
    F r;
    for (int l = 0; l < kLanes; ++l) r[l] = f16_to_f32(p[l]);
    return r;
  }
  static F fma_scaled(F acc, const I& sum, const F& d, float s) {
    for (int l = 0; l < kLanes; ++l) acc[l] = std::fma(float(sum[l]), d[l] * s, acc[l]);
    return acc;
  }
  static void store(float* p, const F& v) { std::copy(v.begin(), v.end(), p); }
};

}  // namespace

Status linear_q(const LinearQParams& p) { return linear_q_with<PortableDot, 4>(p); }

}  // namespace lfm25::cpu::portable
