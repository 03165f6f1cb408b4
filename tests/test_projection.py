"""Projection: the path a projection takes for a call's rows (our linear kernel on rows or packed, or torch's
GEMM) on each side of every threshold, its results against reference.linear on each path, and when it packs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import lfm25_kernels as L
from lfm25_kernels import ops, reference as R
from lfm25_kernels.ops.linear import READERS

from conftest import assert_close, assert_equal

K, N = 96, 40
amx = pytest.mark.skipif("amx" not in L.available_isas(), reason="packed weights run on the amx table")
PAIR_TABLES = [isa for isa in L.available_isas() if isa in READERS["pairs"] and isa != "amx"]


def weights(dtype, gated, seed=0, k=K):
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(N, k, generator=g) * 0.1).to(dtype)
    return w, (torch.randn(N, k, generator=g) * 0.1).to(dtype) if gated else None


def ours(proj: L.Projection, x) -> bool:
    """Whether proj(x) runs our linear kernel (its launch recorded, not run) rather than torch's GEMM."""
    launched = []
    with ops.launcher(lambda op, params, tensors: launched.append(op)):
        proj(x)
    return launched == ["linear"]


# Our kernel up to 64 rows in bf16 and 16 in other dtypes; past that torch's GEMM for weights in rows.
@pytest.mark.parametrize("dtype,rows,want", [
    (torch.float32, 1, True), (torch.float32, 16, True), (torch.float32, 17, False), (torch.float32, 65, False),
    (torch.bfloat16, 1, True), (torch.bfloat16, 64, True), (torch.bfloat16, 65, False),
    (torch.bfloat16, 512, False), (torch.bfloat16, 513, False)])
@pytest.mark.parametrize("gated", [False, True])
def test_rows_path_and_result(dtype, rows, want, gated):
    w, gw = weights(dtype, gated, seed=rows)
    p = L.Projection(w, gw, pack=False)
    x = torch.randn(rows, K, generator=torch.Generator().manual_seed(1)).to(dtype)
    assert ours(p, x) == want
    assert_close(p(x), R.linear(x, w, gate_weight=gw), f"{rows} rows")


def test_rows_are_counted_over_the_leading_dims():
    w, _ = weights(torch.bfloat16, False)
    p = L.Projection(w, pack=False)
    x = torch.randn(2, 33, K).bfloat16()                      # 66 rows: torch's GEMM
    assert not ours(p, x) and ours(p, x[:, :32])
    assert_close(p(x), R.linear(x, w), "[2, 33, K]")


# A weight packed in AMX tiles: our kernel up to 64 rows, our packed GEMM up to 512, torch's GEMM on the
# unpacked weight past that; with its gate fused, our packed GEMM at any rows.
@amx
@pytest.mark.parametrize("rows,gated,want", [
    (1, False, True), (64, False, True), (65, False, True), (512, False, True), (513, False, False),
    (1, True, True), (65, True, True), (513, True, True)])
def test_packed_path_and_result(rows, gated, want):
    w, gw = weights(torch.bfloat16, gated, seed=rows)
    x = torch.randn(rows, K, generator=torch.Generator().manual_seed(1)).bfloat16()
    with L.cpu_isa("amx"):
        p = L.Projection(w, gw)
        assert p.packed
        assert ours(p, x) == want
        assert_close(p(x), R.linear(x, w, gate_weight=gw), f"{rows} rows")


# A weight packed in pairs (the x86 tables without AMX): our kernel at any rows, gated or not.
@pytest.mark.skipif(not PAIR_TABLES, reason="the pairs layout runs on the x86 tables")
@pytest.mark.parametrize("rows,want", [(1, True), (64, True), (65, True), (513, True)])
@pytest.mark.parametrize("gated", [False, True])
def test_pairs_path_and_result(rows, want, gated):
    w, gw = weights(torch.bfloat16, gated, seed=rows)
    x = torch.randn(rows, K, generator=torch.Generator().manual_seed(1)).bfloat16()
    for isa in PAIR_TABLES:
        with L.cpu_isa(isa):
            p = L.Projection(w, gw)
            assert p.packed and p.weight.layout == "pairs"
            assert ours(p, x) == want
            assert_close(p(x), R.linear(x, w, gate_weight=gw), f"{rows} rows on {isa}")


