"""Projection: a layer's weight (and its SwiGLU gate) and the path its product takes for a call's number of rows
on this machine: lfm25_kernels.linear on [N, K] rows or on a PackedWeight, torch's GEMM, or linear_q on a
QuantizedWeight for any number of rows (docs/DESIGN.md section 2). The model says which weights it has; this
module alone says which kernel runs them. The figures behind each threshold are in bench/results (e2e-*.md)
and the commits they cite."""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from ._checks import Checker
from ._launch import current_isa
from .ops.linear import READERS, PackedWeight, linear, pack_weight
from .ops.linear_q import QuantizedWeight, linear_q, quantize_weight

# Up to this many rows (tokens in a call) a CPU projection runs our linear kernel: it streams each weight once
# and is bound by memory bandwidth, which is what a decode step's few rows need. With more rows torch's GEMM
# reuses each weight tile across rows and pulls ahead: sooner for fp32/fp16 (fma on vectors, against MKL)
# than for bf16 (whole tiles of rows on AMX or AVX512_BF16).
_OWN_MAX_ROWS_BF16 = 64
_OWN_MAX_ROWS_OTHER = 16
# Past those rows a weight packed in AMX tiles still runs our packed GEMM up to this many rows (a prefill's):
# it reads each packed block once per tile of rows, ahead of unpacking plus torch's GEMM for a few hundred rows
# and not for longer ones, where the copy of the weight per call and oneDNN's blocking win. A weight packed with
# its gate always runs our GEMM: one pass over both weights keeps up with torch's two GEMMs and needs no copy.
# A weight packed in pairs (the x86 tables without AMX) runs our kernel at any rows: its tiles of 4 rows of x
# keep up with torch's GEMM on the weight in rows at a prefill's chunk of rows, where unpacking costs a copy
# of the weight per call.
_PACKED_GEMM_MAX_ROWS = 512
# pack=None packs an ungated weight only for inputs this short: LFM2's hidden sizes (1024 to 2048), not its
# FFN widths (4608 and up, w2's input). A weight in rows is read as N streams of K elements; short rows
# restart the streams often and lose bandwidth that the packed blocks (one stream each) keep, while rows as
# long as the FFN width stream as fast as the packed layout, so packing w2 would cost a copy for nothing.
_PACK_MAX_IN_FEATURES = 2048


