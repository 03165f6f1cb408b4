// check_state_indices: the state-slot check of short_conv/validate.cpp and short_conv_update/validate.cpp.
#pragma once
#include <vector>

#include "kernels.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

// Every idx[i] (i < n) in [-1, n_slots), no slot twice (the kernels gather every initial state before writing
// any final one, and two writes to one slot would race); without idx, sequence i uses slot i, so n slots must
// exist.
inline Check check_state_indices(bool given, const int32_t* idx, int64_t n, int64_t n_slots) {
  if (!given) return n <= n_slots ? Status::kOk : Status::kBadStateIndex;
  std::vector<bool> used(size_t(n_slots > 0 ? n_slots : 0));
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < -1 || idx[i] >= n_slots) return {Status::kBadStateIndex, i, idx[i]};
    if (idx[i] < 0) continue;
    if (used[size_t(idx[i])]) return {Status::kDuplicateStateIndex, i, idx[i]};
    used[size_t(idx[i])] = true;
  }
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
