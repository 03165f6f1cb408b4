"""PyTorch reference of every op (docs/DESIGN.md section 3): short, obviously right, and the oracle for the
tests, the benchmarks and the model's ``backend="reference"``.

Rounding follows the kernels' contract: fp32 arithmetic, U = B*X rounded to the activation dtype (the state
stores it that way), one rounding of each output.
"""
from __future__ import annotations

import torch
from torch import Tensor


def _f32(t: Tensor) -> Tensor:
    return t.to(torch.float32)


def _weight_2d(weight: Tensor) -> Tensor:
    return weight.reshape(weight.shape[0], weight.shape[-1])


def _conv_one(bcx: Tensor, w: Tensor, init: Tensor) -> tuple[Tensor, Tensor]:
    """One sequence. bcx [T, 3D], w [D, K] fp32, init [K-1, D] (activation dtype). Returns y [T, D] and the
    final state [K-1, D]."""
    D, K = w.shape
    b, c, x = bcx.split(D, dim=-1)
    u = (_f32(b) * _f32(x)).to(bcx.dtype)                      # U rounded like the state stores it
    window = torch.cat([init.to(bcx.dtype), u], dim=0)          # [K-1+T, D]
    T = bcx.shape[0]
    wf = _f32(window)
    z = w[:, 0] * wf[0:T]
    for k in range(1, K):
        z = z + w[:, k] * wf[k:k + T]
    y = (_f32(c) * z).to(bcx.dtype)
    return y, window[window.shape[0] - (K - 1):]


def short_conv(bcx: Tensor, weight: Tensor, conv_state: Tensor | None = None, *,
               cu_seqlens: Tensor | None = None, state_indices: Tensor | None = None,
               has_initial_state: Tensor | None = None) -> Tensor:
    """y = C * causal_conv_K(B * X) per sequence; conv_state [S, K-1, D] is read (initial) and written
    (final) in place at state_indices (-1 = padding: zero output, state untouched)."""
    w = _f32(_weight_2d(weight))
    D, K = w.shape
    if cu_seqlens is None:
        seqs = list(bcx.unbind(0))
        out = torch.empty(*bcx.shape[:-1], D, dtype=bcx.dtype, device=bcx.device)
        outs = list(out.unbind(0))
    else:
        bounds = cu_seqlens.tolist()
        seqs = [bcx[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
        out = torch.empty(bcx.shape[0], D, dtype=bcx.dtype, device=bcx.device)
        outs = [out[bounds[i]:bounds[i + 1]] for i in range(len(bounds) - 1)]
    for i, (seq, o) in enumerate(zip(seqs, outs)):
        slot = i
        if conv_state is not None and state_indices is not None:
            slot = int(state_indices[i])
        if conv_state is not None and slot == -1:
            o.zero_()
            continue
        init = torch.zeros(K - 1, D, dtype=bcx.dtype, device=bcx.device)
        if conv_state is not None and (has_initial_state is None or bool(has_initial_state[i])):
            init = conv_state[slot].clone()
        y, final = _conv_one(seq, w, init)
        o.copy_(y)
        if conv_state is not None:
            conv_state[slot].copy_(final)
    return out


def short_conv_update(bcx: Tensor, weight: Tensor, conv_state: Tensor, *,
                      state_indices: Tensor | None = None) -> Tensor:
    """One decode step: bcx [B, 3D] -> y [B, D]; equals short_conv with T=1 and an initial state."""
    return short_conv(bcx.unsqueeze(1), weight, conv_state, state_indices=state_indices).squeeze(1)


def rope_inv_freq(head_dim: int, rope_theta: float, device=None) -> Tensor:
    """inv_freq[j] = 1 / theta^(2j/d) in fp32, computed exactly as transformers does."""
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64, device=device).float() / head_dim
    return 1.0 / (rope_theta ** exponent)


def _norm_rope(x: Tensor, w: Tensor, cos: Tensor, sin: Tensor, eps: float) -> Tensor:
    xf = _f32(x)
    xf = _f32(w) * (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps))
    a, b = xf.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, b * cos + a * sin], dim=-1).to(x.dtype)