class Projection:
    """y = x . weight^T, or with gate_weight LFM2's SwiGLU silu(x . gate_weight^T) * (x . weight^T), for x
    [..., K] -> [..., N], on the path that is fastest for the call's rows on this machine.

    weight, gate_weight: [N, K]. pack: pack the weight (with its gate) by pack_weight, in the layout of the
    table in effect (AMX tiles on amx, pairs on the other x86 tables), where that pays (gated, or with an input
    of a hidden size): None where the table in effect reads a packed layout and the weight is bf16 on the CPU;
    True whatever the table in effect now (ValueError unless bf16 on the CPU); False never. quantize: "int8" or
    "q4" quantizes the weight (with its gate) by quantize_weight, and every call runs linear_q; a QuantizedWeight may also be given as weight. release(t) is called on each tensor a packed or
    quantized copy replaces (a loader lets go of the file's pages)."""

    __slots__ = ("_weight", "_gate")

    def __init__(self, weight: Tensor | QuantizedWeight, gate_weight: Tensor | None = None, *,
                 pack: bool | None = None, quantize: str | None = None,
                 release: Callable[[Tensor], None] | None = None):
        c = Checker("Projection")
        if isinstance(weight, QuantizedWeight) or quantize is not None:
            c.value("pack", not pack, "None or False with quantized weights", pack)
            if isinstance(weight, QuantizedWeight):
                c.value("gate_weight", gate_weight is None, "None with a QuantizedWeight (its gate is in it)",
                        type(gate_weight).__name__)
            else:
                weight, gate_weight = quantize_weight(weight, gate_weight, format=quantize, release=release), None
            self._weight, self._gate = weight, None
            return
        c.tensor("weight", weight, ndim=2, last_contiguous=False)
        if gate_weight is not None:
            c.tensor("gate_weight", gate_weight, ndim=2, dtype=weight.dtype, device=weight.device,
                     shape=tuple(weight.shape), last_contiguous=False)
        possible = weight.dtype == torch.bfloat16 and weight.device.type == "cpu"
        if pack:
            c.value("pack", possible, "None or False unless the weight is torch.bfloat16 on the CPU (packed "
                    "weights are for the x86 CPU tables)", f"True for a {weight.dtype} weight on {weight.device}")
        pays = gate_weight is not None or weight.shape[1] <= _PACK_MAX_IN_FEATURES
        if pack is None:
            pack = possible and pays and any(current_isa() in tables for tables in READERS.values())
        if pack and pays:
            packed = pack_weight(weight, gate_weight)
            for t in (weight, gate_weight):
                if release is not None and t is not None:
                    release(t)
            weight, gate_weight = packed, None
        self._weight, self._gate = weight, gate_weight

    def __call__(self, x: Tensor) -> Tensor:
        if self.quantized:
            return linear_q(x, self._weight)
        rows = math.prod(x.shape[:-1])
        if x.device.type != "cpu" or rows <= (_OWN_MAX_ROWS_BF16 if self.dtype == torch.bfloat16
                                               else _OWN_MAX_ROWS_OTHER):
            return linear(x, self._weight, gate_weight=self._gate)   # on CUDA: torch's, through linear
        w, gate = self._weight, self._gate
        if isinstance(w, PackedWeight):
            if w.layout == "pairs" or w.gated or rows <= _PACKED_GEMM_MAX_ROWS:
                return linear(x, w)
            w, gate = w.unpack()
        if gate is None:
            return F.linear(x, w)
        # NOTE: in place, unlike torch's silu(g) * u: no new tensors of the FFN width per call (fresh memory
        # costs its page faults); the same values.
        return F.silu(F.linear(x, gate), inplace=True).mul_(F.linear(x, w))

    def rows(self, index: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """weight[index] as [len(index), K] (not the gate's rows): the embedding lookup of a tied lm_head; a
        quantized weight's rows dequantized to dtype (default fp32)."""
        if self.quantized:
            return self._weight.rows(index, dtype or torch.float32)
        rows = self._weight.rows(index) if self.packed else self._weight[index]
        return rows if dtype is None else rows.to(dtype)

    @property
    def weight(self) -> Tensor | PackedWeight | QuantizedWeight:
        """The [N, K] weight, or the PackedWeight or QuantizedWeight that holds it (and the gate)."""
        return self._weight

    @property
    def gate_weight(self) -> Tensor | None:
        """The [N, K] gate; None without one, and when packed (it is in weight)."""
        return self._gate

    @property
    def packed(self) -> bool:
        return isinstance(self._weight, PackedWeight)

    @property
    def quantized(self) -> str | None:
        """The format ("int8", "q4") of a quantized weight, else None."""
        return self._weight.format if isinstance(self._weight, QuantizedWeight) else None

    @property
    def gated(self) -> bool:
        return self._weight.gated if self.packed or self.quantized else self._gate is not None

    @property
    def in_features(self) -> int:
        return self._weight.shape[1]

    @property
    def out_features(self) -> int:
        return self._weight.shape[0]

    @property
    def dtype(self) -> torch.dtype | None:
        """The weight's dtype; None when quantized (the calls' x may be any float dtype)."""
        return None if self.quantized else self._weight.dtype

    @property
    def device(self) -> torch.device:
        return self._weight.device

    def __repr__(self) -> str:
        flags = "".join(f", {name}" for name in ("gated", "packed") if getattr(self, name))
        if self.quantized:
            flags += f", quantized={self.quantized!r}"
        return f"Projection(out_features={self.out_features}, in_features={self.in_features}{flags})"
