// validate(table, QkNormRopeAppendParams): no negative position; every slot_mapping value is a cache slot or -1.
#include "kernels.h"

namespace lfm25::cpu {

Check validate(const KernelTable&, const QkNormRopeAppendParams& p) {
  const int64_t n_slots = p.n_blocks * p.block_size;
  for (int64_t i = 0; i < p.n_tokens; ++i) {
    if (p.positions[i] < 0) return {Status::kBadPosition, i, p.positions[i]};
    if (p.slot_mapping[i] < -1 || p.slot_mapping[i] >= n_slots) return {Status::kBadSlot, i, p.slot_mapping[i]};
  }
  return Status::kOk;
}

}  // namespace lfm25::cpu
