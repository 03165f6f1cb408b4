"""A PackedWeight on every CPU kernel table: the amx table reads the packed layout, the others unpack it at each
call, so linear(x, packed) equals linear on the same weights in rows, bit for bit, wherever it runs (a weight
packed on one machine or table and run on another does not fail). A CpuGraph cannot record the unpacking."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L

from conftest import assert_equal
from test_linear import operands

ROW_TABLES = [isa for isa in L.available_isas() if isa != "amx"]


@pytest.mark.parametrize("isa", ROW_TABLES)
@pytest.mark.parametrize("gated", [False, True])
def test_packed_weight_equals_rows_on_tables_that_read_rows(isa, gated):
    x, w, gw = operands(5, 100, 70, torch.bfloat16, gated, True, 7)
    p = L.pack_weight(w, gw)
    with L.cpu_isa(isa):
        rows = L.linear(x, w, gate_weight=gw)
        assert_equal(L.linear(x, p), rows, f"packed on {isa}")
        assert_equal(torch.ops.lfm25.linear_packed(x, p.data, 70, 100, gated), rows, "torch.ops.lfm25.linear_packed")
        assert_equal(L.Projection(w, gw, pack=True)(x), rows, "Projection(pack=True)")


@pytest.mark.parametrize("isa", ROW_TABLES)
def test_packed_weight_in_a_capture_on_tables_that_read_rows(isa):
    x, w, gw = operands(2, 64, 20, torch.bfloat16, True, False, 5)
    p = L.pack_weight(w, gw)
    with L.cpu_isa(isa):
        graph = L.CpuGraph()
        with pytest.raises(L.CaptureError, match=f"amx CPU table only; on the {isa} table it is unpacked"):
            with graph.capture():
                L.linear(x, p)
        step = L.Graphed(lambda v: L.linear(v, p))   # runs eagerly where its capture raised
        assert_equal(step(x), L.linear(x, w, gate_weight=gw), "Graphed")
