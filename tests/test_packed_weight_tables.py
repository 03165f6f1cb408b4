"""A PackedWeight on every CPU kernel table: the tables that read its layout run it packed
(tests/test_packed_linear.py), the others unpack it at each call, so linear(x, packed) there equals linear on
the same weights in rows, bit for bit (a weight packed on one machine or table and run on another does not
fail). A CpuGraph cannot record the unpacking."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels.ops.linear import READERS

from conftest import assert_equal
from test_linear import operands

# (layout, table) for every table of this CPU that does not read the layout
UNREAD = [pytest.param(layout, isa, id=f"{layout}-{isa}") for layout, tables in READERS.items()
          for isa in L.available_isas() if isa not in tables]


@pytest.mark.parametrize("layout, isa", UNREAD)
@pytest.mark.parametrize("gated", [False, True])
def test_packed_weight_equals_rows_on_tables_that_do_not_read_it(layout, isa, gated):
    x, w, gw = operands(5, 100, 70, torch.bfloat16, gated, True, 7)
    p = L.pack_weight(w, gw, layout=layout)
    with L.cpu_isa(isa):
        rows = L.linear(x, w, gate_weight=gw)
        assert_equal(L.linear(x, p), rows, f"packed on {isa}")
        assert_equal(torch.ops.lfm25.linear_packed(x, p.data, 70, 100, gated, layout), rows,
                     "torch.ops.lfm25.linear_packed")
        assert_equal(L.Projection(w, gw, pack=True)(x), rows, "Projection(pack=True)")


@pytest.mark.parametrize("layout, isa", UNREAD)
def test_packed_weight_in_a_capture_on_tables_that_do_not_read_it(layout, isa):
    x, w, gw = operands(2, 64, 20, torch.bfloat16, True, False, 5)
    p = L.pack_weight(w, gw, layout=layout)
    with L.cpu_isa(isa):
        graph = L.CpuGraph()
        with pytest.raises(L.CaptureError, match=f"layout '{layout}' runs packed on the .* CPU tables only; on the "
                                                 f"{isa} table it is unpacked"):
            with graph.capture():
                L.linear(x, p)
        step = L.Graphed(lambda v: L.linear(v, p))   # runs eagerly where its capture raised
        assert_equal(step(x), L.linear(x, w, gate_weight=gw), "Graphed")


def test_pack_weight_takes_the_layout_of_the_table_in_effect():
    w = torch.randn(20, 64).bfloat16()
    for isa in L.available_isas():
        with L.cpu_isa(isa):
            assert L.pack_weight(w).layout == ("tiles" if isa == "amx" else "pairs"), isa
