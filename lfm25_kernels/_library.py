"""torch.library registration: every op as `torch.ops.lfm25.<name>` with a fake (meta) implementation, so
torch.compile traces through the ops and CUDA graphs capture them. The public functions in ops.py route here
while compiling; eager calls go straight to the kernels (no dispatcher overhead on the decode path)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from . import ops


@torch.library.custom_op("lfm25::short_conv", mutates_args=("conv_state",))
def short_conv(bcx: Tensor, weight: Tensor, conv_state: Optional[Tensor], cu_seqlens: Optional[Tensor],
               state_indices: Optional[Tensor], has_initial_state: Optional[Tensor]) -> Tensor:
    return ops.short_conv(bcx, weight, conv_state, cu_seqlens=cu_seqlens, state_indices=state_indices,
                          has_initial_state=has_initial_state)


@short_conv.register_fake
def _(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state):
    return bcx.new_empty(*bcx.shape[:-1], bcx.shape[-1] // 3)


@torch.library.custom_op("lfm25::short_conv_update", mutates_args=("conv_state",))
def short_conv_update(bcx: Tensor, weight: Tensor, conv_state: Tensor, state_indices: Optional[Tensor]) -> Tensor:
    return ops.short_conv_update(bcx, weight, conv_state, state_indices=state_indices)


@short_conv_update.register_fake
def _(bcx, weight, conv_state, state_indices):
    return bcx.new_empty(bcx.shape[0], bcx.shape[1] // 3)


@torch.library.custom_op("lfm25::qk_norm_rope_append", mutates_args=("k_cache", "v_cache"))
def qk_norm_rope_append(q: Tensor, k: Tensor, v: Tensor, q_norm_weight: Tensor, k_norm_weight: Tensor,
                        positions: Tensor, k_cache: Tensor, v_cache: Tensor, slot_mapping: Tensor, eps: float,
                        rope_theta: float) -> Tensor:
    return ops.qk_norm_rope_append(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache,
                                   slot_mapping, eps=eps, rope_theta=rope_theta)


@qk_norm_rope_append.register_fake
def _(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache, v_cache, slot_mapping, eps, rope_theta):
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


@torch.library.custom_op("lfm25::gqa_decode", mutates_args=())
def gqa_decode(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, block_table: Optional[Tensor],
               scale: float) -> Tensor:
    return ops.gqa_decode(q, k_cache, v_cache, seq_lens, block_table=block_table, scale=scale)


@gqa_decode.register_fake
def _(q, k_cache, v_cache, seq_lens, block_table, scale):
    return torch.empty(q.shape, dtype=q.dtype, device=q.device)


@torch.library.custom_op("lfm25::linear", mutates_args=())
def linear(x: Tensor, weight: Tensor, gate_weight: Optional[Tensor]) -> Tensor:
    return ops.linear(x, weight, gate_weight=gate_weight)


@linear.register_fake
def _(x, weight, gate_weight):
    return x.new_empty(*x.shape[:-1], weight.shape[0])


@torch.library.custom_op("lfm25::linear_packed", mutates_args=())
def linear_packed(x: Tensor, data: Tensor, out_features: int, in_features: int, gated: bool) -> Tensor:
    return ops.linear(x, ops.PackedWeight(data, out_features, in_features, gated))


@linear_packed.register_fake
def _(x, data, out_features, in_features, gated):
    return x.new_empty(*x.shape[:-1], out_features)


@torch.library.custom_op("lfm25::rms_norm", mutates_args=())
def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    return ops.rms_norm(x, weight, eps)


@rms_norm.register_fake
def _(x, weight, eps):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


@torch.library.custom_op("lfm25::add_rms_norm", mutates_args=())
def add_rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor) -> tuple[Tensor, Tensor]:
    return ops.rms_norm(x, weight, eps, residual)


@add_rms_norm.register_fake
def _(x, weight, eps, residual):
    return torch.empty(x.shape, dtype=x.dtype, device=x.device), torch.empty(x.shape, dtype=x.dtype, device=x.device)
