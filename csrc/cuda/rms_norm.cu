// rms_norm on CUDA, with the residual add fused: per row of x [M, D] (row stride given),
//   h = x (+ residual, rounded to the activation dtype and written to residual_out [M, D]),
//   y = w * (h / sqrt(mean(h^2) + eps))   (fp32, one rounding at the output)
// Parallelisation: R threads per row (launch.cuh: D = 1024 bf16 -> one warp per row, 4 rows per block), each
// holding up to 4 16-byte vectors of h in registers between the sum of squares and the output; longer rows
// re-read the remainder (h from residual_out, written by the same thread). Sum: warp shuffles, then shared
// memory across the row's warps.
#include "common.cuh"
#include "launch.cuh"
#include "lfm25/cuda_ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {
namespace {

template <DType DT, bool kVec, bool kResidual>
__global__ void __launch_bounds__(1024, 1) rms_norm_kernel(const RmsNormParams p, const bool w_vec) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int V = kVec ? kVecOf<DT> : 1, NV = kRmsVectorsPerThread;
  __shared__ float partial[32];  // one per warp of the block
  const int per_row = blockDim.x, tx = threadIdx.x;
  const int64_t row = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  const bool valid = row < p.rows;  // no early return: the block meets at a barrier below
  const int64_t D = p.dim, n_vec = D / V;
  const T* x = static_cast<const T*>(p.x) + (valid ? row : 0) * p.x_row_stride;
  const T* res = kResidual ? static_cast<const T*>(p.residual) + (valid ? row : 0) * p.residual_row_stride : nullptr;
  T* h_out = kResidual ? static_cast<T*>(p.residual_out) + (valid ? row : 0) * D : nullptr;

  // h of vector i, stored to residual_out on the way when there is a residual
  const auto load_h = [&](int64_t i, float (&h)[V], bool first) {
    if constexpr (kResidual) {
      if (!first) {  // written by this thread in the first pass
        load_f32<DT, V, kVec, /*kNc=*/false>(h_out + i * V, h);
        return;
      }
      float a[V], b[V];
      load_f32<DT, V, kVec>(x + i * V, a);
      load_f32<DT, V, kVec>(res + i * V, b);
      T hv[V];
#pragma unroll
      for (int e = 0; e < V; ++e) hv[e] = S::store(__fadd_rn(a[e], b[e])), h[e] = S::load(hv[e]);
      store_raw<T, V, kVec>(h_out + i * V, hv);
    } else {
      load_f32<DT, V, kVec>(x + i * V, h);
    }
  };

  float h[NV][V], ss = 0.0f;
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int64_t i = tx + int64_t(k) * per_row;
    if (valid && i < n_vec) {
      load_h(i, h[k], true);
#pragma unroll
      for (int e = 0; e < V; ++e) ss = fmaf(h[k][e], h[k][e], ss);
    }
  }
  for (int64_t i = tx + int64_t(NV) * per_row; valid && i < n_vec; i += per_row) {
    float t[V];
    load_h(i, t, true);
#pragma unroll
    for (int e = 0; e < V; ++e) ss = fmaf(t[e], t[e], ss);
  }
  ss = group_sum<32>(ss);
  if (per_row > 32) {  // per_row is a power of two >= 32 (launch.cuh); the same for every row of the block
    const int warps = per_row / 32, first = threadIdx.y * warps;
    if (tx % 32 == 0) partial[first + tx / 32] = ss;
    __syncthreads();
    ss = 0.0f;
    for (int w = 0; w < warps; ++w) ss += partial[first + w];
  }
  if (!valid) return;
  const float inv = 1.0f / sqrtf(ss / float(D) + float(p.eps));
  T* y = static_cast<T*>(p.y) + row * D;
  const auto write = [&](int64_t i, const float (&hv)[V]) {
    float w[V], o[V];
    if (w_vec) load_weights<V, kVec>(p.weight, p.weight_dtype, i * V, w);
    else load_weights<V, false>(p.weight, p.weight_dtype, i * V, w);
#pragma unroll
    for (int e = 0; e < V; ++e) o[e] = w[e] * (hv[e] * inv);
    store_f32<DT, V, kVec>(y + i * V, o);
  };
#pragma unroll
  for (int k = 0; k < NV; ++k) {
    const int64_t i = tx + int64_t(k) * per_row;
    if (i < n_vec) write(i, h[k]);
  }
  for (int64_t i = tx + int64_t(NV) * per_row; i < n_vec; i += per_row) {
    float t[V];
    load_h(i, t, false);
    write(i, t);
  }
}

template <DType DT, bool kVec>
Status launch(const RmsNormParams& p, cudaStream_t stream) {
  constexpr int V = kVec ? kVecOf<DT> : 1;
  const RmsNormConfig c = rms_norm_config(p.rows, p.dim / V);
  const bool w_vec = kVec && aligned16(p.weight);
  return LFM25_BOOL_SWITCH(p.residual_given != 0, kResidual, [&] {
    return LFM25_CUDA_LAUNCH((rms_norm_kernel<DT, kVec, kResidual>), c.grid, c.block, 0, stream, p, w_vec);
  });
}

}  // namespace

Status rms_norm(const RmsNormParams& p, void* stream) {
  if (p.rows <= 0 || p.dim <= 0) return Status::kOk;
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    constexpr int V = kVecOf<DT>;
    // 16-byte accesses when every row start is a 16-byte multiple (y and residual_out are contiguous)
    const bool vec = p.dim % V == 0 && aligned16(p.x) && aligned16(p.y) && p.x_row_stride % V == 0 &&
                     (!p.residual_given || (aligned16(p.residual) && aligned16(p.residual_out) &&
                                      p.residual_row_stride % V == 0));
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_BOOL_SWITCH(vec, kVec, [&] { return launch<DT, kVec>(p, s); });
  });
}

}  // namespace lfm25::cuda
