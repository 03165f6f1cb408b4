// Small kernels that test the CUDA-on-CPU runtime itself (tests/test_cuda_cpu_runtime.py): `toys NAME` runs
// one case and prints what it saw; the cases that break a CUDA rule are expected to abort with a message.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"
#include "runtime.h"

namespace {

int out[1 << 16];  // the toys' global memory

#define LAUNCH(KERNEL, GRID, BLOCK, SMEM, ...) cuda_cpu::launch(#KERNEL, KERNEL, GRID, BLOCK, SMEM, nullptr, __VA_ARGS__)

int linear_thread() { return int(threadIdx.x + threadIdx.y * blockDim.x + threadIdx.z * blockDim.x * blockDim.y); }

// Each thread: its index, and through shuffles the index of lane 0 of its warp and of its lane ^ 1.
__global__ void numbering(int* o) {
  const int t = linear_thread(), threads = int(blockDim.x * blockDim.y * blockDim.z);
  const int b = int(blockIdx.x + blockIdx.y * gridDim.x + blockIdx.z * gridDim.x * gridDim.y);
  const int me = int(threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16);
  int* r = o + (b * threads + t) * 4;
  r[0] = int(blockIdx.x | blockIdx.y << 8 | blockIdx.z << 16);
  r[1] = me;
  r[2] = __shfl_sync(0xffffffffu, me, 0);
  r[3] = __shfl_xor_sync(0xffffffffu, me, 1);
}

// Thread t reads what thread t+1 wrote before the barrier, then overwrites its own entry after a second one.
template <bool kBarrier>
__global__ void neighbours(int* o) {
  __shared__ int s[256];
  const int t = int(threadIdx.x), n = int(blockDim.x);
  s[t] = 3 * t;
  if (kBarrier) __syncthreads();
  const int v = s[(t + 1) % n];
  __syncthreads();
  s[t] = v + 1;
  __syncthreads();
  o[t] = s[(t + n - 1) % n];
}

// Reads static shared memory before writing it: what an earlier block left.
__global__ void stale_shared(int* o) {
  __shared__ int s[32];
  if (threadIdx.x == 0) o[blockIdx.x] = s[0];
  __syncthreads();
  s[threadIdx.x] = int(blockIdx.x);
}

__global__ void last_block_wins(int* o) {
  if (threadIdx.x == 0) o[0] = int(blockIdx.x);
}

__global__ void shuffle_partial_mask(int* o) { o[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, 1, 1); }

__global__ void shuffle_after_exit(int* o) {
  if (threadIdx.x == 5) return;
  o[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}

__global__ void shuffle_partial_warp(int* o) { o[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1); }

__global__ void barrier_after_exit(int* o) {
  if (threadIdx.x >= 64) return;
  __syncthreads();
  o[threadIdx.x] = 1;
}

// Uses about `kib` KiB of stack.
__attribute__((noinline)) int burn(int kib) {
  volatile char frame[1024];
  frame[0] = char(kib);
  return kib <= 1 ? frame[0] : burn(kib - 1) + frame[0];
}
__global__ void stack(int* o, int kib) { o[threadIdx.x] = burn(kib); }

__global__ void misaligned(int* o) {
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(reinterpret_cast<const char*>(o) + 8));
  o[threadIdx.x] = int(v.x);
}

__global__ void dynamic(int* o) {
  int* d = static_cast<int*>(cuda_cpu::dynamic_shared());
  const int t = int(threadIdx.x), n = int(blockDim.x);
  o[n + t] = d[t];  // before any write: the poison
  d[t] = t;
  __syncthreads();
  o[t] = d[n - 1 - t];
}

__global__ void nothing(int*) {}

void print(const int* v, size_t n) {
  for (size_t i = 0; i < n; ++i) std::printf("%d\n", v[i]);
}

const char* error_name(cudaError_t e) { return e == cudaSuccess ? "ok" : cudaGetErrorString(e); }

int run(const std::string& name) {
  cuda_cpu::add_region(out, sizeof out);
  if (name == "numbering") {
    const dim3 grid(2, 3, 2), block(8, 4, 2);
    LAUNCH(numbering, grid, block, 0, out);
    print(out, 12 * 64 * 4);
  } else if (name == "barrier" || name == "missing_barrier") {
    if (name == "barrier") LAUNCH(neighbours<true>, 1, 256, 0, out);
    else LAUNCH(neighbours<false>, 1, 256, 0, out);
    print(out, 256);
  } else if (name == "stale_shared") {
    LAUNCH(stale_shared, 4, 32, 0, out);
    print(out, 4);
  } else if (name == "block_race") {
    LAUNCH(last_block_wins, 4, 32, 0, out);
    print(out, 1);
  } else if (name == "shuffle_partial_mask") {
    LAUNCH(shuffle_partial_mask, 1, 32, 0, out);
  } else if (name == "shuffle_after_exit") {
    LAUNCH(shuffle_after_exit, 1, 64, 0, out);
  } else if (name == "shuffle_partial_warp") {
    LAUNCH(shuffle_partial_warp, 1, 48, 0, out);
  } else if (name == "barrier_after_exit") {
    LAUNCH(barrier_after_exit, 1, 128, 0, out);
  } else if (name == "stack_128k" || name == "stack_overflow") {
    LAUNCH(stack, 1, 64, 0, out, name == "stack_128k" ? 128 : 4096);
    print(out, 1);
  } else if (name == "misaligned") {
    LAUNCH(misaligned, 1, 32, 0, out);
  } else if (name == "dynamic_shared") {
    LAUNCH(dynamic, 1, 256, 256 * sizeof(int), out);
    print(out, 512);
  } else if (name == "limits") {
    // each line: the configuration, then the launch's error
    const struct { const char* what; dim3 grid, block; size_t smem; } cases[] = {
        {"grid.y=65535", dim3(1, 65535), dim3(1), 0},     {"grid.y=65536", dim3(1, 65536), dim3(1), 0},
        {"grid.z=65536", dim3(1, 1, 65536), dim3(1), 0},  {"grid.x=0", dim3(0), dim3(32), 0},
        {"threads=1024", dim3(1), dim3(1024), 0},          {"threads=1025", dim3(1), dim3(1025), 0},
        {"block=32x64", dim3(1), dim3(32, 64), 0},        {"block.z=65", dim3(1), dim3(1, 1, 65), 0},
        {"smem=49152", dim3(1), dim3(32), 49152},          {"smem=49153", dim3(1), dim3(32), 49153},
    };
    for (const auto& c : cases) {
      LAUNCH(nothing, c.grid, c.block, c.smem, out);
      std::printf("%s %s\n", c.what, error_name(cudaGetLastError()));
    }
  } else if (name == "alloc") {
    void* p = nullptr;
    cuda_cpu::set_alloc_failure(true);
    const cudaError_t failed = cudaMallocAsync(&p, 1000, nullptr);
    std::printf("injected %s %s null=%d\n", error_name(failed), error_name(cudaGetLastError()), p == nullptr);
    std::printf("cleared %s\n", error_name(cudaGetLastError()));
    cuda_cpu::set_alloc_failure(false);
    const cudaError_t ok = cudaMallocAsync(&p, 1000, nullptr);
    const auto* bytes = static_cast<const unsigned char*>(p);
    std::printf("then %s aligned=%d poisoned=%d live=%zu\n", error_name(ok), reinterpret_cast<uintptr_t>(p) % 256 == 0,
                bytes[0] == 0xff && bytes[999] == 0xff, cuda_cpu::live_allocations());
    cudaFreeAsync(p, nullptr);
    std::printf("freed live=%zu\n", cuda_cpu::live_allocations());
  } else if (name == "alloc_overrun") {
    void* p = nullptr;
    cudaMallocAsync(&p, 1000, nullptr);
    static_cast<char*>(p)[1000] = 1;  // inside the rounding to 256 bytes: found by the canary at the free
    cudaFreeAsync(p, nullptr);
  } else if (name == "alloc_fault") {
    void* p = nullptr;
    cudaMallocAsync(&p, 1024, nullptr);
    std::printf("%d\n", static_cast<volatile char*>(p)[1024 + 255]);  // past the 256-byte rounding: the guard page
  } else if (name == "devices") {
    for (const int sms : {132, 7}) {
      cuda_cpu::use_device(sms, 1536, sms == 132);
      int dev = -1, sm = 0, threads = 0, pools = 0;
      cudaGetDevice(&dev);
      cudaDeviceGetAttribute(&sm, cudaDevAttrMultiProcessorCount, dev);
      cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, dev);
      cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev);
      void* p = nullptr;
      const cudaError_t e = cudaMallocAsync(&p, 64, nullptr);
      cudaGetLastError();
      if (p) cudaFreeAsync(p, nullptr);
      std::printf("device %d sms=%d threads=%d pools=%d alloc=%s\n", dev, sm, threads, pools, error_name(e));
    }
  } else if (name == "rounding") {
    // stdin: fp32 values; stdout: their fp16 and bf16 bits, then the fp16 and bf16 values back in fp32
    std::vector<float> v;
    for (float f; std::fread(&f, 4, 1, stdin) == 1;) v.push_back(f);
    for (const float f : v) {
      const __half h = __float2half_rn(f);
      const __nv_bfloat16 b = __float2bfloat16_rn(f);
      const float hf = __half2float(h), bf = __bfloat162float(b);
      std::fwrite(&h, 2, 1, stdout), std::fwrite(&b, 2, 1, stdout), std::fwrite(&hf, 4, 1, stdout),
          std::fwrite(&bf, 4, 1, stdout);
    }
  } else {
    std::fprintf(stderr, "toys: unknown case %s\n", name.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: toys CASE [probe]\n");
    return 2;
  }
  cuda_cpu::set_race_probe(argc > 2 && std::string(argv[2]) == "probe");
  return run(argv[1]);
}
