"""rms_norm: RMSNorm over the last dimension, optionally with the residual add fused in front
(docs/DESIGN.md section 3). Two custom ops, lfm25::rms_norm and lfm25::add_rms_norm, as their results differ."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C
from .._checks import FLOAT_DTYPES, Checker
from .._launch import DTYPE_CODE, launch, set_pointers


def _check(x, weight, residual, eps) -> None:
    c = Checker("rms_norm")
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=FLOAT_DTYPES, lead=True)
    c.number("eps", eps, 0)
    c.tensor("weight", weight, ndim=1, device=x.device, shape=(x.shape[-1],))
    c.weight_dtype("weight", weight, x.dtype)
    if residual is not None:
        c.tensor("residual", residual, dtype=x.dtype, device=x.device, shape=tuple(x.shape))


def _run(x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None):
    _check(x, weight, residual, eps)
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    h = torch.empty_like(y) if residual is not None else None
    if x.numel() == 0:
        return y if residual is None else (y, h)
    D = x.shape[-1]
    x2 = x.reshape(-1, D)
    r2 = residual.reshape(-1, D) if residual is not None else None
    p = _C.RmsNormParams()
    tensors = set_pointers(p, dict(x=x2, residual=r2, y=y, residual_out=h, weight=weight))
    p.x_row_stride = x2.stride(0)
    p.residual_row_stride = r2.stride(0) if r2 is not None else 0
    p.rows, p.dim, p.eps = x2.shape[0], D, float(eps)
    p.dtype, p.weight_dtype = DTYPE_CODE[x.dtype], DTYPE_CODE[weight.dtype]
    launch("rms_norm", p, tensors, x.device)
    return y if residual is None else (y, h)


@torch.library.custom_op("lfm25::rms_norm", mutates_args=())
def _rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    return _run(x, weight, eps)


@torch.library.custom_op("lfm25::add_rms_norm", mutates_args=())
def _add_rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor) -> tuple[Tensor, Tensor]:
    return _run(x, weight, eps, residual)


@_rms_norm.register_fake
def _(x, weight, eps):
    _check(x, weight, None, eps)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


@_add_rms_norm.register_fake
def _(x, weight, eps, residual):
    _check(x, weight, residual, eps)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device), torch.empty(x.shape, dtype=x.dtype, device=x.device)


def rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None):
    """RMSNorm over the last dimension: y = weight * x / sqrt(mean(x^2) + eps).

    x: [..., D]; weight: [D] in x's dtype or fp32. With residual ([..., D], x's dtype): h = x + residual is
    rounded to x's dtype and the op returns (rms_norm(h), h).
    """
    if torch.compiler.is_compiling():
        if residual is None:
            return torch.ops.lfm25.rms_norm(x, weight, float(eps))
        return torch.ops.lfm25.add_rms_norm(x, weight, float(eps), residual)
    return _run(x, weight, eps, residual)
