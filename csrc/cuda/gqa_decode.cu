// gqa_decode on CUDA: out[b, h] = softmax(scale * q[b, h] . K^T) V over the first seq_lens[b] cached tokens of
// sequence b, KV head h / G (G = Hq / Hkv). q [B, Hq, d] (strided), caches [n_blocks, block_size, Hkv, d] with
// block_table [B, max_blocks] (paged) or without (contiguous: block b, block_size = L_max), out [B, Hq, d].
// The caches are stored as CDT: q's DT, or fp16 / bf16 under fp32 q (rows are laid out for CDT's vectors).
// Parallelisation (flash-decoding, launch arithmetic in launch.cuh):
//   1. split kernel: one 128-thread block per (sequence, KV head, tile of GT <= 8 query heads, token split).
//      Groups of d/V lanes hold one K/V row as 16-byte vectors (d = 64 bf16: 8 lanes, 4 tokens per warp); each
//      row is read once for all GT query heads of the tile. Each group steps over U tokens at a time with all
//      2U loads issued first, keeps an online softmax (exp2, scores pre-scaled by log2 e) per query head, and
//      the groups and warps are merged at the end (shuffles, then shared memory). With one split the block
//      writes the normalised output; otherwise (m, l, unnormalised acc) go to a stream-ordered fp32 workspace.
//   2. combine kernel (only when split): one warp per (sequence, query head), the log-sum-exp merge.
// Split boundaries come from each sequence's own length on the device; the split count only from sizes known
// on the host, so the launch is CUDA-graph capturable for any lengths. seq_lens are clamped to [0, capacity];
// a token whose block_table entry is outside [0, n_blocks) is skipped; seq_len 0 gives zeros. NaN in q, K or V,
// or a score that overflows to +inf, gives NaN as softmax does.
#include <algorithm>

#include "common.cuh"
#include "launch.cuh"
#include "lfm25/cuda_ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// Merge (m2, l2, acc2) into (m, l, acc): both hold sum_j e^(s_j - m) terms in log2 units.
template <int V>
__device__ __forceinline__ void merge(float& m, float& l, float (&acc)[V], float m2, float l2, const float (&acc2)[V]) {
  const float M = fmaxf(m, m2);
  if (M == -INFINITY) return;  // both empty
  const float a = exp2f(m - M), b = exp2f(m2 - M);
  l = l * a + l2 * b;
#pragma unroll
  for (int i = 0; i < V; ++i) acc[i] = acc[i] * a + acc2[i] * b;
  m = M;
}

// Tokens of sequence b attended over: seq_lens[b] clamped to [0, capacity], 0 for a contiguous cache's missing row.
__device__ __forceinline__ int64_t sequence_length(const GqaDecodeParams& p, int64_t b) {
  const int64_t capacity = p.block_table_given ? p.max_blocks * p.block_size : p.block_size;
  if (!p.block_table_given && b >= p.n_blocks) return 0;
  return min(max(int64_t(__ldg(p.seq_lens + b)), int64_t(0)), capacity);
}

// 1 / l for the output; l = 0 only without tokens (zeros) or when every score is -inf (NaN, as softmax gives),
// and a NaN l stays NaN.
__device__ __forceinline__ float inverse_sum(float l, int64_t len) {
  return l != 0.0f ? 1.0f / l : len > 0 ? __int_as_float(0x7fc00000) : 0.0f;
}

template <DType DT, int HD, int GT>
struct GqaShape {
  static constexpr int V = kVecOf<DT>;              // elements per lane of a row (16 bytes)
  static constexpr int kLanes = HD / V;             // lanes that hold a row
  static constexpr int P = next_pow2(kLanes);       // lanes per token group
  static constexpr int kGroups = 32 / P;            // token groups per warp
  static constexpr int U = GT >= 8 ? 2 : 4;         // tokens per group per step (registers: GT x V q and acc)
  static constexpr int kStep = kGqaWarps * kGroups * U;  // tokens per block per step
  static_assert(P <= 32, "a row must fit a warp");
};

