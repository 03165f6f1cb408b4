// Every CPU kernel, one line per op per ISA. Each is defined in csrc/cpu/<op>_<isa>.cpp and assumes its
// index arguments were validated (csrc/cpu/validate.cpp); the dispatch table (dispatch.cpp) picks the ISA.
#pragma once
#include "lfm25/ops.h"

namespace lfm25::cpu {

#define LFM25_DECLARE_CPU_KERNELS(ISA)                                          \
  Status short_conv_##ISA(const ShortConvParams& p);                            \
  Status short_conv_update_##ISA(const ShortConvUpdateParams& p);               \
  Status qk_norm_rope_append_##ISA(const QkNormRopeAppendParams& p);            \
  Status gqa_decode_##ISA(const GqaDecodeParams& p);                            \
  Status rms_norm_##ISA(const RmsNormParams& p);                                \
  Status linear_##ISA(const LinearParams& p);

LFM25_DECLARE_CPU_KERNELS(portable)
#if defined(LFM25_CPU_X86_SIMD)  // set by CMakeLists.txt on x86-64
LFM25_DECLARE_CPU_KERNELS(avx2)
LFM25_DECLARE_CPU_KERNELS(avx512)
Status linear_avx512_bf16(const LinearParams& p);   // the "avx512_bf16" table: avx512 plus VDPBF16PS in linear
Status linear_amx(const LinearParams& p);           // the "amx" table: avx512 plus AMX tiles in bf16 linear
bool amx_usable();                                  // the CPU has AMX-BF16 and the OS granted the tile state
#endif
#if defined(LFM25_CPU_NEON)  // set by CMakeLists.txt on aarch64
LFM25_DECLARE_CPU_KERNELS(neon)
LFM25_DECLARE_CPU_KERNELS(neon_bf16)
#endif

#undef LFM25_DECLARE_CPU_KERNELS

struct KernelTable {
  const char* isa;
  Status (*short_conv)(const ShortConvParams&);
  Status (*short_conv_update)(const ShortConvUpdateParams&);
  Status (*qk_norm_rope_append)(const QkNormRopeAppendParams&);
  Status (*gqa_decode)(const GqaDecodeParams&);
  Status (*rms_norm)(const RmsNormParams&);
  Status (*linear)(const LinearParams&);
};

// The table for `isa` ("portable", "avx2", "avx512", "avx512_bf16", "amx", "neon", "neon_bf16"), or the best
// this CPU runs when isa is null or empty. Null when the name is unknown or this CPU cannot run it. The
// LFM25_CPU_ISA environment variable, when set, replaces the default choice.
const KernelTable* kernel_table(const char* isa);

// Names of the tables this CPU can run, best first.
const char* const* available_isas(int* count);

// Validate index arguments, then run the kernel of `table`.
Status run_short_conv(const KernelTable& table, const ShortConvParams& p);
Status run_short_conv_update(const KernelTable& table, const ShortConvUpdateParams& p);
Status run_qk_norm_rope_append(const KernelTable& table, const QkNormRopeAppendParams& p);
Status run_gqa_decode(const KernelTable& table, const GqaDecodeParams& p);
Status run_rms_norm(const KernelTable& table, const RmsNormParams& p);
Status run_linear(const KernelTable& table, const LinearParams& p);

}  // namespace lfm25::cpu
