// qk_norm_rope_append on CUDA, one launch: per token n and head h (d = head_dim, half = d/2)
//   x' = w * x / sqrt(mean(x^2) + eps)   (fp32; q_norm_weight for query heads, k_norm_weight for key heads)
//   out[i] = x'[i] cos(a_i) - x'[i+half] sin(a_i),  out[i+half] = x'[i+half] cos(a_i) + x'[i] sin(a_i),
//   a_i = float(pos) * inv_freq[i]
// q heads -> q_out [N, Hq, d]; k heads -> k_cache, v heads copied -> v_cache, at flat slot slot_mapping[n]
// (skipped when -1 or out of range), in the caches' dtype CDT (the activations' DT, or fp16 / bf16 under
// fp32). q, k, v may be strided views of one qkv projection.
// Parallelisation: one block per token; its cos/sin table is computed once (accurate sincosf: positions reach
// 32K and beyond) into shared memory. Each head is handled by a group of P lanes, each holding V elements of
// the first half and their rotate-half partners (16-byte loads each), so RoPE needs no exchange between lanes
// and the RMS is a P-lane shuffle sum. A key group also copies its v head. Launch arithmetic: launch.cuh.
#include "common.cuh"
#include "launch.cuh"
#include "lfm25/cuda_ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {
namespace {

template <DType DT, DType CDT, int HD, bool kVec>
__global__ void __launch_bounds__(256) qk_norm_rope_append_kernel(const QkNormRopeAppendParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  using CT = typename Storage<CDT>::T;
  constexpr int kHalf = HD / 2;
  constexpr int V = kVecOf<DT>;                 // elements per lane in each half (16 bytes when kVec)
  constexpr int kLanes = kHalf / V;             // lanes that hold data
  constexpr int P = next_pow2(kLanes);          // lanes per head group (power of two for the shuffles)
  static_assert(kHalf % V == 0 && P <= 32, "head_dim must split into 16-byte vectors");
  __shared__ float cs[kHalf], sn[kHalf];

  const int64_t n = blockIdx.x;
  const float pos = float(__ldg(p.positions + n));
  for (int i = threadIdx.x; i < kHalf; i += blockDim.x) sincosf(pos * __ldg(p.inv_freq + i), &sn[i], &cs[i]);
  __syncthreads();

  const int sub = threadIdx.x % P, group = threadIdx.x / P, groups = blockDim.x / P;
  const bool lane_on = sub < kLanes;
  const int e0 = sub * V;                      // this lane's first element in each half
  const int64_t Hq = p.n_q_heads, heads = Hq + p.n_kv_heads;
  const int64_t slot = __ldg(p.slot_mapping + n);
  const bool write_kv = slot >= 0 && slot < p.n_blocks * p.block_size;
  const int64_t cache_row = write_kv ? (slot / p.block_size) * p.cache_block_stride +
                                           (slot % p.block_size) * p.cache_token_stride
                                     : 0;
  float wq[2][V], wk[2][V];
  if (lane_on) {
    load_weights<V, kVec>(p.q_norm_weight, p.weight_dtype, e0, wq[0]);
    load_weights<V, kVec>(p.q_norm_weight, p.weight_dtype, kHalf + e0, wq[1]);
    load_weights<V, kVec>(p.k_norm_weight, p.weight_dtype, e0, wk[0]);
    load_weights<V, kVec>(p.k_norm_weight, p.weight_dtype, kHalf + e0, wk[1]);
  }

  // the trip count is the same for every lane of the block (shuffles below need whole warps)
  for (int64_t base = 0; base < heads; base += groups) {
    const int64_t h = base + group;
    const bool is_q = h < Hq, active = lane_on && h < heads;
    const int64_t kh = h - Hq;
    const T* src = is_q ? static_cast<const T*>(p.q) + n * p.q_token_stride + h * p.q_head_stride
                        : static_cast<const T*>(p.k) + n * p.k_token_stride + kh * p.k_head_stride;
    float lo[V] = {}, hi[V] = {};
    if (active) {
      load_f32<DT, V, kVec>(src + e0, lo);
      load_f32<DT, V, kVec>(src + kHalf + e0, hi);
    }
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i) ss = fmaf(lo[i], lo[i], fmaf(hi[i], hi[i], ss));
    ss = group_sum<P>(ss);
    if (!active || (!is_q && !write_kv)) continue;
    const float r = 1.0f / sqrtf(ss / float(HD) + float(p.eps));
    float out_lo[V], out_hi[V];
#pragma unroll
    for (int i = 0; i < V; ++i) {
      const float a = (is_q ? wq[0][i] : wk[0][i]) * (lo[i] * r), b = (is_q ? wq[1][i] : wk[1][i]) * (hi[i] * r);
      const float c = cs[e0 + i], s = sn[e0 + i];
      out_lo[i] = a * c - b * s;
      out_hi[i] = b * c + a * s;
    }
    if (is_q) {
      T* dst = static_cast<T*>(p.q_out) + (n * Hq + h) * HD;
      store_f32<DT, V, kVec>(dst + e0, out_lo);
      store_f32<DT, V, kVec>(dst + kHalf + e0, out_hi);
      continue;
    }
    CT* dst = static_cast<CT*>(p.k_cache) + cache_row + kh * p.cache_head_stride;
    store_f32<CDT, V, kVec>(dst + e0, out_lo);
    store_f32<CDT, V, kVec>(dst + kHalf + e0, out_hi);
    const T* vs = static_cast<const T*>(p.v) + n * p.v_token_stride + kh * p.v_head_stride;
    CT* vd = static_cast<CT*>(p.v_cache) + cache_row + kh * p.cache_head_stride;
    if constexpr (CDT == DT) {
      T v_lo[V], v_hi[V];
      load_raw<T, V, kVec>(vs + e0, v_lo);
      load_raw<T, V, kVec>(vs + kHalf + e0, v_hi);
      store_raw<T, V, kVec>(vd + e0, v_lo);
      store_raw<T, V, kVec>(vd + kHalf + e0, v_hi);
    } else {   // converted: V fp32 values make 8 bytes of CT, so element-wise stores
      float v_lo[V], v_hi[V];
      load_f32<DT, V, kVec>(vs + e0, v_lo);
      load_f32<DT, V, kVec>(vs + kHalf + e0, v_hi);
      store_f32<CDT, V, kVec>(vd + e0, v_lo);
      store_f32<CDT, V, kVec>(vd + kHalf + e0, v_hi);
    }
  }
}

