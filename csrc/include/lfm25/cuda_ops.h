// CUDA entry points, declared from the op list: `Status <op>(const <Op>Params& p, void* stream)` in
// lfm25::cuda for every op whose backends column says cuda, defined in csrc/cuda/<op>.cu. `stream` is a
// cudaStream_t. They launch asynchronously, never synchronise with the host and never read index tensors on
// the host: an out-of-range index is skipped on the device (treated as padding), never dereferenced.
#pragma once
#include "lfm25/ops.h"

namespace lfm25::cuda {

#define LFM25_DECLARE_CUDA_KERNEL(OP, PARAMS, BACKENDS) LFM25_IF_CUDA(BACKENDS, Status OP(const PARAMS& p, void* stream);)
LFM25_OPS(LFM25_DECLARE_CUDA_KERNEL)
#undef LFM25_DECLARE_CUDA_KERNEL

}  // namespace lfm25::cuda
