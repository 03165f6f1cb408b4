"""linear: y = x . weight^T, or LFM2's SwiGLU silu(x . gate^T) * (x . weight^T) in one pass over both weights
(docs/DESIGN.md section 3); PackedWeight and pack_weight, its weights in AMX tile order for the amx table
(section 4), and the custom ops lfm25::linear and lfm25::linear_packed."""
from __future__ import annotations

import torch
from torch import Tensor

from .. import _C
from .._checks import FLOAT_DTYPES, Checker, check_packed_sizes
from .._launch import DTYPE_CODE, current_isa, launch, set_pointers
from ..graph import CaptureError

_TILE_ROWS, _TILE_K = 16, 32   # an AMX bf16 tile: 16 rows of 32 columns


def packed_shape(out_features: int, in_features: int, gated: bool) -> tuple[int, ...]:
    """The shape of PackedWeight.data for a weight [N, K]: [blocks, chunks of K, 4 tiles, 16, 32], blocks of 64
    output rows (32 with the gate alongside), both padded to whole tiles."""
    per_block = 2 * _TILE_ROWS if gated else 4 * _TILE_ROWS
    return -(-out_features // per_block), -(-in_features // _TILE_K), 4, _TILE_ROWS, _TILE_K


def _check_packed_data(c: Checker, data, out_features, in_features, gated) -> None:
    """data must be what pack_weight makes for [out_features, in_features]: the kernel reads it all."""
    check_packed_sizes(c, out_features, in_features, gated, minimum=0)
    shape = packed_shape(out_features, in_features, gated)
    c.tensor("data", data, dtype=torch.bfloat16, shape=shape, contiguous=True)
    c.value("data", data.device.type == "cpu", "on the CPU (packed weights are for the amx CPU table)", data.device)


class PackedWeight:
    """linear's weight [N, K] (and its SwiGLU gate), bf16, packed once by pack_weight() for the "amx" CPU kernel
    table: `data` holds blocks of 4 tiles of 16 rows x 32 columns, a block's tiles of each group of 32 columns
    contiguous (docs/DESIGN.md section 4). Each block is then read as one stream, and a row's sums run over K in
    the same order for any number of rows. Pass it to linear() as the weight."""

    __slots__ = ("data", "out_features", "in_features", "gated")

    def __init__(self, data: Tensor, out_features: int, in_features: int, gated: bool):
        _check_packed_data(Checker("PackedWeight"), data, out_features, in_features, gated)
        self.data, self.out_features, self.in_features, self.gated = data, out_features, in_features, gated

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

    def _tiles(self) -> Tensor:
        """data as [blocks, row tiles, 16, chunks of K, 32] (a view)."""
        return self.data.permute(0, 2, 3, 1, 4)

    def unpack(self) -> tuple[Tensor, Tensor | None]:
        """(weight, gate_weight or None) as [N, K] tensors (copies)."""
        t = self._tiles()
        B, _, _, C, _ = t.shape
        N, K = self.out_features, self.in_features
        if not self.gated:
            return t.reshape(B * 4 * _TILE_ROWS, C * _TILE_K)[:N, :K].clone(), None
        halves = [t[:, h:h + 2].reshape(B * 2 * _TILE_ROWS, C * _TILE_K)[:N, :K].clone() for h in (0, 2)]
        return halves[0], halves[1]

    def rows(self, index: Tensor) -> Tensor:
        """weight[index] (the weight's rows, not the gate's): [len(index), K], e.g. the embedding lookup of a
        tied lm_head."""
        per_block = 2 * _TILE_ROWS if self.gated else 4 * _TILE_ROWS
        c = Checker("PackedWeight.rows")
        c.tensor("index", index, last_contiguous=False)
        if index.dtype.is_floating_point or index.dtype.is_complex or index.dtype == torch.bool:
            c.fail("index", "of an integer dtype", index.dtype, TypeError)
        index = index.reshape(-1).long()
        if index.numel() and not (0 <= int(index.min()) and int(index.max()) < self.out_features):
            raise IndexError(f"PackedWeight.rows: index must be in [0, {self.out_features}), got values from "
                             f"{int(index.min())} to {int(index.max())}")
        t = self._tiles()
        out = t[index // per_block, (index % per_block) // _TILE_ROWS, index % _TILE_ROWS]   # [n, chunks, 32]
        return out.flatten(1)[:, :self.in_features]

    def __repr__(self) -> str:
        gate = ", gated" if self.gated else ""
        return f"PackedWeight(out_features={self.out_features}, in_features={self.in_features}{gate})"


def pack_weight(weight: Tensor, gate_weight: Tensor | None = None) -> PackedWeight:
    """Pack a bf16 CPU weight [N, K] (with gate_weight [N, K]: both, for linear(x, packed) to compute
    silu(x . gate_weight^T) * (x . weight^T)) for the "amx" kernel table. Only that table (Xeon 4th gen and
    later) reads the packed layout; on the others linear() unpacks it at each call, a copy of the weight: the
    same result as the weight in rows, slower. Packed, a weight of short rows streams faster than in rows at a
    decode step's rows, and the kernel keeps up with torch's GEMM for a prefill's (lfm25_kernels.Projection
    chooses; bench/results/e2e-cpu-xeon-amx.md has the figures). Memory: one copy, zero-padded to 64 rows (32
    gated) and 32 columns."""
    c = Checker("pack_weight")
    c.tensor("weight", weight, ndim=2, dtype=torch.bfloat16, last_contiguous=False)
    c.value("weight", weight.device.type == "cpu", "on the CPU (packed weights are for the amx CPU table)",
            weight.device)
    N, K = weight.shape
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=torch.bfloat16, device=weight.device, shape=(N, K),
                 last_contiguous=False)
    per_block = 2 * _TILE_ROWS if gate_weight is not None else 4 * _TILE_ROWS
    shape = packed_shape(N, K, gate_weight is not None)
    blocks, chunks = shape[:2]
    data = torch.empty(shape, dtype=torch.bfloat16)
    tiles = data.permute(0, 2, 3, 1, 4)   # [blocks, 4, 16, chunks, 32]: row tiles x rows by chunks x columns
    parts = [weight] if gate_weight is None else [weight, gate_weight]
    for i, w in enumerate(parts):   # each weight fills 4 / len(parts) row tiles of every block
        if (blocks * per_block, chunks * _TILE_K) != (N, K):   # zero-padded to whole tiles first
            w = torch.nn.functional.pad(w, (0, chunks * _TILE_K - K, 0, blocks * per_block - N))
        n = 4 // len(parts)
        tiles[:, i * n:(i + 1) * n].copy_(w.reshape(blocks, n, _TILE_ROWS, chunks, _TILE_K))
    return PackedWeight(data, N, K, gate_weight is not None)


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


def _check_packed(x, data, out_features, in_features, gated) -> None:
    c = Checker("linear")
    _check_packed_data(c, data, out_features, in_features, gated)
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=torch.bfloat16, device=data.device)
    c.value("x", x.shape[-1] == in_features, f"of shape [..., {in_features}] (the packed weight's in_features)",
            list(x.shape))


