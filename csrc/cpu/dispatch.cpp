// kernel_table and available_isas (kernels.h): the one place where a CPU ISA is chosen. A table per ISA, best
// first, filtered by what this CPU runs.
#include <cstdlib>
#include <cstring>
#if defined(LFM25_CPU_NEON) && defined(__linux__)
#include <sys/auxv.h>
#elif defined(LFM25_CPU_NEON) && defined(__APPLE__)
#include <sys/sysctl.h>

#include <string>
#endif

#include "kernels.h"

namespace lfm25::cpu {
namespace {

// The table of the kernels of namespace ISA, one per op in op-list order (KernelTable is generated from the
// same list).
#define LFM25_KERNEL_OF(OP, PARAMS, BACKENDS) &OP,
#define LFM25_TABLE(ISA)                                     \
  [] {                                                       \
    using namespace ISA;                                     \
    return KernelTable{#ISA, LFM25_OPS(LFM25_KERNEL_OF)};    \
  }()

#if defined(LFM25_CPU_X86_SIMD)
// The avx512 table under another name, with another linear and linear_q on VPDPBUSD (every CPU with
// AVX512_BF16 has AVX512_VNNI): the avx512_bf16 and amx tables.
KernelTable avx512_with(const char* isa, Status (*bf16_linear)(const LinearParams&)) {
  KernelTable t = LFM25_TABLE(avx512);
  t.isa = isa;
  t.linear = bf16_linear;
  t.linear_q = avx512_vnni::linear_q;
  return t;
}
#endif

struct Entry {
  KernelTable table;
  bool (*supported)();
};

bool always() { return true; }
#if defined(LFM25_CPU_X86_SIMD)
bool has_avx2() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"); }
bool has_avx512() {
  return has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
bool has_avx512_bf16() { return has_avx512() && __builtin_cpu_supports("avx512bf16"); }
bool has_amx() { return has_avx512_bf16() && amx::usable(); }
#endif

#if defined(LFM25_CPU_NEON)
// An aarch64 extension: bit `bit` of getauxval(at) on Linux, the sysctl hw.optional.arm.<feat> on macOS.
bool arm_has([[maybe_unused]] unsigned long at, [[maybe_unused]] unsigned long bit,
             [[maybe_unused]] const char* feat) {
#if defined(__linux__)
  return (getauxval(at) & bit) != 0;
#elif defined(__APPLE__)
  int v = 0;
  size_t n = sizeof v;
  return sysctlbyname((std::string("hw.optional.arm.") + feat).c_str(), &v, &n, nullptr, 0) == 0 && v;
#else
  return false;
#endif
}
// ARMv8.6 BF16 (BFCVT): Graviton3+, Apple M2+, Cortex-A510/A710+
bool has_bf16() { return arm_has(AT_HWCAP2, 1UL << 14, "FEAT_BF16"); }          // HWCAP2_BF16
// ARMv8.2 dot product (SDOT): Cortex-A55/A76+, Neoverse N1+, Apple M1+; not the Raspberry Pi 4's Cortex-A72
bool has_dotprod() { return arm_has(AT_HWCAP, 1UL << 20, "FEAT_DotProd"); }     // HWCAP_ASIMDDP
// ARMv8.6 int8 matrix multiply (USMMLA): Graviton3+, Cortex-A510/A710+, Apple M2+; it comes with dotprod
bool has_i8mm() { return has_dotprod() && arm_has(AT_HWCAP2, 1UL << 13, "FEAT_I8MM"); }   // HWCAP2_I8MM

// A NEON table with linear_q on the best extension this CPU has: i8mm, the dot product, or the table's own
// (ARMv8.0)
KernelTable with_best_linear_q(KernelTable t) {
  if (has_i8mm())
    t.linear_q = neon_i8mm::linear_q;
  else if (has_dotprod())
    t.linear_q = neon_dotprod::linear_q;
  return t;
}
#endif

const Entry kEntries[] = {
#if defined(LFM25_CPU_X86_SIMD)
    // the avx512 kernels, but linear on AMX tiles (bf16) or with VDPBF16PS (bf16)
    {avx512_with("amx", amx::linear), has_amx},
    {avx512_with("avx512_bf16", avx512_bf16::linear), has_avx512_bf16},
    {LFM25_TABLE(avx512), has_avx512},
    {LFM25_TABLE(avx2), has_avx2},
#endif
#if defined(LFM25_CPU_NEON)
    {with_best_linear_q(LFM25_TABLE(neon_bf16)), has_bf16},
    {with_best_linear_q(LFM25_TABLE(neon)), always},
#endif
    {LFM25_TABLE(portable), always},
};

struct Available {
  const char* names[sizeof(kEntries) / sizeof(kEntries[0])];
  int count = 0;
  Available() {
    for (const Entry& e : kEntries)
      if (e.supported()) names[count++] = e.table.isa;
  }
};

const Available& available() {
  static const Available a;
  return a;
}

const KernelTable* find(const char* isa) {
  for (const Entry& e : kEntries)
    if (std::strcmp(e.table.isa, isa) == 0) return e.supported() ? &e.table : nullptr;
  return nullptr;
}

}  // namespace

const char* const* available_isas(int* count) {
  *count = available().count;
  return available().names;
}

const KernelTable* kernel_table(const char* isa) {
  if (isa && *isa) return find(isa);
  static const KernelTable* best = [] {
    const char* forced = std::getenv("LFM25_CPU_ISA");
    if (forced && *forced) return find(forced);
    return find(available().names[0]);
  }();
  return best;
}

}  // namespace lfm25::cpu
