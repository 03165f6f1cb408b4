// amx::linear, the linear of the "amx" table, and amx::usable: AMX (Sapphire Rapids and later Xeons) for bf16,
// any number of rows: y^T = W . x^T on the tile unit. fp32 and fp16 run avx512_bf16::linear. Weights as
// [N, K] rows (run_blocks) or packed once in tile order by lfm25_kernels.pack_weight (run_packed_blocks,
// below), the faster layout for both decode and prefill.
//
// One TDPBF16PS multiplies a 16 x 32 bf16 tile of W (16 output rows, loaded as stored: the weight rows are
// the tile rows) by a 32 x 16 tile of x^T (16 pairs of rows of K, 16 rows of x; packed once per call in the
// pair layout the instruction reads) into 16 x 16 fp32 sums: 8192 multiply-adds, so the weights stream at
// memory speed for any batch up to 16 rows. Products of bf16 are exact in fp32 and sums are fp32; like the
// AVX512_BF16 instructions, bf16 subnormal inputs count as zero.
//
// A thread takes blocks of R row tiles of 16 weight rows (R = 4, or 2 for long rows, see row_tiles; with a
// gate, R/2 tiles of W and the same rows of the gate) and walks K in chunks of 32 with the 4 accumulator
// tiles split as R row tiles x 4/R phases of K (see run_blocks). Weight rows past N and columns past K are
// read from a zero-padded copy, never past the end of the tensor.
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "simd/avx512.h"

namespace lfm25::cpu::amx {
namespace {

constexpr int kTileRows = 16, kTileK = 32;   // a bf16 tile: 16 rows of 64 bytes
constexpr int kAhead = 8;                    // weight chunks prefetched ahead (prefetches never fault)

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// tmm0..3: fp32 sums (16 outputs x 16 rows of x); tmm4, tmm5: weight tiles; tmm6, tmm7: x tiles
void configure_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.rows[t] = kTileRows;
    c.colsb[t] = 64;
  }
  _tile_loadconfig(&c);
}

// x rows [m0, m0 + 16) as 32 x 16 tiles, one per chunk of 32 columns: row r of a tile holds, for each of the
// 16 rows of x, the bf16 pair (x[m][2r], x[m][2r + 1]) of the chunk; zero past M and past K. (A pair is
// moved as one 32-bit word: the tile is a 16 x 16 transpose of words.)
void pack_x(const LinearParams& p, int64_t m0, uint16_t* dst) {
  const int64_t K = p.in_features, chunks = (K + kTileK - 1) / kTileK, pairs = K / 2;
  const int mr = int(std::min<int64_t>(16, p.rows - m0));
  auto* d32 = reinterpret_cast<uint32_t*>(dst);   // word (pair kk, row i) at kk * 16 + i
  if (mr < 16 || K % kTileK) std::memset(dst, 0, size_t(chunks) * kTileRows * 32 * sizeof(uint16_t));
  for (int i = 0; i < mr; ++i) {
    const uint16_t* x = static_cast<const uint16_t*>(p.x) + (m0 + i) * p.x_row_stride;
    for (int64_t kk = 0; kk < pairs; ++kk) {
      uint32_t word;
      std::memcpy(&word, x + 2 * kk, sizeof(word));
      d32[kk * 16 + i] = word;
    }
    if (K % 2) dst[2 * (pairs * 16 + i)] = x[K - 1];   // the last pair's second half stays zero
  }
}

// exp(x) within 2 ulp: n = round(x / ln 2), r = x - n ln 2 in two fma steps (Cody-Waite), exp(r) by its
// degree-6 Taylor polynomial (|r| <= ln2/2: error < 2^-23), times 2^n. x is clamped to [-104, 89], where
// exp is already 0 and inf in fp32, as torch's silu sees them (silu(-90) = -90 / inf = -0).
__m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);     // ln 2, high 16 bits
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.4286068203094172e-06f), r);      // ln 2 - high part
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

__m512 gather(__m512i index, const float* base) {   // (the plain form warns of an uninitialised source)
  return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), __mmask16(0xffff), index, base, 4);
}

template <int I>
using Int = std::integral_constant<int, I>;

// The tile instructions with compile-time tile numbers (GCC's _tile_* macros paste their argument's text into
// the instruction, so they take literals only).
template <int T>
inline void tile_load(const void* base, int64_t stride_bytes) {
  asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(base), "r"(stride_bytes), "i"(T) : "memory");
}
template <int Acc, int A, int B>
inline void tile_dpbf16ps() {
  asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(Acc), "i"(A), "i"(B));
}

