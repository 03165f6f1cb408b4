// The process side of the cuda-cpu tests: a long-lived process that runs kernel launches sent by
// tests/cuda_cpu/__init__.py through csrc/cuda's entry points (lfm25::cuda::<op>), on the runtime of
// runtime.cpp. The protocol is tests/neon/runner.cpp's; its ISA string carries the run's settings instead,
// "sms=<n> threads=<per SM> pools=<0|1> fail_alloc=<0|1> probe=<0|1>".
//
// Every buffer is copied into its own guarded allocation (runtime.h) keeping its 16-byte alignment class, so a
// kernel that reads or writes outside the memory a tensor view spans faults. Response message: the launch log
// when the op returned kOk, otherwise the status text and the log.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_runtime.h"
#include "lfm25/cuda_ops.h"
#include "lfm25/ops.h"
#include "runtime.h"

using namespace lfm25;

namespace {

bool read_all(void* dst, size_t n) { return std::fread(dst, 1, n, stdin) == n; }
template <class T> T read_value() {
  T v{};
  if (!read_all(&v, sizeof v)) std::exit(0);  // the test process closed the pipe
  return v;
}

template <class P>
Status run(Status (*entry)(const P&, void*), const std::string& bytes) {
  if (bytes.size() != sizeof(P)) {
    std::fprintf(stderr, "cuda-cpu runner: params of %zu bytes, expected %zu\n", bytes.size(), sizeof(P));
    std::exit(2);
  }
  P p;
  std::memcpy(&p, bytes.data(), sizeof p);
  return entry(p, nullptr);
}

// Op code i is op i of the op list (tests/cuda_cpu/__init__.py numbers them from lfm25_kernels._C.ops); the
// ops with a CUDA kernel have an entry here.
#define LFM25_OP_NAME(OP, PARAMS, BACKENDS) #OP,
const char* const kOps[] = {LFM25_OPS(LFM25_OP_NAME)};
struct Entry {
  const char* op;
  Status (*run)(const std::string& params);
};
#define LFM25_CUDA_ENTRY(OP, PARAMS, BACKENDS) \
  LFM25_IF_CUDA(BACKENDS, Entry{#OP, [](const std::string& b) { return run<PARAMS>(cuda::OP, b); }},)
const Entry kEntries[] = {LFM25_OPS(LFM25_CUDA_ENTRY)};

const Entry* entry(uint32_t op) {
  for (const Entry& e : kEntries)
    if (op < std::size(kOps) && std::strcmp(e.op, kOps[op]) == 0) return &e;
  return nullptr;
}

void configure(const std::string& settings) {
  std::istringstream in(settings);
  int sms = 132, threads = 2048, pools = 1, fail_alloc = 0, probe = 1;
  for (std::string kv; in >> kv;) {
    const auto eq = kv.find('=');
    const std::string key = kv.substr(0, eq);
    const int value = std::atoi(kv.c_str() + eq + 1);
    if (key == "sms") sms = value;
    else if (key == "threads") threads = value;
    else if (key == "pools") pools = value;
    else if (key == "fail_alloc") fail_alloc = value;
    else if (key == "probe") probe = value;
    else {
      std::fprintf(stderr, "cuda-cpu runner: unknown setting '%s'\n", kv.c_str());
      std::exit(2);
    }
  }
  cuda_cpu::use_device(sms, threads, pools != 0);
  cuda_cpu::set_alloc_failure(fail_alloc != 0);
  cuda_cpu::set_race_probe(probe != 0);
}

}  // namespace

int main() {
  for (;;) {
    const uint32_t op = read_value<uint32_t>();
    std::string settings(read_value<uint32_t>(), '\0');
    read_all(settings.data(), settings.size());
    std::string params(read_value<uint32_t>(), '\0');
    read_all(params.data(), params.size());
    const uint32_t n_buffers = read_value<uint32_t>();
    std::vector<std::pair<char*, size_t>> buffers;
    for (uint32_t i = 0; i < n_buffers; ++i) {
      const uint32_t field = read_value<uint32_t>();
      const uint64_t offset = read_value<uint64_t>();
      const uint64_t n = read_value<uint64_t>();
      std::vector<char> data(n);
      read_all(data.data(), n);
      // the alignment class of the tensor's address travels in the pointer field itself
      uintptr_t original;
      std::memcpy(&original, params.data() + field, sizeof original);
      char* copy = static_cast<char*>(cuda_cpu::guarded_alloc(n, 16, original % 16));
      std::memcpy(copy, data.data(), n);
      buffers.emplace_back(copy, n);
      cuda_cpu::add_region(copy, n);
      void* ptr = copy + offset;
      std::memcpy(params.data() + field, &ptr, sizeof ptr);
    }
    const Entry* e = entry(op);
    if (!e) {
      std::fprintf(stderr, "cuda-cpu runner: op %u has no CUDA kernel\n", op);
      std::exit(2);
    }
    configure(settings);
    const Status s = e->run(params);
    std::string msg = cuda_cpu::take_log();
    if (s != Status::kOk) msg = std::string(status_message(s)) + "\n" + msg;
    if (cuda_cpu::live_allocations() != 0) cuda_cpu::fail("an op left cudaMallocAsync memory allocated");
    const int32_t code = int32_t(s);
    const uint32_t len = uint32_t(msg.size());
    std::fwrite(&code, sizeof code, 1, stdout);
    std::fwrite(&len, sizeof len, 1, stdout);
    std::fwrite(msg.data(), 1, msg.size(), stdout);
    for (auto& [p, n] : buffers) {
      std::fwrite(p, 1, n, stdout);
      cuda_cpu::guarded_free(p);
    }
    cuda_cpu::clear_regions();
    std::fflush(stdout);
  }
}
