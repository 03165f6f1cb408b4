// The CUDA execution model on one CPU thread, for the tests: csrc/cuda's kernels compiled unchanged as C++
// (include/cuda_runtime.h) run here so that every op test can check them without a GPU.
//
// What it keeps of CUDA:
// - Threads are numbered x-fastest (linear = x + y*bx + z*bx*by) and lane = linear % 32, as on the GPU.
// - A block's threads are fibers (own stack of kStackBytes under a PROT_NONE guard page, switched by a few
//   instructions of assembly). Each runs until it reaches __syncthreads, a shuffle or its end; then the next
//   one runs. __syncthreads releases the block when every thread waits there; a shuffle completes when all
//   32 lanes of the warp wait at a shuffle. A shuffle whose mask is not 0xffffffff, a shuffle that a lane of
//   the warp cannot reach (it waits at a barrier, has exited or does not exist) and a __syncthreads after
//   some threads exited all abort: on the GPU they deadlock or are undefined.
// - Dynamic shared memory (the launch's byte count) is poisoned with 0xff bytes before every block, as are
//   allocations; static shared memory keeps the previous block's data (cuda_runtime.h).
// - Launch limits: grid.x < 2^31, grid.y and grid.z <= 65535, block.x and block.y <= 1024, block.z <= 64,
//   <= 1024 threads, dynamic shared memory <= 48 KiB (no kernel opts in to more); a launch beyond them sets
//   cudaErrorInvalidConfiguration and runs nothing. The static shared memory limit is checked by ptxas.
// - cudaMallocAsync allocates at once (guarded, see runtime.h); a failure can be injected.
// What it does not model: concurrency between blocks or warps (blocks run one after another), memory
// ordering and fences, coalescing, occupancy, register limits and __launch_bounds__.
#include "runtime.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "cuda_runtime.h"

#if !defined(__x86_64__)
#error "tests/cuda_cpu switches fibers with x86-64 assembly"
#endif

