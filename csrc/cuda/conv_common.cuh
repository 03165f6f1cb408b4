// The arithmetic shared by short_conv.cu and short_conv_update.cu. Both kernels call these functions, so a
// decode step and a one-token prefill (and every chunking of a prefill) round identically: explicit
// __fmul_rn / __fmaf_rn, which the compiler never contracts or reorders.
#pragma once
#include "common.cuh"

namespace lfm25::cuda {

// U = round(B * X) in the storage type: what the state holds.
template <DType DT>
__device__ __forceinline__ typename Storage<DT>::T gate_u(typename Storage<DT>::T b, typename Storage<DT>::T x) {
  return Storage<DT>::store(__fmul_rn(Storage<DT>::load(b), Storage<DT>::load(x)));
}

// z = w0*U[t-K+1], then z = fma(w_k, U[t-K+1+k], z) for k = 1..K-1 (win = the K-1 earlier U, oldest first;
// u = U[t]); channel e of the thread's vector.
template <int K, int V>
__device__ __forceinline__ float conv_z(const float (&w)[K][V], const float (&win)[K - 1][V], float u, int e) {
  float z = __fmul_rn(w[0][e], win[0][e]);
#pragma unroll
  for (int k = 1; k < K - 1; ++k) z = __fmaf_rn(w[k][e], win[k][e], z);
  return __fmaf_rn(w[K - 1][e], u, z);
}

// Taps of channels c0..c0+V-1 from weight [D, K] (channel stride `stride`, taps contiguous), fp32 or the
// activation dtype. When the weight is a contiguous [D, K] array aligned to 16 bytes (w_vec), a thread's
// V*K weights are contiguous and 16-byte aligned (V*K*size is a multiple of 16): K or 2K vector loads.
template <int K, int V, bool kVec>
__device__ __forceinline__ void load_conv_weights(const void* weight, DType dt, int64_t stride, int64_t c0,
                                                  bool w_vec, float (&w)[K][V]) {
  if (kVec && w_vec) {
    float flat[V * K];
    load_weights<V * K, true>(weight, dt, c0 * K, flat);
#pragma unroll
    for (int e = 0; e < V; ++e)
#pragma unroll
      for (int k = 0; k < K; ++k) w[k][e] = flat[e * K + k];
  } else {
#pragma unroll
    for (int e = 0; e < V; ++e) {
      float taps[K];
      load_weights<K, false>(weight, dt, (c0 + e) * stride, taps);
#pragma unroll
      for (int k = 0; k < K; ++k) w[k][e] = taps[k];
    }
  }
}

inline bool conv_weights_vectorizable(const void* weight, int64_t stride, int64_t width) {
  return aligned16(weight) && stride == width;
}

}  // namespace lfm25::cuda
