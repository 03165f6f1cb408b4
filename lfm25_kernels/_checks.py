"""Argument checks shared by the ops: each failure names the op, the argument, what was expected and what
was given. Type problems raise TypeError, shape/stride/device/value problems ValueError."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import Tensor

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


class Checker:
    def __init__(self, op: str):
        self.op = op

    def fail(self, name: str, expected: str, got, exc=ValueError):
        raise exc(f"{self.op}: {name} must be {expected}, got {got}")

    def tensor(self, name: str, t, *, ndim: int | Sequence[int] | None = None,
               dtype: torch.dtype | Iterable[torch.dtype] | None = None, device: torch.device | None = None,
               shape: Sequence[int | None] | None = None, last_contiguous: bool = True,
               contiguous: bool = False) -> Tensor:
        if not isinstance(t, Tensor):
            self.fail(name, "a torch.Tensor", type(t).__name__, TypeError)
        if ndim is not None:
            dims = (ndim,) if isinstance(ndim, int) else tuple(ndim)
            if t.dim() not in dims:
                self.fail(name, f"a {' or '.join(map(str, dims))}-D tensor", f"shape {tuple(t.shape)}")
        if dtype is not None:
            allowed = (dtype,) if isinstance(dtype, torch.dtype) else tuple(dtype)
            if t.dtype not in allowed:
                self.fail(name, f"of dtype {' or '.join(str(d) for d in allowed)}", t.dtype, TypeError)
        if device is not None and t.device != device:
            self.fail(name, f"on device {device} (like the activations)", t.device)
        if shape is not None:
            if len(shape) != t.dim() or any(s is not None and s != g for s, g in zip(shape, t.shape)):
                want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
                self.fail(name, f"of shape {want}", f"{list(t.shape)}")
        if contiguous and not t.is_contiguous():
            self.fail(name, "contiguous", f"strides {t.stride()}")
        if last_contiguous and t.dim() > 0 and t.shape[-1] > 1 and t.stride(-1) != 1:
            self.fail(name, "contiguous in its last dimension", f"strides {t.stride()}")
        return t

    def index(self, name: str, t, length: int | None, device: torch.device, dtype=torch.int32) -> Tensor:
        """A 1-D contiguous index tensor (int32 unless dtype says otherwise) of `length` entries."""
        return self.tensor(name, t, ndim=1, dtype=dtype, device=device,
                           shape=None if length is None else (length,), contiguous=True)

    def value(self, name: str, ok: bool, expected: str, got):
        if not ok:
            self.fail(name, expected, got)
