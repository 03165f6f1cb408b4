"""pack_weight / PackedWeight: linear on packed weights on every CPU table that reads their layout (AMX tiles:
the amx table; pairs: the x86 tables), against reference.py, against the same weights as [N, K] rows, and row
by row (batch invariance)."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels.ops.linear import READERS
from lfm25_kernels import reference as R

from conftest import assert_close, assert_equal
from test_linear import EDGE_K, operands

# (layout, table) for every table of this CPU that reads the layout
READ = [pytest.param(layout, isa, id=f"{layout}-{isa}") for layout, tables in READERS.items()
        for isa in tables if isa in L.available_isas()]
pytestmark = pytest.mark.skipif(not READ, reason="packed weights run on the x86 tables")


@pytest.mark.parametrize("layout", list(READERS))
@given(N=st.integers(1, 150), K=st.sampled_from(EDGE_K) | st.integers(1, 700), gated=st.booleans(),
       strided=st.booleans(), seed=st.integers(0, 2**16))
@example(N=4608, K=1024, gated=True, strided=False, seed=0)
def test_pack_unpack_and_rows_round_trip(layout, N, K, gated, strided, seed):
    _, w, gw = operands(1, K, N, torch.bfloat16, gated, strided, seed)
    p = L.pack_weight(w, gw, layout=layout)
    assert (p.out_features, p.in_features, p.gated, p.shape, p.layout) == (N, K, gated, torch.Size((N, K)), layout)
    up, gate = p.unpack()
    assert_equal(up, w, "unpacked weight")
    if gated:
        assert_equal(gate, gw, "unpacked gate")
    else:
        assert gate is None
    index = torch.tensor([0, N - 1, N // 2, N // 3, 0])
    assert_equal(p.rows(index), w[index], "rows")


@pytest.mark.parametrize("layout, isa", READ)
@given(M=st.integers(1, 70), K=st.sampled_from(EDGE_K) | st.integers(1, 700), N=st.integers(1, 150),
       gated=st.booleans(), strided=st.booleans(), seed=st.integers(0, 2**16))
@example(M=8, K=1024, N=200, gated=True, strided=False, seed=0)
@example(M=33, K=257, N=65, gated=False, strided=True, seed=1)   # a pair of x tiles and one alone, 9 panels
def test_packed_linear_matches_reference(layout, isa, M, K, N, gated, strided, seed):
    x, w, gw = operands(M, K, N, torch.bfloat16, gated, strided, seed)
    with L.cpu_isa(isa):
        got = L.linear(x, L.pack_weight(w, gw, layout=layout))
    assert_close(got, R.linear(x, w, gate_weight=gw), f"y (M={M}, K={K}, N={N}, gated={gated})")


@pytest.mark.skipif("amx" not in L.available_isas(), reason="the amx table needs AMX")
@given(M=st.integers(1, 70), K=st.sampled_from(EDGE_K) | st.integers(1, 700), N=st.integers(1, 150),
       gated=st.booleans(), seed=st.integers(0, 2**16))
def test_amx_tiles_equal_rows(M, K, N, gated, seed):
    """Bit for bit against the same weights as rows on the amx table (K below 2560: both add the chunks of 32
    columns in order in one accumulator)."""
    x, w, gw = operands(M, K, N, torch.bfloat16, gated, False, seed)
    with L.cpu_isa("amx"):
        assert_equal(L.linear(x, L.pack_weight(w, gw, layout="tiles")), L.linear(x, w, gate_weight=gw), "tiles vs rows")


@pytest.mark.parametrize("layout, isa", READ)
@pytest.mark.parametrize("gated", [False, True])
def test_packed_linear_long_rows_and_many_rows(layout, isa, gated):
    """K = 4608 (LFM2's w2) and a prefill's rows: 3 pairs of x tiles and one alone, panels of K."""
    x, w, gw = operands(100, 4608 + 13, 70, torch.bfloat16, gated, False, 3)
    with L.cpu_isa(isa):
        got = L.linear(x, L.pack_weight(w, gw, layout=layout))
    assert_close(got, R.linear(x, w, gate_weight=gw), "y")


@pytest.mark.parametrize("layout, isa", READ)
def test_packed_linear_rows_are_independent_of_batching(layout, isa):
    """A row's result alone equals its result among 1 to 40 rows (every tile height of the kernels)."""
    for M, K, N, gated, seed in ((40, 1024, 384, False, 1), (37, 1024, 192, True, 2), (9, 300, 100, True, 3)):
        x, w, gw = operands(M, K, N, torch.bfloat16, gated, False, seed)
        p = L.pack_weight(w, gw, layout=layout)
        with L.cpu_isa(isa):
            full = L.linear(x, p)
            for m in range(M):
                assert_equal(L.linear(x[m:m + 1], p), full[m:m + 1], f"K={K} row {m}")
            assert_equal(L.linear(x[3:20], p), full[3:20], f"K={K} rows 3..19")


@pytest.mark.parametrize("layout, isa", READ)
def test_packed_linear_keeps_leading_dims_threads_and_graphs(layout, isa):
    x, w, gw = operands(6, 96, 50, torch.bfloat16, True, False, 4)
    p = L.pack_weight(w, gw, layout=layout)
    with L.cpu_isa(isa):
        y = L.linear(x, p)
        assert_equal(L.linear(x.view(2, 3, 96), p), y.view(2, 3, 50), "leading dims")
        assert L.linear(x[:0], p).shape == (0, 50)
        threads = torch.get_num_threads()
        try:
            torch.set_num_threads(1)
            assert_equal(L.linear(x, p), y, "1 thread")
        finally:
            torch.set_num_threads(threads)
        graph = L.CpuGraph()
        xs = torch.zeros_like(x)
        with graph.capture():
            out = L.linear(xs, p)
        xs.copy_(x)
        graph.replay()
    assert_equal(out, y, "replayed")
    assert_equal(torch.ops.lfm25.linear_packed(x, p.data, 50, 96, True, layout), y, "torch.ops.lfm25.linear_packed")


@pytest.mark.parametrize("layout", list(READERS))
def test_packed_linear_errors(layout):
    x, w, gw = operands(2, 64, 20, torch.bfloat16, True, False, 5)
    p = L.pack_weight(w, gw, layout=layout)
    with pytest.raises(ValueError, match="pack the gate"):
        L.linear(x, p, gate_weight=gw)
    with pytest.raises(ValueError, match=r"\[\.\.\., 64\]"):
        L.linear(x[:, :32], p)
    with pytest.raises(TypeError, match="bfloat16"):
        L.linear(x.float(), p)
    with pytest.raises(TypeError, match="bfloat16"):
        L.pack_weight(w.float())
    with pytest.raises(ValueError, match=r"shape \[20, 64\]"):
        L.pack_weight(w, gw[:, :32])
    with pytest.raises(IndexError, match=r"\[0, 20\)"):
        p.rows(torch.tensor([3, 20]))                     # a padding row of the last block is not a row
    with pytest.raises(IndexError, match=r"\[0, 20\)"):
        p.rows(torch.tensor([-1]))
    with pytest.raises(ValueError,
                       match=r"pack_weight: layout must be None or one of \('tiles', 'pairs'\), got 'rows'"):
        L.pack_weight(w, layout="rows")
    with pytest.raises(ValueError, match=r"PackedWeight: layout must be one of \('tiles', 'pairs'\), got 'rows'"):
        L.PackedWeight(p.data, 20, 64, True, "rows")
    other = "pairs" if layout == "tiles" else "tiles"
    with pytest.raises(ValueError, match="PackedWeight: data must be of shape"):
        L.PackedWeight(p.data, 20, 64, True, other)   # the data of one layout is not the other's


@pytest.mark.parametrize("code, isa", [(1, "avx512"), (2, "avx512_bf16"), (3, "portable"), (4, "portable"),
                                       (5, "avx512"), (-1, "avx512")])
def test_kernels_refuse_a_layout_their_table_does_not_read(code, isa):
    if isa not in L.available_isas():
        pytest.skip(f"no {isa} table on this CPU")
    params = L._C.LinearParams()
    params.weight_layout = code
    params.dtype = 2   # bf16
    with pytest.raises(ValueError, match="run only on the x86 CPU tables that read their layout"):
        L._C.linear_cpu(params, isa)
