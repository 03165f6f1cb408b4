// Shared pieces of the CUDA kernels: storage types and their fp32 conversions (round-to-nearest-even, as the
// CPU kernels and torch), 16-byte vectors of channels, warp reductions, the device properties (read once per
// device) and the launch-error check.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "lfm25/ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {

template <DType DT> struct Storage;
template <> struct Storage<DType::kF32> {
  using T = float;
  static __device__ __forceinline__ float load(T v) { return v; }
  static __device__ __forceinline__ T store(float f) { return f; }
};
template <> struct Storage<DType::kF16> {
  using T = __half;
  static __device__ __forceinline__ float load(T v) { return __half2float(v); }
  static __device__ __forceinline__ T store(float f) { return __float2half_rn(f); }
};
template <> struct Storage<DType::kBF16> {
  using T = __nv_bfloat16;
  static __device__ __forceinline__ float load(T v) { return __bfloat162float(v); }
  static __device__ __forceinline__ T store(float f) { return __float2bfloat16_rn(f); }
};

// Weights may be fp32 or the activation dtype.
__device__ __forceinline__ float load_weight(const void* w, DType dt, int64_t i) {
  switch (dt) {
    case DType::kF32: return static_cast<const float*>(w)[i];
    case DType::kF16: return __half2float(static_cast<const __half*>(w)[i]);
    default: return __bfloat162float(static_cast<const __nv_bfloat16*>(w)[i]);
  }
}

// N consecutive elements moved as one 16-byte access (N = 16 / sizeof(T)) or one at a time (N = 1).
template <class T, int N>
struct alignas(N == 1 ? alignof(T) : 16) Pack {
  T v[N];
};

// U = round(B * X) for VEC channels of one bcx row (columns B | C | X, each `dim` wide), as stored in the state.
template <DType DT, int VEC>
__device__ __forceinline__ Pack<typename Storage<DT>::T, VEC> gate(const typename Storage<DT>::T* row, int64_t dim) {
  using S = Storage<DT>;
  using P = Pack<typename S::T, VEC>;
  const P b = *reinterpret_cast<const P*>(row), x = *reinterpret_cast<const P*>(row + 2 * dim);
  P u;
  for (int i = 0; i < VEC; ++i) u.v[i] = S::store(__fmul_rn(S::load(b.v[i]), S::load(x.v[i])));
  return u;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

struct Device {
  int sm_count;
};
// Properties of the current device, read once per device.
const Device& device();

inline Status launched() { return cudaGetLastError() == cudaSuccess ? Status::kOk : Status::kCudaError; }

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace lfm25::cuda
