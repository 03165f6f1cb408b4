// Index checks shared by every CPU ISA, run before a kernel so that bad values raise instead of reading or
// writing out of bounds. (The CUDA path cannot read indices on the host; its kernels skip bad entries.)
#include "kernels.h"

namespace lfm25::cpu {
namespace {

Status check_state_indices(const int32_t* idx, int64_t n, int64_t n_slots) {
  if (!idx) return n <= n_slots ? Status::kOk : Status::kBadStateIndex;
  for (int64_t i = 0; i < n; ++i)
    if (idx[i] < -1 || idx[i] >= n_slots) return Status::kBadStateIndex;
  return Status::kOk;
}

}  // namespace

Status run_short_conv(const KernelTable& table, const ShortConvParams& p) {
  if (p.cu_seqlens) {
    if (p.cu_seqlens[0] != 0 || p.cu_seqlens[p.batch] != p.seqlen) return Status::kBadCuSeqlens;
    for (int64_t i = 0; i < p.batch; ++i)
      if (p.cu_seqlens[i + 1] < p.cu_seqlens[i]) return Status::kBadCuSeqlens;
  }
  if (p.state) {
    const Status s = check_state_indices(p.state_indices, p.batch, p.n_slots);
    if (s != Status::kOk) return s;
  }
  return table.short_conv(p);
}

Status run_short_conv_update(const KernelTable& table, const ShortConvUpdateParams& p) {
  const Status s = check_state_indices(p.state_indices, p.batch, p.n_slots);
  if (s != Status::kOk) return s;
  return table.short_conv_update(p);
}

Status run_qk_norm_rope_append(const KernelTable& table, const QkNormRopeAppendParams& p) {
  const int64_t n_slots = p.n_blocks * p.block_size;
  for (int64_t i = 0; i < p.n_tokens; ++i) {
    if (p.positions[i] < 0) return Status::kBadPosition;
    if (p.slot_mapping[i] < -1 || p.slot_mapping[i] >= n_slots) return Status::kBadSlot;
  }
  return table.qk_norm_rope_append(p);
}

Status run_gqa_decode(const KernelTable& table, const GqaDecodeParams& p) {
  const int64_t capacity = p.block_table ? p.max_blocks * p.block_size : p.block_size;
  for (int64_t b = 0; b < p.batch; ++b) {
    const int32_t len = p.seq_lens[b];
    if (len < 0 || len > capacity) return Status::kBadSeqLen;
    if (!p.block_table) continue;
    const int32_t* row = p.block_table + b * p.block_table_stride;
    for (int64_t j = 0; j * p.block_size < len; ++j)
      if (row[j] < 0 || row[j] >= p.n_blocks) return Status::kBadBlockTable;
  }
  if (!p.block_table && p.batch > p.n_blocks) return Status::kBadSeqLen;
  return table.gqa_decode(p);
}

Status run_rms_norm(const KernelTable& table, const RmsNormParams& p) { return table.rms_norm(p); }

Status run_linear(const KernelTable& table, const LinearParams& p) {
  if (p.weight_layout != WeightLayout::kRows) {   // packed weights: only the amx table reads them
#if defined(LFM25_CPU_X86_SIMD)
    if (table.linear != linear_amx || p.dtype != DType::kBF16) return Status::kUnsupportedLayout;
#else
    return Status::kUnsupportedLayout;
#endif
  }
  return table.linear(p);
}

}  // namespace lfm25::cpu
