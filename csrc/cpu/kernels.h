// The CPU kernels, declared from the op list (LFM25_OPS, lfm25/ops.h): per ISA namespace one
// `Status <op>(const <Op>Params&)` per op, the KernelTable type, the index checks and the generic run().
// A kernel assumes its index arguments were validated; dispatch.cpp picks the table.
#pragma once
#include <string>

#include "lfm25/ops.h"

namespace lfm25::cpu {

#define LFM25_DECLARE_KERNEL(OP, PARAMS, BACKENDS) Status OP(const PARAMS& p);

// csrc/cpu/<op>/portable.cpp
namespace portable { LFM25_OPS(LFM25_DECLARE_KERNEL) }

// csrc/cpu/<op>/simd.cpp, compiled once per SIMD ISA with -DLFM25_SIMD_ISA=<namespace> (csrc/cpu/simd/isa.h)
#if defined(LFM25_CPU_X86_SIMD)  // set by CMakeLists.txt on x86-64
namespace avx2 { LFM25_OPS(LFM25_DECLARE_KERNEL) }
namespace avx512 { LFM25_OPS(LFM25_DECLARE_KERNEL) }
namespace avx512_bf16 {
Status linear(const LinearParams& p);   // csrc/cpu/linear/avx512_bf16.cpp: avx512 plus VDPBF16PS
}
namespace avx512_vnni {
Status linear_q(const LinearQParams& p);   // csrc/cpu/linear_q/vnni.cpp: VPDPBUSD, for avx512_bf16 and amx
}
namespace amx {
Status linear(const LinearParams& p);   // csrc/cpu/linear/amx.cpp: avx512 plus AMX tiles in bf16
bool usable();                          // the CPU has AMX-BF16 and the OS granted the tile state
}
#endif
#if defined(LFM25_CPU_NEON)  // set by CMakeLists.txt on aarch64
namespace neon { LFM25_OPS(LFM25_DECLARE_KERNEL) }
namespace neon_bf16 { LFM25_OPS(LFM25_DECLARE_KERNEL) }
namespace neon_dotprod {
Status linear_q(const LinearQParams& p);   // csrc/cpu/linear_q/neon_dotprod.cpp: SDOT, for the NEON tables
}
namespace neon_i8mm {
Status linear_q(const LinearQParams& p);   // csrc/cpu/linear_q/neon_i8mm.cpp: USMMLA, for the NEON tables
}
#endif

#undef LFM25_DECLARE_KERNEL

// One kernel per op, and the name of the table ("portable", "avx2", ..., as kernel_table takes it).
struct KernelTable {
  const char* isa;
#define LFM25_TABLE_MEMBER(OP, PARAMS, BACKENDS) Status (*OP)(const PARAMS&);
  LFM25_OPS(LFM25_TABLE_MEMBER)
#undef LFM25_TABLE_MEMBER
};

// The table for `isa` ("portable", "avx2", "avx512", "avx512_bf16", "amx", "neon", "neon_bf16"), or the best
// this CPU runs when isa is null or empty. Null when the name is unknown or this CPU cannot run it. The
// LFM25_CPU_ISA environment variable, when set, replaces the default choice.
const KernelTable* kernel_table(const char* isa);

// Names of the tables this CPU can run, best first.
const char* const* available_isas(int* count);

// The outcome of a check or a launch: a Status and, where it names a bad index value, the entry (row, and
// column for block_table) and its value, for the error message.
struct Check {
  Status status = Status::kOk;
  int64_t row = -1, col = -1, value = 0;
  Check(Status s = Status::kOk) : status(s) {}
  Check(Status s, int64_t r, int64_t v) : status(s), row(r), value(v) {}
  Check(Status s, int64_t r, int64_t c, int64_t v) : status(s), row(r), col(c), value(v) {}
  bool ok() const { return status == Status::kOk; }
};

// "<op>: <status_message>", then the value and where it is when the check names an entry.
std::string error_message(const char* op, const Check& c);

// The index-value checks of each op, shared by every ISA (csrc/cpu/<op>/validate.cpp): kOk, or the Status
// naming the bad index, before any byte is read or written out of bounds. The table is given for the rules
// that depend on it (packed weights run only on the amx table).
#define LFM25_DECLARE_VALIDATE(OP, PARAMS, BACKENDS) Check validate(const KernelTable& table, const PARAMS& p);
LFM25_OPS(LFM25_DECLARE_VALIDATE)
#undef LFM25_DECLARE_VALIDATE

// Op<Params>: the op a params struct belongs to, its name and its KernelTable member.
template <class P>
struct Op;
#define LFM25_OP_TRAIT(OP, PARAMS, BACKENDS)               \
  template <>                                              \
  struct Op<PARAMS> {                                      \
    static constexpr const char* name = #OP;               \
    static constexpr auto kernel = &KernelTable::OP;       \
  };
LFM25_OPS(LFM25_OP_TRAIT)
#undef LFM25_OP_TRAIT

// Validate the index arguments, then run the kernel of `table`.
template <class P>
Check run(const KernelTable& table, const P& p) {
  const Check c = validate(table, p);
  return c.ok() ? Check((table.*Op<P>::kernel)(p)) : c;
}

}  // namespace lfm25::cpu