// The 4 accumulator tiles: zeroed, or written out as 16 x 16 fp32 each.
inline void zero_accumulators() {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}
inline void store_accumulators(float* s0, float* s1, float* s2, float* s3) {
  _tile_stored(0, s0, 64);
  _tile_stored(1, s1, 64);
  _tile_stored(2, s2, 64);
  _tile_stored(3, s3, 64);
}

template <class F, int... I>
inline void unroll(std::integer_sequence<int, I...>, F&& f) {
  (f(Int<I>{}), ...);
}

// A weight tile at chunk c of the 16 rows from `first` (row pointer w, stride in elements): the tensor itself,
// or the zero-padded copy in pad where it would read past row N or column K.
inline const uint16_t* weight_tile(const LinearParams& p, const uint16_t* w, int64_t first, int64_t c,
                                   int64_t& stride, uint16_t* pad) {
  const int64_t K = p.in_features, N = p.out_features;
  const uint16_t* src = w + c * kTileK;
  if ((c + 1) * kTileK <= K && first + kTileRows <= N) return src;
  std::memset(pad, 0, kTileRows * kTileK * sizeof(uint16_t));
  const size_t cols = size_t(std::min<int64_t>(kTileK, K - c * kTileK));
  for (int64_t r = 0; r < std::min<int64_t>(kTileRows, N - first); ++r)
    std::memcpy(pad + r * kTileK, src + r * stride, cols * sizeof(uint16_t));
  stride = kTileK;
  return pad;
}

// The outputs [n0, n0 + outs) of x rows [m0, m0 + 16) from the fp32 sums of a block's R row tiles (with a
// gate: R/2 tiles of W, then the same rows of the gate), rounded as linear_output rounds them.
template <int R>
void store_outputs(const LinearParams& p, const float (*sums)[kTileRows * 16], int64_t n0, int64_t m0) {
  const bool gated = p.gate_weight != nullptr || p.weight_layout == WeightLayout::kAmxTilesGated;
  const int outs = gated ? R / 2 * kTileRows : R * kTileRows;
  const int64_t mr = std::min<int64_t>(16, p.rows - m0);
  const int h = int(std::min<int64_t>(outs, p.out_features - n0));
  auto* Y = static_cast<uint16_t*>(p.y);
  // output n0 + j: row tile j / 16 (its gate: R/2 + j / 16), tile row j % 16; column i is row i of x, so a
  // tile's column i is 16 consecutive outputs of row i: gathered, rounded, stored
  const __m512i column = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(16));
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < mr; ++i)
    for (int t = 0; t * 16 < h; ++t) {
      uint16_t* y = Y + (m0 + i) * p.y_row_stride + n0 + t * 16;
      const __m512 up = gather(column, sums[t] + i);
      if (!gated) {
        Avx512::store<DType::kBF16>(y, up, Avx512::mask(h - t * 16));
        continue;
      }
      // linear_output's rounding steps in vector form
      const __m512 u = Avx512::round<DType::kBF16>(up);
      const __m512 g = Avx512::round<DType::kBF16>(gather(column, sums[R / 2 + t] + i));
      const __m512 e = exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), g));
      const __m512 s = Avx512::round<DType::kBF16>(_mm512_div_ps(g, _mm512_add_ps(one, e)));
      Avx512::store<DType::kBF16>(y, _mm512_mul_ps(s, u), Avx512::mask(h - t * 16));
    }
}

