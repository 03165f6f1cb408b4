// Shared pieces of the CUDA kernels: storage types and their fp32 conversions (round-to-nearest-even, as the
// CPU kernels and torch), N-element loads and stores that become 16-byte accesses when the caller proved the
// alignment, warp reductions, the device properties (read once per device, device.cu) and the stream-ordered
// workspace. The launch macro and the launch configurations live in launch.cuh, the switches that turn runtime
// values into template arguments in lfm25/static_switch.h (Storage<DT> gives a DType's storage type).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>

#include "lfm25/ops.h"

namespace lfm25::cuda {

// ---- storage types ---------------------------------------------------------------------------------------
// Half-precision values are kept as their 16 bits (uint16_t) and converted with the hardware's
// round-to-nearest-even conversions (cvt.rn.bf16.f32 / cvt.rn.f16.f32): the same rounding as torch.
template <DType DT> struct Storage;
template <> struct Storage<DType::kF32> {
  using T = float;
  static __device__ __forceinline__ float load(T v) { return v; }
  static __device__ __forceinline__ T store(float f) { return f; }
};
template <> struct Storage<DType::kF16> {
  using T = uint16_t;
  static __device__ __forceinline__ float load(T v) { return __half2float(__ushort_as_half(v)); }
  static __device__ __forceinline__ T store(float f) { return __half_as_ushort(__float2half_rn(f)); }
};
template <> struct Storage<DType::kBF16> {
  using T = uint16_t;
  static __device__ __forceinline__ float load(T v) { return __uint_as_float(uint32_t(v) << 16); }
  static __device__ __forceinline__ T store(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }
};

// Elements per 16-byte access.
template <DType DT> constexpr int kVecOf = int(16 / sizeof(typename Storage<DT>::T));

// ---- N-element loads and stores --------------------------------------------------------------------------
// kVec: the caller proved that p is 16-byte aligned and N * sizeof(T) is a multiple of 16, so the elements
// move as N * sizeof(T) / 16 vector accesses; otherwise one element at a time. kNc: read-only for the whole
// kernel, so the load may go through the non-coherent (texture) path.
template <class T, int N, bool kVec, bool kNc = true>
__device__ __forceinline__ void load_raw(const T* p, T (&v)[N]) {
  if constexpr (kVec && (N * sizeof(T)) % 16 == 0) {
    constexpr int kChunks = int(N * sizeof(T) / 16);
#pragma unroll
    for (int j = 0; j < kChunks; ++j) {
      const uint4 r = kNc ? __ldg(reinterpret_cast<const uint4*>(p) + j) : reinterpret_cast<const uint4*>(p)[j];
      memcpy(&v[j * (16 / sizeof(T))], &r, 16);
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) v[i] = kNc ? __ldg(p + i) : p[i];
  }
}

template <class T, int N, bool kVec>
__device__ __forceinline__ void store_raw(T* p, const T (&v)[N]) {
  if constexpr (kVec && (N * sizeof(T)) % 16 == 0) {
#pragma unroll
    for (int j = 0; j < int(N * sizeof(T) / 16); ++j) {
      uint4 r;
      memcpy(&r, &v[j * (16 / sizeof(T))], 16);
      reinterpret_cast<uint4*>(p)[j] = r;
    }
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) p[i] = v[i];
  }
}

template <DType DT, int N, bool kVec, bool kNc = true>
__device__ __forceinline__ void load_f32(const typename Storage<DT>::T* p, float (&f)[N]) {
  typename Storage<DT>::T v[N];
  load_raw<typename Storage<DT>::T, N, kVec, kNc>(p, v);
#pragma unroll
  for (int i = 0; i < N; ++i) f[i] = Storage<DT>::load(v[i]);
}

template <DType DT, int N, bool kVec>
__device__ __forceinline__ void store_f32(typename Storage<DT>::T* p, const float (&f)[N]) {
  typename Storage<DT>::T v[N];
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = Storage<DT>::store(f[i]);
  store_raw<typename Storage<DT>::T, N, kVec>(p, v);
}

// N consecutive weights from element i of an array stored as `dt` (fp32 or the activation dtype; a uniform
// branch). kVec as above, for the fp32 case too (the caller checks alignment for the wider type).
template <int N, bool kVec>
__device__ __forceinline__ void load_weights(const void* w, DType dt, int64_t i, float (&f)[N]) {
  if (dt == DType::kF32) {
    load_f32<DType::kF32, N, kVec>(static_cast<const float*>(w) + i, f);
  } else if (dt == DType::kF16) {
    load_f32<DType::kF16, N, kVec>(static_cast<const uint16_t*>(w) + i, f);
  } else {
    load_f32<DType::kBF16, N, kVec>(static_cast<const uint16_t*>(w) + i, f);
  }
}

// ---- reductions ------------------------------------------------------------------------------------------
// Sum over aligned groups of kWidth lanes (a power of two <= 32); every lane of the warp must call it.
template <int kWidth>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int o = kWidth / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__host__ __device__ constexpr int next_pow2(int v) { return v <= 1 ? 1 : 2 * next_pow2((v + 1) / 2); }
__host__ __device__ constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- host side -------------------------------------------------------------------------------------------
struct Device {
  int id;
  int sm_count;              // multiprocessors: every grid below is sized from it
  int max_threads_per_sm;
  bool stream_ordered_alloc; // cudaMallocAsync available (gqa_decode's split workspace)
};
// Properties of the current device, read once per device (device.cu).
const Device& device();

// A stream-ordered scratch buffer: allocated and freed on `stream`, so it is safe with concurrent streams and
// becomes a graph allocation node under CUDA-graph capture. Returns nullptr (and clears the error) when no
// memory could be had; callers then take a path without scratch.
void* workspace_alloc(size_t bytes, cudaStream_t stream);
void workspace_free(void* p, cudaStream_t stream);

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace lfm25::cuda
