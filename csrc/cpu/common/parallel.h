// parallel_for over [0, n) on the process's OpenMP team (torch's) or, without one, a persistent pool of our own
// (parallel.cpp says why). The caller passes the thread count (the Python layer sends torch.get_num_threads()),
// so our kernels never run more threads than torch would: no oversubscription.
#pragma once
#include <cstdint>
#include <functional>

namespace lfm25::cpu {

// Runs fn(begin, end) on up to num_threads contiguous chunks of [0, n), each at least `grain` long.
// The calling thread takes the first chunk. Returns when every chunk is done. Not reentrant: a kernel must not
// call parallel_for from inside fn.
void parallel_for(int64_t n, int num_threads, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// "openmp" when parallel_for runs on the process's OpenMP team, "pool" on our own threads.
const char* parallel_backend();

}  // namespace lfm25::cpu
