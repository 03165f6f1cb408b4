// The aarch64 side of the NEON tests: a long-lived process (run under qemu-aarch64) that executes kernel
// launches sent by tests/neon/__init__.py over stdin/stdout, through the same validation and dispatch table
// as the Python module.
//
// Request:  u32 op (255: read and answer without running a kernel), u32 isa length, isa bytes, u32 params size, params bytes, u32 buffer count, then per buffer
//           u32 field offset, u64 pointer offset into the buffer, u64 length, bytes.
// Response: i32 status (-1: the ISA is not available on this CPU), u32 message length, message, then every buffer's bytes (length as sent).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

template <class P>
Status run(Status (*fn)(const cpu::KernelTable&, const P&), const cpu::KernelTable& table, const std::string& bytes) {
  if (bytes.size() != sizeof(P)) {
    std::fprintf(stderr, "runner: params of %zu bytes, expected %zu\n", bytes.size(), sizeof(P));
    std::exit(2);
  }
  P p;
  std::memcpy(&p, bytes.data(), sizeof p);
  return fn(table, p);
}

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
    Status s = Status::kUnsupportedShape;
    if (!table) {  // answer, so the tests can check the run-time ISA detection
      const int32_t code = -1;
      const std::string msg = "ISA '" + isa + "' is not available on this CPU";
      const uint32_t len = uint32_t(msg.size());
      write_all(&code, sizeof code);
      write_all(&len, sizeof len);
      write_all(msg.data(), msg.size());
      for (auto& buf : buffers) write_all(buf.data(), buf.size() - 64);
      std::fflush(stdout);
      continue;
    }
    switch (op) {
      case 0: s = run<ShortConvParams>(cpu::run_short_conv, *table, params); break;
      case 1: s = run<ShortConvUpdateParams>(cpu::run_short_conv_update, *table, params); break;
      case 2: s = run<QkNormRopeAppendParams>(cpu::run_qk_norm_rope_append, *table, params); break;
      case 3: s = run<GqaDecodeParams>(cpu::run_gqa_decode, *table, params); break;
      case 4: s = run<RmsNormParams>(cpu::run_rms_norm, *table, params); break;
      case 5: s = run<LinearParams>(cpu::run_linear, *table, params); break;
      case 255: s = Status::kOk; break;   // everything but the kernel: the baseline of bench/neon_insn.py
      default: std::fprintf(stderr, "runner: unknown op %u\n", op); std::exit(2);
    }
    const int32_t code = int32_t(s);
    const std::string msg = status_message(s);
    const uint32_t len = uint32_t(msg.size());
    write_all(&code, sizeof code);
    write_all(&len, sizeof len);
    write_all(msg.data(), msg.size());
    for (auto& buf : buffers) write_all(buf.data(), buf.size() - 64);
    std::fflush(stdout);
  }
}
