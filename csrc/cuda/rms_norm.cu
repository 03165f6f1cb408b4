// rms_norm on CUDA: one 256-thread block per row; h = x (+ residual, rounded, stored to residual_out), the sum
// of squares reduced over the block (warp shuffles, then 8 partial sums in shared memory), then
// y = w * h * rsqrt(mean + eps) in a second pass over the row (L1/L2-resident).
#include "common.cuh"
#include "lfm25/cuda_ops.h"

namespace lfm25::cuda {
namespace {

constexpr int kThreads = 256;

template <DType DT>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(const RmsNormParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  __shared__ float partial[kThreads / 32];
  const int64_t r = blockIdx.x, D = p.dim;
  const T* x = static_cast<const T*>(p.x) + r * p.x_row_stride;
  const T* h = x;
  float ss = 0.0f;
  if (p.residual) {
    const T* res = static_cast<const T*>(p.residual) + r * p.residual_row_stride;
    T* ho = static_cast<T*>(p.residual_out) + r * D;
    for (int64_t c = threadIdx.x; c < D; c += kThreads) {
      const T v = S::store(S::load(x[c]) + S::load(res[c]));
      ho[c] = v;
      ss = fmaf(S::load(v), S::load(v), ss);
    }
    h = ho;
  } else {
    for (int64_t c = threadIdx.x; c < D; c += kThreads) ss = fmaf(S::load(x[c]), S::load(x[c]), ss);
  }
  ss = warp_sum(ss);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < kThreads / 32; ++i) total += partial[i];
  const float inv = rsqrtf(total / float(D) + float(p.eps));
  T* y = static_cast<T*>(p.y) + r * D;
  // residual_out was written by this thread for the same c: no barrier needed between the passes
  for (int64_t c = threadIdx.x; c < D; c += kThreads)
    y[c] = S::store(load_weight(p.weight, p.weight_dtype, c) * (S::load(h[c]) * inv));
}

}  // namespace

Status rms_norm(const RmsNormParams& p, void* stream) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    if (p.rows > 0) rms_norm_kernel<DT><<<unsigned(p.rows), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(p);
    return launched();
  });
}

}  // namespace lfm25::cuda