// Blocks per SM the register budget must allow: 65536 / (128 x blocks) registers per thread, so 128 for
// GT <= 2, 170 for GT = 4 and the 255 a thread can have for GT = 8 (the q and acc registers grow with GT x V).
// Without the minimum, ptxas picks a lower cap for some tiles and spills.
template <int GT> constexpr int kGqaMinBlocks = GT <= 2 ? 4 : GT == 4 ? 3 : 2;

template <DType DT, DType CDT, int HD, int GT, bool kVec>
__global__ void __launch_bounds__(kGqaThreads, kGqaMinBlocks<GT>)
gqa_split_kernel(const GqaDecodeParams p, const int n_split, const int n_tiles, float* __restrict__ ws) {
  using S = Storage<DT>;
  using T = typename S::T;
  using C = Storage<CDT>;
  using CT = typename C::T;
  using Sh = GqaShape<CDT, HD, GT>;   // a lane's share of a cache row
  constexpr int V = Sh::V, P = Sh::P, U = Sh::U;
  __shared__ float sm_m[kGqaWarps][GT], sm_l[kGqaWarps][GT], sm_acc[kGqaWarps][GT][HD];

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int sub = lane % P, group = warp * Sh::kGroups + lane / P;
  const bool lane_on = sub < Sh::kLanes;
  unsigned bid = blockIdx.x;  // 32-bit index arithmetic: grids stay below 2^31 blocks
  const int split = int(bid % unsigned(n_split));
  bid /= unsigned(n_split);
  const int tile = int(bid % unsigned(n_tiles));
  bid /= unsigned(n_tiles);
  const int64_t kh = bid % unsigned(p.n_kv_heads), b = bid / unsigned(p.n_kv_heads);
  const int64_t G = p.n_q_heads / p.n_kv_heads;

  const int64_t len = sequence_length(p, b);
  const int64_t per_split = ceil_div(ceil_div(len, n_split), Sh::kStep) * Sh::kStep;
  const int64_t t0 = split * per_split, t1 = min(len, t0 + per_split);

  // q of the tile's heads, this lane's V elements, pre-scaled so that exp2(score) = e^(scale q.k)
  const float qscale = float(p.scale) * kLog2e;
  float q[GT][V];
#pragma unroll
  for (int g = 0; g < GT; ++g) {
    const int64_t hg = int64_t(tile) * GT + g;
    const T* qp = static_cast<const T*>(p.q) + b * p.q_batch_stride + (kh * G + hg) * p.q_head_stride + sub * V;
#pragma unroll
    for (int i = 0; i < V; ++i) q[g][i] = (hg < G && lane_on) ? S::load(__ldg(qp + i)) * qscale : 0.0f;
  }
  float m[GT], l[GT], acc[GT][V];
#pragma unroll
  for (int g = 0; g < GT; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int i = 0; i < V; ++i) acc[g][i] = 0.0f;
  }

  const CT* kc = static_cast<const CT*>(p.k_cache) + kh * p.cache_head_stride + sub * V;
  const CT* vc = static_cast<const CT*>(p.v_cache) + kh * p.cache_head_stride + sub * V;
  const bool paged = p.block_table_given != 0;
  const int32_t* table = p.block_table + b * p.block_table_stride;
  // the same trip count for every thread of the block (the shuffles need whole warps)
  // token positions fit 32 bits (seq_lens are int32): the paged walk divides once per step, in 32 bits
  const unsigned bs = unsigned(min(p.block_size, int64_t(0x7fffffff)));
  for (int64_t step = t0; step < t1; step += Sh::kStep) {
    CT kr[U][V], vr[U][V];
    bool ok[U];
    const unsigned first = unsigned(step) + unsigned(group) * U;  // this group's U consecutive tokens
    unsigned page = first / bs, off = first % bs;
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t t = int64_t(first) + u;
      if (u > 0 && ++off == bs) off = 0, ++page;
      int64_t blk = b;
      if (paged) blk = t < t1 ? __ldg(table + page) : -1;
      ok[u] = t < t1 && blk >= 0 && blk < p.n_blocks;
      if (ok[u] && lane_on) {
        const int64_t row = blk * p.cache_block_stride + int64_t(paged ? off : first + u) * p.cache_token_stride;
        load_raw<CT, V, kVec>(kc + row, kr[u]);
        load_raw<CT, V, kVec>(vc + row, vr[u]);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) kr[u][i] = vr[u][i] = C::store(0.0f);
      }
    }
    float s[U][GT];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kf[V];
