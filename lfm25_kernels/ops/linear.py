"""linear: y = x . weight^T, or LFM2's SwiGLU silu(x . gate^T) * (x . weight^T) in one pass over both weights
(docs/DESIGN.md section 3); PackedWeight and pack_weight, its bf16 weights packed once in AMX tile order for the
amx table or in pairs of inputs for the other x86 tables (section 4); the custom ops lfm25::linear and
lfm25::linear_packed."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C, memory
from .._checks import FLOAT_DTYPES, Checker, check_packed_sizes
from .._launch import DTYPE_CODE, current_isa, launch, set_pointers
from ..graph import CaptureError

_TILE_ROWS, _TILE_K = 16, 32   # an AMX bf16 tile: 16 rows of 32 columns
_PAIR_ROWS = 64                # output rows of a block of the pairs layout (linear/pairs.h)
# layout -> the CPU kernel tables that read it (csrc/cpu/linear/validate.cpp); the others unpack it per call
READERS = {"tiles": ("amx",), "pairs": ("amx", "avx512_bf16", "avx512", "avx2")}
_LAYOUT_CODE = {("tiles", False): 1, ("tiles", True): 2, ("pairs", False): 3, ("pairs", True): 4}   # WeightLayout


def packed_shape(out_features: int, in_features: int, gated: bool, layout: str = "tiles") -> tuple[int, ...]:
    """The shape of PackedWeight.data for a weight [N, K]. "tiles": [blocks, chunks of K, 4 tiles, 16, 32], blocks
    of 64 output rows (32 with the gate alongside), both padded to whole tiles. "pairs": [blocks, ceil(K / 2),
    64, 2], blocks of 64 output rows (32 of the weight, then the same 32 of the gate), K padded to even."""
    per_block = (2 if gated else 4) * _TILE_ROWS
    if layout == "pairs":
        return -(-out_features // per_block), -(-in_features // 2), _PAIR_ROWS, 2
    return -(-out_features // per_block), -(-in_features // _TILE_K), 4, _TILE_ROWS, _TILE_K


def _check_packed_data(c: Checker, data, out_features, in_features, gated, layout) -> None:
    """data must be what pack_weight makes for [out_features, in_features]: the kernel reads it all."""
    check_packed_sizes(c, out_features, in_features, gated, minimum=0)
    c.value("layout", layout in READERS, f"one of {tuple(READERS)}", repr(layout))
    shape = packed_shape(out_features, in_features, gated, layout)
    c.tensor("data", data, dtype=torch.bfloat16, shape=shape, contiguous=True)
    c.value("data", data.device.type == "cpu", "on the CPU (packed weights are for the x86 CPU tables)", data.device)


class PackedWeight:
    """linear's weight [N, K] (and its SwiGLU gate), bf16, packed once by pack_weight() for the x86 CPU kernel
    tables (docs/DESIGN.md section 4). layout "tiles", for the amx table: blocks of 4 tiles of 16 rows x 32
    columns, a block's tiles of each group of 32 columns contiguous. layout "pairs", for the other x86 tables:
    blocks of 64 rows, for each pair of columns the block's 64 rows' two values side by side. Each block is
    read as one stream, and a row's sums run over K in the same order for any number of rows. Pass it to
    linear() as the weight."""

    __slots__ = ("data", "out_features", "in_features", "gated", "layout")

    def __init__(self, data: Tensor, out_features: int, in_features: int, gated: bool, layout: str = "tiles"):
        _check_packed_data(Checker("PackedWeight"), data, out_features, in_features, gated, layout)
        self.data, self.out_features, self.in_features, self.gated = data, out_features, in_features, gated
        self.layout = layout

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def shape(self) -> torch.Size:
        """[N, K] of the weight (the gate has the same)."""
        return torch.Size((self.out_features, self.in_features))

    def _parts(self) -> list[Tensor]:
        """Views of data as [blocks, rows, column groups, columns per group]: the weight's rows, then (gated) the
        gate's; row b * rows + r of the part is its row of the weight, zero-padded to whole blocks and groups."""
        if self.layout == "pairs":
            v = self.data.permute(0, 2, 1, 3)                # [blocks, 64 rows, pairs, 2]
        else:
            v = self.data.permute(0, 2, 3, 1, 4).flatten(1, 2)   # [blocks, 4 x 16 rows, chunks, 32]
        if not self.gated:
            return [v]
        half = v.shape[1] // 2
        return [v[:, :half], v[:, half:]]

    def unpack(self) -> tuple[Tensor, Tensor | None]:
        """(weight, gate_weight or None) as [N, K] tensors (copies)."""
        N, K = self.out_features, self.in_features
        parts = [p.reshape(p.shape[0] * p.shape[1], -1)[:N, :K].clone() for p in self._parts()]
        return parts[0], parts[1] if self.gated else None

    def rows(self, index: Tensor) -> Tensor:
        """weight[index] (the weight's rows, not the gate's): [len(index), K], e.g. the embedding lookup of a
        tied lm_head."""
        c = Checker("PackedWeight.rows")
        c.tensor("index", index, last_contiguous=False)
        if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
            c.fail("index", "of an integer dtype", index.dtype, TypeError)
        index = index.reshape(-1).long()
        if index.numel() and not (0 <= int(index.min()) and int(index.max()) < self.out_features):
            raise IndexError(f"PackedWeight.rows: index must be in [0, {self.out_features}), got values from "
                             f"{int(index.min())} to {int(index.max())}")
        up = self._parts()[0]
        return up[index // up.shape[1], index % up.shape[1]].flatten(1)[:, :self.in_features]

    def __repr__(self) -> str:
        gate = ", gated" if self.gated else ""
        return (f"PackedWeight(out_features={self.out_features}, in_features={self.in_features}{gate}, "
                f"layout={self.layout!r})")


def pack_weight(weight: Tensor, gate_weight: Tensor | None = None, *, layout: str | None = None) -> PackedWeight:
    """Pack a bf16 CPU weight [N, K] (with gate_weight [N, K]: both, for linear(x, packed) to compute
    silu(x . gate_weight^T) * (x . weight^T)) for the x86 CPU kernel tables: layout "tiles" for the amx table
    (Xeon 4th gen and later), "pairs" for avx512_bf16, avx512 and avx2; None: the layout of the table in effect
    ("tiles" on amx, else "pairs"). A table that does not read the layout (READERS) unpacks it at each call, a
    copy of the weight: the same result as the weight in rows, slower. Packed, a weight of short rows streams
    faster than in rows at a decode step's rows (lfm25_kernels.Projection chooses where; bench/results has the
    figures). Memory: one copy, zero-padded to whole blocks (and tiles or pairs of columns)."""
    c = Checker("pack_weight")
    c.tensor("weight", weight, ndim=2, dtype=torch.bfloat16, last_contiguous=False)
    c.value("weight", weight.device.type == "cpu", "on the CPU (packed weights are for the x86 CPU tables)",
            weight.device)
    if layout is None:
        layout = "tiles" if current_isa() == "amx" else "pairs"
    c.value("layout", layout in READERS, f"None or one of {tuple(READERS)}", repr(layout))
    N, K = weight.shape
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=torch.bfloat16, device=weight.device, shape=(N, K),
                 last_contiguous=False)
    gated = gate_weight is not None
    shape = packed_shape(N, K, gated, layout)
    packed = PackedWeight(memory.zeros(shape, torch.bfloat16), N, K, gated, layout)
    for w, part in zip([weight] if not gated else [weight, gate_weight], packed._parts()):
        rows, cols = part.shape[0] * part.shape[1], part.shape[2] * part.shape[3]
        if (rows, cols) != (N, K):   # zero-padded to whole blocks and groups first
            w = torch.nn.functional.pad(w, (0, cols - K, 0, rows - N))
        part.copy_(w.reshape(part.shape))
    return packed