// Blocks [b0, b1) of R row tiles (16 weight rows each; with a gate, R/2 tiles of W then the same rows of the
// gate) for every row tile of x. The 4 accumulator tiles are R row tiles x P = 4/R phases of K: accumulator
// r * P + j sums the chunks c = j (mod P), so a weight row is read P chunks (P * 64 bytes) at a time and a
// block streams 16 R rows at once; the phases are added at the end in a fixed order.
template <int R>
void run_blocks(const LinearParams& p, const uint16_t* xs, int64_t b0, int64_t b1) {
  constexpr int P = 4 / R;
  const int64_t M = p.rows, K = p.in_features, N = p.out_features;
  const int64_t chunks = (K + kTileK - 1) / kTileK, m_tiles = (M + 15) / 16;
  const int64_t x_tile = kTileRows * 32;   // elements of one packed x tile
  const bool gated = p.gate_weight != nullptr;
  const int outs = gated ? R / 2 * kTileRows : R * kTileRows;
  const auto* W = static_cast<const uint16_t*>(p.weight);
  const auto* G = static_cast<const uint16_t*>(p.gate_weight);
  alignas(64) uint16_t pad[kTileRows * kTileK];
  alignas(64) float sums[4][kTileRows * 16];
  configure_tiles();
  for (int64_t b = b0; b < b1; ++b) {
    const int64_t n0 = b * outs;
    const uint16_t* w[R];     // first weight row of each row tile
    int64_t stride[R], first[R];
    for (int r = 0; r < R; ++r) {
      const bool gate = gated && r >= R / 2;
      first[r] = n0 + (gated ? r % (R / 2) : r) * kTileRows;
      stride[r] = gate ? p.gate_row_stride : p.weight_row_stride;
      w[r] = (gate ? G : W) + first[r] * stride[r];
    }
    for (int64_t mt = 0; mt < m_tiles; ++mt) {
      zero_accumulators();
      const uint16_t* xt = xs + mt * chunks * x_tile;
      for (int64_t c0 = 0; c0 < chunks; c0 += P) {
        // NOTE: a tile instruction takes its tile numbers as immediates, hence the compile-time unrolling
        unroll(std::make_integer_sequence<int, P>{}, [&](auto j) {
          const int64_t c = c0 + j;
          if (c >= chunks) return;
          constexpr int J = decltype(j)::value;
          tile_load<6 + J % 2>(xt + c * x_tile, 64);
          unroll(std::make_integer_sequence<int, R>{}, [&](auto ri) {
            constexpr int r = decltype(ri)::value;
            if (first[r] >= N) return;
            int64_t s = stride[r];
            const uint16_t* src = weight_tile(p, w[r], first[r], c, s, pad);
            for (int i = 0; i < kTileRows; ++i)   // R * 16 streams: more than the hardware prefetcher tracks
              _mm_prefetch(reinterpret_cast<const char*>(src + i * s + kAhead * kTileK), _MM_HINT_T0);
            constexpr int kW = 4 + (J * R + r) % 2;   // alternate, so a load overlaps the previous product
            tile_load<kW>(src, s * int64_t(sizeof(uint16_t)));
            tile_dpbf16ps<r * P + J, kW, 6 + J % 2>();
          });
        });
      }
      store_accumulators(sums[0], sums[1], sums[2], sums[3]);
      if (P > 1)   // the phases of row tile r (accumulators r * P ...), added in order into sums[r]
        for (int r = 0; r < R; ++r)
          for (int e = 0; e < kTileRows * 16; e += 16) {
            __m512 sum = _mm512_load_ps(sums[r * P] + e);
            for (int j = 1; j < P; ++j) sum = _mm512_add_ps(sum, _mm512_load_ps(sums[r * P + j] + e));
            _mm512_store_ps(sums[r] + e, sum);
          }
      store_outputs<R>(p, sums, n0, mt * 16);
    }
  }
  _tile_release();
}

// Row tiles per block: 4 (64 rows read side by side) while a block spans at most 320 KiB of weights, else 2:
// long rows (LFM2's w2) stream faster as 32 rows side by side than as 64.
int row_tiles(int64_t K) { return 4 * kTileRows * K * 2 <= (320 << 10) ? 4 : 2; }

// ---- packed weights (lfm25_kernels.pack_weight, WeightLayout::kAmxTiles[Gated]) ----
// Blocks of 4 tiles: 64 outputs, or 32 with the gate (tiles 0, 1: W; tiles 2, 3: the gate's same rows). For
// each chunk of 32 columns a block's 4 tiles follow each other, 16 rows of 64 bytes each:
//   data[b][c][t][i][j] = W[64 b + 16 t + i][32 c + j]   (gated: W or gate [32 b + 16 (t % 2) + i][32 c + j])
// zero past N and K. A block is one contiguous stream of chunks x 4 KiB (the strided layout above reads 64
// rows side by side, more streams than the prefetchers follow), and a tile is one 1 KiB load. Every output sums its chunks in order in one
// accumulator, whatever the number of rows: the result of a row never depends on the others.
constexpr int64_t kBlockTile = kTileRows * kTileK;   // elements of one packed weight tile