// Saves the callee-saved registers, MXCSR and the x87 control word on the current stack, stores the stack
// pointer to *save and resumes the context whose stack pointer is `load`.
extern "C" void cuda_cpu_switch(void** save, void* load);
asm(R"(
  .text
  .globl cuda_cpu_switch
  .type cuda_cpu_switch, @function
cuda_cpu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw (%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_cpu_switch, .-cuda_cpu_switch
)");

namespace cuda_cpu {

Thread* current;
uint3 block_idx;
dim3 block_dim, grid_dim;

namespace {

constexpr size_t kPage = 4096, kStackBytes = 256 << 10, kMaxThreads = 1024, kMaxDynamicShared = 48 << 10;
constexpr unsigned kFullMask = 0xffffffffu;

enum class State { kReady, kBarrier, kShuffle, kDone };
struct Fiber : Thread {
  void* sp;
  State state;
  // a pending shuffle
  int arg, width;
  int (*src)(int, int, int);
  size_t bytes;
  unsigned char value[8], result[8];
};

struct Device {
  int sm_count, max_threads_per_sm;
  bool pools;
  uint64_t release_threshold;
};

struct {
  std::vector<Fiber> fibers = std::vector<Fiber>(kMaxThreads);
  char* stacks = nullptr;  // kMaxThreads x (guard page + stack)
  void* scheduler_sp = nullptr;
  const std::function<void()>* body = nullptr;
  const char* kernel = "(none)";
  std::vector<unsigned char> dynamic_shared;
  std::vector<Device> devices = {{132, 2048, true, 0}};
  int device = 0;
  cudaError_t last_error = cudaSuccess;
  bool fail_alloc = false, race_probe = false;
  std::vector<std::pair<char*, size_t>> regions;
  struct Mapping {
    void* base;
    size_t bytes, total;
  };
  std::map<char*, Mapping> mappings;    // guarded_alloc: data -> its mapping
  std::map<char*, size_t> allocations;  // cudaMallocAsync blocks: data -> bytes
  std::string log;
  uint64_t launches = 0;
} rt;

char* stack_slot(size_t i) { return rt.stacks + i * (kPage + kStackBytes); }

void context(char* buf, size_t n) {
  const Fiber* f = static_cast<const Fiber*>(current);
  if (f)
    std::snprintf(buf, n, "kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", rt.kernel, block_idx.x, block_idx.y,
                  block_idx.z, f->idx.x, f->idx.y, f->idx.z);
  else
    std::snprintf(buf, n, "host code (last kernel %s)", rt.kernel);
}

void on_segv(int, siginfo_t* info, void*) {
  char where[256], msg[512];
  context(where, sizeof where);
  const char* addr = static_cast<const char*>(info->si_addr);
  const bool stack = rt.stacks && addr >= rt.stacks && addr < stack_slot(kMaxThreads) &&
                     size_t(addr - rt.stacks) % (kPage + kStackBytes) < kPage;
  const int n = std::snprintf(msg, sizeof msg, "cuda_cpu: %s at %p in %s\n",
                              stack ? "fiber stack overflow (guard page hit)" : "invalid memory access", addr, where);
  if (write(2, msg, size_t(n)) < 0) _exit(3);
  signal(SIGSEGV, SIG_DFL);
  abort();
}

void install_segv_handler() {
  static std::vector<char> alt(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa{};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigaction(SIGSEGV, &sa, nullptr);
  sigaction(SIGBUS, &sa, nullptr);
}

// Installed before main: a fault in a guarded allocation or a fiber stack names what it hit.
[[maybe_unused]] const bool segv_handler_installed = (install_segv_handler(), true);

void map_stacks() {
  const size_t bytes = kMaxThreads * (kPage + kStackBytes);
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) fail("cannot map the fiber stacks");
  rt.stacks = static_cast<char*>(m);
  for (size_t i = 0; i < kMaxThreads; ++i) mprotect(stack_slot(i), kPage, PROT_NONE);
}

Fiber& self() { return *static_cast<Fiber*>(current); }
void yield() { cuda_cpu_switch(&self().sp, rt.scheduler_sp); }

[[noreturn]] void fiber_main() {
  (*rt.body)();
  self().state = State::kDone;
  yield();
  __builtin_unreachable();
}

// A fresh context on fiber i's stack that enters fiber_main (the frame cuda_cpu_switch pops).
void start(size_t i) {
  auto* top = reinterpret_cast<uint64_t*>(stack_slot(i + 1));  // 16-byte aligned, the next slot's guard
  top[-1] = 0;                                                  // fiber_main's return address: none
  top[-2] = reinterpret_cast<uint64_t>(&fiber_main);
  std::fill(top - 8, top - 2, 0);                               // rbp rbx r12 r13 r14 r15
  top[-10] = 0x037f;                                            // x87 control word: default
  top[-9] = 0x1f80;                                             // MXCSR: round to nearest, no flush to zero
  rt.fibers[i].sp = top - 10;
}

// Completes every shuffle whose warp is all there; false if there was none.
bool complete_shuffles(size_t n) {
  bool any = false;
  for (size_t w = 0; w < n; w += 32) {
    const size_t end = std::min(n, w + 32);
    size_t waiting = 0;
    for (size_t i = w; i < end; ++i) waiting += rt.fibers[i].state == State::kShuffle;
    if (waiting == 0) continue;
    if (waiting < 32) {
      current = &rt.fibers[w];
      fail(end - w < 32 ? "full-mask shuffle in a warp of fewer than 32 threads"
                        : "shuffle not reached by every lane of the warp (exited, or waiting at __syncthreads)");
    }
    for (size_t i = w; i < end; ++i) {
      Fiber& f = rt.fibers[i];
      const Fiber& s = rt.fibers[w + size_t(f.src(int(i - w), f.arg, f.width))];
      if (s.bytes != f.bytes) {
        current = &f;
        fail("lanes of one shuffle move values of different sizes");
      }
      std::memcpy(f.result, s.value, f.bytes);
    }
    for (size_t i = w; i < end; ++i) rt.fibers[i].state = State::kReady;
    any = true;
  }
  return any;
}

// Runs the block block_idx: `shuffled` picks a new random thread order for every stretch between two
// synchronisation points, otherwise threads run in ascending order.
void run_block(size_t n, bool shuffled, std::mt19937& rng) {
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = rt.fibers[i];
    f.idx = uint3{unsigned(i % block_dim.x), unsigned(i / block_dim.x % block_dim.y),
                  unsigned(i / (size_t(block_dim.x) * block_dim.y))};
    f.state = State::kReady;
    start(i);
  }
  std::fill(rt.dynamic_shared.begin(), rt.dynamic_shared.end(), 0xff);
  for (;;) {
    if (shuffled) std::shuffle(order.begin(), order.end(), rng);
    for (size_t i : order) {
      if (rt.fibers[i].state != State::kReady) continue;
      current = &rt.fibers[i];
      cuda_cpu_switch(&rt.scheduler_sp, rt.fibers[i].sp);
    }
    current = nullptr;
    if (complete_shuffles(n)) continue;
    size_t done = 0;
    for (size_t i = 0; i < n; ++i) done += rt.fibers[i].state == State::kDone;
    if (done == n) return;
    // every thread not done waits at __syncthreads
    if (done) {
      for (size_t i = 0; i < n; ++i)
        if (rt.fibers[i].state == State::kBarrier) current = &rt.fibers[i];
      fail("__syncthreads after other threads of the block exited");
    }
    for (size_t i = 0; i < n; ++i) rt.fibers[i].state = State::kReady;
  }
}

void run_grid(bool reversed, uint64_t seed) {
  std::mt19937 rng{uint32_t(seed)};
  const size_t n = size_t(block_dim.x) * block_dim.y * block_dim.z;
  const uint64_t blocks = uint64_t(grid_dim.x) * grid_dim.y * grid_dim.z;
  for (uint64_t k = 0; k < blocks; ++k) {
    const uint64_t b = reversed ? blocks - 1 - k : k;
    block_idx = uint3{unsigned(b % grid_dim.x), unsigned(b / grid_dim.x % grid_dim.y),
                      unsigned(b / (uint64_t(grid_dim.x) * grid_dim.y))};
    run_block(n, reversed, rng);
  }
}

std::vector<std::pair<char*, size_t>> writable() {
  auto all = rt.regions;
  for (auto& [p, bytes] : rt.allocations) all.emplace_back(p, bytes);
  return all;
}

const char* launch_error(dim3 g, dim3 b, size_t smem) {
  const uint64_t threads = uint64_t(b.x) * b.y * b.z;
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0) return "a zero grid or block dimension";
  if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535) return "grid beyond (2^31-1, 65535, 65535)";
  if (b.x > 1024 || b.y > 1024 || b.z > 64 || threads > kMaxThreads) return "block beyond 1024 threads";
  if (smem > kMaxDynamicShared) return "dynamic shared memory beyond 48 KiB";
  return nullptr;
}

}  // namespace

