// short_conv on CUDA: y = C * conv_K(B * X) from the in_proj output in one pass, plus a second tiny launch
// for the final states.
//   1. outputs: one thread per (token, VEC channels) -- VEC = 16 bytes of channels when pointers and strides
//      allow it; 128 threads cover 128 * VEC channels (1024 in bf16) of one token. The K-1 earlier U rows are
//      recomputed from bcx (L1/L2 hits from the neighbouring tokens' threads) or read from the initial state.
//   2. final states: one thread per (sequence, VEC channels), after (1) on the stream: (1) reads the initial
//      state of a sequence while (2) overwrites the same slot, so they must not share a launch.
// Packed batches find their sequence by binary search in cu_seqlens on the device: no host synchronisation,
// CUDA-graph capturable for any mix of lengths within fixed N. Out-of-range indices act as padding (-1).
#include "common.cuh"
#include "lfm25/cuda_ops.h"

namespace lfm25::cuda {
namespace {

constexpr int kThreads = 128;

struct Geometry {
  const ShortConvParams& p;
  __device__ int64_t seq_of(int64_t tok) const {  // largest s with cu[s] <= tok
    if (!p.cu_seqlens) return tok / p.seqlen;
    int64_t lo = 0, hi = p.batch - 1;
    while (lo < hi) {
      const int64_t mid = (lo + hi + 1) / 2;
      if (p.cu_seqlens[mid] <= tok) lo = mid; else hi = mid - 1;
    }
    return lo;
  }
  __device__ int64_t start(int64_t s) const { return p.cu_seqlens ? p.cu_seqlens[s] : s * p.seqlen; }
  __device__ int64_t length(int64_t s) const {
    return p.cu_seqlens ? int64_t(p.cu_seqlens[s + 1]) - p.cu_seqlens[s] : p.seqlen;
  }
  __device__ int64_t x_offset(int64_t s, int64_t t) const {
    return p.cu_seqlens ? (p.cu_seqlens[s] + t) * p.x_token_stride : s * p.x_batch_stride + t * p.x_token_stride;
  }
  __device__ int64_t y_offset(int64_t s, int64_t t) const {
    return p.cu_seqlens ? (p.cu_seqlens[s] + t) * p.y_token_stride : s * p.y_batch_stride + t * p.y_token_stride;
  }
  // -1: padding or an out-of-range index (no state, zero output); -2: no state tensor
  __device__ int64_t slot(int64_t s) const {
    if (!p.state) return -2;
    const int64_t v = p.state_indices ? p.state_indices[s] : s;
    return v >= 0 && v < p.n_slots ? v : -1;
  }
};

template <DType DT, int K, int VEC>
__global__ void __launch_bounds__(kThreads) outputs_kernel(const ShortConvParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  using P = Pack<T, VEC>;
  const Geometry g{p};
  const int64_t c = (int64_t(blockIdx.y) * kThreads + threadIdx.x) * VEC;
  const int64_t tok = blockIdx.x;
  if (c >= p.dim) return;
  const int64_t s = g.seq_of(tok);
  const int64_t t = tok - g.start(s) < tok ? tok - g.start(s) : tok;
  const int64_t slot = g.slot(s);
  const T* x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y) + g.y_offset(s, t) + c;
  P out;
  if (slot == -1) {
    for (int i = 0; i < VEC; ++i) out.v[i] = S::store(0.0f);
    *reinterpret_cast<P*>(y) = out;
    return;
  }
  const bool from_state = slot >= 0 && (!p.has_initial_state || p.has_initial_state[s]);
  float u[K][VEC];
  for (int k = 0; k < K; ++k) {
    const int64_t pos = t - (K - 1) + k;
    if (pos >= 0) {
      const P ug = gate<DT, VEC>(x + g.x_offset(s, pos) + c, p.dim);
      for (int i = 0; i < VEC; ++i) u[k][i] = S::load(ug.v[i]);
    } else if (from_state) {
      const P st = *reinterpret_cast<const P*>(static_cast<const T*>(p.state) + slot * p.state_slot_stride +
                                               (K - 1 + pos) * p.state_row_stride + c);
      for (int i = 0; i < VEC; ++i) u[k][i] = S::load(st.v[i]);
    } else {
      for (int i = 0; i < VEC; ++i) u[k][i] = 0.0f;
    }
  }
  const P cg = *reinterpret_cast<const P*>(x + g.x_offset(s, t) + p.dim + c);
  for (int i = 0; i < VEC; ++i) {
    const int64_t w = (c + i) * p.weight_stride;
    // z = w0*U[t-K+1], then fma(w_k, U[t-K+1+k], z): the order of short_conv_update.cu
    float z = __fmul_rn(load_weight(p.weight, p.weight_dtype, w), u[0][i]);
    for (int k = 1; k < K; ++k) z = fmaf(load_weight(p.weight, p.weight_dtype, w + k), u[k][i], z);
    out.v[i] = S::store(__fmul_rn(S::load(cg.v[i]), z));
  }
  *reinterpret_cast<P*>(y) = out;
}

template <DType DT, int K, int VEC>
__global__ void __launch_bounds__(kThreads) final_state_kernel(const ShortConvParams p) {
  using S = Storage<DT>;
  using T = typename S::T;
  using P = Pack<T, VEC>;
  const Geometry g{p};
  const int64_t c = (int64_t(blockIdx.y) * kThreads + threadIdx.x) * VEC;
  const int64_t s = blockIdx.x;
  const int64_t slot = g.slot(s);
  if (c >= p.dim || slot < 0) return;
  const int64_t len = g.length(s) > 0 ? g.length(s) : 0;
  T* st = static_cast<T*>(p.state) + slot * p.state_slot_stride + c;
  const bool from_state = !p.has_initial_state || p.has_initial_state[s];
  P rows[K - 1];
  for (int j = 0; j < K - 1; ++j) {   // read everything before writing: rows shift when len < K-1
    const int64_t t = len - (K - 1) + j;
    if (t >= 0) {
      rows[j] = gate<DT, VEC>(static_cast<const T*>(p.x) + g.x_offset(s, t) + c, p.dim);
    } else if (from_state) {
      rows[j] = *reinterpret_cast<const P*>(st + (K - 1 + t) * p.state_row_stride);
    } else {
      for (int i = 0; i < VEC; ++i) rows[j].v[i] = S::store(0.0f);
    }
  }
  for (int j = 0; j < K - 1; ++j) *reinterpret_cast<P*>(st + j * p.state_row_stride) = rows[j];
}

template <DType DT, int K, int VEC>
Status launch(const ShortConvParams& p, cudaStream_t stream) {
  const int64_t total = p.cu_seqlens ? p.seqlen : p.batch * p.seqlen;
  const unsigned channel_blocks = unsigned((p.dim / VEC + kThreads - 1) / kThreads);
  if (total > 0) outputs_kernel<DT, K, VEC><<<dim3(unsigned(total), channel_blocks), kThreads, 0, stream>>>(p);
  if (p.state && p.batch > 0)
    final_state_kernel<DT, K, VEC><<<dim3(unsigned(p.batch), channel_blocks), kThreads, 0, stream>>>(p);
  return launched();
}

}  // namespace

Status short_conv(const ShortConvParams& p, void* stream) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    using T = typename Storage<DT>::T;
    constexpr int kVec = 16 / sizeof(T);
    // 16-byte accesses when every row start is 16-byte aligned; one element at a time otherwise
    const bool vec = p.dim % kVec == 0 && aligned16(p.x) && aligned16(p.y) && (!p.state || aligned16(p.state)) &&
                     p.x_token_stride % kVec == 0 && p.x_batch_stride % kVec == 0 && p.y_token_stride % kVec == 0 &&
                     p.y_batch_stride % kVec == 0 && p.state_slot_stride % kVec == 0 &&
                     p.state_row_stride % kVec == 0;
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_WIDTH_SWITCH(p.width, K, [&] { return vec ? launch<DT, K, kVec>(p, s) : launch<DT, K, 1>(p, s); });
  });
}

}  // namespace lfm25::cuda
