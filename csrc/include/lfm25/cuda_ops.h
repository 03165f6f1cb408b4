// CUDA entry points, one per op (csrc/cuda/<op>.cu). `stream` is a cudaStream_t. They launch asynchronously,
// never synchronise with the host and never read index tensors on the host: an out-of-range index is skipped
// on the device (treated as padding), never dereferenced.
#pragma once
#include "lfm25/ops.h"

namespace lfm25::cuda {

Status short_conv(const ShortConvParams& p, void* stream);
Status short_conv_update(const ShortConvUpdateParams& p, void* stream);
Status qk_norm_rope_append(const QkNormRopeAppendParams& p, void* stream);
Status gqa_decode(const GqaDecodeParams& p, void* stream);
Status rms_norm(const RmsNormParams& p, void* stream);

}  // namespace lfm25::cuda