[[noreturn]] void fail(const char* what, const void* address) {
  char where[256];
  context(where, sizeof where);
  std::fprintf(stderr, "cuda_cpu: %s", what);
  if (address) std::fprintf(stderr, " (address %p)", address);
  std::fprintf(stderr, " in %s\n", where);
  std::abort();
}

void syncthreads() {
  self().state = State::kBarrier;
  yield();
}

void shuffle(unsigned mask, const void* v, void* out, size_t bytes, int (*src)(int, int, int), int arg, int width) {
  if (mask != kFullMask) fail("shuffle with a partial mask (the kernels shuffle whole warps)");
  if (width <= 0 || width > 32 || (width & (width - 1))) fail("shuffle width not a power of two <= 32");
  Fiber& f = self();
  f.state = State::kShuffle;
  f.src = src, f.arg = arg, f.width = width, f.bytes = bytes;
  std::memcpy(f.value, v, bytes);
  yield();
  std::memcpy(out, f.result, bytes);
}

void* dynamic_shared() { return rt.dynamic_shared.data(); }

void launch_grid(const char* name, dim3 grid, dim3 block, size_t smem, const std::function<void()>& body) {
  char line[256];
  std::snprintf(line, sizeof line, "launch %s grid=%u,%u,%u block=%u,%u,%u smem=%zu\n", name, grid.x, grid.y,
                grid.z, block.x, block.y, block.z, smem);
  rt.log += line;
  if (const char* e = launch_error(grid, block, smem)) {
    rt.log += std::string("launch-failed ") + e + "\n";
    rt.last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (!rt.stacks) map_stacks();
  rt.kernel = name;
  rt.body = &body;
  grid_dim = grid, block_dim = block;
  rt.dynamic_shared.assign(smem, 0xff);
  const uint64_t seed = ++rt.launches;
  if (!rt.race_probe) return run_grid(false, seed);
  const auto regions = writable();
  std::vector<std::vector<char>> before, first;
  for (auto& [p, n] : regions) before.emplace_back(p, p + n);
  run_grid(false, seed);
  for (size_t r = 0; r < regions.size(); ++r) {
    first.emplace_back(regions[r].first, regions[r].first + regions[r].second);
    std::memcpy(regions[r].first, before[r].data(), regions[r].second);
  }
  run_grid(true, seed);
  for (size_t r = 0; r < regions.size(); ++r) {
    const char* p = regions[r].first;
    const auto diff = std::mismatch(first[r].begin(), first[r].end(), p);
    if (diff.first != first[r].end()) {
      // regions: the request's buffers in the order sent, then the live allocations
      std::fprintf(stderr, "cuda_cpu: race: byte %td of region %zu (%zu bytes) differs between two thread orders\n",
                   diff.first - first[r].begin(), r, regions[r].second);
      current = nullptr;
      fail("race probe: the result depends on the order of threads or blocks", diff.second);
    }
  }
}

// ---- test side (runtime.h) -------------------------------------------------------------------------------
void use_device(int sm_count, int max_threads_per_sm, bool memory_pools) {
  const auto same = [&](const Device& d) {
    return d.sm_count == sm_count && d.max_threads_per_sm == max_threads_per_sm && d.pools == memory_pools;
  };
  auto it = std::find_if(rt.devices.begin(), rt.devices.end(), same);
  if (it == rt.devices.end()) it = rt.devices.insert(it, {sm_count, max_threads_per_sm, memory_pools, 0});
  rt.device = int(it - rt.devices.begin());
}
void set_alloc_failure(bool fail) { rt.fail_alloc = fail; }
void set_race_probe(bool on) { rt.race_probe = on; }
void add_region(void* p, size_t bytes) { rt.regions.emplace_back(static_cast<char*>(p), bytes); }
void clear_regions() { rt.regions.clear(); }
size_t live_allocations() { return rt.allocations.size(); }
std::string take_log() { return std::exchange(rt.log, {}); }

constexpr unsigned char kCanary = 0xa5;

void* guarded_alloc(size_t bytes, size_t align, size_t residue) {
  const size_t data_pages = (bytes + 2 * align + kPage - 1) / kPage, total = (data_pages + 2) * kPage;
  void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) fail("out of host memory");
  char* lo = static_cast<char*>(m) + kPage;
  char* hi = lo + data_pages * kPage;
  mprotect(m, kPage, PROT_NONE);
  mprotect(hi, kPage, PROT_NONE);
  uintptr_t s = ((uintptr_t(hi) - bytes) & ~uintptr_t(align - 1)) + residue;
  if (s + bytes > uintptr_t(hi)) s -= align;
  char* p = reinterpret_cast<char*>(s);
  std::memset(p + bytes, kCanary, size_t(hi - p) - bytes);
  rt.mappings[p] = {m, bytes, total};
  return p;
}

