// The part of the CUDA runtime and device language that csrc/cuda uses, for running its kernels on the CPU in
// the tests (tests/cuda_cpu). Built with g++ -DLFM25_CUDA_CPU and this folder first on the include path, so
// the kernel sources compile unchanged; launch.cuh's LFM25_CUDA_LAUNCH then calls cuda_cpu::launch instead of
// the triple chevron. The execution model behind it (fibers, barriers, shuffles, the race probe) is in
// runtime.cpp; the CUDA semantics it keeps are listed there.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

// ---- qualifiers ------------------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
// Static shared memory: one copy per kernel (per template instance), and blocks run one at a time, so one copy
// per block. A block finds what the previous block of the kernel left there: a read before the block's first
// write depends on the block order, which the race probe reverses.
#define __shared__ static __attribute__((aligned(16)))

// ---- vector types ----------------------------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace cuda_cpu {
// Aborts with the kernel, block and thread in progress (runtime.cpp).
[[noreturn]] void fail(const char* what, const void* address = nullptr);
inline void check_aligned(const void* p, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) fail("misaligned vector access", p);
}
}  // namespace cuda_cpu

// The vector types that kernels load and store through reinterpret_cast'ed pointers: a copy from or an
// assignment to one checks the natural alignment of the address, as the GPU faults on a misaligned access.
#define CUDA_CPU_CHECKED_COPY(NAME)                                            \
  NAME() = default;                                                            \
  NAME(const NAME& o) {                                                        \
    cuda_cpu::check_aligned(&o, sizeof(NAME));                                 \
    std::memcpy(static_cast<void*>(this), &o, sizeof(NAME));                   \
  }                                                                            \
  NAME& operator=(const NAME& o) {                                             \
    cuda_cpu::check_aligned(this, sizeof(NAME));                               \
    cuda_cpu::check_aligned(&o, sizeof(NAME));                                 \
    std::memcpy(static_cast<void*>(this), &o, sizeof(NAME));                   \
    return *this;                                                              \
  }
struct alignas(16) uint4 {
  unsigned x, y, z, w;
  CUDA_CPU_CHECKED_COPY(uint4)
};
struct alignas(8) float2 {
  float x, y;
  CUDA_CPU_CHECKED_COPY(float2)
};
#undef CUDA_CPU_CHECKED_COPY
inline float2 make_float2(float x, float y) {
  float2 r;
  r.x = x, r.y = y;
  return r;
}

// ---- the execution model (runtime.cpp) -------------------------------------------------------------------
namespace cuda_cpu {
struct Thread {
  uint3 idx;
};
extern Thread* current;                 // the thread (fiber) running now
extern uint3 block_idx;                 // of the block running now
extern dim3 block_dim, grid_dim;        // of the launch running now
void syncthreads();
// The value `v` of lane `src(lane)` of the calling warp; every lane of the warp must call it with mask
// 0xffffffff (anything else aborts). Bytes: up to 8.
void shuffle(unsigned mask, const void* v, void* out, size_t bytes, int (*src)(int lane, int arg, int width),
             int arg, int width);
// The dynamic shared memory of the block running now (the launch's byte count, 0xff bytes at the block's
// start). CUDA's `extern __shared__ T name[]` cannot be spelled in C++; a kernel that needs dynamic shared
// memory reads it through a macro that is this call here and the extern declaration under nvcc.
void* dynamic_shared();

// Runs kernel(args...) on grid x block, every block's threads as fibers; sets the last error (and runs nothing)
// when the configuration breaks a launch limit. Synchronous: the stream is ignored.
void launch_grid(const char* name, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body);
template <class... P, class... A>
void launch(const char* name, void (*kernel)(P...), dim3 grid, dim3 block, size_t smem, void* /*stream*/,
            A&&... args) {
  // the arguments are converted to the parameter types once, at the launch, as CUDA copies them
  std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
  launch_grid(name, grid, block, smem, [&] { std::apply(kernel, params); });
}
}  // namespace cuda_cpu

#define threadIdx (::cuda_cpu::current->idx)
#define blockIdx (::cuda_cpu::block_idx)
#define blockDim (::cuda_cpu::block_dim)
#define gridDim (::cuda_cpu::grid_dim)

inline void __syncthreads() { cuda_cpu::syncthreads(); }

namespace cuda_cpu {
template <class T>
T shfl(unsigned mask, T v, int (*src)(int, int, int), int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move 4 or 8 bytes");
  T out;
  shuffle(mask, &v, &out, sizeof(T), src, arg, width);
  return out;
}
// Source lanes as the PTX shfl modes compute them, within segments of `width` lanes.
inline int src_xor(int lane, int m, int w) { return (lane ^ m) < (lane / w + 1) * w ? lane ^ m : lane; }
inline int src_idx(int lane, int s, int w) { return (lane / w) * w + s % w; }
inline int src_down(int lane, int d, int w) { return lane % w + d < w ? lane + d : lane; }
inline int src_up(int lane, int d, int w) { return lane % w >= d ? lane - d : lane; }
}  // namespace cuda_cpu

template <class T> T __shfl_xor_sync(unsigned mask, T v, int m, int w = 32) { return cuda_cpu::shfl(mask, v, cuda_cpu::src_xor, m, w); }
template <class T> T __shfl_sync(unsigned mask, T v, int s, int w = 32) { return cuda_cpu::shfl(mask, v, cuda_cpu::src_idx, s, w); }
template <class T> T __shfl_down_sync(unsigned mask, T v, unsigned d, int w = 32) { return cuda_cpu::shfl(mask, v, cuda_cpu::src_down, int(d), w); }
template <class T> T __shfl_up_sync(unsigned mask, T v, unsigned d, int w = 32) { return cuda_cpu::shfl(mask, v, cuda_cpu::src_up, int(d), w); }

// ---- loads and arithmetic --------------------------------------------------------------------------------
template <class T>
T __ldg(const T* p) {
  cuda_cpu::check_aligned(p, alignof(T));
  return *p;
}
// Explicitly rounded operations: never contracted (the tests build with -ffp-contract=off anyway).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __int_as_float(int i) { return __uint_as_float(unsigned(i)); }
using std::isnan;
template <class T> T min(T a, T b) { return b < a ? b : a; }
template <class T> T max(T a, T b) { return a < b ? b : a; }

// ---- host API --------------------------------------------------------------------------------------------
enum cudaError_t { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
                   cudaErrorInvalidConfiguration = 9, cudaErrorInvalidDevice = 101 };
enum cudaDeviceAttr { cudaDevAttrMaxThreadsPerBlock = 1, cudaDevAttrMaxSharedMemoryPerBlock = 8,
                      cudaDevAttrMultiProcessorCount = 16, cudaDevAttrMaxThreadsPerMultiProcessor = 39,
                      cudaDevAttrMemoryPoolsSupported = 115 };
enum cudaMemPoolAttr { cudaMemPoolAttrReleaseThreshold = 4 };
typedef struct CUstream_st* cudaStream_t;
typedef struct CUmemPoolHandle_st* cudaMemPool_t;

cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device);
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value);
cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t stream);
cudaError_t cudaFreeAsync(void* p, cudaStream_t stream);