def test_pack_none_packs_hidden_size_inputs_and_gated_weights_on_the_x86_tables():
    for isa in L.available_isas():
        with L.cpu_isa(isa):
            reads = isa in READERS["pairs"]
            assert L.Projection(*weights(torch.bfloat16, False, k=2048)).packed == reads, isa
            assert L.Projection(*weights(torch.bfloat16, True, k=4608)).packed == reads, isa
            assert not L.Projection(*weights(torch.bfloat16, False, k=4608)).packed   # w2's input: stays in rows
            assert not L.Projection(*weights(torch.float32, True)).packed
            if reads:
                assert L.Projection(*weights(torch.bfloat16, True)).weight.layout == ("tiles" if isa == "amx"
                                                                                      else "pairs")


def test_pack_false_never_packs():
    assert not L.Projection(*weights(torch.bfloat16, True), pack=False).packed


def test_pack_true_packs_releases_and_keeps_rows():
    w, gw = weights(torch.bfloat16, True)
    released = []
    p = L.Projection(w, gw, pack=True, release=released.append)
    assert p.packed and p.gated and p.gate_weight is None and isinstance(p.weight, L.PackedWeight)
    assert [t is u for t, u in zip(released, (w, gw))] == [True, True]
    index = torch.tensor([0, N - 1, 7])
    assert_equal(p.rows(index), w[index], "packed rows")
    assert_equal(L.Projection(w, pack=False).rows(index), w[index], "rows")
    assert (p.in_features, p.out_features, p.dtype, p.device) == (K, N, torch.bfloat16, torch.device("cpu"))
    assert repr(p) == f"Projection(out_features={N}, in_features={K}, gated, packed)"
    assert repr(L.Projection(w, pack=False)) == f"Projection(out_features={N}, in_features={K})"


def test_pack_true_packs_where_it_pays_whatever_the_table():
    """pack=True packs gated weights and short rows on any table, not an ungated weight of long rows (w2 of the
    FFN width), which streams as fast in rows."""
    long_rows = torch.randn(8, 4608).to(torch.bfloat16)
    for isa in L.available_isas():
        with L.cpu_isa(isa):
            assert L.Projection(*weights(torch.bfloat16, False), pack=True).packed, isa
            assert not L.Projection(long_rows, pack=True).packed, isa


def test_pack_true_where_packing_is_impossible_raises():
    with pytest.raises(ValueError, match="Projection: pack must be"):
        L.Projection(*weights(torch.float32, False), pack=True)
    with pytest.raises(ValueError, match="Projection: pack must be"):
        L.Projection(torch.empty(N, K, dtype=torch.bfloat16, device="meta"), pack=True)
    with pytest.raises(ValueError, match=r"Projection: gate_weight must be of shape \[40, 96\]"):
        L.Projection(torch.randn(N, K), torch.randn(N, K + 1))


@pytest.mark.parametrize("rows", [1, 65])
def test_reference_projection_has_the_same_interface(rows):
    w, gw = weights(torch.float32, True)
    x = torch.randn(rows, K)
    p, ref = L.Projection(w, gw), R.Projection(w, gw)
    assert_close(p(x), ref(x), "reference.Projection")
    assert_equal(ref(x), F.silu(F.linear(x, gw)) * F.linear(x, w), "torch's ops")
    assert_close(ref(x), R.linear(x, w, gate_weight=gw), "reference.linear")
    index = torch.tensor([3, 0])
    assert_equal(ref.rows(index), p.rows(index), "rows")
    assert (ref.packed, ref.gated, ref.in_features, ref.out_features, ref.dtype, ref.device) == \
        (False, True, K, N, torch.float32, torch.device("cpu"))
