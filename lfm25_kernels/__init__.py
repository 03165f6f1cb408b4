"""lfm25-kernels: fused CPU and CUDA kernels for Liquid AI's LFM2 / LFM2.5 models.

Ops (docs/DESIGN.md section 3): short_conv, short_conv_update, qk_norm_rope_append, gqa_decode, rms_norm, and
linear (the projections of a CPU decode step, optionally with LFM2's SwiGLU gate fused in; pack_weight packs its
weights for the AMX table), and linear_q, the same with int8 or 4-bit weights (quantize_weight). Each is also registered as torch.ops.lfm25.<name> for torch.compile. `reference`
holds the PyTorch reference of each.
Projection decides which kernel a model's projection runs for a call's rows on this machine. CpuGraph records
the CPU launches of a block of op calls once and replays them in one call; Graphed does so for a function, once
per input shapes. memory.weight_memory() packs the weights made inside it densely on huge pages.
"""
from . import _C, memory, ops, reference
from .graph import CaptureError, CpuGraph, Graphed
from .ops import *  # noqa: F401,F403  (the ops and their helpers: ops.__all__)
from .projection import Projection

__version__ = "0.1.0"


def available_isas() -> list[str]:
    """CPU kernel tables this CPU can run, best first (e.g. ["avx512", "avx2", "portable"])."""
    return _C.available_isas()


def default_isa() -> str:
    """The CPU kernel table the ops use (the LFM25_CPU_ISA environment variable overrides the best)."""
    return _C.default_isa()


def cuda_available() -> bool:
    """True when the extension was built with CUDA kernels and a CUDA device is present."""
    import torch

    return bool(_C.with_cuda) and torch.cuda.is_available()


__all__ = [*ops.__all__, "Projection", "CpuGraph", "Graphed", "CaptureError", "ops", "memory", "reference",
           "available_isas",
           "default_isa", "cuda_available"]
