// A small persistent thread pool: workers sleep on a condition variable between calls. One job at a time
// (calls from several Python threads are serialised by a mutex).
#include "parallel.h"

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
  pool().run(chunks, [&](int64_t c) {
    const int64_t b = c * step, e = std::min(n, b + step);
    if (b < e) fn(b, e);
  });
}

}  // namespace lfm25::cpu
