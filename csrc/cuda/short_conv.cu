// short_conv on CUDA, one launch from the in_proj output to the gated output, states included:
//   U = round(B * X);  z[t] = sum_k w[k] * U[t-(K-1)+k] (fp32, U before token 0 = initial state or 0);
//   y[t] = round(C[t] * z[t]);  final state = the last K-1 U rows (old rows shift in when len < K-1).
// bcx [B, T, 3D] dense or [N, 3D] packed (cu_seqlens), y [.., D], state [S, K-1, D].
// Parallelisation: a thread owns one 16-byte vector of channels (V = 8 bf16/fp16, 4 fp32; one element when
// pointers or strides are not 16-byte multiples) of one chunk of consecutive tokens of one sequence and
// streams it with the K-1 window in registers; chunk sizes and the grid are derived in launch.cuh.
//
// The state race, and why there is none: a slot is read (initial state) and written (final state) in the same
// launch. Chunks start at multiples of `chunk` (>= 8 > K-1) within their sequence, so only chunk 0 reaches back
// before token 0: the thread of chunk 0 is the only reader of its slot's channels, and it is also the thread
// that writes the final state, after its reads. The final state's rows from the input (tokens len-K+1..len-1)
// are recomputed from bcx, which no thread writes. Sequences must use distinct slots (as on the CPU).
//
// Rounding: the same fma chain as short_conv_update.cu (conv_z), so chunked prefill == whole prefill and an
// update == a one-token prefill bit for bit. Out-of-range state indices act as padding (-1); cu_seqlens are
// clamped to [0, N] and made non-decreasing, so bad values never address memory outside bcx and y.
#include "conv_common.cuh"
#include "launch.cuh"
#include "lfm25/cuda_ops.h"
#include "lfm25/static_switch.h"

namespace lfm25::cuda {
namespace {

constexpr int kTokensPerStep = 2;  // B, C, X loads of 2 tokens issued before the first use

template <DType DT, int K, bool kVec>
__global__ void __launch_bounds__(kShortConvThreads)
short_conv_kernel(const ShortConvParams p, const int chunk_shift, const int64_t dense_chunks, const bool w_vec) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int V = kVec ? kVecOf<DT> : 1;
  const int64_t chunk = int64_t(1) << chunk_shift;
  const int64_t c0 = (int64_t(blockIdx.y) * blockDim.x + threadIdx.x) * V;
  const int64_t id = int64_t(blockIdx.x) * blockDim.y + threadIdx.y;
  if (c0 >= p.dim) return;  // no barriers below

  // 1. the sequence and chunk of this thread
  int64_t s, j, start = 0, len;
  if (p.cu_seqlens_given) {
    const int64_t N = p.seqlen;
    const auto start_of = [&](int64_t i) { return min(max(int64_t(__ldg(p.cu_seqlens + i)), int64_t(0)), N); };
    int64_t lo = 0, hi = p.batch;  // the largest s with s + start_s / chunk <= id (see launch.cuh)
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      if (mid + (start_of(mid) >> chunk_shift) <= id) lo = mid; else hi = mid;
    }
    s = lo;
    start = start_of(s);
    if (s + (start >> chunk_shift) > id) return;
    j = id - (s + (start >> chunk_shift));
    len = min(max(int64_t(__ldg(p.cu_seqlens + s + 1)), start), N) - start;
  } else {
    s = id / dense_chunks;
    j = id % dense_chunks;
    len = p.seqlen;
    if (s >= p.batch) return;
  }
  if (j >= max(ceil_div(len, chunk), int64_t(1))) return;
  const int64_t t_begin = j * chunk, t_end = min(len, t_begin + chunk);

  const T* x = static_cast<const T*>(p.x) + (p.cu_seqlens_given ? start * p.x_token_stride : s * p.x_batch_stride) + c0;
  T* y = static_cast<T*>(p.y) + (p.cu_seqlens_given ? start * p.y_token_stride : s * p.y_batch_stride) + c0;
  const int64_t D = p.dim, xs = p.x_token_stride, ys = p.y_token_stride;

  // 2. the state slot: none, padding (-1 or out of range), or a valid slot
  int64_t slot = -2;
  if (p.state_given) {
    slot = p.state_indices_given ? int64_t(__ldg(p.state_indices + s)) : s;
    if (slot < 0 || slot >= p.n_slots) {
      float zero[V] = {};
      for (int64_t t = t_begin; t < t_end; ++t) store_f32<DT, V, kVec>(y + t * ys, zero);
      return;
    }
  }
  const bool reads_init = slot >= 0 && (!p.has_initial_state_given || __ldg(p.has_initial_state + s));
  T* st = slot >= 0 ? static_cast<T*>(p.state) + slot * p.state_slot_stride + c0 : nullptr;

  float w[K][V];
  load_conv_weights<K, V, kVec>(p.weight, p.weight_dtype, p.weight_stride, c0, w_vec, w);

