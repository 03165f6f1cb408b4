// GqaCacheView, GqaPartial and gqa_decode_drive, the ISA-independent half of gqa_decode on the CPU
// (portable.cpp and simd.cpp): split-KV work items, token addressing (contiguous or paged cache) and the
// log-sum-exp combine. Each kernel supplies `SplitFn`, the attention of every query head of one sequence over
// one token range, so the splitting rule and the combine are written once.
//
// Work item = (sequence b, token split). A cached token is one contiguous row of Hkv*d elements (both cache
// layouts), so an item streams its rows front to back, and each KV head's slice is read once for all
// G = Hq/Hkv query heads of its group. Splits are kSplit tokens, so batch 1 with a long context still uses
// every thread.
// NOTE: the split length is fixed, not derived from the thread count, so that the output does not depend on
// it (the combine adds the splits in order): a few more items than threads need when the batch is large.
#pragma once
#include <algorithm>
#include <cmath>

#include "common/numeric.h"
#include "common/parallel.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

struct GqaCacheView {
  const GqaDecodeParams& p;
  // Offset (in elements) of token t of sequence b, KV head 0, in k_cache or v_cache.
  int64_t offset(int64_t b, int64_t t) const {
    const int64_t block = p.block_table_given ? p.block_table[b * p.block_table_stride + t / p.block_size] : b;
    return block * p.cache_block_stride + (t % p.block_size) * p.cache_token_stride;
  }
  // Number of consecutive tokens from t that stay in t's block (and are therefore evenly strided).
  int64_t run_length(int64_t t, int64_t end) const {
    return std::min(end, (t / p.block_size + 1) * p.block_size) - t;
  }
};

// Partial result of one split for all Hq query heads: running max m, sum of exp l, unnormalised acc[d].
struct GqaPartial {
  float* m;    // [Hq]
  float* l;    // [Hq]
  float* acc;  // [Hq, d]
};

// The softmax weight of a score while the running max is -inf: 0 for a score of -inf, NaN for a NaN, so that
// NaN reaches the output as in the reference and -inf scores weigh nothing (-inf - -inf would be NaN).
inline float gqa_weight_below_max(float s) { return s != s ? s : 0.0f; }

// SplitFn(int64_t b, int64_t t0, int64_t t1, GqaPartial out) fills m, l and acc of every query head of
// sequence b over tokens [t0, t1) (t1 > t0).
template <DType DT, class SplitFn>
Status gqa_decode_drive(const GqaDecodeParams& p, SplitFn&& split) {
  using S = Storage<DT>;
  constexpr int64_t kSplit = 256;
  const int64_t B = p.batch, Hq = p.n_q_heads, d = p.head_dim;

  int64_t max_len = 0;
  for (int64_t b = 0; b < B; ++b) max_len = std::max<int64_t>(max_len, p.seq_lens[b]);
  const int64_t n_split = std::max<int64_t>(1, (max_len + kSplit - 1) / kSplit), split_len = kSplit;

  const int64_t n_items = B * n_split;
  Scratch<float> ml(n_items * Hq * 2), acc(n_items * Hq * d);
  parallel_for(n_items, p.num_threads, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = i / n_split, s = i % n_split;
      const int64_t t0 = s * split_len, t1 = std::min<int64_t>(p.seq_lens[b], t0 + split_len);
      GqaPartial part{ml.data() + i * Hq * 2, ml.data() + i * Hq * 2 + Hq, acc.data() + i * Hq * d};
      if (t1 <= t0) {
        for (int64_t h = 0; h < Hq; ++h) part.m[h] = -INFINITY, part.l[h] = 0.0f;
        continue;
      }
      split(b, t0, t1, part);
    }
  });

  // combine: out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M) over the splits with l_s != 0 (a split
  // without tokens, or whose scores are all -inf, has l_s = 0; a NaN score makes l_s NaN). An empty sequence
  // gives zeros; one whose every score is -inf gives NaN, as softmax does.
  using T = typename S::T;
  T* out = static_cast<T*>(p.out);
  parallel_for(B * Hq, p.num_threads, 16, [&](int64_t j0, int64_t j1) {
    Scratch<float> o(d);
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t b = j / Hq, h = j % Hq, first = b * n_split;
      const auto m_of = [&](int64_t s) { return ml[(first + s) * Hq * 2 + h]; };
      const auto l_of = [&](int64_t s) { return ml[(first + s) * Hq * 2 + Hq + h]; };
      float M = -INFINITY;
      for (int64_t s = 0; s < n_split; ++s)
        if (l_of(s) != 0.0f) M = std::max(M, m_of(s));
      for (int64_t c = 0; c < d; ++c) o[c] = 0.0f;
      float L = 0.0f;
      for (int64_t s = 0; s < n_split; ++s) {
        if (l_of(s) == 0.0f) continue;
        const float f = std::exp(m_of(s) - M);
        L += l_of(s) * f;
        const float* a = acc.data() + ((first + s) * Hq + h) * d;
        for (int64_t c = 0; c < d; ++c) o[c] += a[c] * f;
      }
      const float inv = L != 0.0f ? 1.0f / L : p.seq_lens[b] > 0 ? NAN : 0.0f;
      T* dst = out + j * d;
      for (int64_t c = 0; c < d; ++c) dst[c] = S::store(o[c] * inv);
    }
  });
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
