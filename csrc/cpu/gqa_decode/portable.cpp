// portable::gqa_decode, plain C++: online softmax over one token split of one sequence, token by token; each KV
// head's row is read once for the G query heads that share it, and read as the caches' dtype CDT.
#include "gqa_decode/common.h"
#include "kernels.h"
#include "lfm25/static_switch.h"

namespace lfm25::cpu::portable {
namespace {

template <DType DT, DType CDT, int HD>
Status run(const GqaDecodeParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  using C = Storage<CDT>;
  const GqaCacheView cache{p};
  const int64_t Hq = p.n_q_heads, Hkv = p.n_kv_heads, G = Hq / Hkv;
  const float scale = float(p.scale);
  return gqa_decode_drive<DT>(p, [&](int64_t b, int64_t t0, int64_t t1, GqaPartial out) {
    const auto* kc = static_cast<const typename C::T*>(p.k_cache);
    const auto* vc = static_cast<const typename C::T*>(p.v_cache);
    Scratch<float> qf(Hq * HD);
    for (int64_t h = 0; h < Hq; ++h) {
      const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
      for (int i = 0; i < HD; ++i) qf[h * HD + i] = S::load(q[i]) * scale, out.acc[h * HD + i] = 0.0f;
      out.m[h] = -INFINITY;
      out.l[h] = 0.0f;
    }
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t row = cache.offset(b, t);
      for (int64_t kh = 0; kh < Hkv; ++kh) {
        const auto* k = kc + row + kh * p.cache_head_stride;
        const auto* v = vc + row + kh * p.cache_head_stride;
        for (int64_t h = kh * G; h < (kh + 1) * G; ++h) {
          float s = 0.0f;
          for (int i = 0; i < HD; ++i) s += qf[h * HD + i] * C::load(k[i]);
          const float m_new = std::max(out.m[h], s);
          if (m_new == -INFINITY) {   // every score so far -inf (weight 0) or NaN (the max drops it)
            out.l[h] += gqa_weight_below_max(s);
            continue;
          }
          const float alpha = std::exp(out.m[h] - m_new), e = std::exp(s - m_new);
          out.l[h] = out.l[h] * alpha + e;
          float* acc = out.acc + h * HD;
          for (int i = 0; i < HD; ++i) acc[i] = acc[i] * alpha + e * C::load(v[i]);
          out.m[h] = m_new;
        }
      }
    }
  });
}

}  // namespace

Status gqa_decode(const GqaDecodeParams& p) {
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return run<DT, CDT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::portable
