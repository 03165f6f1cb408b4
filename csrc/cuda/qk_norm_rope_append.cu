// qk_norm_rope_append on CUDA, one launch: one warp per (token, head) over the Hq query heads and then the
// Hkv key heads; lane l holds elements l, l+32, ... of the head. RMSNorm with a warp reduction, then RoPE:
// the normalised head goes through shared memory so each element meets its rotate-half partner. A key warp
// also copies its v head; both go to cache slot slot_mapping[n] (skipped when -1 or out of range).
// Blocks of 4 warps; grid = ceil(N * (Hq + Hkv) / 4).
#include "common.cuh"
#include "lfm25/cuda_ops.h"

namespace lfm25::cuda {
namespace {

constexpr int kWarps = 4;

template <DType DT, int HD>
__global__ void __launch_bounds__(kWarps * 32) qk_norm_rope_kernel(const QkNormRopeAppendParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int kPer = HD / 32, kHalf = HD / 2;
  __shared__ float xs[kWarps][HD];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t heads = p.n_q_heads + p.n_kv_heads;
  const int64_t item = int64_t(blockIdx.x) * kWarps + warp;
  if (item >= p.n_tokens * heads) return;
  const int64_t n = item / heads, h = item % heads;
  const bool is_q = h < p.n_q_heads;
  const int64_t kh = h - p.n_q_heads;
  const int64_t slot = p.slot_mapping[n];
  const int64_t n_slots = p.n_blocks * p.block_size;
  const bool write_kv = !is_q && slot >= 0 && slot < n_slots;
  if (!is_q && !write_kv) return;
  const T* src = is_q ? static_cast<const T*>(p.q) + n * p.q_token_stride + h * p.q_head_stride
                      : static_cast<const T*>(p.k) + n * p.k_token_stride + kh * p.k_head_stride;
  const void* w = is_q ? p.q_norm_weight : p.k_norm_weight;
  float v[kPer];
  float ss = 0.0f;
  for (int j = 0; j < kPer; ++j) v[j] = S::load(src[lane + 32 * j]), ss = fmaf(v[j], v[j], ss);
  const float r = rsqrtf(warp_sum(ss) / float(HD) + float(p.eps));
  for (int j = 0; j < kPer; ++j) {
    const int e = lane + 32 * j;
    xs[warp][e] = load_weight(w, p.weight_dtype, e) * (v[j] * r);
  }
  __syncwarp();
  const float pos = float(p.positions[n]);
  T* dst;
  if (is_q) {
    dst = static_cast<T*>(p.q_out) + (n * p.n_q_heads + h) * HD;
  } else {
    const int64_t base = (slot / p.block_size) * p.cache_block_stride + (slot % p.block_size) * p.cache_token_stride +
                         kh * p.cache_head_stride;
    dst = static_cast<T*>(p.k_cache) + base;
    const T* vs = static_cast<const T*>(p.v) + n * p.v_token_stride + kh * p.v_head_stride;
    T* vd = static_cast<T*>(p.v_cache) + base;
    for (int j = 0; j < kPer; ++j) vd[lane + 32 * j] = vs[lane + 32 * j];
  }
  for (int j = 0; j < kPer; ++j) {
    const int e = lane + 32 * j, i = e % kHalf;
    float sn, cs;
    sincosf(pos * p.inv_freq[i], &sn, &cs);       // accurate sincosf: positions reach 32K and beyond
    const float out = e < kHalf ? xs[warp][e] * cs - xs[warp][e + kHalf] * sn
                                : xs[warp][e] * cs + xs[warp][e - kHalf] * sn;
    dst[e] = S::store(out);
  }
}

template <DType DT, int HD>
Status launch(const QkNormRopeAppendParams& p, cudaStream_t stream) {
  const int64_t items = p.n_tokens * (p.n_q_heads + p.n_kv_heads);
  if (items > 0) qk_norm_rope_kernel<DT, HD><<<unsigned((items + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(p);
  return launched();
}

}  // namespace

Status qk_norm_rope_append(const QkNormRopeAppendParams& p, void* stream) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return launch<DT, HD>(p, static_cast<cudaStream_t>(stream)); });
  });
}

}  // namespace lfm25::cuda
