// avx512_bf16::linear, the linear of the "avx512_bf16" table: AVX-512 with AVX512_BF16 (Cooper Lake, Sapphire
// Rapids and later Xeons, Zen 4 and later). For bf16, VDPBF16PS multiplies 32 bf16 pairs and adds them to 16
// fp32 sums in one instruction, straight from the weights as stored (no conversion) and from x packed as bf16
// (half the cache footprint of fp32), in the tile driver of linear/common.h. Each product of two bf16 is exact
// in fp32 and each addition is rounded to nearest even, so this is fp32 accumulation in another order; like
// every AVX512_BF16 instruction it treats bf16 subnormals (|v| < 2^-126) as zero. Weights packed in pairs
// (linear/pairs.h) run Bf16PairTile, the same instruction on x's pair broadcast. fp32 and fp16 run
// avx512::linear.
#include <immintrin.h>

#include "kernels.h"
#include "linear/common.h"
#include "linear/pairs.h"
#include "simd/avx512.h"

namespace lfm25::cpu::avx512_bf16 {
namespace {

struct Bf16DotTile {
  using X = uint16_t;                  // x as bf16: chunks of 32 columns, the MR rows one after the other
  using T = uint16_t;
  static constexpr int kRegisters = 32;
  static constexpr int kChunk = 32;
  static int64_t padded(int64_t K) { return (K + kChunk - 1) / kChunk * kChunk; }

  static void pack(const LinearParams& p, int64_t m0, int mr, X* dst) {
    const int64_t K = p.in_features;
    for (int64_t c = 0; c < K; c += kChunk)
      for (int i = 0; i < mr; ++i, dst += kChunk) {
        const T* x = static_cast<const T*>(p.x) + (m0 + i) * p.x_row_stride + c;
        for (int j = 0; j < kChunk; ++j) dst[j] = c + j < K ? x[j] : T(0);
      }
  }

  template <int MR, int NR>
  static void run(const X* xt, const T* const* w, int64_t K, float* sums) {
    __m512 acc[MR][NR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < K; k += kChunk, xt += MR * kChunk) {
      __m512bh wv[NR];
      if (k + kChunk <= K) {
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = (__m512bh)_mm512_loadu_si512(w[j] + k);
      } else {   // tail: the weights past K read as zero (x is zero-padded there too)
        const __mmask32 m = (__mmask32(1) << (K - k)) - 1;
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) wv[j] = (__m512bh)_mm512_maskz_loadu_epi16(m, w[j] + k);
      }
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        __m512 xv = _mm512_castsi512_ps(_mm512_loadu_si512(xt + i * kChunk));
        Avx512::in_register(xv);
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)xv, wv[j]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) sums[i * NR + j] = _mm512_reduce_add_ps(acc[i][j]);
  }
};

// The pairs tile of linear/pairs.h: a block's 64 rows are 4 vectors of 16 lanes, each lane a row's pair of
// weights, times x's pair broadcast: 4 independent sums per row of x.
struct Bf16PairTile {
  using X = uint32_t;                  // x's pair as stored: the first bf16 in the low half
  static constexpr int kPairWidth = 1;
  static constexpr int kMaxRows = 4;   // 16 sums, 4 weight vectors and x's pair
  static constexpr int kVectors = kPairBlockRows / 16;

  static void pack(const uint16_t* x, int64_t K, uint32_t* dst) {
    for (int64_t p = 0; p < (K + 1) / 2; ++p)
      dst[p] = uint32_t(x[2 * p]) | (2 * p + 1 < K ? uint32_t(x[2 * p + 1]) << 16 : 0u);
  }

  template <int MR>
  static void run(const uint32_t* x, int64_t stride, const uint16_t* w, int64_t pairs, float* sums) {
    __m512 acc[MR][kVectors];
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm512_setzero_ps();
    for (int64_t p = 0; p < pairs; ++p, w += 2 * kPairBlockRows) {
      __m512bh wv[kVectors];
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) wv[v] = (__m512bh)_mm512_loadu_si512(w + v * 32);
#pragma GCC unroll 4
      for (int i = 0; i < MR; ++i) {
        const __m512bh xv = (__m512bh)_mm512_set1_epi32(int(x[i * stride + p]));
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], xv, wv[v]);
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) _mm512_storeu_ps(sums + i * kPairBlockRows + v * 16, acc[i][v]);
  }
};

}  // namespace

Status linear(const LinearParams& p) {
  if (in_pairs(p.weight_layout)) return linear_pairs_run<Bf16PairTile>(p);
  if (p.dtype == DType::kBF16) return linear_with<Bf16DotTile, DType::kBF16>(p);
  return avx512::linear(p);
}

}  // namespace lfm25::cpu::avx512_bf16
