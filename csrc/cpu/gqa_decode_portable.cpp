// gqa_decode, portable C++: online softmax over one token split for the G query heads that share a KV head.
#include "gqa_decode_common.h"
#include "kernels.h"
#include "static_switch.h"

namespace lfm25::cpu {
namespace {

template <DType DT, int HD>
Status run(const GqaDecodeParams& p) {
  using S = Storage<DT>;
  using T = typename S::T;
  const GqaCacheView cache{p};
  const int64_t G = p.n_q_heads / p.n_kv_heads;
  const float scale = float(p.scale);
  return gqa_decode_drive<DT>(p, [&](int64_t b, int64_t h, int64_t t0, int64_t t1, GqaPartial out) {
    const T* kc = static_cast<const T*>(p.k_cache);
    const T* vc = static_cast<const T*>(p.v_cache);
    for (int64_t g = 0; g < G; ++g) {
      const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + (h * G + g) * p.q_head_stride;
      float qf[HD];
      for (int i = 0; i < HD; ++i) qf[i] = S::load(q[i]) * scale;
      float m = -INFINITY, l = 0.0f;
      float* acc = out.acc + g * HD;
      for (int i = 0; i < HD; ++i) acc[i] = 0.0f;
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t off = cache.offset(b, t, h);
        float s = 0.0f;
        for (int i = 0; i < HD; ++i) s += qf[i] * S::load(kc[off + i]);
        const float m_new = std::max(m, s);
        const float alpha = std::exp(m - m_new), e = std::exp(s - m_new);
        l = l * alpha + e;
        for (int i = 0; i < HD; ++i) acc[i] = acc[i] * alpha + e * S::load(vc[off + i]);
        m = m_new;
      }
      out.m[g] = m;
      out.l[g] = l;
    }
  });
}

}  // namespace

Status gqa_decode_portable(const GqaDecodeParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return run<DT, HD>(p); });
  });
}

}  // namespace lfm25::cpu
