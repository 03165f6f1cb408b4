// linear_q's lane-dot policy on the dot-product extension (ARMv8.2 FEAT_DotProd; include only where it is
// enabled): SDOT by element multiplies 4 rows x a quad of codes by x's quad LANE and adds the 4 products of
// each row into its lane, in one instruction.
#pragma once
#include "linear_q/neon.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

struct NeonSdot : NeonLaneTile<NeonSdot> {
  using W = int8x16_t;
  template <QuantFormat FMT>
  static constexpr int32_t zero_point = NeonDot::zero_point<FMT>;
  static int8x16_t load8(const uint8_t* p) { return NeonDot::load8(p); }
  static void load4(const uint8_t* p, int8x16_t& lo, int8x16_t& hi) { NeonDot::load4(p, lo, hi); }
  template <int LANE>
  static int32x4_t dot(int32x4_t acc, int8x16_t w, int8x16_t x) { return vdotq_laneq_s32(acc, w, x, LANE); }
};

}  // namespace
}  // namespace lfm25::cpu
