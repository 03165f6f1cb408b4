// qk_norm_rope_append_drive, the ISA-independent half of qk_norm_rope_append on the CPU (portable.cpp and
// simd.cpp): tokens split over threads, the norm weights in fp32 once per chunk, the cos/sin of the HD/2
// angles once per token (scalar libm, accurate at large positions), every q head to q_out, and where the
// token's slot is not -1 every k head to k_cache and every v head copied (converted where the cache dtype CDT
// is not the activations' DT) to v_cache. The kernel supplies `NormRope(DTypeTag<OUT>, src, dst, weight, cos,
// sin)`: RMSNorm of one head, then the rotate-half RoPE, stored as OUT (DT for q_out, CDT for k_cache).
#pragma once
#include <cmath>
#include <cstring>
#include <type_traits>

#include "common/numeric.h"
#include "common/parallel.h"

namespace lfm25::cpu {
namespace {  // see common/numeric.h

template <DType D>
using DTypeTag = std::integral_constant<DType, D>;

template <DType DT, DType CDT, int HD, class NormRope>
Status qk_norm_rope_append_drive(const QkNormRopeAppendParams& p, NormRope&& norm_rope) {
  using T = typename Storage<DT>::T;
  using CT = typename Storage<CDT>::T;
  constexpr int kHalf = HD / 2;
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
      for (int64_t h = 0; h < p.n_q_heads; ++h)
        norm_rope(DTypeTag<DT>(), q + h * p.q_head_stride, qo + h * HD, qw, cs, sn);
      const int64_t slot = p.slot_mapping[n];
      if (slot < 0) continue;
      const int64_t base = (slot / p.block_size) * p.cache_block_stride + (slot % p.block_size) * p.cache_token_stride;
      const T* k = static_cast<const T*>(p.k) + n * p.k_token_stride;
      const T* v = static_cast<const T*>(p.v) + n * p.v_token_stride;
      for (int64_t h = 0; h < p.n_kv_heads; ++h) {
        const int64_t at = base + h * p.cache_head_stride;
        norm_rope(DTypeTag<CDT>(), k + h * p.k_head_stride, static_cast<CT*>(p.k_cache) + at, kw, cs, sn);
        const T* vh = v + h * p.v_head_stride;
        CT* vc = static_cast<CT*>(p.v_cache) + at;
        if constexpr (CDT == DT) {
          std::memcpy(vc, vh, HD * sizeof(T));
        } else {
          for (int i = 0; i < HD; ++i) vc[i] = Storage<CDT>::store(Storage<DT>::load(vh[i]));
        }
      }
    }
  });
  return Status::kOk;
}

}  // namespace
}  // namespace lfm25::cpu
