// short_conv_update_drive, the ISA-independent half of short_conv_update on the CPU (portable.cpp and
// simd.cpp): sequences split over threads in chunks of at least `grain`, padding rows (slot -1) zeroed, and
// for every other sequence the kernel's `RowFn(x, y, state)` on its bcx row, output row and state slot.
#pragma once
#include <cstring>

#include "common/numeric.h"
#include "common/parallel.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

template <DType DT, class RowFn>
Status short_conv_update_drive(const ShortConvUpdateParams& p, int64_t grain, RowFn&& row) {
  using T = typename Storage<DT>::T;
  parallel_for(p.batch, p.num_threads, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride;
      T* y = static_cast<T*>(p.y) + b * p.y_batch_stride;
      const int64_t slot = p.state_indices_given ? p.state_indices[b] : b;
      if (slot < 0) {
        std::memset(y, 0, size_t(p.dim) * sizeof(T));
        continue;
      }
      row(x, y, static_cast<T*>(p.state) + slot * p.state_slot_stride);
    }
  });
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
