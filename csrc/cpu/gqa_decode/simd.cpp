// gqa_decode for a SIMD ISA S (simd/*.h), compiled once per ISA; the ISA's kernel gqa_decode is at the end.
// One split of one sequence (gqa_decode/common.h), in blocks of kBlock tokens: scores of the block (token rows
// read front to back, each KV head's K dotted with its G queries), one vector exp per block and query head
// (online softmax), then the V rows front to back, accumulated into the G outputs of each head. head_dim HD
// is a multiple of 32, so of S::kLanes. The rows are loaded as the caches' dtype CDT (q's DT, or 16-bit under
// fp32 q) into fp32 vectors.
#include <cmath>
#include <numeric>

#include "gqa_decode/common.h"
#include "kernels.h"
#include "lfm25/static_switch.h"
#include "simd/isa.h"

namespace lfm25::cpu::simd {

// e^x for x <= 0 (softmax arguments), relative error ~1e-7: x = n ln2 + r, |r| <= ln2/2, degree-7 Taylor
// polynomial of e^r (Horner, truncation error 1.5e-9), times 2^n.
// NOTE: x is clamped at -87 so that 2^n stays a normal number on every ISA: e^x below e^-87 ~ 1.6e-38 comes out
// as 1.6e-38, which no softmax sum can tell from 0 (its largest term is 1). The clamp keeps a NaN: S::max returns
// its second operand when either is NaN (x86) or NaN (NEON).
template <class S>
typename S::F exp_nonpositive(typename S::F x) {
  x = S::max(S::set1(-87.0f), x);
  const auto n = S::round_int(S::mul(x, S::set1(1.44269504088896341f)));
  auto r = S::fnma(n, S::set1(0.693145751953125f), x);        // ln2 split in two for an exact product
  r = S::fnma(n, S::set1(1.428606765330187e-06f), r);
  auto poly = S::set1(1.0f / 5040);
  poly = S::fma(poly, r, S::set1(1.0f / 720));
  poly = S::fma(poly, r, S::set1(1.0f / 120));
  poly = S::fma(poly, r, S::set1(1.0f / 24));
  poly = S::fma(poly, r, S::set1(1.0f / 6));
  poly = S::fma(poly, r, S::set1(0.5f));
  poly = S::fma(poly, r, S::set1(1.0f));
  poly = S::fma(poly, r, S::set1(1.0f));
  return S::scale_pow2(poly, n);
}

template <class S, DType DT, DType CDT, int HD>
Status gqa_decode(const GqaDecodeParams& p) {
  using T = typename Storage<DT>::T;
  using CT = typename Storage<CDT>::T;   // the caches'
  constexpr int L = S::kLanes, kBlock = 2 * L, kV = HD / L;
  const GqaCacheView cache{p};
  const int64_t Hq = p.n_q_heads, Hkv = p.n_kv_heads, G = Hq / Hkv;
  const int64_t head_stride = p.cache_head_stride, token_stride = p.cache_token_stride;
  const float scale = float(p.scale);
  // NOTE: software prefetch kBlock rows ahead, one row per row consumed: the hardware streams stop at 4 KiB
  // pages, and a 16-bit row of the LFM2 shape is 1 KiB (fp32 2 KiB)
  const int64_t row_bytes = ((Hkv - 1) * head_stride + HD) * int64_t(sizeof(CT));
  const auto prefetch_row = [row_bytes](const CT* row) {
    const char* c = reinterpret_cast<const char*>(row);
    for (int64_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(c + o, 0, 3);
  };
  return gqa_decode_drive<DT>(p, [&](int64_t b, int64_t t0, int64_t t1, GqaPartial out) {
    const CT* kc = static_cast<const CT*>(p.k_cache);
    const CT* vc = static_cast<const CT*>(p.v_cache);
    // scaled queries [Hq][HD]; scores, then probabilities, of one block [Hq][kBlock]
    Scratch<float> qs(Hq * HD), sc(Hq * kBlock);
    for (int64_t h = 0; h < Hq; ++h) {
      const T* q = static_cast<const T*>(p.q) + b * p.q_batch_stride + h * p.q_head_stride;
      for (int i = 0; i < HD; ++i) qs[h * HD + i] = Storage<DT>::load(q[i]) * scale, out.acc[h * HD + i] = 0.0f;
      out.m[h] = -INFINITY;
      out.l[h] = 0.0f;
    }
    for (int64_t tb = t0; tb < t1;) {
      // a block never crosses a cache block, so its rows are evenly strided
      const int64_t run = cache.run_length(tb, t1);
      const int nb = int(std::min<int64_t>(kBlock, run));
      const int64_t base = cache.offset(b, tb);
      tb += nb;
      // 1. scores: token rows front to back, each KV head's K read once for its G query heads
      for (int i = 0; i < nb; ++i) {
        const CT* row = kc + base + i * token_stride;
        if (i + kBlock < run) prefetch_row(row + kBlock * token_stride);
        for (int64_t kh = 0; kh < Hkv; ++kh) {
          typename S::F kv[kV];
          for (int j = 0; j < kV; ++j) kv[j] = S::template load<CDT>(row + kh * head_stride + j * L);
          for (int64_t h = kh * G; h < (kh + 1) * G; ++h) {
            const float* q = &qs[h * HD];
            auto d = S::mul(kv[0], S::loadf(q));
            for (int j = 1; j < kV; ++j) d = S::fma(kv[j], S::loadf(q + j * L), d);
            sc[h * kBlock + i] = S::reduce_add(d);
          }
        }
      }
      // 2. online softmax per query head: new max, rescale, probabilities of the block
      for (int64_t h = 0; h < Hq; ++h) {
        float* s = &sc[h * kBlock];
        auto vmax = S::set1(-INFINITY);
        for (int i = 0; i < kBlock; i += L) vmax = S::max(vmax, S::select(S::mask(nb - i), S::loadf(s + i), vmax));
        const float m_new = std::max(out.m[h], S::reduce_max(vmax));
        if (m_new == -INFINITY) {   // every score so far -inf (weight 0) or NaN (the max drops it)
          for (int i = 0; i < nb; ++i) s[i] = gqa_weight_below_max(s[i]);
          out.l[h] += std::accumulate(s, s + nb, 0.0f);
          continue;
        }
        const float alpha = std::exp(out.m[h] - m_new);    // 0 on the first block (m = -inf)
        out.m[h] = m_new;
        auto lsum = S::zero();
        for (int i = 0; i < kBlock; i += L) {
          const auto e = S::select(S::mask(nb - i), exp_nonpositive<S>(S::sub(S::loadf(s + i), S::set1(m_new))), S::zero());
          S::storef(s + i, e);
          lsum = S::add(lsum, e);
        }
        out.l[h] = out.l[h] * alpha + S::reduce_add(lsum);
        if (alpha != 1.0f) {
          const auto a = S::set1(alpha);
          for (int j = 0; j < kV; ++j) S::storef(out.acc + h * HD + j * L, S::mul(S::loadf(out.acc + h * HD + j * L), a));
        }
      }
      // 3. values: token rows front to back, each KV head's V read once for its G query heads
      for (int i = 0; i < nb; ++i) {
        const CT* row = vc + base + i * token_stride;
        if (i + kBlock < run) prefetch_row(row + kBlock * token_stride);
        for (int64_t kh = 0; kh < Hkv; ++kh) {
          typename S::F vv[kV];
          for (int j = 0; j < kV; ++j) vv[j] = S::template load<CDT>(row + kh * head_stride + j * L);
          for (int64_t h = kh * G; h < (kh + 1) * G; ++h) {
            const auto pr = S::set1(sc[h * kBlock + i]);
            float* acc = out.acc + h * HD;
            for (int j = 0; j < kV; ++j) S::storef(acc + j * L, S::fma(pr, vv[j], S::loadf(acc + j * L)));
          }
        }
      }
    }
  });
}

}  // namespace lfm25::cpu::simd

namespace lfm25::cpu::LFM25_SIMD_ISA {

Status gqa_decode(const GqaDecodeParams& p) {
  return LFM25_KV_DTYPE_SWITCH(p.dtype, p.cache_dtype, DT, CDT, [&] {
    return LFM25_HEAD_DIM_SWITCH(p.head_dim, HD, [&] { return simd::gqa_decode<Vec, DT, CDT, HD>(p); });
  });
}

}  // namespace lfm25::cpu::LFM25_SIMD_ISA
