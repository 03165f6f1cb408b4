// ShortConvGeometry and short_conv_drive, the ISA-independent half of short_conv on the CPU (portable.cpp and
// simd.cpp): sequence geometry (dense or packed), the split into (sequence, token chunk) work items, the
// initial-state gather and the final-state write. Each kernel supplies only the inner loop over one chunk
// (`ChunkFn`), so every ISA shares one definition of the state semantics.
//
// NOTE: initial states are copied to fp32 scratch before any output is computed and final states are written
// after every output: chunks of one sequence run in parallel and the state may be read and written in place.
#pragma once
#include <algorithm>
#include <cstring>

#include "common/numeric.h"
#include "common/parallel.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

struct ShortConvGeometry {
  const ShortConvParams& p;

  int64_t seq_len(int64_t s) const {
    return p.cu_seqlens_given ? int64_t(p.cu_seqlens[s + 1]) - p.cu_seqlens[s] : p.seqlen;
  }
  int64_t x_offset(int64_t s, int64_t t) const {
    return p.cu_seqlens_given ? (p.cu_seqlens[s] + t) * p.x_token_stride : s * p.x_batch_stride + t * p.x_token_stride;
  }
  int64_t y_offset(int64_t s, int64_t t) const {
    return p.cu_seqlens_given ? (p.cu_seqlens[s] + t) * p.y_token_stride : s * p.y_batch_stride + t * p.y_token_stride;
  }
  // -1: padding (no state, zero output); -2: no state tensor.
  int64_t slot(int64_t s) const {
    if (!p.state_given) return -2;
    return p.state_indices_given ? p.state_indices[s] : s;
  }
  bool reads_state(int64_t s) const {
    return slot(s) >= 0 && (!p.has_initial_state_given || p.has_initial_state[s]);
  }
};

// ChunkFn(int64_t seq, int64_t t0, int64_t t1, const float* init) computes y for tokens [t0, t1) of sequence
// `seq` over all channels; init is the [K-1, D] fp32 window before token 0 (oldest first) or null for zeros.
template <DType DT, class ChunkFn>
Status short_conv_drive(const ShortConvParams& p, ChunkFn&& chunk) {
  using S = Storage<DT>;
  using T = typename S::T;
  const ShortConvGeometry g{p};
  const int64_t n_seq = p.batch, D = p.dim, Km1 = p.width - 1;

  // 1. initial windows
  Scratch<int64_t> init_row(n_seq);
  int64_t n_init = 0;
  for (int64_t s = 0; s < n_seq; ++s) init_row[s] = g.reads_state(s) ? n_init++ : -1;
  Scratch<float> init(n_init * Km1 * D);
  for (int64_t s = 0; s < n_seq; ++s) {
    if (init_row[s] < 0) continue;
    const T* st = static_cast<const T*>(p.state) + g.slot(s) * p.state_slot_stride;
    float* dst = init.data() + init_row[s] * Km1 * D;
    for (int64_t j = 0; j < Km1; ++j)
      for (int64_t c = 0; c < D; ++c) dst[j * D + c] = S::load(st[j * p.state_row_stride + c]);
  }

  // 2. outputs, in (sequence, chunk) items of about total / (4 * threads) tokens
  int64_t total = 0;
  for (int64_t s = 0; s < n_seq; ++s) total += g.seq_len(s);
  const int64_t threads = std::max(p.num_threads, 1);
  const int64_t target = std::max<int64_t>(64, (total + 4 * threads - 1) / (4 * threads));
  struct Item { int64_t seq, t0, t1; };
  int64_t n_items = 0;
  for (int64_t s = 0; s < n_seq; ++s) n_items += (g.seq_len(s) + target - 1) / target;
  Scratch<Item> items(n_items);
  n_items = 0;
  for (int64_t s = 0; s < n_seq; ++s) {
    const int64_t len = g.seq_len(s);
    for (int64_t t0 = 0; t0 < len; t0 += target) items[n_items++] = Item{s, t0, std::min(len, t0 + target)};
  }
  T* y = static_cast<T*>(p.y);
  parallel_for(n_items, p.num_threads, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const Item& it = items[i];
      if (g.slot(it.seq) == -1) {
        for (int64_t t = it.t0; t < it.t1; ++t) std::memset(y + g.y_offset(it.seq, t), 0, size_t(D) * sizeof(T));
        continue;
      }
      const float* w0 = init_row[it.seq] >= 0 ? init.data() + init_row[it.seq] * Km1 * D : nullptr;
      chunk(it.seq, it.t0, it.t1, w0);
    }
  });

  // 3. final states: row j holds U at position len-(K-1)+j, from the input or, before it, the initial window
  if (!p.state_given) return Status::kOk;
  const T* x = static_cast<const T*>(p.x);
  parallel_for(n_seq, p.num_threads, 64, [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      if (g.slot(s) < 0) continue;
      T* st = static_cast<T*>(p.state) + g.slot(s) * p.state_slot_stride;
      const float* w0 = init_row[s] >= 0 ? init.data() + init_row[s] * Km1 * D : nullptr;
      const int64_t len = g.seq_len(s);
      for (int64_t j = 0; j < Km1; ++j) {
        const int64_t t = len - Km1 + j;
        T* row = st + j * p.state_row_stride;
        if (t >= 0) {
          const T* xr = x + g.x_offset(s, t);
          for (int64_t c = 0; c < D; ++c) row[c] = S::store(S::load(xr[c]) * S::load(xr[2 * D + c]));
        } else {
          for (int64_t c = 0; c < D; ++c) row[c] = S::store(w0 ? w0[(Km1 + t) * D + c] : 0.0f);
        }
      }
    }
  });
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
