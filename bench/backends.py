"""What each op can be run with on this machine: our kernels, the PyTorch reference, and the software people
use today (on every device: torch SDPA with grouped heads, the unfused torch ops of the conv mixer and the torch
SwiGLU; on a GPU when importable: causal-conv1d and flash-attn). Each backend turns a set of inputs into a
zero-argument callable."""
from __future__ import annotations

import importlib.util
from typing import Callable

import torch
import torch.nn.functional as F

import lfm25_kernels as L
from lfm25_kernels import reference as R


def _ours(op: str, isa: str | None):
    fn = getattr(L, op)
    if isa is None:
        return lambda kw: (lambda: fn(**kw))

    def make(kw):
        def run():
            with L.cpu_isa(isa):
                return fn(**kw)
        return run
    return make


def _sdpa_decode(kw):
    # the same cache, as SDPA sees it: [B, Hkv, L, d] views, one query token, grouped heads
    q = kw["q"].unsqueeze(2)
    k, v = kw["k_cache"].transpose(1, 2), kw["v_cache"].transpose(1, 2)
    return lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)


def _gated(kw, conv):
    """The unfused path serving engines use: the gates in torch around conv(u), u = B * X viewed [B, D, T]."""
    bcx, D = kw["bcx"], kw["weight"].shape[0]

    def run():
        b, c, x = bcx.split(D, dim=-1)
        return c * conv((b * x).transpose(1, 2)).transpose(1, 2)
    return run


def _causal_conv1d(kw):
    from causal_conv1d import causal_conv1d_fn

    w = kw["weight"]
    return _gated(kw, lambda u: causal_conv1d_fn(u, w.to(u.dtype)))


def _torch_conv(kw):
    # NOTE: a depthwise F.conv1d over zero padding: the initial conv state is neither read nor written
    w = kw["weight"]
    D, K = w.shape
    T = kw["bcx"].shape[1]
    return _gated(kw, lambda u: F.conv1d(u, w.unsqueeze(1), padding=K - 1, groups=D)[..., :T])


def _torch_conv_update(kw):
    bcx, w, state, idx = kw["bcx"], kw["weight"], kw["conv_state"], kw.get("state_indices")
    D = w.shape[0]
    rows = slice(None) if idx is None else idx.long()

    def run():  # gather the states, gates, the K-tap conv in fp32, scatter the shifted window back
        b, c, x = bcx.split(D, dim=-1)
        window = torch.cat([state[rows], (b * x).unsqueeze(1)], dim=1)          # [B, K, D]
        y = c * (window.float() * w.float().t()).sum(1).to(bcx.dtype)
        state[rows] = window[:, 1:]
        return y
    return run


def _flash_attn_decode(kw):
    from flash_attn import flash_attn_with_kvcache

    q = kw["q"].unsqueeze(1)
    return lambda: flash_attn_with_kvcache(q, kw["k_cache"], kw["v_cache"], cache_seqlens=kw["seq_lens"])


def _torch_linear(kw):
    x, w, g = kw["x"], kw["weight"], kw["gate_weight"]
    if g is None:
        return lambda: F.linear(x, w)
    return lambda: F.silu(F.linear(x, g)) * F.linear(x, w)    # transformers' Lfm2MLP, eager


def _reference_linear_q(kw):
    x, w = kw["x"], kw["weight"]
    codes, gate = w.codes(), w.codes(True) if w.gated else (None, None)
    return lambda: R.linear_q(x, *codes, gate_codes=gate[0], gate_scales=gate[1])


def _torch_linear_dequantized(kw):   # what the quantized weights save: torch's bf16 projection of the same values
    (w, g), dt = kw["weight"].dequantize(), kw["x"].dtype
    return _torch_linear(dict(x=kw["x"], weight=w.to(dt), gate_weight=None if g is None else g.to(dt)))


# The software people use today, per op: (name, make, None on every device or the module it needs on a GPU)
BASELINES = {
    "short_conv": [("torch unfused", _torch_conv, None),
                   ("causal-conv1d + torch gates", _causal_conv1d, "causal_conv1d")],
    "short_conv_update": [("torch unfused", _torch_conv_update, None)],
    "gqa_decode": [("torch sdpa", _sdpa_decode, None), ("flash-attn", _flash_attn_decode, "flash_attn")],
    "linear": [("torch F.linear", _torch_linear, None)],
    "linear_q": [("torch F.linear, weights in the activation dtype", _torch_linear_dequantized, None)],
}


def backends(op: str, device: str, all_isas: bool = False) -> dict[str, Callable]:
    """name -> make(inputs) -> callable, for the backends available for `op` on `device`."""
    out: dict[str, Callable] = {"reference": _reference_linear_q if op == "linear_q"
                                else lambda kw: (lambda: getattr(R, op)(**kw))}
    if device == "cpu":
        isas = L.available_isas()
        out[f"lfm25 ({isas[0]})"] = _ours(op, isas[0])
        for isa in isas[1:] if all_isas else ["portable"] if "portable" != isas[0] else []:
            out[f"lfm25 ({isa})"] = _ours(op, isa)
    elif L.cuda_available():
        out["lfm25 (cuda)"] = _ours(op, None)
    for name, make, gpu_module in BASELINES.get(op, ()):
        if gpu_module is None or device == "cuda" and importlib.util.find_spec(gpu_module):
            out[name] = make
    return out
