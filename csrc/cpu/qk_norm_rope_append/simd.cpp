// qk_norm_rope_append for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel
// qk_norm_rope_append is at the end. head_dim HD is a multiple of 32, so of S::kLanes: no tails.
// Per token: cos/sin of the HD/2 angles once (scalar libm, accurate at large positions), then per head: sum
// of squares, x * rsqrt(mean + eps) * w, and the rotate-half RoPE on lane vectors.
#include <cmath>
#include <cstring>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

template <class S, DType DT, int HD>
Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes, kHalf = HD / 2;
  static_assert(kHalf % L == 0, "head_dim / 2 must be a multiple of the vector width");
  const auto norm_rope = [&](const T* src, T* dst, const float* w, const float* cs, const float* sn) {
    typename S::F v[HD / L];
    auto ss = S::zero();
    for (int i = 0; i < HD / L; ++i) v[i] = S::template load<DT>(src + i * L), ss = S::fma(v[i], v[i], ss);
    const auto r = S::set1(1.0f / std::sqrt(S::reduce_add(ss) / float(HD) + float(p.eps)));
    for (int i = 0; i < HD / L; ++i) v[i] = S::mul(S::loadf(w + i * L), S::mul(v[i], r));
    for (int i = 0; i < kHalf / L; ++i) {
      const auto lo = v[i], hi = v[i + kHalf / L], c = S::loadf(cs + i * L), s = S::loadf(sn + i * L);
      S::template store<DT>(dst + i * L, S::fnma(hi, s, S::mul(lo, c)));
      S::template store<DT>(dst + kHalf + i * L, S::fma(lo, s, S::mul(hi, c)));
    }
  };
  parallel_for(p.n_tokens, p.num_threads, 4, [&](int64_t n0, int64_t n1) {
    float qw[HD], kw[HD], cs[kHalf], sn[kHalf];
    for (int i = 0; i < HD; ++i) {
      qw[i] = load_as_f32(p.q_norm_weight, p.weight_dtype, i);
      kw[i] = load_as_f32(p.k_norm_weight, p.weight_dtype, i);
    }
    for (int64_t n = n0; n < n1; ++n) {
      const float pos = float(p.positions[n]);
      for (int i = 0; i < kHalf; ++i) {
        const float a = pos * p.inv_freq[i];
        cs[i] = std::cos(a);
        sn[i] = std::sin(a);
      }
      const T* q = static_cast<const T*>(p.q) + n * p.q_token_stride;
      T* qo = static_cast<T*>(p.q_out) + n * p.n_q_heads * HD;
      for (int64_t h = 0; h < p.n_q_heads; ++h) norm_rope(q + h * p.q_head_stride, qo + h * HD, qw, cs, sn);
      const int64_t slot = p.slot_mapping[n];
      if (slot < 0) continue;
      const int64_t base = (slot / p.block_size) * p.cache_block_stride + (slot % p.block_size) * p.cache_token_stride;
      const T* k = static_cast<const T*>(p.k) + n * p.k_token_stride;
      const T* v = static_cast<const T*>(p.v) + n * p.v_token_stride;
      for (int64_t h = 0; h < p.n_kv_heads; ++h) {
        norm_rope(k + h * p.k_head_stride, static_cast<T*>(p.k_cache) + base + h * p.cache_head_stride, kw, cs, sn);
        std::memcpy(static_cast<T*>(p.v_cache) + base + h * p.cache_head_stride, v + h * p.v_head_stride,
                    HD * sizeof(T));
      }
    }
  });
  return Status::kOk;
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return simd::qk_norm_rope_append<Vec, DT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
