"""Memory for packed weights (quantize_weight, pack_weight): on Linux, anonymous mappings backed by transparent
huge pages (madvise(MADV_HUGEPAGE), which the default THP mode "madvise" honours).

Why: a decode step reads every weight once from DRAM at one or a few rows of x, so the projections run as fast
as the CPU's hardware prefetchers bring the weights in, and those do not cross a page. On 4 KiB pages each
stream stops and retrains every 64 cache lines; on a 2 MiB page it runs ahead across the whole page (and the
TLB holds the whole model). Fewer bytes do not change: the same weights, faster.

Two ways to get them:
- weight_memory(): a `with` block in which the packed weights are carved one after another out of slabs of
  64 MiB, 2 MiB aligned, so every weight is on huge pages whatever its size, and at most the last 2 MiB page
  of each slab is backed beyond what the weights use. A model packs its weights inside one (lfm25_model does).
- outside such a block, each weight gets its own mapping: its whole 2 MiB pieces on huge pages, the rest on
  small ones, no page backed beyond the weight.
Elsewhere (not Linux, or a Python without MADV_HUGEPAGE) both are ordinary torch tensors. A weight's memory is
freed when the last tensor that views it is (a slab: when all of its weights are).
"""
from __future__ import annotations

import contextlib
import mmap
import threading

import torch
from torch import Tensor

_HUGE = 2 << 20     # a transparent huge page on x86-64 and (4 KiB granule) aarch64
_SLAB = 64 << 20
_ALIGN = 64         # a weight's start in a slab: a cache line
_MADVISE = getattr(mmap, "MADV_HUGEPAGE", None)
_local = threading.local()   # .slab: [tensor, bytes used] of the innermost weight_memory() block, or None


def _mapping(nbytes: int, huge_bytes: int) -> Tensor:
    """nbytes of zeroed memory, 2 MiB aligned, the first huge_bytes (whole 2 MiB pages) advised huge."""
    m = mmap.mmap(-1, nbytes + _HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)   # shared would be shmem
    base = torch.frombuffer(m, dtype=torch.uint8)   # holds m: unmapped with the last view of it
    start = -base.data_ptr() % _HUGE
    if huge_bytes:
        m.madvise(_MADVISE, start, huge_bytes)
    return base[start:start + nbytes]


def zeros(shape, dtype: torch.dtype) -> Tensor:
    """A zeroed CPU tensor for a packed weight: carved from the slab of the enclosing weight_memory() block, or
    in its own mapping (module docstring); a plain torch.zeros where huge pages cannot be asked for."""
    shape = torch.Size([shape] if isinstance(shape, int) else shape)
    nbytes = shape.numel() * dtype.itemsize
    if _MADVISE is None or nbytes == 0:
        return torch.zeros(shape, dtype=dtype)
    slab = getattr(_local, "slab", None)
    if slab is None or nbytes > _SLAB:
        data = _mapping(nbytes, nbytes // _HUGE * _HUGE)
    else:
        if slab[0] is None or slab[1] + nbytes > _SLAB:   # a new slab; the rest of the old one stays unbacked
            slab[0], slab[1] = _mapping(_SLAB, _SLAB), 0
        data = slab[0][slab[1]:slab[1] + nbytes]
        slab[1] += -(-nbytes // _ALIGN) * _ALIGN
    return data.view(dtype).view(shape)


@contextlib.contextmanager
def weight_memory():
    """Pack the weights made inside the block densely on huge pages (module docstring). Nests; per thread."""
    outer = getattr(_local, "slab", None)
    _local.slab = [None, 0]
    try:
        yield
    finally:
        _local.slab = outer
