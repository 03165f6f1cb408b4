"""Argument checks shared by the ops: each failure names the op, the argument, what was expected and what
was given. Type problems raise TypeError, shape/stride/device/value problems ValueError."""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import torch
from torch import Tensor
from torch._subclasses.fake_tensor import FakeTensor

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
HEAD_DIMS = (32, 64, 96, 128)   # the head sizes the attention kernels are compiled for


class Checker:
    def __init__(self, op: str):
        self.op = op

    def fail(self, name: str, expected: str, got, exc=ValueError):
        raise exc(f"{self.op}: {name} must be {expected}, got {got}")

    def tensor(self, name: str, t, *, ndim: int | Sequence[int] | None = None,
               dtype: torch.dtype | Iterable[torch.dtype] | None = None, device: torch.device | None = None,
               shape: Sequence[int | None] | None = None, last_contiguous: bool = True,
               contiguous: bool = False, lead: bool = False) -> Tensor:
        """lead: the op's first tensor, whose device the others must share; it must be one the kernels run on."""
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
        if lead and t.device.type not in ("cpu", "cuda"):
            self.fail(name, "on a cpu or cuda device", t.device)
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

    def weight_dtype(self, name: str, t: Tensor, dtype: torch.dtype) -> None:
        """A weight in the activations' dtype or in fp32 (the kernels read both)."""
        if t.dtype not in (dtype, torch.float32):
            self.fail(name, f"of dtype {dtype} or torch.float32", t.dtype, TypeError)

    def number(self, name: str, v, low: float | None = None, *, strict: bool = False) -> None:
        """A finite real number (not a bool), >= low (> low when strict) where low is given."""
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self.fail(name, "a float", type(v).__name__, TypeError)
        bound = "" if low is None else f" {'>' if strict else '>='} {low}"
        in_range = low is None or (v > low if strict else v >= low)
        self.value(name, math.isfinite(v) and in_range, "a finite number" + bound, v)

    def value(self, name: str, ok: bool, expected: str, got):
        if not ok:
            self.fail(name, expected, got)

    def written(self, name: str, t: Tensor, *others: tuple[str, Tensor]) -> None:
        """t is written in place: no two of its elements may share memory (an expanded view's would, as torch's
        own in-place ops refuse), nor may it share memory with the other tensors written by the same call. Like
        torch, the second check is exact where both are contiguous; for strided views (k and v interleaved in
        one buffer are fine) it refuses only the same start."""
        if any(st == 0 and n > 1 for st, n in zip(t.stride(), t.shape)):
            self.fail(name, "a tensor whose elements do not share memory (it is written in place; expand() "
                      "views are not)", f"strides {t.stride()} for shape {list(t.shape)}")
        span = _byte_span(t) if others else None
        for other_name, o in others:
            other = _byte_span(o)
            dense = t.is_contiguous() and o.is_contiguous()
            if span and other and (span[0] == other[0] or dense and span[0] < other[1] and other[0] < span[1]):
                (lo, hi), (olo, ohi) = span, other
                self.fail(name, f"memory apart from {other_name} (both are written in place)",
                          f"overlapping bytes [{max(lo, olo):#x}, {min(hi, ohi):#x})")


def _byte_span(t: Tensor) -> tuple[int, int] | None:
    """[first, last + 1) of the bytes a strided tensor can touch; None without elements or memory (the fake
    tensors of a torch.compile trace)."""
    if isinstance(t, FakeTensor) or t.numel() == 0 or t.data_ptr() == 0:
        return None
    ptr = t.data_ptr()
    last = sum((n - 1) * st for n, st in zip(t.shape, t.stride()))
    return ptr, ptr + (last + 1) * t.element_size()


def check_query(c: Checker, q) -> None:
    """q [N, Hq, d] with d a head size the attention kernels are compiled for."""
    c.tensor("q", q, ndim=3, dtype=FLOAT_DTYPES, lead=True)
    c.value("q", q.shape[2] in HEAD_DIMS, f"of head_dim in {HEAD_DIMS}", q.shape[2])


def check_groups(c: Checker, Hq: int, Hkv: int) -> None:
    c.value("q", Hkv > 0 and Hq % Hkv == 0, f"of a head count that is a multiple of the {Hkv} KV heads", Hq)


# The KV cache dtypes the attention kernels read and write for each activation dtype: the activations' own, or
# a 16-bit one under fp32 activations (half the memory, as llama.cpp's default f16 cache).
CACHE_DTYPES = {torch.float32: FLOAT_DTYPES, torch.float16: (torch.float16,), torch.bfloat16: (torch.bfloat16,)}


def check_k_cache(c: Checker, k_cache, q: Tensor, heads: int | None = None) -> int:
    """k_cache [*, *, Hkv, d] for q [N, Hq, d], in one of q's CACHE_DTYPES, of `heads` KV heads where given;
    returns Hkv."""
    c.tensor("k_cache", k_cache, ndim=4, device=q.device)
    allowed = CACHE_DTYPES[q.dtype]
    if k_cache.dtype not in allowed:
        c.fail("k_cache", f"of dtype {' or '.join(map(str, allowed))} for {q.dtype} activations (a cache in "
               "another dtype than the activations' is fp16 or bf16 under fp32)", k_cache.dtype, TypeError)
    c.tensor("k_cache", k_cache, shape=(None, None, heads or k_cache.shape[2], q.shape[2]))
    return k_cache.shape[2]


def check_v_cache(c: Checker, v_cache, k_cache: Tensor) -> None:
    """v_cache shaped and strided like k_cache."""
    c.tensor("v_cache", v_cache, ndim=4, dtype=k_cache.dtype, device=k_cache.device, shape=tuple(k_cache.shape))
    c.value("v_cache", v_cache.stride() == k_cache.stride(), f"strided like k_cache {k_cache.stride()}",
            v_cache.stride())


def check_packed_sizes(c: Checker, out_features, in_features, gated, minimum: int) -> None:
    """The sizes a packed weight (PackedWeight, QuantizedWeight) was made for: ints >= minimum, gated a bool."""
    for name, v in (("out_features", out_features), ("in_features", in_features)):
        if isinstance(v, bool) or not isinstance(v, int):
            c.fail(name, "an int", type(v).__name__, TypeError)
        c.value(name, v >= minimum, "non-negative" if minimum == 0 else f"at least {minimum}", v)
    if not isinstance(gated, bool):
        c.fail("gated", "a bool", type(gated).__name__, TypeError)
