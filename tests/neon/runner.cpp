// The aarch64 side of the NEON tests: a long-lived process (run under qemu-aarch64) that executes kernel
// launches sent by tests/neon/__init__.py over stdin/stdout, through the same validation and dispatch table
// as the Python module.
//
// Request:  u32 op (the index in the op list LFM25_OPS; 255: read and answer without running a kernel),
//           u32 isa length, isa bytes, u32 params size, params bytes, u32 buffer count, then per buffer
//           u32 field offset, u64 pointer offset into the buffer, u64 length, bytes.
// Response: i32 status (-1: the ISA is not available on this CPU), u32 message length, message, then every
//           buffer's bytes (length as sent).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <string>
#include <vector>

#include "../../csrc/cpu/kernels.h"
#include "lfm25/ops.h"

using namespace lfm25;

namespace {

bool read_all(void* dst, size_t n) { return std::fread(dst, 1, n, stdin) == n; }
void write_all(const void* src, size_t n) { std::fwrite(src, 1, n, stdout); }
template <class T> T read_value() {
  T v{};
  if (!read_all(&v, sizeof v)) std::exit(0);  // the test process closed the pipe
  return v;
}

void respond(int32_t code, const std::string& msg, const std::vector<std::vector<unsigned char>>& buffers) {
  const uint32_t len = uint32_t(msg.size());
  write_all(&code, sizeof code);
  write_all(&len, sizeof len);
  write_all(msg.data(), msg.size());
  for (auto& buf : buffers) write_all(buf.data(), buf.size() - 64);
  std::fflush(stdout);
}

template <class P>
cpu::Check run(const cpu::KernelTable& table, const std::string& bytes) {
  if (bytes.size() != sizeof(P)) {
    std::fprintf(stderr, "runner: params of %zu bytes, expected %zu\n", bytes.size(), sizeof(P));
    std::exit(2);
  }
  P p;
  std::memcpy(&p, bytes.data(), sizeof p);
  return cpu::run(table, p);
}

// Op code i runs op i of the op list (tests/neon/__init__.py numbers them from lfm25_kernels._C.ops).
#define LFM25_RUN_OP(OP, PARAMS, BACKENDS) run<PARAMS>,
constexpr cpu::Check (*kRunOp[])(const cpu::KernelTable&, const std::string&) = {LFM25_OPS(LFM25_RUN_OP)};
#define LFM25_OP_NAME(OP, PARAMS, BACKENDS) #OP,
constexpr const char* kOpName[] = {LFM25_OPS(LFM25_OP_NAME)};
constexpr uint32_t kNoKernel = 255;   // everything but the kernel: the baseline of bench/neon_insn.py

}  // namespace

int main() {
  for (;;) {
    const uint32_t op = read_value<uint32_t>();
    std::string isa(read_value<uint32_t>(), '\0');
    read_all(isa.data(), isa.size());
    std::string params(read_value<uint32_t>(), '\0');
    read_all(params.data(), params.size());
    const uint32_t n_buffers = read_value<uint32_t>();
    std::vector<std::vector<unsigned char>> buffers(n_buffers);
    for (auto& buf : buffers) {
      const uint32_t field = read_value<uint32_t>();
      const uint64_t offset = read_value<uint64_t>();
      buf.resize(read_value<uint64_t>() + 64);
      read_all(buf.data(), buf.size() - 64);
      void* ptr = buf.data() + offset;
      std::memcpy(params.data() + field, &ptr, sizeof ptr);   // point the field at our copy
    }
    const cpu::KernelTable* table = cpu::kernel_table(isa.c_str());
    if (!table) {  // answer, so the tests can check the run-time ISA detection
      respond(-1, "ISA '" + isa + "' is not available on this CPU", buffers);
      continue;
    }
    cpu::Check c;
    if (op < std::size(kRunOp)) {
      c = kRunOp[op](*table, params);
    } else if (op != kNoKernel) {
      std::fprintf(stderr, "runner: unknown op %u\n", op);
      std::exit(2);
    }
    respond(int32_t(c.status), c.ok() ? "" : cpu::error_message(kOpName[op], c), buffers);
  }
}