def _run_packed(x: Tensor, data: Tensor, out_features: int, in_features: int, gated: bool) -> Tensor:
    _check_packed(x, data, out_features, in_features, gated)
    table = current_isa()
    if table != "amx":
        # NOTE: only the amx table reads the packed layout; the others get the weight back in rows, a copy per
        # call, so that a packed weight gives the same result as its rows on every table (slower than rows).
        try:
            weight, gate_weight = PackedWeight(data, out_features, in_features, gated).unpack()
        except CaptureError as e:
            raise CaptureError(f"linear: a PackedWeight runs packed on the amx CPU table only; on the {table} "
                               "table it is unpacked by torch ops at each call, which a CpuGraph cannot record "
                               "(capture on amx, or keep the weight in rows)") from e
        return _run(x, weight, gate_weight)
    y = torch.empty(*x.shape[:-1], out_features, dtype=x.dtype, device=x.device)
    return _launch_linear(x, y, dict(weight=data), weight_layout=2 if gated else 1)


_op = torch.library.custom_op("lfm25::linear", _run, mutates_args=())
_op_packed = torch.library.custom_op("lfm25::linear_packed", _run_packed, mutates_args=())


@_op.register_fake
def _(x, weight, gate_weight):
    _check(x, weight, gate_weight)
    return x.new_empty(*x.shape[:-1], weight.shape[0])


@_op_packed.register_fake
def _(x, data, out_features, in_features, gated):
    _check_packed(x, data, out_features, in_features, gated)
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
    decode step's rows on the "amx" table and makes the kernel usable for a prefill's; the other tables unpack
    it at each call (see pack_weight).
    """
    if isinstance(weight, PackedWeight):
        Checker("linear").value("gate_weight", gate_weight is None,
                                "None with a PackedWeight (pack the gate with the weight)", type(gate_weight).__name__)
        if torch.compiler.is_compiling():
            return torch.ops.lfm25.linear_packed(x, weight.data, weight.out_features, weight.in_features,
                                                 weight.gated)
        return _run_packed(x, weight.data, weight.out_features, weight.in_features, weight.gated)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.linear(x, weight, gate_weight)
    return _run(x, weight, gate_weight)