#pragma unroll
      for (int i = 0; i < V; ++i) kf[i] = C::load(kr[u][i]);
#pragma unroll
      for (int g = 0; g < GT; ++g) {
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < V; ++i) dot = fmaf(q[g][i], kf[i], dot);
        dot = group_sum<P>(dot);
        s[u][g] = ok[u] ? dot : -INFINITY;
      }
    }
#pragma unroll
    for (int g = 0; g < GT; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[u][g]);
      if (mx == -INFINITY) {   // every score so far -inf (weight 0) or NaN, which fmaxf drops
        bool nan = false;
#pragma unroll
        for (int u = 0; u < U; ++u) nan |= isnan(s[u][g]);
        // NOTE: m = +inf poisons every later step and merge (e^(inf - inf) is NaN), so NaN reaches the output
        if (nan) m[g] = INFINITY, l[g] = __int_as_float(0x7fc00000);
        continue;
      }
      const float alpha = exp2f(m[g] - mx);
      l[g] *= alpha;
#pragma unroll
      for (int i = 0; i < V; ++i) acc[g][i] *= alpha;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float e = exp2f(s[u][g] - mx);
        l[g] += e;
#pragma unroll
        for (int i = 0; i < V; ++i) acc[g][i] = fmaf(e, C::load(vr[u][i]), acc[g][i]);
      }
      m[g] = mx;
    }
  }

  // merge the token groups of each warp (butterfly: every group ends with the warp's total)
#pragma unroll
  for (int off = P; off < 32; off *= 2) {
#pragma unroll
    for (int g = 0; g < GT; ++g) {
      float acc2[V];
#pragma unroll
      for (int i = 0; i < V; ++i) acc2[i] = __shfl_xor_sync(0xffffffffu, acc[g][i], off);
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], off), l2 = __shfl_xor_sync(0xffffffffu, l[g], off);
      merge<V>(m[g], l[g], acc[g], m2, l2, acc2);
    }
  }
  // then the warps, through shared memory; warp 0's first group finishes
  if (lane < P && lane_on) {
#pragma unroll
    for (int g = 0; g < GT; ++g) {
#pragma unroll
      for (int i = 0; i < V; ++i) sm_acc[warp][g][sub * V + i] = acc[g][i];
      if (sub == 0) sm_m[warp][g] = m[g], sm_l[warp][g] = l[g];
    }
  }
  __syncthreads();
  if (warp != 0 || lane >= P || !lane_on) return;
#pragma unroll
  for (int g = 0; g < GT; ++g) {
#pragma unroll
    for (int w = 1; w < kGqaWarps; ++w) {
      float acc2[V];
#pragma unroll
      for (int i = 0; i < V; ++i) acc2[i] = sm_acc[w][g][sub * V + i];
      merge<V>(m[g], l[g], acc[g], sm_m[w][g], sm_l[w][g], acc2);
    }
    const int64_t hg = int64_t(tile) * GT + g;
    if (hg >= G) continue;
    const int64_t bh = b * p.n_q_heads + kh * G + hg;
    if (n_split == 1) {
      const float inv = inverse_sum(l[g], len);
      float o[V];
#pragma unroll
      for (int i = 0; i < V; ++i) o[i] = acc[g][i] * inv;
      store_f32<DT, V, true>(static_cast<T*>(p.out) + bh * HD + sub * V, o);
    } else {
      // workspace: [B*Hq, n_split, HD] accumulators (16-byte aligned rows), then [B*Hq, n_split] (m, l)
      const int64_t rec = bh * n_split + split;
      store_f32<DType::kF32, V, true>(ws + rec * HD + sub * V, acc[g]);
      if (sub == 0) reinterpret_cast<float2*>(ws + p.batch * p.n_q_heads * n_split * HD)[rec] = make_float2(m[g], l[g]);
    }
  }
}

