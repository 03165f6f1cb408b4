"""linear_q (int8 and 4-bit weights) against reference.linear_q on every CPU backend, the same bits on every
kernel table, rows independent of each other, NaN confined to its row, the argument checks, QuantizedWeight's
round trips, torch.compile, and the quantizer's error against llama.cpp's Q8_0 / Q4_0 rules."""
from __future__ import annotations

import collections
import os
import re

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import ops, reference as R
from lfm25_kernels.ops.linear_q import packed_shape, quantize_codes

import neon
from backends import BACKENDS, CPUS_WITHOUT_I8MM, qemu_backends
from conftest import DTYPES, assert_close, assert_equal

FORMATS = ("int8", "q4")
# linear_q is a CPU op: every CPU table, the aarch64 ones under qemu, and the neon table on cores without i8mm
# or the dot product, where it runs the other linear_q kernels (dispatch.cpp)
CPU_BACKENDS = [b for b in BACKENDS if b.id != "cuda"]
Q_BACKENDS = CPU_BACKENDS + [p for cpu in CPUS_WITHOUT_I8MM for p in qemu_backends(("neon",), cpu)]
# around the layout's edges: a group is 32 inputs, x rows are padded to 64, a quad is 4 inputs
EDGE_K = [1, 3, 4, 5, 31, 32, 33, 63, 64, 65, 96, 127, 128, 129, 1024]
# N around a block (16 rows), a tile (32, or 16 gated) and the vector widths; M around the row tiles (4, 2, 1)
EDGE_N = [1, 4, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65]


def quantized(N, K, fmt, gated, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N, K, generator=g) / K ** 0.5   # sums of O(1): the tolerance speaks of rounding
    gw = torch.randn(N, K, generator=g) / K ** 0.5 if gated else None
    return L.quantize_weight(w, gw, format=fmt)


def activations(M, K, dtype, strided, seed):
    g = torch.Generator().manual_seed(seed + 1)
    return torch.randn(M, K + (7 if strided else 0), generator=g).to(dtype)[:, :K]


def reference(x, q):
    """reference.linear_q on q's codes, for x [..., K]."""
    gate = q.codes(gate=True) if q.gated else (None, None)
    y = R.linear_q(x.reshape(-1, q.in_features), *q.codes(), gate_codes=gate[0], gate_scales=gate[1])
    return y.view(*x.shape[:-1], q.out_features)


def run(backend, x, q):
    with backend.context():
        return L.linear_q(x, q)


def portable(x, q):
    with ops.cpu_isa("portable"):
        return L.linear_q(x, q)


@pytest.mark.parametrize("backend", Q_BACKENDS)
@given(fmt=st.sampled_from(FORMATS), dtype=st.sampled_from(DTYPES), gated=st.booleans(),
       M=st.integers(1, 70), K=st.sampled_from(EDGE_K) | st.integers(1, 300),
       N=st.sampled_from(EDGE_N) | st.integers(1, 100), strided=st.booleans(), seed=st.integers(0, 2**16))
@example(fmt="q4", dtype=torch.bfloat16, gated=True, M=7, K=1024, N=37, strided=False, seed=0)
@example(fmt="int8", dtype=torch.float32, gated=False, M=1, K=33, N=17, strided=True, seed=1)
@example(fmt="int8", dtype=torch.float16, gated=True, M=70, K=65, N=33, strided=True, seed=2)
# x * 127 / amax lands on 63.5 (reference.quantize_activations must divide, not multiply by a reciprocal)
@example(fmt="int8", dtype=torch.float16, gated=False, M=1, K=249, N=31, strided=False, seed=6382)
def test_linear_q_matches_reference_with_the_same_bits_on_every_table(backend, fmt, dtype, gated, M, K, N,
                                                                       strided, seed):
    """Close to reference.linear_q (it sums the groups in float64) and bit for bit the portable kernel's."""
    check_against_reference_and_portable(backend, fmt, dtype, gated, M, K, N, strided, seed)


def check_against_reference_and_portable(backend, fmt, dtype, gated, M, K, N, strided, seed):
    q = quantized(N, K, fmt, gated, seed)
    x = activations(M, K, dtype, strided, seed)
    got = run(backend, x, q)
    case = f"{fmt}, {dtype}, M={M}, K={K}, N={N}, gated={gated}"
    assert_close(got, reference(x, q), f"y ({case})")
    assert_equal(got, portable(x, q), f"{backend} vs portable ({case})")