  // 3. the K-1 U rows before the chunk: from bcx, the initial state (chunk 0 only) or zeros
  float win[K - 1][V];
#pragma unroll
  for (int i = 0; i < K - 1; ++i) {
    const int64_t pos = t_begin - (K - 1) + i;
    if (pos >= 0) {
      T b[V], xx[V];
      load_raw<T, V, kVec>(x + pos * xs, b);
      load_raw<T, V, kVec>(x + pos * xs + 2 * D, xx);
#pragma unroll
      for (int e = 0; e < V; ++e) win[i][e] = S::load(gate_u<DT>(b[e], xx[e]));
    } else if (reads_init) {
      load_f32<DT, V, kVec, /*kNc=*/false>(st + (K - 1 + pos) * p.state_row_stride, win[i]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) win[i][e] = 0.0f;
    }
  }

  // 4. stream the chunk
  for (int64_t t = t_begin; t < t_end; t += kTokensPerStep) {
    T b[kTokensPerStep][V], c[kTokensPerStep][V], xx[kTokensPerStep][V];
#pragma unroll
    for (int r = 0; r < kTokensPerStep; ++r) {
      if (t + r < t_end) {
        const T* row = x + (t + r) * xs;
        load_raw<T, V, kVec>(row, b[r]);
        load_raw<T, V, kVec>(row + D, c[r]);
        load_raw<T, V, kVec>(row + 2 * D, xx[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < kTokensPerStep; ++r) {
      if (t + r < t_end) {
        float out[V];
#pragma unroll
        for (int e = 0; e < V; ++e) {
          const float u = S::load(gate_u<DT>(b[r][e], xx[r][e]));
          out[e] = __fmul_rn(S::load(c[r][e]), conv_z<K>(w, win, u, e));
#pragma unroll
          for (int k = 0; k < K - 2; ++k) win[k][e] = win[k + 1][e];
          win[K - 2][e] = u;
        }
        store_f32<DT, V, kVec>(y + (t + r) * ys, out);
      }
    }
  }

  // 5. final state, by chunk 0 (the only reader of this slot): rows len-K+1..len-1, all read before any write
  if (j != 0 || slot < 0 || (len == 0 && reads_init)) return;
  T rows[K - 1][V];
#pragma unroll
  for (int r = 0; r < K - 1; ++r) {
    const int64_t pos = len - (K - 1) + r;
    if (pos >= 0) {
      T b[V], xx[V];
      load_raw<T, V, kVec>(x + pos * xs, b);
      load_raw<T, V, kVec>(x + pos * xs + 2 * D, xx);
#pragma unroll
      for (int e = 0; e < V; ++e) rows[r][e] = gate_u<DT>(b[e], xx[e]);
    } else if (reads_init) {
      load_raw<T, V, kVec, /*kNc=*/false>(st + (K - 1 + pos) * p.state_row_stride, rows[r]);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) rows[r][e] = S::store(0.0f);
    }
  }
#pragma unroll
  for (int r = 0; r < K - 1; ++r) store_raw<T, V, kVec>(st + r * p.state_row_stride, rows[r]);
}

template <DType DT, int K, bool kVec>
Status launch(const ShortConvParams& p, cudaStream_t stream, bool w_vec) {
  constexpr int V = kVec ? kVecOf<DT> : 1;
  const bool packed = p.cu_seqlens_given != 0;
  const int64_t tokens = packed ? p.seqlen : p.batch * p.seqlen;
  const ShortConvConfig c = short_conv_config(device(), ceil_div(p.dim, V), tokens, p.batch, packed, p.seqlen);
  return LFM25_CUDA_LAUNCH((short_conv_kernel<DT, K, kVec>), c.grid, c.block, 0, stream, p, c.chunk_shift,
                           c.dense_chunks, w_vec);
}

}  // namespace

Status short_conv(const ShortConvParams& p, void* stream) {
  if (p.batch <= 0 || p.dim <= 0) return Status::kOk;
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    constexpr int V = kVecOf<DT>;
    // 16-byte accesses when every row start of bcx, y and the state is a 16-byte multiple
    const bool vec = p.dim % V == 0 && aligned16(p.x) && aligned16(p.y) && p.x_token_stride % V == 0 &&
                     p.x_batch_stride % V == 0 && p.y_token_stride % V == 0 && p.y_batch_stride % V == 0 &&
                     (!p.state_given || (aligned16(p.state) && p.state_slot_stride % V == 0 && p.state_row_stride % V == 0));
    const bool w_vec = vec && conv_weights_vectorizable(p.weight, p.weight_stride, p.width);
    auto s = static_cast<cudaStream_t>(stream);
    return LFM25_BOOL_SWITCH(vec, kVec, [&] {
      return LFM25_WIDTH_SWITCH(p.width, K, [&] { return launch<DT, K, kVec>(p, s, w_vec); });
    });
  });
}

}  // namespace lfm25::cuda
