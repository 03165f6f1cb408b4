// validate(table, GqaDecodeParams): every seq_lens value fits its sequence's cache; every block_table entry a
// sequence uses is a block; a contiguous cache has a block per sequence.
#include "kernels.h"

namespace lfm25::cpu {

Check validate(const KernelTable&, const GqaDecodeParams& p) {
  const int64_t capacity = p.block_table_given ? p.max_blocks * p.block_size : p.block_size;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int32_t len = p.seq_lens[b];
    if (len < 0 || len > capacity) return {Status::kBadSeqLen, b, len};
    if (!p.block_table_given) continue;
    const int32_t* row = p.block_table + b * p.block_table_stride;
    for (int64_t j = 0; j * p.block_size < len; ++j)
      if (row[j] < 0 || row[j] >= p.n_blocks) return {Status::kBadBlockTable, b, j, row[j]};
  }
  if (!p.block_table_given && p.batch > p.n_blocks) return Status::kBadSeqLen;
  return Status::kOk;
}

}  // namespace lfm25::cpu
