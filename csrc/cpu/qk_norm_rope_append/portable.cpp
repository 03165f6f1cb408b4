// portable::qk_norm_rope_append, plain C++. Per token n and head h (d = head_dim, half = d/2):
//   x' = w * x / sqrt(mean(x^2) + eps)                     (fp32, weights shared by heads)
//   out[i] = x'[i] cos(a_i) - x'[i+half] sin(a_i),  out[i+half] = x'[i+half] cos(a_i) + x'[i] sin(a_i)
//   a_i = float(pos) * inv_freq[i]
// q heads go to q_out; k heads (same transform) and v heads (copied) go to cache slot slot_mapping[n].
// NOTE: the normalised value is not rounded to the activation dtype before RoPE, and cos/sin stay fp32: one
// rounding at the output instead of transformers' three.
#include <cmath>

#include "common/numeric.h"
#include "common/parallel.h"
#include "kernels.h"
#include "lfm25/static_switch.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT, int HD>
Status run(const QkNormRopeAppendParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  constexpr int kHalf = HD / 2;
  const auto norm_rope = [&](const T* src, T* dst, const float* w, const float* cs, const float* sn) {
    float xf[HD];
    float ss = 0.f;
    for (int i = 0; i < HD; ++i) xf[i] = S::load(src[i]), ss += xf[i] * xf[i];
    const float r = 1.0f / std::sqrt(ss / float(HD) + float(p.eps));
    for (int i = 0; i < HD; ++i) xf[i] = w[i] * (xf[i] * r);
    for (int i = 0; i < kHalf; ++i) {
      dst[i] = S::store(xf[i] * cs[i] - xf[i + kHalf] * sn[i]);
      dst[i + kHalf] = S::store(xf[i + kHalf] * cs[i] + xf[i] * sn[i]);
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
        T* kc = static_cast<T*>(p.k_cache) + base + h * p.cache_head_stride;
        T* vc = static_cast<T*>(p.v_cache) + base + h * p.cache_head_stride;
        norm_rope(k + h * p.k_head_stride, kc, kw, cs, sn);
        for (int i = 0; i < HD; ++i) vc[i] = v[h * p.v_head_stride + i];
      }
    }
  });
  return Status::kOk;
}

}  // namespace

Status qk_norm_rope_append(const QkNormRopeAppendParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return run<DT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::portable
