// Device properties, read once per device (the launch configurations derive from the SM count).
#include <mutex>

#include "common.cuh"

namespace lfm25::cuda {

const Device& device() {
  constexpr int kMaxDevices = 64;
  static Device cache[kMaxDevices];
  static std::once_flag once[kMaxDevices];
  int id = 0;
  cudaGetDevice(&id);
  id = id < kMaxDevices ? id : 0;
  std::call_once(once[id], [id] {
    int sms = 0;
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, id);
    cache[id].sm_count = sms > 0 ? sms : 1;
  });
  return cache[id];
}

}  // namespace lfm25::cuda