// x rows [m0, m0 + 16) alone: the block's 4 tiles x 1 x tile; prefetching kAhead chunks ahead.
void packed_one(const uint16_t* wb, const uint16_t* xt, int64_t chunks, float (*sums)[kTileRows * 16],
                bool prefetch) {
  zero_accumulators();
  const uint16_t* w = wb;
  for (int64_t c = 0; c < chunks; ++c, w += 4 * kBlockTile) {
    if (prefetch)
      for (int line = 0; line < 4 * kBlockTile * 2 / 64; ++line)
        _mm_prefetch(reinterpret_cast<const char*>(w + kAhead * 4 * kBlockTile) + line * 64, _MM_HINT_T0);
    tile_load<6>(xt + c * kBlockTile, 64);
    tile_load<4>(w, 64);
    tile_dpbf16ps<0, 4, 6>();
    tile_load<5>(w + kBlockTile, 64);
    tile_dpbf16ps<1, 5, 6>();
    tile_load<4>(w + 2 * kBlockTile, 64);
    tile_dpbf16ps<2, 4, 6>();
    tile_load<5>(w + 3 * kBlockTile, 64);
    tile_dpbf16ps<3, 5, 6>();
  }
  store_accumulators(sums[0], sums[1], sums[2], sums[3]);
}

// Many rows (a prefill): the sums of a block for every row of x live in `acc` (fp32 tiles, [m tile][row
// tile][16 x 16]) and K is walked in panels of kPanel chunks: a panel of half the block (2 weight tiles x 8
// chunks, 16 KiB) stays in L1 with a pair of x tiles' panel (16 KiB) while every pair passes over it, each
// tile loaded feeding two products. The sums are stored and reloaded between panels, exactly, so each output
// still adds its chunks in order, as packed_one does. A plain (ungated) GEMM of many rows is slower here than
// torch's; lfm25_kernels.Projection picks, per row count, which path a packed projection takes (docs/DESIGN.md
// section 2).
constexpr int64_t kPanel = 8;

// Half h (weight tiles 2h, 2h + 1) of the block x the x tiles x0 and the next, chunks [c0, c1); acc holds the
// sums of the two x tiles ([2][4 row tiles][16 x 16]).
void packed_pair_panel(const uint16_t* wb, const uint16_t* x0, int64_t chunks, int h, int64_t c0, int64_t c1,
                       float* acc, bool prefetch) {
  float* sums[4] = {acc + (2 * h) * 256, acc + (4 + 2 * h) * 256, acc + (2 * h + 1) * 256,
                    acc + (4 + 2 * h + 1) * 256};
  if (c0 == 0) {
    zero_accumulators();
  } else {
    tile_load<0>(sums[0], 64);
    tile_load<1>(sums[1], 64);
    tile_load<2>(sums[2], 64);
    tile_load<3>(sums[3], 64);
  }
  const uint16_t* x1 = x0 + chunks * kBlockTile;
  for (int64_t c = c0; c < c1; ++c) {
    const uint16_t* w = wb + (c * 4 + 2 * h) * kBlockTile;
    if (prefetch)   // the whole chunk ahead (both halves), on the block's first pass
      for (int line = 0; line < 4 * kBlockTile * 2 / 64; ++line)
        _mm_prefetch(reinterpret_cast<const char*>(wb + (c + kAhead) * 4 * kBlockTile) + line * 64, _MM_HINT_T0);
    tile_load<4>(w, 64);
    tile_load<6>(x0 + c * kBlockTile, 64);
    tile_dpbf16ps<0, 4, 6>();
    tile_load<7>(x1 + c * kBlockTile, 64);
    tile_dpbf16ps<1, 4, 7>();
    tile_load<5>(w + kBlockTile, 64);
    tile_dpbf16ps<2, 5, 6>();
    tile_dpbf16ps<3, 5, 7>();
  }
  store_accumulators(sums[0], sums[1], sums[2], sums[3]);
}

// x tiles are taken kGroup at a time (8 x 1 KiB per chunk of K: 256 KiB at K = 1024, in L2) and every block of
// the thread passes over a group before the next, so x is not read again from L3 for each block.
constexpr int64_t kGroup = 8;

