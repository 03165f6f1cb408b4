// gqa_decode for a SIMD ISA S: one split of one (sequence, KV head) for its G query heads, in blocks of
// kBlock tokens: scores of the block (each K row read once, dotted with the G queries), one vector exp per
// block and head (online softmax), then each V row read once and accumulated into the G outputs.
// head_dim HD is a multiple of 32, so of S::kLanes.
#pragma once
#include <cmath>

#include "gqa_decode_common.h"
#include "static_switch.h"

namespace lfm25::cpu::simd {

// e^x for x <= 0 (softmax arguments), relative error ~2e-7: x = n ln2 + r, |r| <= ln2/2, degree-6 Taylor
// polynomial of e^r (Horner), times 2^n. Below -87 the result underflows to 0 as it should.
template <class S>
typename S::F exp_nonpositive(typename S::F x) {
  x = S::max(x, S::set1(-87.0f));
  const auto n = S::round_int(S::mul(x, S::set1(1.44269504088896341f)));
  auto r = S::fnma(n, S::set1(0.693145751953125f), x);        // ln2 split in two for an exact product
  r = S::fnma(n, S::set1(1.428606765330187e-06f), r);
  auto poly = S::set1(1.0f / 720);
  poly = S::fma(poly, r, S::set1(1.0f / 120));
  poly = S::fma(poly, r, S::set1(1.0f / 24));
  poly = S::fma(poly, r, S::set1(1.0f / 6));
  poly = S::fma(poly, r, S::set1(0.5f));
  poly = S::fma(poly, r, S::set1(1.0f));
  poly = S::fma(poly, r, S::set1(1.0f));
  return S::scale_pow2(poly, n);
}

template <class S, DType DT, int HD>
Status gqa_decode(const GqaDecodeParams& p) {
  using T = typename Storage<DT>::T;
  constexpr int L = S::kLanes, kBlock = 2 * L, kV = HD / L;
  const GqaCacheView cache{p};
  const int64_t G = p.n_q_heads / p.n_kv_heads;
  const float scale = float(p.scale);
  return gqa_decode_drive<DT>(p, [&](int64_t b, int64_t h, int64_t t0, int64_t t1, GqaPartial out) {
    const T* kc = static_cast<const T*>(p.k_cache);
    const T* vc = static_cast<const T*>(p.v_cache);
    // scaled queries [G][HD], scores [G][kBlock]
    Scratch<float> qs(G * HD), sc(G * kBlock);
    for (int64_t g = 0; g < G; ++g) {
      const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + (h * G + g) * p.q_head_stride;
      for (int i = 0; i < HD; ++i) qs[g * HD + i] = Storage<DT>::load(q[i]) * scale;
      out.m[g] = -INFINITY;
      out.l[g] = 0.0f;
      for (int i = 0; i < HD; ++i) out.acc[g * HD + i] = 0.0f;
    }
    int64_t offs[kBlock];
    for (int64_t tb = t0; tb < t1; tb += kBlock) {
      const int nb = int(std::min<int64_t>(kBlock, t1 - tb));
      for (int i = 0; i < nb; ++i) offs[i] = cache.offset(b, tb + i, h);
      for (int i = 0; i < nb; ++i) {
        typename S::F kv[kV];
        for (int j = 0; j < kV; ++j) kv[j] = S::template load<DT>(kc + offs[i] + j * L);
        for (int64_t g = 0; g < G; ++g) {
          auto d = S::mul(kv[0], S::loadf(&qs[g * HD]));
          for (int j = 1; j < kV; ++j) d = S::fma(kv[j], S::loadf(&qs[g * HD + j * L]), d);
          sc[g * kBlock + i] = S::reduce_add(d);
        }
      }
      for (int64_t g = 0; g < G; ++g) {
        float* s = &sc[g * kBlock];
        float bmax = s[0];
        for (int i = 1; i < nb; ++i) bmax = std::max(bmax, s[i]);
        const float m_new = std::max(out.m[g], bmax);
        const float alpha = std::exp(out.m[g] - m_new);    // 0 on the first block (m = -inf)
        out.m[g] = m_new;
        auto lsum = S::zero();
        for (int i = 0; i < kBlock; i += L) {
          const auto valid = S::mask(nb - i);
          auto e = exp_nonpositive<S>(S::sub(S::loadf(s + i), S::set1(m_new)));
          e = S::select(valid, e, S::zero());
          S::storef(s + i, e);
          lsum = S::add(lsum, e);
        }
        out.l[g] = out.l[g] * alpha + S::reduce_add(lsum);
        if (alpha != 1.0f) {
          const auto a = S::set1(alpha);
          for (int j = 0; j < kV; ++j) S::storef(out.acc + g * HD + j * L, S::mul(S::loadf(out.acc + g * HD + j * L), a));
        }
      }
      for (int i = 0; i < nb; ++i) {
        typename S::F vv[kV];
        for (int j = 0; j < kV; ++j) vv[j] = S::template load<DT>(vc + offs[i] + j * L);
        for (int64_t g = 0; g < G; ++g) {
          const auto pr = S::set1(sc[g * kBlock + i]);
          float* acc = out.acc + g * HD;
          for (int j = 0; j < kV; ++j) S::storef(acc + j * L, S::fma(pr, vv[j], S::loadf(acc + j * L)));
        }
      }
    }
  });
}

template <class S>
Status gqa_decode_dispatch(const GqaDecodeParams& p) {
  return LFM25_DTYPE_SWITCH(p.dtype, DT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return gqa_decode<S, DT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::simd
