"""gqa_decode: single-query grouped attention of a decode step against each sequence's KV cache, contiguous or
paged (docs/DESIGN.md section 3)."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C
from .._checks import Checker, check_groups, check_k_cache, check_query, check_v_cache
from .._launch import DTYPE_CODE, launch, set_pointers


def _check(q, k_cache, v_cache, seq_lens, block_table, scale) -> None:
    c = Checker("gqa_decode")
    if scale is not None:
        c.number("scale", scale)
    check_query(c, q)
    B, Hq, d = q.shape
    check_groups(c, Hq, check_k_cache(c, k_cache, q))
    check_v_cache(c, v_cache, k_cache)
    c.index("seq_lens", seq_lens, B, q.device)
    if block_table is not None:
        c.tensor("block_table", block_table, ndim=2, dtype=torch.int32, device=q.device, shape=(B, None))
    else:
        c.value("k_cache", k_cache.shape[0] >= B, f"of at least {B} rows (one per sequence) without block_table",
                k_cache.shape[0])


def _run(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, block_table: Tensor | None,
         scale: float | None) -> Tensor:
    _check(q, k_cache, v_cache, seq_lens, block_table, scale)
    B, Hq, d = q.shape
    out = torch.empty(B, Hq, d, dtype=q.dtype, device=q.device)
    if B == 0:
        return out
    p = _C.GqaDecodeParams()
    tensors = set_pointers(p, dict(q=q, out=out, k_cache=k_cache, v_cache=v_cache, seq_lens=seq_lens,
                                   block_table=block_table))
    p.q_batch_stride, p.q_head_stride = q.stride(0), q.stride(1)
    p.cache_block_stride, p.cache_token_stride, p.cache_head_stride = k_cache.stride()[:3]
    p.block_table_stride = block_table.stride(0) if block_table is not None else 0
    p.batch, p.n_q_heads, p.n_kv_heads, p.head_dim = B, Hq, k_cache.shape[2], d
    p.n_blocks, p.block_size = k_cache.shape[0], k_cache.shape[1]
    p.max_blocks = block_table.shape[1] if block_table is not None else 1
    p.scale = d ** -0.5 if scale is None else float(scale)
    p.dtype, p.cache_dtype = DTYPE_CODE[q.dtype], DTYPE_CODE[k_cache.dtype]
    launch("gqa_decode", p, tensors, q.device)
    return out


_op = torch.library.custom_op("lfm25::gqa_decode", _run, mutates_args=())


@_op.register_fake
def _(q, k_cache, v_cache, seq_lens, block_table, scale):
    _check(q, k_cache, v_cache, seq_lens, block_table, scale)
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


def gqa_decode(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, *,
               block_table: Tensor | None = None, scale: float | None = None) -> Tensor:
    """Single-query grouped attention per sequence against its KV cache.

    q: [B, Hq, d]; k_cache, v_cache: [B, L_max, Hkv, d] (contiguous: sequence b owns row b) or
    [n_blocks, block_size, Hkv, d] with block_table int32 [B, max_blocks] (paged), in q's dtype, or in fp16
    or bf16 when q is fp32; seq_lens: int32 [B], the number of valid cached tokens (0 gives zeros). Query head
    h reads KV head h // (Hq/Hkv).
    scale defaults to d**-0.5. d in {32, 64, 96, 128}. Returns out: [B, Hq, d]. NaN in q, K or V and scores
    that overflow fp32 give NaN where the reference softmax does. On the CPU the output does not depend on the
    thread count (fixed 256-token splits).
    """
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.gqa_decode(q, k_cache, v_cache, seq_lens, block_table, scale)
    return _run(q, k_cache, v_cache, seq_lens, block_table, scale)
