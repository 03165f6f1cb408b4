// short_conv_update on CUDA: one decode step of the gated short conv for a batch, gates fused.
//   u = round(B * X);  y = round(C * (sum_k w[k] * [state rows, u][k]));  state rows shift up, u appended.
// bcx [B, 3D], y [B, D], state [S, K-1, D] updated in place at slot state_indices[b] (-1 or out of range:
// zero output, state untouched).
// Parallelisation: one thread per (sequence, 16-byte vector of channels), flat over B x D/V in 128-thread
// blocks (launch.cuh): the state rows are read and written as coalesced 16-byte channel vectors, and all
// 3 + (K-1) input vectors of a thread are loaded before the first use. Arithmetic: conv_common.cuh, shared
// with short_conv.cu, so a step equals a one-token prefill bit for bit.
#include "conv_common.cuh"
#include "launch.cuh"
#include "lfm25/cuda_ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {
namespace {

template <DType DT, int K, bool kVec>
__global__ void __launch_bounds__(kUpdateThreads)
short_conv_update_kernel(const ShortConvUpdateParams p, const int64_t n_cvec, const bool w_vec) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int V = kVec ? kVecOf<DT> : 1;
  const int64_t i = int64_t(blockIdx.x) * kUpdateThreads + threadIdx.x;
  const int64_t b = i / n_cvec, c0 = (i % n_cvec) * V;
  if (b >= p.batch) return;
  const T* x = static_cast<const T*>(p.x) + b * p.x_batch_stride + c0;
  T* y = static_cast<T*>(p.y) + b * p.y_batch_stride + c0;
  const int64_t slot = p.state_indices_given ? int64_t(__ldg(p.state_indices + b)) : b;
  if (slot < 0 || slot >= p.n_slots) {
    float zero[V] = {};
    store_f32<DT, V, kVec>(y, zero);
    return;
  }
  T* st = static_cast<T*>(p.state) + slot * p.state_slot_stride + c0;

  T rows[K - 1][V], bg[V], cg[V], xg[V];
#pragma unroll
  for (int r = 0; r < K - 1; ++r) load_raw<T, V, kVec, /*kNc=*/false>(st + r * p.state_row_stride, rows[r]);
  load_raw<T, V, kVec>(x, bg);
  load_raw<T, V, kVec>(x + p.dim, cg);
  load_raw<T, V, kVec>(x + 2 * p.dim, xg);
  float w[K][V];
  load_conv_weights<K, V, kVec>(p.weight, p.weight_dtype, p.weight_stride, c0, w_vec, w);

  float win[K - 1][V], out[V];
  T u[V];
#pragma unroll
  for (int e = 0; e < V; ++e) {
#pragma unroll
    for (int r = 0; r < K - 1; ++r) win[r][e] = S::load(rows[r][e]);
    u[e] = gate_u<DT>(bg[e], xg[e]);
    out[e] = __fmul_rn(S::load(cg[e]), conv_z<K>(w, win, S::load(u[e]), e));
  }
  store_f32<DT, V, kVec>(y, out);
#pragma unroll
  for (int r = 0; r < K - 2; ++r) store_raw<T, V, kVec>(st + r * p.state_row_stride, rows[r + 1]);
  store_raw<T, V, kVec>(st + (K - 2) * p.state_row_stride, u);
}

template <DType DT, int K, bool kVec>
Status launch(const ShortConvUpdateParams& p, cudaStream_t stream, bool w_vec) {
  constexpr int V = kVec ? kVecOf<DT> : 1;
  const int64_t n_cvec = ceil_div(p.dim, V);
  return LFM25_CUDA_LAUNCH((short_conv_update_kernel<DT, K, kVec>), short_conv_update_grid(p.batch, n_cvec),
                           kUpdateThreads, 0, stream, p, n_cvec, w_vec);
}

}  // namespace

Status short_conv_update(const ShortConvUpdateParams& p, void* stream) {
  if (p.batch <= 0 || p.dim <= 0) return Status::kOk;
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    constexpr int V = kVecOf<DT>;
    const bool vec = p.dim % V == 0 && aligned16(p.x) && aligned16(p.y) && aligned16(p.state) &&
                     p.x_batch_stride % V == 0 && p.y_batch_stride % V == 0 && p.state_slot_stride % V == 0 &&
                     p.state_row_stride % V == 0;
    const bool w_vec = vec && conv_weights_vectorizable(p.weight, p.weight_stride, p.width);
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_BOOL_SWITCH(vec, kVec, [&] {
      return LFM25_WIDTH_SWITCH(p.width, K, [&] { return launch<DT, K, kVec>(p, s, w_vec); });
    });
  });
}

}  // namespace lfm25::cuda