def qk_norm_rope_append(q: Tensor, k: Tensor, v: Tensor, q_norm_weight: Tensor, k_norm_weight: Tensor,
                        positions: Tensor, k_cache: Tensor, v_cache: Tensor, slot_mapping: Tensor, *,
                        eps: float = 1e-5, rope_theta: float = 1e6) -> Tensor:
    """q_out = rope(rmsnorm(q)); k_cache/v_cache at flat slot slot_mapping[n] (-1 = skip) get rope(rmsnorm(k))
    and v, in the caches' dtype (the activations', or 16-bit under fp32: one rounding from fp32). Caches
    [blocks, block_size, Hkv, d]."""
    d = q.shape[-1]
    angle = positions.to(torch.float32)[:, None] * rope_inv_freq(d, rope_theta, q.device)[None, :]
    cos, sin = angle.cos()[:, None, :], angle.sin()[:, None, :]
    q_out = _norm_rope(q, q_norm_weight, cos, sin, eps)
    k_out = _norm_rope(k, k_norm_weight, cos, sin, eps)
    keep = slot_mapping >= 0
    slots = slot_mapping[keep].long()
    k_cache.view(-1, *k_cache.shape[2:])[slots] = k_out[keep].to(k_cache.dtype)
    v_cache.view(-1, *v_cache.shape[2:])[slots] = v[keep].to(v_cache.dtype)
    return q_out


