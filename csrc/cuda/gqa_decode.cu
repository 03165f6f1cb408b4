// gqa_decode on CUDA: split-KV (flash-decoding) in two launches.
//   1. partials: one 128-thread block per (split, KV head, sequence); its 4 warps take every 4th token of the
//      split; lane l holds elements l, l+32, ... of each K/V row (a 64-wide bf16 row is one coalesced 128-byte
//      read), and the row is used for all G <= 8 query heads of the group (read once per group). Online softmax
//      per warp, merged across the warps in shared memory, written as (m, l, acc) to a workspace.
//   2. combine: one block per (sequence, query head), one thread per element: the log-sum-exp merge of the
//      splits; an empty sequence gives zeros.
// The split count comes from the SM count and the cache capacity known on the host (never from seq_lens, which
// stay on the device): n_split = clamp(ceil(2 * SMs / (B * Hkv)), 1, ceil(capacity / 256)). The workspace is
// stream-ordered (cudaMallocAsync), so the op stays CUDA-graph capturable. Tokens whose block_table entry is
// out of range are skipped; seq_lens are clamped to [0, capacity].
#include <algorithm>
#include <cmath>

#include "common.cuh"
#include "lfm25/cuda_ops.h"

namespace lfm25::cuda {
namespace {

constexpr int kWarps = 4, kMaxGroup = 8, kMinSplit = 256;

template <DType DT, int HD>
__global__ void __launch_bounds__(kWarps * 32) partial_kernel(const GqaDecodeParams p, int64_t split_len, float* ws) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int kPer = HD / 32;
  __shared__ float sm[kWarps][kMaxGroup], sl[kWarps][kMaxGroup], sacc[kWarps][kMaxGroup][HD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t split = blockIdx.x, kh = blockIdx.y, b = blockIdx.z;
  const int64_t G = p.n_q_heads / p.n_kv_heads, n_split = gridDim.x;
  const int64_t capacity = p.block_table ? p.max_blocks * p.block_size : p.block_size;
  const int64_t raw_len = p.seq_lens[b];
  const int64_t len = raw_len < 0 ? 0 : raw_len > capacity ? capacity : raw_len;
  const int64_t t0 = split * split_len, t1 = len < t0 + split_len ? len : t0 + split_len;

  float q[kMaxGroup][kPer], acc[kMaxGroup][kPer], m[kMaxGroup], l[kMaxGroup];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      acc[g][j] = 0.0f;
      q[g][j] = g < G ? S::load(static_cast<const T*>(p.q)[b * p.q_batch_stride + (kh * G + g) * p.q_head_stride +
                                                           lane + 32 * j]) * float(p.scale)
                      : 0.0f;
    }
  }
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
  for (int64_t t = t0 + warp; t < t1; t += kWarps) {
    const int64_t block = p.block_table ? p.block_table[b * p.block_table_stride + t / p.block_size] : b;
    if (block < 0 || block >= p.n_blocks) continue;
    const int64_t off = block * p.cache_block_stride + (t % p.block_size) * p.cache_token_stride + kh * p.cache_head_stride;
    float k[kPer], v[kPer];
#pragma unroll
    for (int j = 0; j < kPer; ++j) k[j] = S::load(kc[off + lane + 32 * j]), v[j] = S::load(vc[off + lane + 32 * j]);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= G) break;
      float s = 0.0f;
#pragma unroll
      for (int j = 0; j < kPer; ++j) s = fmaf(q[g][j], k[j], s);
      s = warp_sum(s);
      const float m_new = fmaxf(m[g], s), alpha = expf(m[g] - m_new), e = expf(s - m_new);
      l[g] = l[g] * alpha + e;
#pragma unroll
      for (int j = 0; j < kPer; ++j) acc[g][j] = fmaf(e, v[j], acc[g][j] * alpha);
      m[g] = m_new;
    }
  }
  // merge the 4 warps of this block
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (lane == 0) sm[warp][g] = m[g], sl[warp][g] = l[g];
#pragma unroll
    for (int j = 0; j < kPer; ++j) sacc[warp][g][lane + 32 * j] = acc[g][j];
  }
  __syncthreads();
  for (int64_t i = threadIdx.x; i < G * HD; i += kWarps * 32) {
    const int64_t g = i / HD, e = i % HD;
    float M = -INFINITY;
    for (int w = 0; w < kWarps; ++w) M = fmaxf(M, sm[w][g]);
    float L = 0.0f, a = 0.0f;
    if (M != -INFINITY) {
      for (int w = 0; w < kWarps; ++w) {
        if (sm[w][g] == -INFINITY) continue;
        const float f = expf(sm[w][g] - M);
        L += sl[w][g] * f;
        a += sacc[w][g][e] * f;
      }
    }
    // workspace layout: [B, Hq, n_split] records of (m, l, acc[HD])
    float* rec = ws + ((b * p.n_q_heads + kh * G + g) * n_split + split) * (HD + 2);
    if (e == 0) rec[0] = M, rec[1] = L;
    rec[2 + e] = a;
  }
}

