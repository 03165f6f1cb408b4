// validate(table, LinearParams): bf16 weights packed by pack_weight (WeightLayout) are read in AMX tiles by the
// amx table, in pairs by every x86 table (linear/pairs.h); the portable and NEON tables read [N, K] rows.
#include "kernels.h"

namespace lfm25::cpu {

Check validate([[maybe_unused]] const KernelTable& table, const LinearParams& p) {
  if (p.weight_layout == WeightLayout::kRows) return Status::kOk;
#if defined(LFM25_CPU_X86_SIMD)
  if (p.dtype != DType::kBF16) return Status::kUnsupportedLayout;
  if (in_amx_tiles(p.weight_layout)) return table.linear == amx::linear ? Status::kOk : Status::kUnsupportedLayout;
  if (in_pairs(p.weight_layout))
    return table.linear == amx::linear || table.linear == avx512_bf16::linear || table.linear == avx512::linear ||
                   table.linear == avx2::linear
               ? Status::kOk
               : Status::kUnsupportedLayout;
#endif
  return Status::kUnsupportedLayout;
}

}  // namespace lfm25::cpu
