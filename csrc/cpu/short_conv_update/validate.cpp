// validate(table, ShortConvUpdateParams): every state_indices value is a slot or -1, and no slot is given twice.
#include "common/check_state_indices.h"
#include "kernels.h"

namespace lfm25::cpu {

Check validate(const KernelTable&, const ShortConvUpdateParams& p) {
  return check_state_indices(p.state_indices_given, p.state_indices, p.batch, p.n_slots);
}

}  // namespace lfm25::cpu
