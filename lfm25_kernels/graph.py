"""CpuGraph: the CPU launches of a block of op calls, recorded once and replayed in one call; Graphed: a
function of tensors captured once per input shapes and replayed.

The CPU analogue of a CUDA graph, for a decode step whose Python (argument checks, output allocation: tens of
microseconds per op call) would otherwise cost as much as a few of its kernels:

    graph = CpuGraph()
    with graph.capture():
        logits = step(static_inputs)      # lfm25_kernels ops only: recorded, not run
    for ...:
        static_inputs.copy_(...)          # new values, same tensors
        graph.replay()                    # every recorded kernel, in order, one call into C++; fills logits

Inside capture() each op checks its arguments and allocates its output as usual, but the kernel is recorded
(its params struct, pointers included, and the kernel table and thread count in effect) instead of run. The
graph keeps every tensor a recorded launch points into alive, so the outputs of the capture stay valid and
are rewritten by each replay. Index values (state indices, positions, slots, sequence lengths, block tables)
are checked again at every replay, as in an eager call. A replay refuses (RuntimeError) when a tensor it points
into was resized, re-pointed (set_) or had its storage resized since the capture: the recorded pointers would
reach freed memory.

What is not replayed: anything but lfm25_kernels ops. A torch operation that computes inside the capture
would run once, at capture time, so capture() raises CaptureError on one. Allocations and views are fine:
torch.empty, and torch.zeros, ones and full (and their _like and new_ forms), whose values are filled once, at
capture, and so must not be written by a recorded launch (CaptureError where a launch would: allocate such a
state before the capture). Only CPU tensors; on CUDA use torch.cuda.CUDAGraph.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from . import _C
from ._launch import capture_context, computing_constant, launcher

_aten = torch.ops.aten
# What may happen to tensors inside a capture besides kernel launches: allocations and views (func.is_view).
_ALLOCATIONS = {_aten.empty.memory_format, _aten.empty_like.default, _aten.empty_strided.default,
                _aten.new_empty.default, _aten.new_empty_strided.default, _aten._unsafe_view.default}
# Allocations filled with a constant: the value is written once, at capture.
_FILLED = {_aten.zeros.default, _aten.ones.default, _aten.full.default, _aten.zeros_like.default,
           _aten.ones_like.default, _aten.full_like.default, _aten.new_zeros.default, _aten.new_ones.default,
           _aten.new_full.default}


class CaptureError(RuntimeError):
    """A capture met a torch op that computes: it would run once, at capture time, and not at replay."""


class _OnlyKernels(TorchDispatchMode):
    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # NOTE: otherwise TorchDispatchMode wraps __torch_dispatch__ in torch._dynamo.disable, whose first call
        # imports torch._dynamo (and sympy, torch.distributed, ...) into every process that captures a decode
        # step, for its memory and import time. This mode only checks ops; nothing compiles it.
        return False

    def __init__(self):
        super().__init__()
        self.filled: set[int] = set()   # the storages of the tensors _FILLED allocated (their data pointers)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not (func.is_view or func in _ALLOCATIONS or func in _FILLED or computing_constant()):
            raise CaptureError(f"CpuGraph.capture: torch op {func} inside a capture would run once now and not "
                               "at replay; compute it into a static tensor before replay(), outside the capture")
        out = func(*args, **(kwargs or {}))
        if func in _FILLED:
            self.filled.add(out.untyped_storage().data_ptr())
        return out


def _written(params) -> set[str]:
    """The pointer fields of params that its kernel writes through."""
    return {name for name, _, writes in type(params).fields if writes}


class CpuGraph:
    """CPU kernel launches recorded by capture() and run by replay(); see the module docstring."""

    def __init__(self):
        self._graph = _C.CpuGraph()         # holds every tensor a recorded launch points into
        self._ops: list[str] = []          # the op of each recorded launch, in order
        self._state = "empty"              # "capturing", then "captured" or "failed"

    def __len__(self) -> int:
        return len(self._graph)

    @contextlib.contextmanager
    def capture(self):
        if self._state != "empty":
            raise RuntimeError("CpuGraph.capture: this graph is already captured; make a new CpuGraph")
        context = capture_context()
        if context is None:
            raise RuntimeError("CpuGraph.capture: not inside another capture or lfm25_kernels.ops.launcher()")
        isa, threads = context

        only_kernels = _OnlyKernels()

        def record(op: str, params, tensors: dict[str, Tensor]) -> None:
            for name, t in tensors.items():
                if t.device.type != "cpu":
                    raise ValueError(f"CpuGraph.capture: {op}: {name} is on {t.device}; a CpuGraph records CPU "
                                     "launches only (use torch.cuda.CUDAGraph on CUDA)")
                filled = only_kernels.filled and t.numel() and t.untyped_storage().data_ptr() in only_kernels.filled
                if filled and name in _written(params):
                    raise CaptureError(f"CpuGraph.capture: {op} writes {name}, which torch.zeros/ones/full filled "
                                       "inside the capture: it would be filled once now and not at replay; "
                                       "allocate it before the capture")
            params.num_threads = threads
            self._graph.add(params, isa, tensors)
            self._ops.append(op)

        self._state = "capturing"
        try:
            with launcher(record), only_kernels:
                yield self
        except BaseException:
            # NOTE: what was recorded before the error is not a whole step: replaying it would run part of one
            self._state = "failed"
            raise
        self._state = "captured"

    def _check_replayable(self, method: str) -> None:
        if self._state != "captured":
            raise RuntimeError({
                "empty": f"CpuGraph.{method}: nothing captured yet",
                "capturing": f"CpuGraph.{method}: not inside this graph's own capture",
                "failed": f"CpuGraph.{method}: the capture raised, so the graph holds part of a step; make a new "
                          "CpuGraph"}[self._state])

    def replay(self) -> None:
        """Run the recorded launches in order; a bad index value raises ValueError as the eager op would."""
        self._check_replayable("replay")
        self._graph.replay()

    def profile(self) -> list[tuple[str, float]]:
        """replay(), timing each launch: (op name, seconds) in launch order."""
        self._check_replayable("profile")
        return list(zip(self._ops, self._graph.replay_timed()))


class Graphed:
    """fn(*inputs), a function of tensors that returns a tensor or a tuple of them computed by lfm25_kernels ops
    on the CPU, captured once per key in a CpuGraph and replayed.

    The key is the inputs' shapes and dtypes, the kernel table and the thread count. The first call of a key
    allocates static copies of the inputs and captures fn on them; every call copies its inputs into them,
    replays, and returns the outputs of the capture, which the next call of that key rewrites. fn runs
    eagerly where nothing can be captured (inside another capture or a launcher() block, tensors not on the
    CPU) and for a key whose capture raised CaptureError (fn ran a torch op; nothing of it was run)."""

    def __init__(self, fn: Callable[..., Tensor | tuple[Tensor, ...]]):
        self.fn = fn
        self._steps: dict[tuple, tuple[CpuGraph, list[Tensor], Tensor | tuple[Tensor, ...]]] = {}
        self._eager: set[tuple] = set()

    def __call__(self, *inputs: Tensor):
        context = capture_context()
        if context is None or any(t.device.type != "cpu" for t in inputs):
            return self.fn(*inputs)
        key = (tuple((tuple(t.shape), t.dtype) for t in inputs), *context)
        step = self._steps.get(key)
        if step is None:
            if key in self._eager:
                return self.fn(*inputs)
            step = self._capture(inputs)
            if step is None:
                self._eager.add(key)
                return self.fn(*inputs)
            self._steps[key] = step
        graph, statics, outputs = step
        for static, t in zip(statics, inputs):
            static.copy_(t)
        graph.replay()
        return outputs

    def _capture(self, inputs: tuple[Tensor, ...]):
        """(graph, static inputs, outputs), or None where fn runs a torch op."""
        statics = [torch.empty_like(t, memory_format=torch.contiguous_format) for t in inputs]
        graph = CpuGraph()
        try:
            with graph.capture():
                outputs = self.fn(*statics)
        except CaptureError:
            return None
        return graph, statics, outputs

    def reset(self) -> None:
        """Drop every graph (the tensors they point into, e.g. caches, were reallocated)."""
        self._steps.clear()

    @property
    def graphs(self) -> dict[tuple, CpuGraph]:
        """The input shapes of each captured key -> its CpuGraph (CpuGraph.profile times its launches)."""
        return {tuple(shape for shape, _ in key[0]): graph for key, (graph, _, _) in self._steps.items()}
