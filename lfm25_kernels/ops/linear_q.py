"""linear_q: linear (and LFM2's SwiGLU) with weights quantized to int8 or 4-bit (docs/DESIGN.md sections 3 and 4);
QuantizedWeight and quantize_weight, which choose the codes and pack them; the custom op lfm25::linear_q.

Formats: groups of 32 consecutive inputs of an output row share an fp16 scale d; a weight is d * q.
  "int8": q in [-127, 127], 8.5 bits per weight;  "q4": q in [-8, 7], 4.5 bits per weight.
Each group gets the candidate codes and scale with the smallest squared error, the fp16 rounding of the scale
included: llama.cpp's Q8_0 / Q4_0 rule is one candidate, so no group is less accurate than theirs at the same
bits; the others refit it by least squares (and for q4 start from the other end of the asymmetric range)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .. import _C, memory
from .._checks import FLOAT_DTYPES, Checker, check_packed_sizes
from .._launch import DTYPE_CODE, launch, set_pointers
from ..reference import QUANT_GROUP, QUANT_RANGE, dequantize

FORMATS = ("int8", "q4")
_FORMAT_CODE = {"int8": 0, "q4": 1}       # lfm25::QuantFormat
_GROUP_BYTES = {"int8": 512, "q4": 256}   # a block's bytes per group: 16 rows x 32 codes
_BLOCK = 16                               # output rows per block
_CHUNK_ELEMENTS = 1 << 18                 # quantize about this many weights at a time: small temporaries


def _groups(in_features: int) -> int:
    return -(-in_features // QUANT_GROUP)


def _tiles(out_features: int, gated: bool) -> int:
    """Tiles of two blocks of 16 rows in the packed data: gated, a block of the weight and one of the gate per
    16 rows; otherwise 32 rows (rows past out_features: code 0, scale 0)."""
    n = -(-out_features // _BLOCK)
    return n if gated else -(-n // 2)


def packed_shape(format: str, out_features: int, in_features: int, gated: bool) -> tuple[int, int, int]:
    """The shape of QuantizedWeight.data (uint8): [tiles, groups, the two blocks' codes and 32 fp16 scales]."""
    return _tiles(out_features, gated), _groups(in_features), 2 * _GROUP_BYTES[format] + 2 * _BLOCK * 2


def _block_views(data: Tensor, format: str) -> tuple[Tensor, Tensor]:
    """Views of packed data [tiles, G, bytes] by block: (codes [tiles, 2, G, group bytes] uint8, scales
    [tiles, 2, G, 16] fp16); block b of the weight is [b // 2, b % 2]."""
    T, G, _ = data.shape
    gb = _GROUP_BYTES[format]
    codes = data[..., :2 * gb].view(T, G, 2, gb).transpose(1, 2)
    scales = data[..., 2 * gb:].view(torch.float16).view(T, G, 2, _BLOCK).transpose(1, 2)
    return codes, scales


def _llama_codes(w: Tensor, m: Tensor, format: str) -> tuple[Tensor, Tensor]:
    """llama.cpp's Q8_0 / Q4_0 rule (ggml's quantize_row_q8_0_ref / q4_0_ref): the scale d = amax / 127 or
    m / -8, codes from x * (1 / d) rounded half away from zero (Q8_0) or truncated after + 8.5 (Q4_0), d kept
    in fp16. Returns (codes as floats, the fp16 scale as fp32)."""
    d = m.abs() / 127.0 if format == "int8" else m / -8.0
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    v = w * inv
    if format == "int8":
        q = v.abs().add_(0.5).floor_().copysign_(v)
    else:
        q = v.add_(8.5).trunc_().clamp_(max=15.0).sub_(8.0)
    return q, d.to(torch.float16).to(torch.float32)


def quantize_codes(weight: Tensor, format: str) -> tuple[Tensor, Tensor]:
    """weight [N, K] -> (codes [N, G * 32] int8, scales [N, G] fp16), G = ceil(K / 32), K zero-padded: per group
    the candidate with the smallest squared error, the candidates being llama.cpp's Q8_0 / Q4_0 codes and scale,
    for q4 also the scale m / 7 (the signed largest magnitude on code 7), and each refitted by least squares."""
    lo, hi = QUANT_RANGE[format]
    N, K = weight.shape
    G = _groups(K)
    codes = torch.empty(N, G * QUANT_GROUP, dtype=torch.int8)
    scales = torch.empty(N, G, dtype=torch.float16)
    chunk = max(1, _CHUNK_ELEMENTS // (G * QUANT_GROUP))
    for r0 in range(0, N, chunk):
        w = weight[r0:r0 + chunk].to(torch.float32)
        w = torch.nn.functional.pad(w, (0, G * QUANT_GROUP - K)).view(-1, G, QUANT_GROUP)
        m = w.gather(-1, w.abs().argmax(-1, keepdim=True))       # the signed largest magnitude
        candidates = [_llama_codes(w, m, format)]
        if format == "q4":
            d = (m / 7.0).to(torch.float16).to(torch.float32)
            candidates.append((torch.where(d != 0, w / d, torch.zeros_like(w)).round_().clamp_(lo, hi), d))
        best_err = best_q = best_d = None
        for q, d in candidates:
            for refit in (False, True):
                if refit:   # least squares for these codes: d = sum(w q) / sum(q^2), then the codes again
                    qq = (q * q).sum(-1, keepdim=True)
                    d = torch.where(qq > 0, (w * q).sum(-1, keepdim=True) / qq.clamp_min(1), d)
                    d = d.to(torch.float16).to(torch.float32)
                    q = torch.where(d != 0, w / d, torch.zeros_like(w)).round_().clamp_(lo, hi)
                err = (w - q * d).square_().sum(-1, keepdim=True)
                if best_err is None:
                    best_err, best_q, best_d = err, q, d
                else:
                    better = err < best_err
                    best_err = torch.where(better, err, best_err)
                    best_q = torch.where(better, q, best_q)
                    best_d = torch.where(better, d, best_d)
        codes[r0:r0 + chunk] = best_q.view(-1, G * QUANT_GROUP).to(torch.int8)
        scales[r0:r0 + chunk] = best_d.view(-1, G).to(torch.float16)
    return codes, scales


def _pack_codes(codes: Tensor, format: str) -> Tensor:
    """codes [16 * b, G * 32] (b blocks) -> [b, G, group bytes] in the kernel's order (docs/DESIGN.md
    section 4): int8 quads of 16 rows x 4 codes; q4 pairs of quads, a code of the first quad in the low nibble
    and of the second in the high nibble."""
    n, width = codes.shape
    b, G = n // _BLOCK, width // QUANT_GROUP
    if format == "int8":
        u = (codes.to(torch.int16) + 128).to(torch.uint8).view(b, _BLOCK, G, 8, 4)
        return u.permute(0, 2, 3, 1, 4).reshape(b, G, 512)
    u = (codes + 8).to(torch.uint8).view(b, _BLOCK, G, 4, 2, 4)   # [.., pair of quads, quad, code]
    u = u.permute(0, 2, 3, 1, 5, 4)                                 # [b, G, pair, row, code, quad]
    return (u[..., 0] | (u[..., 1] << 4)).reshape(b, G, 256)


def _unpack_codes(data: Tensor, format: str) -> Tensor:
    """_pack_codes' inverse for the blocks in data [b, G, group bytes]: [16 * b, G * 32] int8."""
    b, G = data.shape[:2]
    if format == "int8":
        u = data.view(b, G, 8, _BLOCK, 4).permute(0, 3, 1, 2, 4)
        return (u.to(torch.int16) - 128).to(torch.int8).reshape(b * _BLOCK, G * QUANT_GROUP)
    u = data.view(b, G, 4, _BLOCK, 4).permute(0, 3, 1, 2, 4)        # [b, row, G, pair, code]
    q = torch.stack((u & 15, u >> 4), dim=-2).to(torch.int8) - 8    # [b, row, G, pair, quad, code]
    return q.reshape(b * _BLOCK, G * QUANT_GROUP)


def _check_packed(c: Checker, data, format, out_features, in_features, gated) -> None:
    """data must be what quantize_weight makes for these sizes: the kernel reads all of it."""
    if format not in FORMATS:
        c.fail("format", f"one of {FORMATS}", repr(format))
    check_packed_sizes(c, out_features, in_features, gated, minimum=1)
    c.tensor("data", data, dtype=torch.uint8, shape=packed_shape(format, out_features, in_features, gated),
             contiguous=True)
    c.value("data", data.device.type == "cpu", "on the CPU (linear_q is a CPU op)", data.device)


class QuantizedWeight:
    """linear_q's weight [N, K] (and its SwiGLU gate), quantized and packed by quantize_weight: `data` uint8
    [tiles, groups, bytes], per tile of 32 rows and group of 32 inputs the codes of its two blocks of 16 rows,
    then their fp16 scales (docs/DESIGN.md section 4). Pass it to linear_q(), or to Projection."""

    __slots__ = ("data", "format", "out_features", "in_features", "gated")

    def __init__(self, data: Tensor, format: str, out_features: int, in_features: int, gated: bool = False):
        _check_packed(Checker("QuantizedWeight"), data, format, out_features, in_features, gated)
        self.data, self.format = data, format
        self.out_features, self.in_features, self.gated = out_features, in_features, gated

    @property
    def shape(self) -> torch.Size:
        """[N, K] of the weight (the gate has the same)."""
        return torch.Size((self.out_features, self.in_features))

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def _blocks(self, index: Tensor, gate: bool) -> tuple[Tensor, Tensor]:
        """(tile, block in tile) of the blocks of 16 weight rows in index (the gate's: gate=True)."""
        block = 2 * index + int(gate) if self.gated else index
        return block // 2, block % 2

    def rows(self, index: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
        """The dequantized rows weight[index] (not the gate's): [len(index), K] in dtype, e.g. the embedding
        lookup of a tied lm_head."""
        c = Checker("QuantizedWeight.rows")
        c.tensor("index", index, dtype=(torch.int32, torch.int64), device=self.device)
        index = index.reshape(-1).long()
        if index.numel() and not (0 <= int(index.min()) and int(index.max()) < self.out_features):
            c.fail("index", f"values in [0, {self.out_features})",
                   f"values from {int(index.min())} to {int(index.max())}")
        tile, block = self._blocks(index // _BLOCK, False)
        row = index % _BLOCK
        data, scales = _block_views(self.data, self.format)
        T, _, G, _ = data.shape
        if self.format == "int8":   # the codes of row r of a block: byte r * 4 + j of each of its quads
            u = data.view(T, 2, G, 8, _BLOCK, 4)[tile, block, :, :, row, :]                   # [n, G, quad, 4]
            codes = u.to(torch.int16).sub_(128).to(torch.int8)
        else:
            u = data.view(T, 2, G, 4, _BLOCK, 4)[tile, block, :, :, row, :]                   # [n, G, pair, 4]
            codes = torch.stack((u & 15, u >> 4), dim=-2).to(torch.int8).sub_(8)              # [n, G, pair, 2, 4]
        scales = scales[tile, block, :, row]
        return dequantize(codes.reshape(index.numel(), -1), scales, self.in_features).to(dtype)

    def codes(self, gate: bool = False) -> tuple[Tensor, Tensor]:
        """(codes [N, G * 32] int8, scales [N, G] fp16) of the weight, or of its gate (gate=True)."""
        c = Checker("QuantizedWeight.codes")
        c.value("gate", not gate or self.gated, "False for a weight without a gate", gate)
        n = -(-self.out_features // _BLOCK)
        tile, block = self._blocks(torch.arange(n), gate)
        data, scales = _block_views(self.data, self.format)
        codes = _unpack_codes(data[tile, block], self.format)[:self.out_features]
        scales = scales[tile, block].permute(0, 2, 1).reshape(n * _BLOCK, -1)[:self.out_features]
        return codes.contiguous(), scales.contiguous()

    def dequantize(self) -> tuple[Tensor, Tensor | None]:
        """(weight, gate_weight or None) in fp32 [N, K]."""
        w = dequantize(*self.codes(), self.in_features)
        return w, dequantize(*self.codes(True), self.in_features) if self.gated else None

    @classmethod
    def from_codes(cls, format: str, in_features: int, codes: Tensor, scales: Tensor,
                   gate_codes: Tensor | None = None, gate_scales: Tensor | None = None) -> "QuantizedWeight":
        """Pack codes [N, G * 32] and scales [N, G] (quantize_codes' output; with a gate, its own)."""
        c = Checker("QuantizedWeight.from_codes")
        if format not in FORMATS:
            c.fail("format", f"one of {FORMATS}", repr(format))
        lo, hi = QUANT_RANGE[format]
        G = _groups(in_features)
        c.tensor("codes", codes, ndim=2, dtype=torch.int8, shape=(None, G * QUANT_GROUP), last_contiguous=False)
        N = codes.shape[0]
        c.tensor("scales", scales, dtype=torch.float16, shape=(N, G), last_contiguous=False)
        parts = [(codes, scales)]
        if gate_codes is not None:
            c.tensor("gate_codes", gate_codes, dtype=torch.int8, shape=(N, G * QUANT_GROUP), last_contiguous=False)
            c.tensor("gate_scales", gate_scales, dtype=torch.float16, shape=(N, G), last_contiguous=False)
            parts.append((gate_codes, gate_scales))
        for name, (q, _) in zip(("codes", "gate_codes"), parts):
            if q.numel() and not (lo <= int(q.min()) and int(q.max()) <= hi):
                c.fail(name, f"values in [{lo}, {hi}] for {format}", f"values from {int(q.min())} to {int(q.max())}")
        return _packed(format, N, in_features, len(parts) == 2,
                       lambda part, r0, r1: (parts[part][0][r0:r1], parts[part][1][r0:r1]))

    def __repr__(self) -> str:
        gate = ", gated" if self.gated else ""
        return (f"QuantizedWeight({self.format!r}, out_features={self.out_features}, "
                f"in_features={self.in_features}{gate})")


def _packed(format: str, N: int, K: int, gated: bool, rows_of) -> QuantizedWeight:
    """A QuantizedWeight filled a chunk of rows at a time (16 rows a block): rows_of(part, r0, r1) gives the codes
    and scales of rows [r0, r1) of the weight (part 0) or of its gate (part 1), each asked for once and in order,
    so the temporaries stay small (a loader's weights are quantized as they are read)."""
    data = memory.zeros(packed_shape(format, N, K, gated), torch.uint8)
    codes, scales = _block_views(data, format)
    G = data.shape[1]
    step = max(_BLOCK, _CHUNK_ELEMENTS // (G * QUANT_GROUP) // _BLOCK * _BLOCK)
    for r0 in range(0, N, step):
        r1 = min(N, r0 + step)
        b0, b1 = r0 // _BLOCK, -(-r1 // _BLOCK)
        if r1 == N and not gated:   # the last tile whole: rows past N hold code 0 and scale 0
            b1 += b1 % 2
        pad = (0, 0, 0, (b1 - b0) * _BLOCK - (r1 - r0))
        for part in range(2 if gated else 1):
            q, d = (torch.nn.functional.pad(t, pad) for t in rows_of(part, r0, r1))
            block = 2 * torch.arange(b0, b1) + part if gated else torch.arange(b0, b1)
            codes[block // 2, block % 2] = _pack_codes(q, format)
            scales[block // 2, block % 2] = d.view(-1, _BLOCK, G).permute(0, 2, 1)
    return QuantizedWeight(data, format, N, K, gated)


def quantize_weight(weight: Tensor, gate_weight: Tensor | None = None, *, format: str = "int8",
                    release: Callable[[Tensor], None] | None = None) -> QuantizedWeight:
    """Quantize a CPU weight [N, K] (any float dtype; with gate_weight [N, K]: both, for linear_q(x, q) to compute
    silu(x . gate_weight^T) * (x . weight^T)) to `format` ("int8" or "q4") and pack it for linear_q. A chunk of
    rows at a time: release(rows), when given, is called on each chunk of the inputs once it is quantized (a
    loader lets go of the file's pages as it goes)."""
    c = Checker("quantize_weight")
    if format not in FORMATS:
        c.fail("format", f"one of {FORMATS}", repr(format))
    c.tensor("weight", weight, ndim=2, dtype=FLOAT_DTYPES, last_contiguous=False)
    c.value("weight", weight.device.type == "cpu", "on the CPU (linear_q is a CPU op)", weight.device)
    c.value("weight", weight.shape[0] >= 1 and weight.shape[1] >= 1, "a non-empty [N, K]", list(weight.shape))
    parts = {0: ("weight", weight)}
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=FLOAT_DTYPES, device=weight.device,
                 shape=tuple(weight.shape), last_contiguous=False)
        parts[1] = ("gate_weight", gate_weight)

    def rows_of(part: int, r0: int, r1: int) -> tuple[Tensor, Tensor]:
        name, w = parts[part]
        rows = w[r0:r1]
        if not bool(torch.isfinite(rows).all()):
            c.fail(name, "finite (no NaN or infinity)", f"non-finite values in rows {r0} to {r1 - 1}")
        quantized = quantize_codes(rows, format)
        if release is not None:
            release(rows)
        return quantized

    return _packed(format, weight.shape[0], weight.shape[1], gate_weight is not None, rows_of)


def _check(x, data, format, out_features, in_features, gated) -> None:
    c = Checker("linear_q")
    _check_packed(c, data, format, out_features, in_features, gated)
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=FLOAT_DTYPES, device=data.device)
    c.value("x", x.shape[-1] == in_features, f"of shape [..., {in_features}] (the weight's in_features)",
            list(x.shape))


def _run(x: Tensor, data: Tensor, format: str, out_features: int, in_features: int, gated: bool) -> Tensor:
    _check(x, data, format, out_features, in_features, gated)
    y = torch.empty(*x.shape[:-1], out_features, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    x2 = x.reshape(-1, in_features)
    p = _C.LinearQParams()
    tensors = set_pointers(p, dict(x=x2, weight=data, y=y))
    p.x_row_stride, p.y_row_stride = x2.stride(0), out_features
    p.rows, p.in_features, p.out_features = x2.shape[0], in_features, out_features
    p.dtype, p.format, p.gated = DTYPE_CODE[x.dtype], _FORMAT_CODE[format], int(gated)
    launch("linear_q", p, tensors, x.device)
    return y


_op = torch.library.custom_op("lfm25::linear_q", _run, mutates_args=())


@_op.register_fake
def _(x, data, format, out_features, in_features, gated):
    _check(x, data, format, out_features, in_features, gated)
    return x.new_empty(*x.shape[:-1], out_features)


def linear_q(x: Tensor, weight: QuantizedWeight) -> Tensor:
    """y = x . weight^T for a QuantizedWeight (with a gate: silu(x . gate^T) * (x . weight^T), rounded as
    linear() rounds), on the CPU. x: [..., K] fp32, fp16 or bf16; returns [..., N] in x's dtype.

    Each row of x is quantized per group of 32 inputs to int8 codes with an fp32 scale (amax / 127), the codes'
    dot products are exact int32 sums per group, and the groups' sums are scaled and added in fp32 in group
    order (reference.linear_q): the same bits on every kernel table and for any number of rows, a row's result
    independent of the others. A group of x holding a NaN or an infinity makes its row's outputs NaN."""
    if not isinstance(weight, QuantizedWeight):
        Checker("linear_q").fail("weight", "a QuantizedWeight (quantize_weight())", type(weight).__name__, TypeError)
    args = (x, weight.data, weight.format, weight.out_features, weight.in_features, weight.gated)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.linear_q(*args)
    return _run(*args)
