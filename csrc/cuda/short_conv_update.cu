// short_conv_update on CUDA: one decode step. One thread per (sequence, VEC channels) -- VEC = 16 bytes when
// aligned -- so the [S, K-1, D] state is read and written in coalesced 16-byte channel vectors, gates fused.
// 128 threads cover 128 * VEC channels (1024 in bf16); grid = (batch, channel blocks). Same arithmetic and order
// as short_conv.cu, so a step equals a one-token prefill bit for bit. Out-of-range slots act as padding.
#include "common.cuh"
#include "lfm25/cuda_ops.h"

namespace lfm25::cuda {
namespace {

constexpr int kThreads = 128;

template <DType DT, int K, int VEC>
__global__ void __launch_bounds__(kThreads) update_kernel(const ShortConvUpdateParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  using P = Pack<T, VEC>;
  const int64_t b = blockIdx.x;
  const int64_t c = (int64_t(blockIdx.y) * kThreads + threadIdx.x) * VEC;
  if (c >= p.dim) return;
  const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride + c;
  T* y = static_cast<T*>(p.y) + b * p.y_batch_stride + c;
  const int64_t v = p.state_indices ? p.state_indices[b] : b;
  P out;
  if (v < 0 || v >= p.n_slots) {
    for (int i = 0; i < VEC; ++i) out.v[i] = S::store(0.0f);
    *reinterpret_cast<P*>(y) = out;
    return;
  }
  T* st = static_cast<T*>(p.state) + v * p.state_slot_stride + c;
  P rows[K - 1];
  for (int j = 0; j < K - 1; ++j) rows[j] = *reinterpret_cast<const P*>(st + j * p.state_row_stride);
  const P u = gate<DT, VEC>(x, p.dim), cg = *reinterpret_cast<const P*>(x + p.dim);
  for (int i = 0; i < VEC; ++i) {
    const int64_t w = (c + i) * p.weight_stride;
    float z = __fmul_rn(load_weight(p.weight, p.weight_dtype, w), S::load(rows[0].v[i]));
    for (int k = 1; k < K - 1; ++k) z = fmaf(load_weight(p.weight, p.weight_dtype, w + k), S::load(rows[k].v[i]), z);
    z = fmaf(load_weight(p.weight, p.weight_dtype, w + K - 1), S::load(u.v[i]), z);
    out.v[i] = S::store(__fmul_rn(S::load(cg.v[i]), z));
  }
  *reinterpret_cast<P*>(y) = out;
  for (int j = 0; j < K - 2; ++j) *reinterpret_cast<P*>(st + j * p.state_row_stride) = rows[j + 1];
  *reinterpret_cast<P*>(st + (K - 2) * p.state_row_stride) = u;
}

template <DType DT, int K, int VEC>
Status launch(const ShortConvUpdateParams& p, cudaStream_t stream) {
  const unsigned channel_blocks = unsigned((p.dim / VEC + kThreads - 1) / kThreads);
  if (p.batch > 0) update_kernel<DT, K, VEC><<<dim3(unsigned(p.batch), channel_blocks), kThreads, 0, stream>>>(p);
  return launched();
}

}  // namespace

Status short_conv_update(const ShortConvUpdateParams& p, void* stream) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    using T = typename Storage<DT>::T;
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = p.dim % kVec == 0 && aligned16(p.x) && aligned16(p.y) && aligned16(p.state) &&
                     p.x_batch_stride % kVec == 0 && p.y_batch_stride % kVec == 0 &&
                     p.state_slot_stride % kVec == 0 && p.state_row_stride % kVec == 0;
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return vec ? launch<DT, K, kVec>(p, s) : launch<DT, K, 1>(p, s); });
  });
}

}  // namespace lfm25::cuda
