"""short_conv_update: one decode step of the gated short convolution for a batch, the conv state shifted by one
row in place (docs/DESIGN.md section 3)."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C
from .._checks import FLOAT_DTYPES, Checker
from .._launch import DTYPE_CODE, launch, set_pointers
from .short_conv import check_conv_state, check_conv_weight


def _check(bcx, weight, conv_state, state_indices) -> Tensor:
    """The weight as [D, K]."""
    c = Checker("short_conv_update")
    c.tensor("bcx", bcx, ndim=2, dtype=FLOAT_DTYPES, lead=True)
    c.value("bcx", bcx.shape[-1] % 3 == 0 and bcx.shape[-1] > 0, "of width 3*D", bcx.shape[-1])
    D, B = bcx.shape[-1] // 3, bcx.shape[0]
    weight = check_conv_weight(c, weight, D, bcx.device)
    check_conv_state(c, conv_state, weight.shape[1], D, bcx)
    if state_indices is not None:
        c.index("state_indices", state_indices, B, bcx.device)
    else:
        c.value("conv_state", conv_state.shape[0] >= B, f"of at least {B} slots when state_indices is None",
                conv_state.shape[0])
    c.weight_dtype("weight", weight, bcx.dtype)
    return weight


def _run(bcx: Tensor, weight: Tensor, conv_state: Tensor, state_indices: Tensor | None) -> Tensor:
    weight = _check(bcx, weight, conv_state, state_indices)
    (B, _), (D, K) = bcx.shape, weight.shape
    y = torch.empty(B, D, dtype=bcx.dtype, device=bcx.device)
    if B == 0:
        return y
    p = _C.ShortConvUpdateParams()
    tensors = set_pointers(p, dict(x=bcx, y=y, weight=weight, state=conv_state, state_indices=state_indices))
    p.x_batch_stride, p.y_batch_stride, p.weight_stride = bcx.stride(0), y.stride(0), weight.stride(0)
    p.state_slot_stride, p.state_row_stride = conv_state.stride(0), conv_state.stride(1)
    p.batch, p.dim, p.width, p.n_slots = B, D, K, conv_state.shape[0]
    p.dtype, p.weight_dtype = DTYPE_CODE[bcx.dtype], DTYPE_CODE[weight.dtype]
    launch("short_conv_update", p, tensors, bcx.device)
    return y


_op = torch.library.custom_op("lfm25::short_conv_update", _run, mutates_args=("conv_state",))


@_op.register_fake
def _(bcx, weight, conv_state, state_indices):
    weight = _check(bcx, weight, conv_state, state_indices)
    return bcx.new_empty(bcx.shape[0], weight.shape[0])


def short_conv_update(bcx: Tensor, weight: Tensor, conv_state: Tensor, *,
                      state_indices: Tensor | None = None) -> Tensor:
    """Gated short convolution, one decode step for a batch.

    bcx: [B, 3D]; weight: [D, K] or [D, 1, K]; conv_state: [S, K-1, D], shifted by one row in place at slot
    state_indices[b] (int32 [B], default b; -1 = padding: zero output, state untouched), a slot at most once.
    Returns y: [B, D]. Equals short_conv with T=1 and an initial state, bit for bit.
    """
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.short_conv_update(bcx, weight, conv_state, state_indices)
    return _run(bcx, weight, conv_state, state_indices)
