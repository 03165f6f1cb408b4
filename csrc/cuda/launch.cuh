// How the CUDA kernels are launched: the one launch macro, and every launch configuration, derived in this one
// place from the sizes known on the host and the device's SM count (read once, device.cu). Nothing here reads
// index tensors (seq_lens, cu_seqlens, slots): grids depend only on buffer sizes, so a captured CUDA graph
// replays for any mix of lengths.
//
// Worked examples use the LFM2.5-350M shapes (D = 1024, Hq = 16, Hkv = 8, d = 64, bf16: 16 bytes = 8 elements
// per thread access) and a GPU of 132 SMs with 2048 resident threads each (270K threads).
#pragma once
#include <algorithm>

#include "common.cuh"

// Every kernel launch in csrc/cuda goes through this macro, the only triple-chevron launch of the folder, so
// that a runtime that runs the kernels on the CPU (fibers for the threads of a block) can replace it alone:
// built with LFM25_CUDA_CPU, the tests' runtime (tests/cuda_cpu) runs the launch instead.
// Arguments: the kernel (in parentheses when its template arguments contain commas), grid, block, dynamic
// shared memory bytes, stream, then the kernel's arguments. Its value is the launch's Status: kCudaError when
// cudaGetLastError() reports an error (and clears it), otherwise kOk.
#ifdef LFM25_CUDA_CPU
#define LFM25_KERNEL_CALL(KERNEL, GRID, BLOCK, SMEM, STREAM, ...) \
  ::cuda_cpu::launch(#KERNEL, KERNEL, (GRID), (BLOCK), (SMEM), (STREAM), __VA_ARGS__)
#else
#define LFM25_KERNEL_CALL(KERNEL, GRID, BLOCK, SMEM, STREAM, ...) KERNEL<<<(GRID), (BLOCK), (SMEM), (STREAM)>>>(__VA_ARGS__)
#endif
#define LFM25_CUDA_LAUNCH(KERNEL, GRID, BLOCK, SMEM, STREAM, ...)        \
  (LFM25_KERNEL_CALL(KERNEL, GRID, BLOCK, SMEM, STREAM, __VA_ARGS__), \
   cudaGetLastError() == cudaSuccess ? ::lfm25::Status::kOk : ::lfm25::Status::kCudaError)

namespace lfm25::cuda {

// ---- short_conv ------------------------------------------------------------------------------------------
// A thread owns V channels (one 16-byte vector) of one chunk of `chunk` consecutive tokens of one sequence and
// streams them, keeping the K-1 previous U = B*X vectors in registers; it reads B, C, X once per token plus K-1
// window rows at the chunk start (L2 hits: the neighbouring chunk just read them).
// Block: 128 threads along channels when D/V >= 128 (128 x 8 bf16 = all 1024 channels of a token), otherwise
// 32 or 64 channel threads x 4 or 2 chunks. Chunk length: the largest of 64, 32, 16, 8 tokens that still
// gives at least half a wave of threads (each thread keeps the 6 16-byte loads of 2 tokens in flight: 48 KiB
// per SM at 4 resident blocks, which needs at most 128 registers per thread; above HBM latency x bandwidth).
// 8 x 4096 tokens, D = 1024 bf16 -> 128 channel threads x 2048 chunks of 16 tokens = 262K threads.
// Chunks never start inside the first 8 tokens of a sequence except chunk 0, and K-1 <= 3 < 8: only chunk 0 of
// a sequence ever reads its initial state (see short_conv.cu for why that matters).
// Chunk ids: sequence s owns ids [s + floor(start_s / chunk), ... + max(1, ceil(len_s / chunk))): these
// ranges are disjoint and ascending for any lengths (1 + floor((a+n)/c) >= floor(a/c) + ceil(n/c)), and the
// last one ends below n_seq + floor(N / chunk), so the grid covers every chunk of every sequence and the
// kernel finds its sequence by a binary search over s + floor(cu_seqlens[s] / chunk). Dense batches:
// ids = B x max(1, ceil(T / chunk)).
constexpr int kShortConvThreads = 128;
struct ShortConvConfig {
  int64_t chunk, dense_chunks;
  int chunk_shift;  // chunk = 1 << chunk_shift
  dim3 grid, block;
};
inline ShortConvConfig short_conv_config(const Device& dev, int64_t n_cvec, int64_t n_tokens, int64_t n_seq,
                                         bool packed, int64_t dense_len) {
  ShortConvConfig c{};
  const int64_t bx = std::min<int64_t>(kShortConvThreads, ceil_div(n_cvec, 32) * 32);
  const int64_t by = kShortConvThreads / bx;
  const int64_t resident = int64_t(dev.sm_count) * dev.max_threads_per_sm;
  c.chunk = 64;
  while (c.chunk > 8 && ceil_div(n_tokens, c.chunk) * n_cvec < resident / 2) c.chunk /= 2;
  c.chunk_shift = c.chunk == 64 ? 6 : c.chunk == 32 ? 5 : c.chunk == 16 ? 4 : 3;
  c.dense_chunks = std::max<int64_t>(1, ceil_div(dense_len, c.chunk));
  const int64_t ids = packed ? n_seq + n_tokens / c.chunk : n_seq * c.dense_chunks;
  c.block = dim3(unsigned(bx), unsigned(by));
  c.grid = dim3(unsigned(ceil_div(ids, by)), unsigned(ceil_div(n_cvec, bx)));
  return c;
}

// ---- short_conv_update -----------------------------------------------------------------------------------
// One thread per (sequence, V channels): 3 input vectors, K-1 state vectors in, 1 output and K-1 state vectors
// out, all 16-byte and coalesced along channels. Flat index over B x D/V in 128-thread blocks (one block is one
// bf16 row of 1024 channels); batch 256 -> 256 blocks, ~32K threads, every load issued before the first use.
constexpr int kUpdateThreads = 128;
inline dim3 short_conv_update_grid(int64_t batch, int64_t n_cvec) {
  return dim3(unsigned(ceil_div(batch * n_cvec, kUpdateThreads)));
}

// ---- qk_norm_rope_append ---------------------------------------------------------------------------------
// One block per token: its cos/sin table (d/2 accurate sincosf) is computed once into shared memory and
// shared by all Hq + Hkv heads. A head is handled by a group of P = next_pow2(d / (2 V)) lanes; each lane
// holds V elements of the first half and their V rotate-half partners of the second half, so RoPE needs no
// exchange and the RMS is a P-lane shuffle sum (d = 64 bf16: 4 lanes, 8 heads per warp). Threads: enough for
// all heads of the token, at most 256 (more heads loop); 16 + 8 heads x 4 lanes = 96 threads.
inline unsigned qk_norm_rope_threads(int64_t heads, int lanes_per_head) {
  return unsigned(std::min<int64_t>(256, ceil_div(heads * lanes_per_head, 32) * 32));
}

// ---- gqa_decode ------------------------------------------------------------------------------------------
// One 128-thread block per (sequence, KV head, tile of <= 8 query heads of its group, split of the tokens).
// Each K/V row of the KV head is read once and used for every query head of the tile (the whole group when
// G <= 8: G = 2 for LFM2.5-350M). Within a block, groups of d/V lanes hold one row (d = 64 bf16: 8 lanes, 4
// tokens per warp) and each lane keeps 2 x 4 16-byte loads in flight (4 tokens per group per step): 16 KiB in
// flight per block.
// Split count (flash-decoding): without splitting there are B x Hkv x tiles blocks; we want at least 4 blocks
// per SM (64 KiB of loads in flight per SM covers HBM latency x bandwidth), so
//   n_split = ceil(4 x SMs / (B x Hkv x tiles)), clamped to [1, min(128, ceil(capacity / 256))]
// where capacity is the most tokens a sequence can hold (block_size, or max_blocks x block_size when paged):
// known on the host without reading seq_lens. Each block then takes ceil(len / n_split) tokens of its own
// sequence (rounded up to whole block steps), so the work adapts to the actual lengths on the device.
// Batch 1 x 32768 tokens: 8 units -> 66 splits of ~500 tokens, 528 blocks. Batch 64 x 4096: 512 units -> 2
// splits. Batch 256: 1 split, no combine launch and no workspace.
constexpr int kGqaWarps = 4;
constexpr int kGqaThreads = kGqaWarps * 32;
constexpr int kGqaMaxSplits = 128, kGqaMinSplitTokens = 256;
inline int gqa_split_count(const Device& dev, int64_t units, int64_t capacity) {
  const int64_t want = ceil_div(4 * int64_t(dev.sm_count), std::max<int64_t>(units, 1));
  const int64_t most = std::min<int64_t>(kGqaMaxSplits, std::max<int64_t>(1, ceil_div(capacity, kGqaMinSplitTokens)));
  return int(std::max<int64_t>(1, std::min(want, most)));
}
// Combine: one warp per (sequence, query head), 4 per block.
inline dim3 gqa_combine_grid(int64_t batch, int64_t n_q_heads) {
  return dim3(unsigned(ceil_div(batch * n_q_heads, 4)));
}

// ---- rms_norm --------------------------------------------------------------------------------------------
// A row is handled by R = next_pow2(ceil(D / (4 V))) threads (32..1024), each keeping up to 4 16-byte vectors
// of the row in registers between the sum of squares and the output (longer rows re-read the rest); 128/R rows
// per block when R < 128. D = 1024 bf16: 128 vectors -> 32 threads (one warp) per row, 4 rows per block.
constexpr int kRmsVectorsPerThread = 4;
struct RmsNormConfig {
  dim3 grid, block;
};
inline RmsNormConfig rms_norm_config(int64_t rows, int64_t n_vec) {
  int64_t per_row = 32;
  while (per_row < 1024 && per_row * kRmsVectorsPerThread < n_vec) per_row *= 2;
  const int64_t rows_per_block = std::max<int64_t>(1, 128 / per_row);
  return RmsNormConfig{dim3(unsigned(ceil_div(rows, rows_per_block))),
                       dim3(unsigned(per_row), unsigned(rows_per_block))};
}

}  // namespace lfm25::cuda