@pytest.mark.parametrize("backend", Q_BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_linear_q_long_rows_across_chunks(backend, fmt):
    """Rows of 1024 inputs and N = 600: the tiles are cut into chunks of 256 KiB of codes (more than one for
    int8 and for q4) while 37 rows of x (row tiles of 4, 4, ..., 1) pass over each; K off the group size too."""
    K = 1024 if fmt == "int8" else 2048 + 13
    check_against_reference_and_portable(backend, fmt, torch.bfloat16, True, 37, K, 600, True, 3)


@pytest.mark.parametrize("backend", Q_BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_linear_q_rows_are_independent_of_batching(backend, fmt):
    """Row m of a batched call is the call for that row alone, bit for bit, whichever row tile (4, 2 or 1
    rows, USMMLA pairs or USDOT / SDOT lanes) computes it: a decode step does not depend on the other sequences in it."""
    M, K, N = 23, 200, 45
    for gated in (False, True):
        q = quantized(N, K, fmt, gated, 5)
        x = activations(M, K, torch.float32, False, 5)
        full = run(backend, x, q)
        for m in range(M):
            assert_equal(run(backend, x[m:m + 1], q), full[m:m + 1], f"row {m} alone (gated={gated})")
        for a, b in ((0, 2), (2, 5), (5, 12), (12, M)):
            assert_equal(run(backend, x[a:b], q), full[a:b], f"rows {a}:{b} (gated={gated})")


@pytest.mark.parametrize("backend", Q_BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_linear_q_rounds_ties_of_x_to_even(backend, dtype):
    """Groups whose largest magnitude is 127 quantize x * 1.0 exactly, so halves are ties: rounded to even in
    every kernel's quantization of x (vectorized or not), as in the reference; zeros and a tail group too."""
    K, N = 70, 33
    ties = torch.tensor([127.0, 2.5, -3.5, 0.5, -0.5, 1.5, -126.5, 4.5] * 4)
    x = torch.stack([torch.cat([ties, -ties, ties[:6]]), torch.cat([ties.flip(0), torch.zeros(38)]),
                     torch.zeros(K)]).to(dtype)
    for fmt in FORMATS:
        q = quantized(N, K, fmt, False, 11)
        got = run(backend, x, q)
        assert_equal(got, portable(x, q), f"{backend} vs portable ({fmt}, {dtype})")
        assert_close(got, reference(x, q), f"{backend} vs reference ({fmt}, {dtype})")
        assert not got[2].any(), "a row of zeros gives zeros"


@pytest.mark.parametrize("backend", Q_BACKENDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_linear_q_non_finite_x_makes_its_row_nan(backend, fmt):
    """A NaN or an infinity in a group of x makes that row's outputs NaN (as in the reference) and leaves the
    other rows as they are without it, bit for bit."""
    M, K, N = 9, 100, 40
    for gated in (False, True):
        q = quantized(N, K, fmt, gated, 7)
        x = activations(M, K, torch.bfloat16, False, 7)
        clean = run(backend, x, q)
        bad = {1: (40, float("nan")), 4: (99, float("inf")), 8: (0, float("-inf"))}   # 99: the last, partial group
        for m, (k, v) in bad.items():
            x[m, k] = v
        got = run(backend, x, q)
        ok = [m for m in range(M) if m not in bad]
        assert got[list(bad)].isnan().all(), f"rows {list(bad)} must be NaN (gated={gated})"
        assert reference(x, q)[list(bad)].isnan().all(), "the reference's rows must be NaN"
        assert_equal(got[ok], clean[ok], f"rows without a non-finite input (gated={gated})")


@pytest.mark.parametrize("backend", Q_BACKENDS)
def test_linear_q_keeps_leading_dims_and_handles_empty(backend):
    q = quantized(24, 40, "q4", False, 9)
    x = torch.randn(2, 3, 40)
    got = run(backend, x, q)
    assert got.shape == (2, 3, 24)
    assert_close(got, reference(x, q), "y [2, 3, 24]")
    assert run(backend, x[:, :0], q).shape == (2, 0, 24)


def test_linear_q_thread_count_does_not_change_the_result():
    q = quantized(300, 1024, "int8", True, 11)
    x = activations(9, 1024, torch.bfloat16, False, 11)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = L.linear_q(x, q)
        torch.set_num_threads(2)
        two = L.linear_q(x, q)
    finally:
        torch.set_num_threads(before)
    assert_equal(one, two, "1 vs 2 threads")


# instruction words of the NEON kernels, (mask, bits) (qemu's disassembler knows none of them)
WORDS = {"sdot": (0xFFC0F400, 0x4F80E000),     # SDOT Vd.4S, Vn.16B, Vm.4B[i]
         "usdot": (0xFFC0F400, 0x4F80F000),    # USDOT Vd.4S, Vn.16B, Vm.4B[i]
         "usmmla": (0xFFE0FC00, 0x4E80AC00)}   # USMMLA Vd.4S, Vn.16B, Vm.16B
KERNELS = ("usmmla", "usdot", "sdot", "smull")


@pytest.mark.neon
@pytest.mark.skipif(bool(neon.missing_tools()) and not os.environ.get("CI"), reason="NEON tests need qemu")
@pytest.mark.parametrize("cpu,rows,ran", [("max", 4, "usmmla"), ("max", 1, "usdot"), ("cortex-a76", 4, "sdot"),
                                          ("cortex-a72", 4, "smull")])
def test_neon_tables_run_the_linear_q_kernel_of_the_cpu(cpu, rows, ran):
    """The neon table's linear_q is USMMLA (pairs of rows; USDOT for one) where the CPU has i8mm, SDOT where it
    has only the dot product, and SMULL (ARMv8.0) otherwise: read from the instructions qemu translated while
    it ran (on a CPU without an extension, an instruction of it would have been illegal)."""
    request = {}

    def grab(op, params, tensors):
        params.num_threads = 1
        request["bytes"] = neon.encode("neon", neon.OPS[op], params, tensors)

    with ops.launcher(grab):
        L.linear_q(torch.randn(rows, 64), quantized(32, 64, "int8", False, 19))
    seen = collections.Counter()
    code = neon.translated_code(cpu, request["bytes"])
    for m in re.finditer(r"^0x[0-9a-f]+:\s+([0-9a-f]{8})\s+(\S+)\s*(\S*)", code, re.M):
        word = int(m.group(1), 16)
        seen.update(name for name, (mask, bits) in WORDS.items() if word & mask == bits)
        seen["smull"] += m.group(2) in ("smull", "smull2") and m.group(3).startswith("v")   # the vector forms
    assert [k for k in KERNELS if seen[k]] == [ran], f"on {cpu}, {rows} rows: {dict(seen)}"


# ---- the argument checks ---------------------------------------------------------------------------------

def op_args(**change):
    """The arguments of torch.ops.lfm25.linear_q for a valid call, some replaced."""
    q = quantized(20, 70, "q4", True, 13)
    args = dict(x=torch.randn(3, 70), data=q.data, format="q4", out_features=20, in_features=70, gated=True)
    args.update({k: v(args) if callable(v) else v for k, v in change.items()})
    return args


BAD = [  # (what is changed, exception, text the message must contain)
    (dict(x=lambda a: a["x"].double()), TypeError, "linear_q: x must be of dtype"),
    (dict(x=lambda a: a["x"].to(torch.int32)), TypeError, "linear_q: x must be of dtype"),
    (dict(x=lambda a: a["x"][:, :-1]), ValueError, "linear_q: x must be of shape [..., 70]"),
    (dict(x=lambda a: torch.randn(())), ValueError, "linear_q: x must be a 1 or 2 or 3"),
    (dict(x=lambda a: torch.randn(70, 3).T), ValueError, "linear_q: x must be contiguous in its last dimension"),
    (dict(x=lambda a: a["x"].to("meta")), ValueError, "linear_q: x must be on device cpu"),
    (dict(data=lambda a: a["data"].float()), TypeError, "linear_q: data must be of dtype torch.uint8"),
    (dict(data=lambda a: a["data"][:-1]), ValueError, "linear_q: data must be of shape [2, 3, 576]"),
    (dict(data=lambda a: a["data"].transpose(0, 1).contiguous().transpose(0, 1)), ValueError,
     "linear_q: data must be contiguous"),
    (dict(data=lambda a: a["data"].to("meta")), ValueError, "linear_q: data must be on the CPU"),
    (dict(format="q8"), ValueError, "linear_q: format must be one of ('int8', 'q4'), got 'q8'"),
    (dict(format="int8"), ValueError, "linear_q: data must be of shape [2, 3, 1088]"),
    (dict(out_features=0), ValueError, "linear_q: out_features must be at least 1, got 0"),
    (dict(out_features=40), ValueError, "linear_q: data must be of shape [3, 3, 576]"),
    (dict(in_features=100), ValueError, "linear_q: data must be of shape [2, 4, 576]"),
    (dict(in_features=71), ValueError, "linear_q: x must be of shape [..., 71]"),
    (dict(gated=False), ValueError, "linear_q: data must be of shape [1, 3, 576]"),
]


@pytest.mark.parametrize("change,exc,text", BAD, ids=[f"{next(iter(b[0]))}-{i}" for i, b in enumerate(BAD)])
def test_linear_q_bad_arguments_raise(change, exc, text):
    args = op_args(**change)
    with pytest.raises(exc, match=_literal(text)):
        torch.ops.lfm25.linear_q(*args.values())
    if change.keys() <= {"x"}:   # the public function checks the same
        q = quantized(20, 70, "q4", True, 13)
        with pytest.raises(exc, match=_literal(text)):
            L.linear_q(args["x"], q)


def _literal(text: str) -> str:
    return "".join("\\" + c if c in "[]().*+?" else c for c in text)


def test_quantized_weight_and_quantize_weight_check_their_arguments():
    q = quantized(20, 70, "int8", False, 15)
    with pytest.raises(TypeError, match="linear_q: weight must be a QuantizedWeight"):
        L.linear_q(torch.randn(2, 70), torch.randn(20, 70))
    with pytest.raises(ValueError,
                       match=_literal("QuantizedWeight: data must be of shape [2, 3, 1088], got [1, 3, 1088]")):
        L.QuantizedWeight(q.data, "int8", 40, 70)
    with pytest.raises(TypeError, match="QuantizedWeight: in_features must be an int, got bool"):
        L.QuantizedWeight(q.data, "int8", 20, True)
    with pytest.raises(TypeError, match="QuantizedWeight: gated must be a bool, got int"):
        L.QuantizedWeight(q.data, "int8", 20, 70, 1)
    with pytest.raises(ValueError, match="quantize_weight: format must be one of"):
        L.quantize_weight(torch.randn(4, 8), format="int4")
    with pytest.raises(TypeError, match="quantize_weight: weight must be of dtype"):
        L.quantize_weight(torch.ones(4, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="quantize_weight: weight must be finite"):
        L.quantize_weight(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="quantize_weight: gate_weight must be finite"):
        L.quantize_weight(torch.ones(1, 2), torch.tensor([[1.0, float("inf")]]))
    with pytest.raises(ValueError, match=_literal("quantize_weight: gate_weight must be of shape [4, 8]")):
        L.quantize_weight(torch.randn(4, 8), torch.randn(4, 9))
    with pytest.raises(ValueError, match="quantize_weight: weight must be a non-empty"):
        L.quantize_weight(torch.randn(0, 8))
    codes, scales = q.codes()
    with pytest.raises(ValueError, match=_literal("QuantizedWeight.from_codes: codes must be values in [-8, 7]")):
        L.QuantizedWeight.from_codes("q4", 70, codes, scales)
    with pytest.raises(ValueError, match=_literal("from_codes: codes must be values in [-127, 127]")):
        L.QuantizedWeight.from_codes("int8", 70, torch.full_like(codes, -128), scales)
    with pytest.raises(ValueError, match=_literal("from_codes: scales must be of shape [20, 3]")):
        L.QuantizedWeight.from_codes("int8", 70, codes, scales[:, :2])
    with pytest.raises(ValueError, match="QuantizedWeight.codes: gate must be False for a weight without a gate"):
        q.codes(gate=True)
    with pytest.raises(ValueError, match=_literal("QuantizedWeight.rows: index must be values in [0, 20)")):
        q.rows(torch.tensor([0, 20]))
    with pytest.raises(TypeError, match="QuantizedWeight.rows: index must be of dtype"):
        q.rows(torch.tensor([0.0]))


# ---- QuantizedWeight ---------------------------------------------------------------------------------------

@given(fmt=st.sampled_from(FORMATS), gated=st.booleans(), N=st.sampled_from(EDGE_N) | st.integers(1, 80),
       K=st.sampled_from(EDGE_K) | st.integers(1, 200), seed=st.integers(0, 2**16))
@example(fmt="int8", gated=False, N=20, K=70, seed=0)   # codes()' scales must be what from_codes takes
def test_quantized_weight_round_trips(fmt, gated, N, K, seed):
    """codes() / from_codes() give back the same bytes; dequantize() is reference.dequantize of the codes;
    rows() are the dequantized rows; the codes are in the format's range, zero past K."""
    q = quantized(N, K, fmt, gated, seed)
    G = -(-K // 32)
    assert tuple(q.data.shape) == packed_shape(fmt, N, K, gated)
    assert q.shape == (N, K) and q.nbytes == q.data.nbytes
    parts = [q.codes()] + ([q.codes(gate=True)] if gated else [])
    lo, hi = R.QUANT_RANGE[fmt]
    for codes, scales in parts:
        assert codes.shape == (N, G * 32) and scales.shape == (N, G)
        assert lo <= int(codes.min()) and int(codes.max()) <= hi
        assert not codes[:, K:].any(), "codes past in_features must be 0"
    again = L.QuantizedWeight.from_codes(fmt, K, *parts[0], *(parts[1] if gated else (None, None)))
    assert torch.equal(again.data, q.data)
    w, gw = q.dequantize()
    assert torch.equal(w, R.dequantize(*parts[0], K))
    assert (gw is None) == (not gated) and (gw is None or torch.equal(gw, R.dequantize(*parts[1], K)))
    index = torch.randint(0, N, (7,), generator=torch.Generator().manual_seed(seed))
    assert torch.equal(q.rows(index), w[index])
    assert torch.equal(q.rows(index.int(), torch.bfloat16), w[index].bfloat16())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("gated", [False, True])
def test_quantized_weight_bytes_are_the_documented_layout(fmt, gated):
    """docs/DESIGN.md section 4, byte by byte: per tile and group, block 0's codes, block 1's, then their 16 fp16
    scales each; int8 quads of 16 rows x 4 codes (code + 128), q4 pairs of quads (code + 8, the first quad in
    the low nibble); a gated tile is 16 weight rows then the same 16 gate rows; rows past N code 0, scale 0."""
    N, K = 40, 70
    G, gen = -(-K // 32), torch.Generator().manual_seed(3)
    lo, hi = R.QUANT_RANGE[fmt]
    parts = [(torch.randint(lo, hi + 1, (N, G * 32), generator=gen, dtype=torch.int8).index_fill_(1, past_k, 0),
              torch.rand(N, G, generator=gen).half()) for past_k in [torch.arange(K, G * 32)] * (2 if gated else 1)]
    data = L.QuantizedWeight.from_codes(fmt, K, *parts[0], *(parts[1] if gated else ())).data
    gb = 512 if fmt == "int8" else 256
    assert tuple(data.shape) == ((3 if gated else 2), G, 2 * gb + 64)
    for t in range(data.shape[0]):
        for b in range(2):
            part, first = (b, 16 * t) if gated else (0, 32 * t + 16 * b)   # the block's first row
            codes, scales = parts[part]
            for g in range(G):
                for r in range(16):
                    row = first + r
                    q = codes[row, 32 * g:32 * g + 32].tolist() if row < N else [0] * 32
                    d = float(scales[row, g]) if row < N else 0.0
                    got = data[t, g, 2 * gb + 32 * b + 2 * r:2 * gb + 32 * b + 2 * r + 2].view(torch.float16)
                    assert float(got) == d, (t, b, g, r)
                    block = data[t, g, b * gb:(b + 1) * gb]
                    if fmt == "int8":
                        want = [[q[4 * quad + j] + 128 for j in range(4)] for quad in range(8)]
                        have = [block[64 * quad + 4 * r:64 * quad + 4 * r + 4].tolist() for quad in range(8)]
                    else:
                        want = [[(q[8 * p + j] + 8) | (q[8 * p + 4 + j] + 8) << 4 for j in range(4)] for p in range(4)]
                        have = [block[64 * p + 4 * r:64 * p + 4 * r + 4].tolist() for p in range(4)]
                    assert have == want, (t, b, g, r)


# ---- torch.library ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_linear_q_opcheck_and_torch_compile(fmt):
    q = quantized(40, 70, fmt, True, 17)
    x = torch.randn(2, 3, 70).bfloat16()
    torch.library.opcheck(torch.ops.lfm25.linear_q.default, (x, q.data, fmt, 40, 70, True),
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))
    compiled = torch.compile(lambda t: L.linear_q(t, q) * 2, backend="aot_eager", fullgraph=True)
    assert_equal(compiled(x), L.linear_q(x, q) * 2, "compiled vs eager")


# ---- the quantizer's accuracy ----------------------------------------------------------------------------

def _round_half_away(v):
    """C's roundf."""
    t = torch.trunc(v)
    return t + torch.sign(v) * ((v - t).abs() >= 0.5)


def llama_cpp_error(w, fmt):
    """The squared error per group of 32 (w [groups, 32] fp32) of ggml's quantize_row_q8_0_ref /
    quantize_row_q4_0_ref, with the scale as it stores it (fp16)."""
    if fmt == "int8":
        d = w.abs().amax(-1, keepdim=True) / 127                  # d = amax / ((1 << 7) - 1)
        inv = torch.where(d != 0, 1 / d, torch.zeros_like(d))     # id = d ? 1.0f/d : 0.0f
        q = _round_half_away(w * inv)                             # roundf(x * id)
    else:
        # max: the first value of the largest magnitude, with its sign (amax < fabsf(v) replaces it)
        m = w.gather(-1, w.abs().argmax(-1, keepdim=True))
        d = m / -8
        inv = torch.where(d != 0, 1 / d, torch.zeros_like(d))
        q = torch.trunc(w * inv + 8.5).clamp(max=15) - 8          # MIN(15, (int8_t)(x * id + 8.5f)) - 8
    d16 = d.to(torch.float16).double()
    return (w.double() - q.double() * d16).square().sum(-1)


def group_values(kind, n, scale, seed):
    """n groups of 32 weights [n, 32]: normal, heavy tailed, uniform, one outlier per group, a few distinct
    values (ties of the largest magnitude, of both signs), constant."""
    g = torch.Generator().manual_seed(seed)
    if kind == "normal":
        w = torch.randn(n, 32, generator=g)
    elif kind == "heavy":
        w = torch.randn(n, 32, generator=g) / torch.rand(n, 32, generator=g).clamp_min(1e-3)
    elif kind == "uniform":
        w = torch.rand(n, 32, generator=g) * 2 - 1
    elif kind == "outlier":
        w = torch.randn(n, 32, generator=g)
        w[torch.arange(n), torch.randint(0, 32, (n,), generator=g)] *= 50
    elif kind == "levels":
        w = torch.randint(-3, 4, (n, 32), generator=g).float()
    else:
        w = torch.ones(n, 32) * torch.randn(n, 1, generator=g)
    return w * scale


@given(fmt=st.sampled_from(FORMATS), kind=st.sampled_from(["normal", "heavy", "uniform", "outlier", "levels",
                                                           "constant"]),
       scale=st.sampled_from([1e-7, 3e-6, 1e-3, 0.02, 1.0, 300.0]), seed=st.integers(0, 2**16))
@example(fmt="q4", kind="levels", scale=1.0, seed=0)
@example(fmt="int8", kind="normal", scale=3e-6, seed=0)   # the scales are fp16 subnormals
def test_quantizer_is_never_worse_than_llama_cpp(fmt, kind, scale, seed):
    """Per group, quantize_codes' squared error is at most that of llama.cpp's rule for the same bits (Q8_0
    for int8, Q4_0 for q4), each with the scale rounded to fp16 as stored."""
    w = group_values(kind, 256, scale, seed)
    codes, scales = quantize_codes(w.view(8, -1), fmt)
    ours = (w.double() - codes.view(-1, 32).double() * scales.view(-1, 1).double()).square().sum(-1)
    theirs = llama_cpp_error(w, fmt)
    worse = (ours > theirs).nonzero().flatten()
    assert worse.numel() == 0, (f"{worse.numel()} groups worse than llama.cpp, e.g. group {int(worse[0])}: "
                                f"{float(ours[worse[0]])} > {float(theirs[worse[0]])}")
