// Device properties, read once per device (every launch configuration derives from them), and the
// stream-ordered workspace of gqa_decode's split-KV partials.
#include <mutex>

#include "common.cuh"

namespace lfm25::cuda {

const Device& device() {
  constexpr int kMaxDevices = 64;
  static Device cache[kMaxDevices];
  static std::once_flag once[kMaxDevices];
  int id = 0;
  if (cudaGetDevice(&id) != cudaSuccess || id < 0 || id >= kMaxDevices) {
    cudaGetLastError();
    id = 0;
  }
  std::call_once(once[id], [id] {
    Device& d = cache[id];
    int sms = 0, threads = 0, pools = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, id);
    cudaDeviceGetAttribute(&threads, cudaDevAttrMaxThreadsPerMultiProcessor, id);
    cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, id);
    d.id = id;
    d.sm_count = sms > 0 ? sms : 1;
    d.max_threads_per_sm = threads > 0 ? threads : 1024;
    d.stream_ordered_alloc = pools != 0;
    if (d.stream_ordered_alloc) {
      // NOTE: the default pool returns freed memory to the driver at every synchronisation unless its release
      // threshold says otherwise; an eager decode loop that synchronises each step would then map the split
      // workspace afresh every call. Keep up to 64 MiB cached (never lower a threshold someone else raised).
      cudaMemPool_t pool;
      if (cudaDeviceGetDefaultMemPool(&pool, id) == cudaSuccess) {
        uint64_t keep = 0;
        cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep);
        uint64_t want = uint64_t(64) << 20;
        if (keep < want) cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &want);
      }
    }
    cudaGetLastError();  // a failed query above must not be reported by the next launch check
  });
  return cache[id];
}

void* workspace_alloc(size_t bytes, cudaStream_t stream) {
  if (!device().stream_ordered_alloc) return nullptr;
  void* p = nullptr;
  if (cudaMallocAsync(&p, bytes, stream) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}

void workspace_free(void* p, cudaStream_t stream) {
  if (p) cudaFreeAsync(p, stream);
}

}  // namespace lfm25::cuda