def gqa_decode(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, *,
               block_table: Tensor | None = None, scale: float | None = None) -> Tensor:
    """out[b, h] = softmax(scale q[b,h] . K^T) V over the first seq_lens[b] cached tokens of sequence b, KV
    head h // (Hq/Hkv), the caches read into fp32 from their dtype; zeros when seq_lens[b] == 0."""
    B, Hq, d = q.shape
    Hkv = k_cache.shape[2]
    scale = d ** -0.5 if scale is None else scale
    out = torch.zeros_like(q)
    for b in range(B):
        n = int(seq_lens[b])
        if n == 0:
            continue
        if block_table is None:
            kb, vb = k_cache[b, :n], v_cache[b, :n]
        else:
            bs = k_cache.shape[1]
            blocks = block_table[b, :(n + bs - 1) // bs].long()
            kb = k_cache[blocks].reshape(-1, Hkv, d)[:n]
            vb = v_cache[blocks].reshape(-1, Hkv, d)[:n]
        kf = _f32(kb).repeat_interleave(Hq // Hkv, dim=1)     # [n, Hq, d]
        vf = _f32(vb).repeat_interleave(Hq // Hkv, dim=1)
        s = torch.einsum("hd,nhd->hn", _f32(q[b]), kf) * scale
        out[b] = torch.einsum("hn,nhd->hd", s.softmax(-1), vf).to(q.dtype)
    return out


def linear(x: Tensor, weight: Tensor, *, gate_weight: Tensor | None = None) -> Tensor:
    """y = x . weight^T in fp32, rounded once; with gate_weight: silu(x . gate_weight^T) * (x . weight^T), each
    product rounded to x's dtype and silu and the product rounded too (torch's eager ops in that dtype)."""
    up = (_f32(x) @ _f32(weight).T).to(x.dtype)
    if gate_weight is None:
        return up
    gate = (_f32(x) @ _f32(gate_weight).T).to(x.dtype)
    return (_f32(torch.nn.functional.silu(_f32(gate)).to(x.dtype)) * _f32(up)).to(x.dtype)


QUANT_GROUP = 32                                  # inputs per scale of linear_q's formats
QUANT_RANGE = {"int8": (-127, 127), "q4": (-8, 7)}   # the codes of each format


def dequantize(codes: Tensor, scales: Tensor, in_features: int) -> Tensor:
    """A quantized weight in fp32: codes [N, G * 32] (int8) times scales [N, G] (fp16) per group of 32 inputs,
    the first in_features columns."""
    N, G = scales.shape
    w = codes.to(torch.float32).view(N, G, QUANT_GROUP) * scales.to(torch.float32)[..., None]
    return w.view(N, -1)[:, :in_features]


def quantize_activations(x: Tensor) -> tuple[Tensor, Tensor]:
    """linear_q's quantization of x [M, K]: per row and group of 32 inputs (zero-padded), codes
    round-half-even(x * fp32(127 / amax)) and the fp32 scale amax / 127; a group with a NaN or an infinity gets
    codes 0 and the scale NaN. Returns (codes [M, G * 32] int8, scales [M, G] fp32)."""
    M, K = x.shape
    G = -(-K // QUANT_GROUP)
    v = torch.nn.functional.pad(_f32(x), (0, G * QUANT_GROUP - K)).view(M, G, QUANT_GROUP)
    amax = v.abs().amax(-1, keepdim=True)
    finite = torch.isfinite(v).all(-1, keepdim=True)
    # NOTE: a tensor divided, not 127.0 / amax: torch computes a scalar over a tensor as reciprocal(amax) * 127.0,
    # two roundings, where the kernels round 127 / amax once
    inv = torch.where(amax > 0, torch.full_like(amax, 127.0) / amax, torch.zeros_like(amax))
    codes = torch.where(finite, torch.round(v * inv), torch.zeros_like(v)).to(torch.int8)
    scales = torch.where(finite, amax / 127.0, torch.full_like(amax, float("nan")))
    return codes.view(M, -1), scales.view(M, G)


def linear_q(x: Tensor, codes: Tensor, scales: Tensor, *, gate_codes: Tensor | None = None,
             gate_scales: Tensor | None = None) -> Tensor:
    """lfm25_kernels.linear_q on plain codes [N, G * 32] and scales [N, G] (and the gate's): x [M, K] quantized
    as quantize_activations says, exact int sums per group, each scaled by fp32(d * s) and summed in float64
    (the kernels sum in fp32: the tests allow for that order), then rounded as linear() rounds."""
    xc, xs = quantize_activations(x)
    M, G = xs.shape

    def product(c: Tensor, d: Tensor) -> Tensor:
        sums = torch.einsum("mgk,ngk->mng", xc.view(M, G, -1).double(), c.view(c.shape[0], G, -1).double())
        scale = (xs[:, None, :] * d.to(torch.float32)[None, :, :]).double()   # fp32(d * s)
        return (sums * scale).sum(-1)

    up = product(codes, scales).to(x.dtype)
    if gate_codes is None:
        return up
    gate = product(gate_codes, gate_scales).to(x.dtype)
    return (_f32(torch.nn.functional.silu(_f32(gate)).to(x.dtype)) * _f32(up)).to(x.dtype)


def rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None):
    """y = w * x / sqrt(mean(x^2) + eps); with residual: h = x + residual (rounded), returns (rms_norm(h), h)."""
    h = x if residual is None else (_f32(x) + _f32(residual)).to(x.dtype)
    hf = _f32(h)
    y = (_f32(weight) * (hf * torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + eps))).to(x.dtype)
    return y if residual is None else (y, h)


class Projection:
    """lfm25_kernels.Projection's interface on torch's own ops (F.linear, silu(g) * u), what the model's
    reference backend runs; rows() is a lookup."""

    packed = False
    quantized = None

    def __init__(self, weight: Tensor, gate_weight: Tensor | None = None):
        self.weight, self.gate_weight, self.gated = weight, gate_weight, gate_weight is not None
        self.out_features, self.in_features = weight.shape
        self.dtype, self.device = weight.dtype, weight.device

    def __call__(self, x: Tensor) -> Tensor:
        up = torch.nn.functional.linear(x, self.weight)
        if self.gate_weight is None:
            return up
        return torch.nn.functional.silu(torch.nn.functional.linear(x, self.gate_weight)) * up

    def rows(self, index: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """weight[index]: the embedding lookup of a tied lm_head."""
        return self.weight[index] if dtype is None else self.weight[index].to(dtype)

    def __repr__(self) -> str:
        gate = ", gated" if self.gated else ""
        return f"reference.Projection(out_features={self.out_features}, in_features={self.in_features}{gate})"