template <DType DT, int HD>
__global__ void __launch_bounds__(128) gqa_combine_kernel(const GqaDecodeParams p, const int n_split,
                                                          const float* __restrict__ ws) {
  using S = Storage<DT>;
  constexpr int kPer = HD / 32;  // elements per lane
  const int lane = threadIdx.x % 32;
  const int64_t bh = int64_t(blockIdx.x) * 4 + threadIdx.x / 32;
  if (bh >= p.batch * p.n_q_heads) return;
  const float* acc = ws + bh * n_split * HD;
  const float2* ml = reinterpret_cast<const float2*>(ws + p.batch * p.n_q_heads * n_split * HD) + bh * n_split;
  float M = -INFINITY;
  for (int s = lane; s < n_split; s += 32) M = fmaxf(M, ml[s].x);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) M = fmaxf(M, __shfl_xor_sync(0xffffffffu, M, o));
  float L = 0.0f, o[kPer] = {};
  if (M != -INFINITY) {
    for (int s = 0; s < n_split; ++s) {
      const float2 r = ml[s];
      if (r.x == -INFINITY) continue;
      const float f = exp2f(r.x - M);
      L = fmaf(r.y, f, L);
#pragma unroll
      for (int i = 0; i < kPer; ++i) o[i] = fmaf(acc[s * HD + lane + 32 * i], f, o[i]);
    }
  }
  const float inv = inverse_sum(L, sequence_length(p, bh / p.n_q_heads));
  typename S::T* out = static_cast<typename S::T*>(p.out) + bh * HD;
#pragma unroll
  for (int i = 0; i < kPer; ++i) out[lane + 32 * i] = S::store(o[i] * inv);
}

template <DType DT, DType CDT, int HD, int GT, bool kVec>
Status launch(const GqaDecodeParams& p, cudaStream_t stream) {
  const int64_t G = p.n_q_heads / p.n_kv_heads;
  const int n_tiles = int(ceil_div(G, GT));
  const int64_t units = p.batch * p.n_kv_heads * n_tiles;
  const int64_t capacity = p.block_table_given ? p.max_blocks * p.block_size : p.block_size;
  int n_split = gqa_split_count(device(), units, capacity);
  float* ws = nullptr;
  if (n_split > 1) {
    const size_t bytes = size_t(p.batch * p.n_q_heads) * n_split * (HD + 2) * sizeof(float);
    ws = static_cast<float*>(workspace_alloc(bytes, stream));
    if (!ws) n_split = 1;  // no scratch memory: one split per block, still correct
  }
  Status s = LFM25_CUDA_LAUNCH((gqa_split_kernel<DT, CDT, HD, GT, kVec>), unsigned(units * n_split), kGqaThreads,
                              0, stream, p, n_split, n_tiles, ws);
  if (s == Status::kOk && n_split > 1)
    s = LFM25_CUDA_LAUNCH((gqa_combine_kernel<DT, HD>), gqa_combine_grid(p.batch, p.n_q_heads), 128, 0, stream, p,
                          n_split, ws);
  workspace_free(ws, stream);
  return s;
}

template <DType DT, DType CDT, int HD>
Status dispatch(const GqaDecodeParams& p, cudaStream_t stream) {
  constexpr int V = kVecOf<CDT>;
  const int64_t G = p.n_q_heads / p.n_kv_heads;
  const bool vec = aligned16(p.k_cache) && aligned16(p.v_cache) && p.cache_block_stride % V == 0 &&
                   p.cache_token_stride % V == 0 && p.cache_head_stride % V == 0;
  // NOTE: the element-wise fallback (caches not 16-byte aligned) is built for tiles of 8 heads only, to keep the
  // number of kernels down; it is correct for every group size, just slower.
  if (!vec) return launch<DT, CDT, HD, 8, false>(p, stream);
  if (G <= 1) return launch<DT, CDT, HD, 1, true>(p, stream);
  if (G <= 2) return launch<DT, CDT, HD, 2, true>(p, stream);
  if (G <= 4) return launch<DT, CDT, HD, 4, true>(p, stream);
  return launch<DT, CDT, HD, 8, true>(p, stream);
}

}  // namespace

Status gqa_decode(const GqaDecodeParams& p, void* stream) {
  if (p.batch <= 0) return Status::kOk;
  if (p.n_kv_heads <= 0 || p.n_q_heads % p.n_kv_heads != 0 || p.block_size <= 0) return Status::kUnsupportedShape;
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return dispatch<DT, CDT, HD>(p, s); });
  });
}

}  // namespace lfm25::cuda
