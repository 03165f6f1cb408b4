"""How an op's launch reaches a kernel: the CPU kernel table in effect (cpu_isa), the launcher hook that sends
launches elsewhere (the qemu runner of tests/neon, a CpuGraph capture) and launch() itself (docs/DESIGN.md
sections 2 and 5). Every op module fills a params struct and calls launch(); graph.py reads the state here
through capture_context() and computing_constant()."""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable

import torch
from torch import Tensor

from . import _C

DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}   # lfm25::DType

# CPU kernel table for the calls in this context ("" = the best this CPU runs); see cpu_isa().
_isa: contextvars.ContextVar[str] = contextvars.ContextVar("lfm25_cpu_isa", default="")
# Replaces the local launch; see launcher().
_launcher: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("lfm25_launcher", default=None)
# True while computing a cached constant (RoPE frequencies): torch ops that a CpuGraph capture may run once.
_constant: contextvars.ContextVar[bool] = contextvars.ContextVar("lfm25_constant", default=False)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar, value):
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def cpu_isa(name: str):
    """Run the CPU ops in this block with one kernel table: "portable", "avx2", "avx512", "avx512_bf16", "amx",
    "neon" or "neon_bf16" (lfm25_kernels.available_isas() lists those this CPU runs)."""
    if name not in _C.available_isas():
        raise ValueError(f"cpu_isa: name must be one of {_C.available_isas()}, got {name!r}")
    return _setting(_isa, name)


def current_isa() -> str:
    """The CPU kernel table the ops run here: cpu_isa()'s, else the default one."""
    return _isa.get() or _C.default_isa()


def launcher(fn: Callable[[str, object, dict], None]):
    """Send every launch in this block to fn(op, params, tensors) instead of the local kernels; `tensors` maps
    each pointer field of params to the tensor it points into."""
    return _setting(_launcher, fn)


def capture_context() -> tuple[str, int] | None:
    """The kernel table ("" = the default) and thread count a CpuGraph capture here records, or None where
    launches are sent elsewhere (inside a capture or a launcher() block), so that nothing can be captured."""
    if _launcher.get() is not None:
        return None
    return _isa.get(), torch.get_num_threads()


def constant():
    """The torch ops in this block compute a cached constant: a capture lets them run once."""
    return _setting(_constant, True)


def computing_constant() -> bool:
    return _constant.get()


def set_pointers(params, tensors: dict[str, Tensor | None]) -> dict[str, Tensor]:
    """Point each pointer field of params named in `tensors` at its tensor (0 for None) and set the presence flag
    <name>_given of an optional one (a passed tensor without elements has a null data pointer too); returns the
    tensors that are set, which launch() hands to a launcher."""
    used = {}
    for name, t in tensors.items():
        setattr(params, name, 0 if t is None else t.data_ptr())
        if hasattr(params, name + "_given"):
            setattr(params, name + "_given", t is not None)
        if t is not None:
            used[name] = t
    return used


def launch(op: str, params, tensors: dict[str, Tensor], device: torch.device) -> None:
    """Run op's kernel for the device on params (or hand it to the launcher in effect)."""
    remote = _launcher.get()
    if remote is not None:
        remote(op, params, tensors)
        return
    params.num_threads = torch.get_num_threads()
    if device.type == "cpu":
        getattr(_C, op + "_cpu")(params, _isa.get())
    elif device.type == "cuda":
        if not _C.with_cuda:
            raise RuntimeError(f"{op}: lfm25_kernels was built without CUDA; reinstall with a CUDA compiler on PATH")
        stream = torch.cuda.current_stream(device).cuda_stream
        with torch.cuda.device(device):
            getattr(_C, op + "_cuda")(params, stream)
    else:
        raise ValueError(f"{op}: tensors must be on a cpu or cuda device, got {device}")
