// parallel_for and parallel_backend (parallel.h): parallel_for runs on the OpenMP team of the process when there
// is one (torch's: its CPU builds use OpenMP), else on a small persistent pool of our own.
//
// Why torch's team: after a parallel torch op, its OpenMP threads spin for a while waiting for the next one.
// Our own threads started then share the cores with them, so in a prefill, where our kernels follow torch's
// GEMMs, our calls ran much slower (OMP_WAIT_POLICY=PASSIVE did not help). On the same team our chunks start
// on the spinning threads instead. The runtime is found at run time (GOMP_parallel, the libgomp entry point
// GCC's `omp parallel` compiles to, also exported by LLVM's and Intel's OpenMP), so the library links no
// OpenMP and no libtorch.
#include "common/parallel.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace lfm25::cpu {
namespace {

class Pool {
 public:
  void run(int64_t n_chunks, const std::function<void(int64_t)>& chunk) {
    std::lock_guard<std::mutex> call_lock(call_mu_);
    while (int64_t(workers_.size()) < n_chunks - 1) workers_.emplace_back([this] { loop(); });
    {
      std::lock_guard<std::mutex> lk(mu_);
      job_ = &chunk;
      n_chunks_ = n_chunks;
      next_.store(0);
      ++generation_;
    }
    wake_.notify_all();
    for (int64_t i; (i = next_.fetch_add(1)) < n_chunks;) chunk(i);
    // Every index is taken; wait for the workers still running theirs. A worker that wakes after this
    // sees job_ == nullptr and goes back to sleep.
    std::unique_lock<std::mutex> lk(mu_);
    idle_.wait(lk, [&] { return active_ == 0; });
    job_ = nullptr;
  }

 private:
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t)>* job;
      int64_t n;
      {
        std::unique_lock<std::mutex> lk(mu_);
        wake_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (!job_) continue;
        job = job_;
        n = n_chunks_;
        ++active_;
      }
      for (int64_t i; (i = next_.fetch_add(1)) < n;) (*job)(i);
      std::lock_guard<std::mutex> lk(mu_);
      if (--active_ == 0) idle_.notify_all();
    }
  }

  std::mutex call_mu_, mu_;
  std::condition_variable wake_, idle_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t n_chunks_ = 0, active_ = 0;
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // NOTE: never destroyed: workers sleep until the process exits
  return *p;
}

// The process's OpenMP runtime, looked up once, at the first parallel call (by then the Python package has
// imported torch); all null where none is loaded.
struct OpenMp {
  void (*parallel)(void (*)(void*), void*, unsigned, unsigned) = nullptr;   // GOMP_parallel
  int (*thread_num)() = nullptr;
  int (*num_threads)() = nullptr;
  int (*in_parallel)() = nullptr;
};

const OpenMp& openmp() {
  static const OpenMp found = [] {
    OpenMp o;
    o.parallel = reinterpret_cast<decltype(o.parallel)>(dlsym(RTLD_DEFAULT, "GOMP_parallel"));
    o.thread_num = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_thread_num"));
    o.num_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_num_threads"));
    o.in_parallel = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_in_parallel"));
    return o.parallel && o.thread_num && o.num_threads && o.in_parallel ? o : OpenMp{};
  }();
  return found;
}

struct TeamJob {
  const std::function<void(int64_t)>* chunk;
  int64_t n_chunks;
  const OpenMp* omp;
};

void team_body(void* arg) {   // each thread of the team takes chunks t, t + threads, ...
  const auto& job = *static_cast<const TeamJob*>(arg);
  for (int64_t c = job.omp->thread_num(); c < job.n_chunks; c += job.omp->num_threads()) (*job.chunk)(c);
}

}  // namespace

void parallel_for(int64_t n, int num_threads, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = std::min<int64_t>(std::max(num_threads, 1), (n + grain - 1) / grain);
  if (chunks <= 1) {
    fn(0, n);
    return;
  }
  const int64_t step = (n + chunks - 1) / chunks;
  const std::function<void(int64_t)> chunk = [&](int64_t c) {
    const int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  };
  const OpenMp& omp = openmp();
  if (omp.parallel && !omp.in_parallel()) {
    TeamJob job{&chunk, chunks, &omp};
    omp.parallel(team_body, &job, unsigned(chunks), 0);
    return;
  }
  pool().run(chunks, chunk);
}

const char* parallel_backend() { return openmp().parallel ? "openmp" : "pool"; }

}  // namespace lfm25::cpu