void run_packed_blocks(const LinearParams& p, const uint16_t* xs, int64_t b0, int64_t b1) {
  const int64_t K = p.in_features, chunks = (K + kTileK - 1) / kTileK, m_tiles = (p.rows + 15) / 16;
  const int outs = p.weight_layout == WeightLayout::kAmxTilesGated ? 2 * kTileRows : 4 * kTileRows;
  const auto* W = static_cast<const uint16_t*>(p.weight);
  const int64_t block = chunks * 4 * kBlockTile, block_lines = block * 2 / 64;
  Scratch<float> acc(kGroup * 4 * 256);
  auto tiles_of = [&](int64_t i) { return reinterpret_cast<float(*)[kTileRows * 16]>(acc.data() + i * 4 * 256); };
  configure_tiles();
  for (int64_t g0 = 0; g0 < m_tiles; g0 += kGroup) {
    const int64_t g1 = std::min(m_tiles, g0 + kGroup), pairs = (g1 - g0) / 2;
    // the next block is prefetched into L2 in slices, one per panel of pairs, so memory and the tile unit
    // work at the same time (the first block of a group streams with its own prefetches instead)
    const int64_t panels = (chunks + kPanel - 1) / kPanel, slices = 2 * panels * pairs;
    const int64_t per_slice = slices ? (block_lines + slices - 1) / slices : 0;
    for (int64_t b = b0; b < b1; ++b) {
      const uint16_t* wb = W + b * block;
      const char* next = reinterpret_cast<const char*>(wb + block);
      int64_t slice = 0;
      for (int h = 0; h < 2 && pairs; ++h)
        for (int64_t c0 = 0; c0 < chunks; c0 += kPanel)
          for (int64_t i = 0; i < pairs; ++i, ++slice) {
            const bool stream = b == b0 && h == 0 && i == 0;   // (prefetching ahead itself)
            packed_pair_panel(wb, xs + (g0 + 2 * i) * chunks * kBlockTile, chunks, h, c0,
                              std::min(chunks, c0 + kPanel), acc.data() + 2 * i * 4 * 256, stream);
            if (b + 1 < b1)
              for (int64_t l = slice * per_slice; l < std::min(block_lines, (slice + 1) * per_slice); ++l)
                _mm_prefetch(next + l * 64, _MM_HINT_T1);
          }
      if ((g1 - g0) % 2)   // the last x tile alone (a decode step's only one)
        packed_one(wb, xs + (g1 - 1) * chunks * kBlockTile, chunks, tiles_of(g1 - 1 - g0), pairs == 0 || b == b0);
      for (int64_t mt = g0; mt < g1; ++mt) store_outputs<4>(p, tiles_of(mt - g0), b * outs, mt * 16);
    }
  }
  _tile_release();
}

Status run(const LinearParams& p) {
  const int64_t M = p.rows, K = p.in_features, N = p.out_features;
  const int64_t chunks = (K + kTileK - 1) / kTileK, m_tiles = (M + 15) / 16;
  const int64_t x_tile = kTileRows * 32;
  Scratch<uint16_t> xs(m_tiles * chunks * x_tile);
  const int64_t pack_grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(K, 1));   // (a decode step: inline)
  parallel_for(m_tiles, p.num_threads, pack_grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) pack_x(p, t * 16, xs.data() + t * chunks * x_tile);
  });
  if (p.weight_layout != WeightLayout::kRows) {
    const int outs = p.weight_layout == WeightLayout::kAmxTilesGated ? 2 * kTileRows : 4 * kTileRows;
    const int64_t grain = std::max<int64_t>(1, (64 << 10) / (4 * kTileRows * chunks * kTileK * 2));
    parallel_for((N + outs - 1) / outs, p.num_threads, grain,
                 [&](int64_t b0, int64_t b1) { run_packed_blocks(p, xs.data(), b0, b1); });
    return Status::kOk;
  }
  const bool gated = p.gate_weight != nullptr;
  const int R = row_tiles(K);
  const int outs = gated ? R / 2 * kTileRows : R * kTileRows;   // outputs per block
  const int64_t n_blocks = (N + outs - 1) / outs;
  const int64_t grain = std::max<int64_t>(1, (64 << 10) / (int64_t(R) * kTileRows * K * 2));
  parallel_for(n_blocks, p.num_threads, grain, [&](int64_t b0, int64_t b1) {
    if (R == 2) run_blocks<2>(p, xs.data(), b0, b1);
    else run_blocks<4>(p, xs.data(), b0, b1);
  });
  return Status::kOk;
}

}  // namespace

// Linux hands out the AMX register state only on request (arch_prctl ARCH_REQ_XCOMP_PERM, XTILEDATA).
bool usable() {
#if defined(__linux__)
  static const bool ok = [] {
    unsigned a, b, c, d;
    __cpuid_count(7, 0, a, b, c, d);
    if (!((d >> 22) & 1) || !((d >> 24) & 1)) return false;   // AMX-BF16, AMX-TILE
    constexpr int kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return ok;
#else
  return false;
#endif
}

// One row too runs on the tiles, although VDPBF16PS streams a single row faster: it sums in another order, and
// a row's result must not depend on how many rows share the call (a decode step's tokens would then depend on
// the other sequences of the batch). Weights packed in pairs run avx512_bf16's pairs kernel.
Status linear(const LinearParams& p) {
  if (p.dtype == DType::kBF16 && !in_pairs(p.weight_layout)) return run(p);
  return avx512_bf16::linear(p);
}

}  // namespace lfm25::cpu::amx