void guarded_free(void* ptr) {
  char* p = static_cast<char*>(ptr);
  const auto it = rt.mappings.find(p);
  if (it == rt.mappings.end()) fail("free of memory that is not a guarded allocation", p);
  const auto [m, bytes, total] = it->second;
  rt.mappings.erase(it);
  const char* hi = static_cast<char*>(m) + total - kPage;
  const char* bad = std::find_if(static_cast<const char*>(p + bytes), hi, [](char c) { return static_cast<unsigned char>(c) != kCanary; });
  if (bad != hi) fail("write past the end of a buffer", bad);
  munmap(m, total);
}

}  // namespace cuda_cpu

// ---- CUDA host API ---------------------------------------------------------------------------------------
using cuda_cpu::rt;

cudaError_t cudaGetLastError() { return std::exchange(rt.last_error, cudaSuccess); }
cudaError_t cudaPeekAtLastError() { return rt.last_error; }
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
  }
  return "unknown error";
}

cudaError_t cudaGetDevice(int* device) {
  *device = rt.device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || size_t(device) >= rt.devices.size()) return rt.last_error = cudaErrorInvalidDevice;
  rt.device = device;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device < 0 || size_t(device) >= rt.devices.size()) return rt.last_error = cudaErrorInvalidDevice;
  const auto& d = rt.devices[size_t(device)];
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = int(cuda_cpu::kMaxThreads); break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = int(cuda_cpu::kMaxDynamicShared); break;
    case cudaDevAttrMultiProcessorCount: *value = d.sm_count; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *value = d.max_threads_per_sm; break;
    case cudaDevAttrMemoryPoolsSupported: *value = d.pools; break;
    default: return rt.last_error = cudaErrorInvalidValue;
  }
  return cudaSuccess;
}

// A device's default pool is the device itself: only its release threshold is kept.
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  if (device < 0 || size_t(device) >= rt.devices.size() || !rt.devices[size_t(device)].pools)
    return rt.last_error = cudaErrorInvalidDevice;
  *pool = reinterpret_cast<cudaMemPool_t>(&rt.devices[size_t(device)]);
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t pool, cudaMemPoolAttr, void* value) {
  std::memcpy(value, &reinterpret_cast<cuda_cpu::Device*>(pool)->release_threshold, sizeof(uint64_t));
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, cudaMemPoolAttr, void* value) {
  std::memcpy(&reinterpret_cast<cuda_cpu::Device*>(pool)->release_threshold, value, sizeof(uint64_t));
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  *p = nullptr;
  if (rt.fail_alloc || !rt.devices[size_t(rt.device)].pools) {
    rt.log += "alloc-failed " + std::to_string(bytes) + "\n";
    return rt.last_error = cudaErrorMemoryAllocation;
  }
  rt.log += "alloc " + std::to_string(bytes) + "\n";
  char* data = static_cast<char*>(cuda_cpu::guarded_alloc(bytes, 256, 0));
  std::memset(data, 0xff, bytes);
  rt.allocations[data] = bytes;
  *p = data;
  return cudaSuccess;
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t) {
  if (!rt.allocations.erase(static_cast<char*>(p))) cuda_cpu::fail("cudaFreeAsync of memory not from cudaMallocAsync", p);
  rt.log += "free\n";
  cuda_cpu::guarded_free(p);
  return cudaSuccess;
}