def _check(x, weight, gate_weight) -> None:
    c = Checker("linear")
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=FLOAT_DTYPES, lead=True)
    K = x.shape[-1]
    c.tensor("weight", weight, ndim=2, dtype=x.dtype, device=x.device, shape=(None, K))
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=x.dtype, device=x.device, shape=(weight.shape[0], K))


def _launch_linear(x: Tensor, y: Tensor, pointers: dict[str, Tensor | None], **fields) -> Tensor:
    """Fill y [..., N] = linear over x [..., K] with the params fields given (weight pointers, layout)."""
    N, K = y.shape[-1], x.shape[-1]
    if y.numel() == 0:
        return y
    if K == 0:
        return y.zero_()   # empty sums are 0, and silu(0) * 0 = 0
    x2 = x.reshape(-1, K)
    p = _C.LinearParams()
    tensors = set_pointers(p, dict(x=x2, y=y, **pointers))
    p.x_row_stride, p.y_row_stride = x2.stride(0), N
    p.rows, p.in_features, p.out_features = x2.shape[0], K, N
    p.dtype = DTYPE_CODE[x.dtype]
    for name, value in fields.items():
        setattr(p, name, value)
    launch("linear", p, tensors, x.device)
    return y


def _run(x: Tensor, weight: Tensor, gate_weight: Tensor | None) -> Tensor:
    _check(x, weight, gate_weight)
    if x.device.type == "cuda":
        up = torch.nn.functional.linear(x, weight)
        if gate_weight is None:
            return up
        return torch.nn.functional.silu(torch.nn.functional.linear(x, gate_weight)) * up
    y = torch.empty(*x.shape[:-1], weight.shape[0], dtype=x.dtype, device=x.device)
    return _launch_linear(x, y, dict(weight=weight, gate_weight=gate_weight), weight_row_stride=weight.stride(0),
                          gate_row_stride=gate_weight.stride(0) if gate_weight is not None else 0)


