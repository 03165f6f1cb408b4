// check_state_indices: the state-slot check of short_conv/validate.cpp and short_conv_update/validate.cpp.
#pragma once
#include "lfm25/ops.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

// Every idx[i] (i < n) in [-1, n_slots); without idx, sequence i uses slot i, so n slots must exist.
inline Status check_state_indices(const int32_t* idx, int64_t n, int64_t n_slots) {
  if (!idx) return n <= n_slots ? Status::kOk : Status::kBadStateIndex;
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < -1 || idx[i] >= n_slots) return Status::kBadStateIndex;
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
