"""short_conv: the gated short convolution of a prefill, y = C * causal_conv_K(B * X), reading and writing the
conv state in place (docs/DESIGN.md section 3). The conv checks here serve short_conv_update too."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C
from .._checks import FLOAT_DTYPES, Checker
from .._launch import DTYPE_CODE, launch, set_pointers


def check_conv_weight(c: Checker, weight, D: int, device) -> Tensor:
    """weight as [D, K] (a [D, 1, K] weight viewed so)."""
    c.tensor("weight", weight, ndim=(2, 3), device=device)
    if weight.dim() == 3:
        c.value("weight", weight.shape[1] == 1, "[D, K] or [D, 1, K]", f"shape {list(weight.shape)}")
        weight = weight[:, 0, :]
    c.value("weight", weight.shape[0] == D, f"of shape [{D}, K] (D = bcx.shape[-1] / 3)", f"{list(weight.shape)}")
    c.value("weight", 2 <= weight.shape[1] <= 4, "of width K in 2..4", weight.shape[1])
    return weight


def check_conv_state(c: Checker, state, K: int, D: int, bcx: Tensor) -> Tensor:
    c.tensor("conv_state", state, ndim=3, dtype=bcx.dtype, device=bcx.device, shape=(None, K - 1, D))
    c.written("conv_state", state)
    return state


def _check(bcx, weight, state, cu_seqlens, state_indices, has_initial_state) -> tuple[Tensor, int]:
    """The weight as [D, K] and the number of sequences."""
    c = Checker("short_conv")
    c.tensor("bcx", bcx, ndim=2 if cu_seqlens is not None else 3, dtype=FLOAT_DTYPES, lead=True)
    c.value("bcx", bcx.shape[-1] % 3 == 0 and bcx.shape[-1] > 0, "of width 3*D", bcx.shape[-1])
    D = bcx.shape[-1] // 3
    weight = check_conv_weight(c, weight, D, bcx.device)
    K = weight.shape[1]
    if cu_seqlens is not None:
        c.index("cu_seqlens", cu_seqlens, None, bcx.device)
        c.value("cu_seqlens", cu_seqlens.numel() >= 1, "of length n_seq + 1 >= 1", cu_seqlens.numel())
        n_seq = cu_seqlens.numel() - 1
    else:
        n_seq = bcx.shape[0]
    if state is None:
        for name, t in (("state_indices", state_indices), ("has_initial_state", has_initial_state)):
            c.value(name, t is None, "None when conv_state is None", "a tensor")
    else:
        check_conv_state(c, state, K, D, bcx)
        if state_indices is not None:
            c.index("state_indices", state_indices, n_seq, bcx.device)
        else:
            c.value("conv_state", state.shape[0] >= n_seq,
                    f"of at least {n_seq} slots when state_indices is None", state.shape[0])
        if has_initial_state is not None:
            c.index("has_initial_state", has_initial_state, n_seq, bcx.device, dtype=torch.bool)
    c.weight_dtype("weight", weight, bcx.dtype)
    return weight, n_seq


def _run(bcx: Tensor, weight: Tensor, conv_state: Tensor | None, cu_seqlens: Tensor | None,
         state_indices: Tensor | None, has_initial_state: Tensor | None) -> Tensor:
    weight, n_seq = _check(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state)
    D, K = weight.shape
    y = torch.empty(*bcx.shape[:-1], D, dtype=bcx.dtype, device=bcx.device)
    if y.numel() == 0 and (conv_state is None or n_seq == 0):
        return y
    p = _C.ShortConvParams()
    tensors = set_pointers(p, dict(x=bcx, y=y, weight=weight, state=conv_state, cu_seqlens=cu_seqlens,
                                   state_indices=state_indices, has_initial_state=has_initial_state))
    if cu_seqlens is None:
        p.x_batch_stride, p.x_token_stride = bcx.stride(0), bcx.stride(1)
        p.y_batch_stride, p.y_token_stride = y.stride(0), y.stride(1)
    else:
        p.x_batch_stride, p.x_token_stride = 0, bcx.stride(0)
        p.y_batch_stride, p.y_token_stride = 0, y.stride(0)
    p.weight_stride = weight.stride(0)
    if conv_state is not None:
        p.state_slot_stride, p.state_row_stride = conv_state.stride(0), conv_state.stride(1)
        p.n_slots = conv_state.shape[0]
    p.batch, p.seqlen, p.dim, p.width = n_seq, bcx.shape[-2], D, K
    p.dtype, p.weight_dtype = DTYPE_CODE[bcx.dtype], DTYPE_CODE[weight.dtype]
    launch("short_conv", p, tensors, bcx.device)
    return y


_op = torch.library.custom_op("lfm25::short_conv", _run, mutates_args=("conv_state",))


@_op.register_fake
def _(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state):
    weight, _ = _check(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state)
    return bcx.new_empty(*bcx.shape[:-1], weight.shape[0])


def short_conv(bcx: Tensor, weight: Tensor, conv_state: Tensor | None = None, *,
               cu_seqlens: Tensor | None = None, state_indices: Tensor | None = None,
               has_initial_state: Tensor | None = None) -> Tensor:
    """Gated short convolution, prefill: y = C * causal_conv_K(B * X).

    bcx: [B, T, 3D] (dense) or [N, 3D] with cu_seqlens [n_seq+1] int32 (packed); columns B | C | X.
    weight: [D, K] or [D, 1, K], K in 2..4, in bcx's dtype or fp32.
    conv_state: [S, K-1, D] in bcx's dtype, read and written in place: sequence i uses slot state_indices[i]
    (int32 [n_seq], default i; -1 = padding: zero output, no state), starting from zeros where
    has_initial_state[i] (bool [n_seq], default all true) is false. A slot appears at most once in
    state_indices (ValueError on the CPU; the CUDA path does not read index values on the host).
    Returns y: [B, T, D] or [N, D] in bcx's dtype.
    """
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.short_conv(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state)
    return _run(bcx, weight, conv_state, cu_seqlens, state_indices, has_initial_state)
