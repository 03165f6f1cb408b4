// linear: what every ISA shares. The output of one element from its fp32 sums, rounded as torch's eager ops
// round y = F.linear(x, w) and y = F.silu(F.linear(x, w1)) * F.linear(x, w3) in the activation dtype.
#pragma once
#include <cmath>

#include "numeric.h"

namespace lfm25::cpu {
namespace {

template <DType DT>
typename Storage<DT>::T linear_output(float up, float gate, bool gated) {
  using S = Storage<DT>;
  if (!gated) return S::store(up);
  const float u = S::load(S::store(up)), g = S::load(S::store(gate));
  const float s = S::load(S::store(g / (1.0f + std::exp(-g))));   // torch's silu: x / (1 + exp(-x))
  return S::store(s * u);
}

}  // namespace
}  // namespace lfm25::cpu
