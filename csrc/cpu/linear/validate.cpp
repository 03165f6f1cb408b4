// validate(table, LinearParams): weights packed by pack_weight (WeightLayout) are read only by the amx table's
// bf16 kernel; every other table reads [N, K] rows.
#include "kernels.h"

namespace lfm25::cpu {

Check validate([[maybe_unused]] const KernelTable& table, const LinearParams& p) {
  if (p.weight_layout == WeightLayout::kRows) return Status::kOk;
#if defined(LFM25_CPU_X86_SIMD)
  if (table.linear == amx::linear && p.dtype == DType::kBF16) return Status::kOk;
#endif
  return Status::kUnsupportedLayout;
}

}  // namespace lfm25::cpu
