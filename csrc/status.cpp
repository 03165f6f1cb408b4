// Human-readable text for each Status, and the CPU checks' error message (kernels.h); the binding puts it in the
// exception it raises.
#include <string>

#include "lfm25/ops.h"
#include "kernels.h"

namespace lfm25 {

const char* status_message(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kUnsupportedDType: return "unsupported dtype";
    case Status::kUnsupportedShape: return "unsupported size (conv width must be 2..4, head_dim 32, 64, 96 or 128)";
    case Status::kBadStateIndex: return "state_indices holds a value outside [-1, number of state slots)";
    case Status::kDuplicateStateIndex: return "state_indices holds a slot twice (only -1, padding, may repeat)";
    case Status::kBadCuSeqlens: return "cu_seqlens must start at 0, never decrease and end at the number of tokens";
    case Status::kBadSlot: return "slot_mapping holds a value outside [-1, number of cache slots)";
    case Status::kBadPosition: return "positions holds a negative value";
    case Status::kBadSeqLen: return "seq_lens holds a value outside [0, cache capacity of the sequence]";
    case Status::kBadBlockTable: return "block_table holds a block index outside [0, number of blocks) for a used block";
    case Status::kUnsupportedLayout:
      return "weights packed by pack_weight run only on the x86 CPU tables that read their layout (AMX tiles: the "
             "amx table; pairs: every x86 table); the table in effect reads [N, K] rows";
    case Status::kCudaError: return "CUDA error";
  }
  return "unknown status";
}

std::string cpu::error_message(const char* op, const cpu::Check& c) {
  std::string msg = std::string(op) + ": " + status_message(c.status);
  if (c.row >= 0) {
    msg += ": " + std::to_string(c.value) + " at [" + std::to_string(c.row);
    msg += (c.col >= 0 ? ", " + std::to_string(c.col) : std::string()) + "]";
  }
  return msg;
}

}  // namespace lfm25
