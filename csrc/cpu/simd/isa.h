// The SIMD ISA a csrc/cpu/<op>/simd.cpp is being compiled for. CMakeLists.txt (and tests/neon/build.sh)
// compile every simd.cpp once per ISA, with that ISA's flags and -DLFM25_SIMD_ISA=<isa>; this header maps
// <isa> to its vector traits, as `lfm25::cpu::<isa>::Vec`, so the file ends with its kernel defined once:
//   namespace lfm25::cpu::LFM25_SIMD_ISA { Status op(const OpParams& p) { ... simd::op<Vec, ...>(p) ... } }
#pragma once

#define LFM25_SIMD_ISA_ID(ISA) LFM25_SIMD_ISA_ID_(ISA)
#define LFM25_SIMD_ISA_ID_(ISA) LFM25_SIMD_ISA_ID_##ISA
#define LFM25_SIMD_ISA_ID_avx2 1
#define LFM25_SIMD_ISA_ID_avx512 2
#define LFM25_SIMD_ISA_ID_neon 3
#define LFM25_SIMD_ISA_ID_neon_bf16 4

#if !defined(LFM25_SIMD_ISA)
#error "compile with -DLFM25_SIMD_ISA=avx2, avx512, neon or neon_bf16"
#elif LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 1
#include "simd/avx2.h"
namespace lfm25::cpu::avx2 { using Vec = Avx2; }
#elif LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 2
#include "simd/avx512.h"
namespace lfm25::cpu::avx512 { using Vec = Avx512; }
#elif LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 3
#include "simd/neon.h"
namespace lfm25::cpu::neon { using Vec = Neon; }
#elif LFM25_SIMD_ISA_ID(LFM25_SIMD_ISA) == 4
#include "simd/neon_bf16.h"
namespace lfm25::cpu::neon_bf16 { using Vec = NeonBf16; }
#else
#error "LFM25_SIMD_ISA names no known ISA"
#endif