template <DType DT, DType CDT, int HD, bool kVec>
Status launch(const QkNormRopeAppendParams& p, cudaStream_t stream) {
  constexpr int P = next_pow2(HD / 2 / kVecOf<DT>);
  const unsigned threads = qk_norm_rope_threads(p.n_q_heads + p.n_kv_heads, P);
  return LFM25_CUDA_LAUNCH((qk_norm_rope_append_kernel<DT, CDT, HD, kVec>), unsigned(p.n_tokens), threads, 0, stream,
                           p);
}

}  // namespace

Status qk_norm_rope_append(const QkNormRopeAppendParams& p, void* stream) {
  if (p.n_tokens <= 0) return Status::kOk;
  if (p.n_q_heads <= 0 || p.n_kv_heads <= 0 || p.block_size <= 0) return Status::kUnsupportedShape;
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    constexpr int V = kVecOf<DT>;
    // 16-byte accesses when every head start is a 16-byte multiple (q_out is allocated contiguous); the norm
    // weights are read with the same width, in their own dtype
    const bool vec = aligned16(p.q) && aligned16(p.k) && aligned16(p.v) && aligned16(p.k_cache) &&
                     aligned16(p.v_cache) && aligned16(p.q_out) && aligned16(p.q_norm_weight) &&
                     aligned16(p.k_norm_weight) && p.q_token_stride % V == 0 && p.q_head_stride % V == 0 &&
                     p.k_token_stride % V == 0 && p.k_head_stride % V == 0 && p.v_token_stride % V == 0 &&
                     p.v_head_stride % V == 0 && p.cache_block_stride % V == 0 && p.cache_token_stride % V == 0 &&
                     p.cache_head_stride % V == 0;
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_BOOL_SWITCH(vec, kVec, [&] {
      return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return launch<DT, CDT, HD, kVec>(p, s); });
    });
  });
}

}  // namespace lfm25::cuda
