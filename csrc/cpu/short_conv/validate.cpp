// validate(table, ShortConvParams): cu_seqlens starts at 0, never decreases and ends at the token count; with
// a state, every state_indices value is a slot or -1, and no slot is given twice.
#include "common/check_state_indices.h"
#include "kernels.h"

namespace lfm25::cpu {

Check validate(const KernelTable&, const ShortConvParams& p) {
  if (p.cu_seqlens_given) {
    if (p.cu_seqlens[0] != 0) return {Status::kBadCuSeqlens, 0, p.cu_seqlens[0]};
    for (int64_t i = 0; i < p.batch; ++i)
      if (p.cu_seqlens[i + 1] < p.cu_seqlens[i]) return {Status::kBadCuSeqlens, i + 1, p.cu_seqlens[i + 1]};
    if (p.cu_seqlens[p.batch] != p.seqlen) return {Status::kBadCuSeqlens, p.batch, p.cu_seqlens[p.batch]};
  }
  if (p.state_given) return check_state_indices(p.state_indices_given, p.state_indices, p.batch, p.n_slots);
  return Status::kOk;
}

}  // namespace lfm25::cpu