template <DType DT, int HD>
__global__ void __launch_bounds__(HD) combine_kernel(const GqaDecodeParams p, int64_t n_split, const float* ws) {
  using S = Storage<DT>;
  const int64_t bh = blockIdx.x, e = threadIdx.x;
  const float* rec = ws + bh * n_split * (HD + 2);
  float M = -INFINITY;
  for (int64_t s = 0; s < n_split; ++s) M = fmaxf(M, rec[s * (HD + 2)]);
  float L = 0.0f, a = 0.0f;
  if (M != -INFINITY) {
    for (int64_t s = 0; s < n_split; ++s) {
      const float m = rec[s * (HD + 2)];
      if (m == -INFINITY) continue;
      const float f = expf(m - M);
      L += rec[s * (HD + 2) + 1] * f;
      a += rec[s * (HD + 2) + 2 + e] * f;
    }
  }
  static_cast<typename S::T*>(p.out)[bh * HD + e] = S::store(L > 0.0f ? a / L : 0.0f);
}

template <DType DT, int HD>
Status launch(const GqaDecodeParams& p, cudaStream_t stream) {
  if (p.batch == 0) return Status::kOk;
  const int64_t capacity = p.block_table ? p.max_blocks * p.block_size : p.block_size;
  const int64_t units = p.batch * p.n_kv_heads;
  int64_t n_split = (2 * device().sm_count + units - 1) / units;
  n_split = std::max<int64_t>(1, std::min<int64_t>(n_split, (capacity + kMinSplit - 1) / kMinSplit));
  const int64_t split_len = std::max<int64_t>(1, (capacity + n_split - 1) / n_split);
  float* ws = nullptr;
  const size_t bytes = size_t(p.batch * p.n_q_heads * n_split * (HD + 2)) * sizeof(float);
  if (cudaMallocAsync(&ws, bytes, stream) != cudaSuccess) return Status::kCudaError;
  partial_kernel<DT, HD><<<dim3(unsigned(n_split), unsigned(p.n_kv_heads), unsigned(p.batch)), kWarps * 32, 0, stream>>>(
      p, split_len, ws);
  combine_kernel<DT, HD><<<unsigned(p.batch * p.n_q_heads), HD, 0, stream>>>(p, n_split, ws);
  const Status s = launched();
  cudaFreeAsync(ws, stream);
  return s;
}

}  // namespace

Status gqa_decode(const GqaDecodeParams& p, void* stream) {
  if (p.n_q_heads % p.n_kv_heads || p.n_q_heads / p.n_kv_heads > kMaxGroup) return Status::kUnsupportedShape;
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return launch<DT, HD>(p, static_cast<cudaStream_t>(stream)); });
  });
}

}  // namespace lfm25::cuda
