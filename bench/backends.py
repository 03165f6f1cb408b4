"""What each op can be run with on this machine: our kernels, the PyTorch reference, and the software people
use today (torch SDPA everywhere; causal-conv1d and flash-attn on a GPU when importable). Each backend turns
a set of inputs into a zero-argument callable."""
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


def _causal_conv1d(kw):
    from causal_conv1d import causal_conv1d_fn

    bcx, w = kw["bcx"], kw["weight"]
    D = w.shape[0]

    def run():  # the unfused path serving engines use: gates in torch around the conv kernel
        b, c, x = bcx.split(D, dim=-1)
        u = (b * x).transpose(1, 2)                            # channel-last view [B, D, T]
        return c * causal_conv1d_fn(u, w.to(u.dtype)).transpose(1, 2)
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


def backends(op: str, device: str, all_isas: bool = False) -> dict[str, Callable]:
    """name -> make(inputs) -> callable, for the backends available for `op` on `device`."""
    out: dict[str, Callable] = {"reference": lambda kw: (lambda: getattr(R, op)(**kw))}
    if device == "cpu":
        isas = L.available_isas()
        out[f"lfm25 ({isas[0]})"] = _ours(op, isas[0])
        for isa in isas[1:] if all_isas else ["portable"] if "portable" != isas[0] else []:
            out[f"lfm25 ({isa})"] = _ours(op, isa)
    elif L.cuda_available():
        out["lfm25 (cuda)"] = _ours(op, None)
    if op == "gqa_decode":
        out["torch sdpa"] = _sdpa_decode
        if device == "cuda" and importlib.util.find_spec("flash_attn"):
            out["flash-attn"] = _flash_attn_decode
    if op == "linear":
        out["torch F.linear"] = _torch_linear
    if op == "short_conv" and device == "cuda" and importlib.util.find_spec("causal_conv1d"):
        out["causal-conv1d + torch gates"] = _causal_conv1d
    return out
