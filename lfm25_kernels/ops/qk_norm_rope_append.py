"""qk_norm_rope_append: the attention state update of a step, per-head RMSNorm of q and k, rotate-half RoPE at
the tokens' positions, k and v appended to the caches (docs/DESIGN.md section 3)."""
from __future__ import annotations

import functools

import torch
from torch import Tensor

from .. import _C
from .._checks import Checker, check_groups, check_k_cache, check_query, check_v_cache
from .._launch import DTYPE_CODE, constant, launch, set_pointers
from ..reference import rope_inv_freq


@functools.lru_cache(maxsize=32)
def _inv_freq(head_dim: int, rope_theta: float, device: torch.device) -> Tensor:
    """The RoPE inverse frequencies, computed once per head size, theta and device (also inside a capture)."""
    with constant():
        return rope_inv_freq(head_dim, rope_theta, device).contiguous()


def _check(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta) -> None:
    c = Checker("qk_norm_rope_append")
    check_query(c, q)
    N, Hq, d = q.shape
    dev, dt = q.device, q.dtype
    c.tensor("k", k, ndim=3, dtype=dt, device=dev)
    Hkv = k.shape[1]
    c.tensor("k", k, shape=(N, Hkv, d))
    check_groups(c, Hq, Hkv)
    c.tensor("v", v, ndim=3, dtype=dt, device=dev, shape=(N, Hkv, d))
    for name, w in (("q_norm_weight", q_norm_weight), ("k_norm_weight", k_norm_weight)):
        c.tensor(name, w, ndim=1, device=dev, shape=(d,))
        c.weight_dtype(name, w, dt)
    c.value("k_norm_weight", k_norm_weight.dtype == q_norm_weight.dtype, f"of dtype {q_norm_weight.dtype}",
            k_norm_weight.dtype)
    c.index("positions", positions, N, dev)
    c.index("slot_mapping", slot_mapping, N, dev)
    check_k_cache(c, k_cache, q, Hkv)
    check_v_cache(c, v_cache, k_cache)
    c.written("k_cache", k_cache)
    c.written("v_cache", v_cache, ("k_cache", k_cache))
    c.number("eps", eps, 0)
    c.number("rope_theta", rope_theta, 0, strict=True)


def _run(q: Tensor, k: Tensor, v: Tensor, q_norm_weight: Tensor, k_norm_weight: Tensor, positions: Tensor,
         k_cache: Tensor, v_cache: Tensor, slot_mapping: Tensor, eps: float, rope_theta: float) -> Tensor:
    _check(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta)
    N, Hq, d = q.shape
    q_out = torch.empty(N, Hq, d, dtype=q.dtype, device=q.device)
    if N == 0:
        return q_out
    p = _C.QkNormRopeAppendParams()
    tensors = set_pointers(p, dict(q=q, k=k, v=v, q_out=q_out, q_norm_weight=q_norm_weight,
                                   k_norm_weight=k_norm_weight, inv_freq=_inv_freq(d, float(rope_theta), q.device),
                                   positions=positions, slot_mapping=slot_mapping, k_cache=k_cache,
                                   v_cache=v_cache))
    p.q_token_stride, p.q_head_stride = q.stride(0), q.stride(1)
    p.k_token_stride, p.k_head_stride = k.stride(0), k.stride(1)
    p.v_token_stride, p.v_head_stride = v.stride(0), v.stride(1)
    p.cache_block_stride, p.cache_token_stride, p.cache_head_stride = k_cache.stride()[:3]
    p.n_tokens, p.n_q_heads, p.n_kv_heads, p.head_dim = N, Hq, k.shape[1], d
    p.n_blocks, p.block_size = k_cache.shape[0], k_cache.shape[1]
    p.eps = float(eps)
    p.dtype, p.weight_dtype = DTYPE_CODE[q.dtype], DTYPE_CODE[q_norm_weight.dtype]
    p.cache_dtype = DTYPE_CODE[k_cache.dtype]
    launch("qk_norm_rope_append", p, tensors, q.device)
    return q_out


_op = torch.library.custom_op("lfm25::qk_norm_rope_append", _run, mutates_args=("k_cache", "v_cache"))


@_op.register_fake
def _(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta):
    _check(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta)
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


def qk_norm_rope_append(q: Tensor, k: Tensor, v: Tensor, q_norm_weight: Tensor, k_norm_weight: Tensor,
                        positions: Tensor, k_cache: Tensor, v_cache: Tensor, slot_mapping: Tensor, *,
                        eps: float = 1e-5, rope_theta: float = 1e6) -> Tensor:
    """Attention state update: per-head RMSNorm of q and k, rotate-half RoPE at positions, k and v appended.

    q: [N, Hq, d], k and v: [N, Hkv, d] (views into one qkv projection are fine); q_norm_weight and
    k_norm_weight: [d]; positions, slot_mapping: int32 [N]. k_cache, v_cache: [n_blocks, block_size, Hkv, d]
    (a contiguous cache is [B, L_max, Hkv, d]) in q's dtype, or in fp16 or bf16 when q is fp32 (k is rounded
    once, from fp32, to the cache's dtype); token n goes to flat slot slot_mapping[n] = block * block_size
    + offset, -1 = not written. d in {32, 64, 96, 128}. Returns q_out: [N, Hq, d].
    """
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.qk_norm_rope_append(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache,
                                                   v_cache, slot_mapping, eps, rope_theta)
    return _run(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta)