def _check_packed(x, data, out_features, in_features, gated, layout) -> None:
    c = Checker("linear")
    _check_packed_data(c, data, out_features, in_features, gated, layout)
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=torch.bfloat16, device=data.device)
    c.value("x", x.shape[-1] == in_features, f"of shape [..., {in_features}] (the packed weight's in_features)",
            list(x.shape))


def _run_packed(x: Tensor, data: Tensor, out_features: int, in_features: int, gated: bool,
                layout: str = "tiles") -> Tensor:
    _check_packed(x, data, out_features, in_features, gated, layout)
    table = current_isa()
    if table not in READERS[layout]:
        # NOTE: the tables that do not read this layout get the weight back in rows, a copy per call, so that a
        # packed weight gives the same result as its rows on every table (slower than rows).
        readers = ", ".join(READERS[layout])
        try:
            weight, gate_weight = PackedWeight(data, out_features, in_features, gated, layout).unpack()
        except CaptureError as e:
            raise CaptureError(f"linear: a PackedWeight in layout {layout!r} runs packed on the {readers} CPU "
                               f"tables only; on the {table} table it is unpacked by torch ops at each call, which "
                               f"a CpuGraph cannot record (capture on one of those, or keep the weight in rows)") from e
        return _run(x, weight, gate_weight)
    y = torch.empty(*x.shape[:-1], out_features, dtype=x.dtype, device=x.device)
    return _launch_linear(x, y, dict(weight=data), weight_layout=_LAYOUT_CODE[layout, gated])


_op = torch.library.custom_op("lfm25::linear", _run, mutates_args=())
_op_packed = torch.library.custom_op("lfm25::linear_packed", _run_packed, mutates_args=())


@_op.register_fake
def _(x, weight, gate_weight):
    _check(x, weight, gate_weight)
    return x.new_empty(*x.shape[:-1], weight.shape[0])


@_op_packed.register_fake
def _(x, data, out_features, in_features, gated, layout="tiles"):
    _check_packed(x, data, out_features, in_features, gated, layout)
    return x.new_empty(*x.shape[:-1], out_features)


def linear(x: Tensor, weight: Tensor | PackedWeight, *, gate_weight: Tensor | None = None) -> Tensor:
    """y = x . weight^T (torch.nn.functional.linear without bias), fp32 accumulation, rounded once.

    x: [..., K]; weight: [N, K] in x's dtype. With gate_weight ([N, K]): y = silu(x . gate_weight^T) *
    (x . weight^T), LFM2's SwiGLU (gate_weight = w1, weight = w3) in one pass over both weights, each product
    rounded to x's dtype before silu and the multiply, as torch's eager ops round it. Returns [..., N].
    On the CPU a row's result does not depend on the other rows of the call, bit for bit. The CPU kernel is
    built for the few rows of a decode step (it streams the weights once and is bound by memory bandwidth);
    for hundreds of rows torch's GEMM is faster. On CUDA this is cuBLAS through torch.
    weight may be a PackedWeight (pack_weight(): bf16, its gate packed with it), which streams faster at a
    decode step's rows on the x86 tables that read its layout and makes the kernel usable for a prefill's; the
    other tables unpack it at each call (see pack_weight).
    """
    if isinstance(weight, PackedWeight):
        Checker("linear").value("gate_weight", gate_weight is None,
                                "None with a PackedWeight (pack the gate with the weight)", type(gate_weight).__name__)
        if torch.compiler.is_compiling():
            return torch.ops.lfm25.linear_packed(x, weight.data, weight.out_features, weight.in_features,
                                                 weight.gated, weight.layout)
        return _run_packed(x, weight.data, weight.out_features, weight.in_features, weight.gated, weight.layout)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.linear(x, weight, gate_weight)
    return _run(x, weight, gate_weight)
