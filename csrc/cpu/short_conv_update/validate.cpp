// validate(table, ShortConvUpdateParams): every state_indices value is a slot or -1.
#include "common/check_state_indices.h"
#include "kernels.h"

namespace lfm25::cpu {

Status validate(const KernelTable&, const ShortConvUpdateParams& p) {
  return check_state_indices(p.state_indices, p.batch, p.n_slots);
}

}  // namespace lfm25::cpu
