// validate(table, LinearQParams): linear_q has no index arguments; the format is one the kernels know.
#include "kernels.h"

namespace lfm25::cpu {

Check validate(const KernelTable&, const LinearQParams& p) {
  return p.format == QuantFormat::kInt8 || p.format == QuantFormat::kQ4 ? Status::kOk : Status::kUnsupportedLayout;
}

}  // namespace lfm25::cpu
