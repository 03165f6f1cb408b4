"""The benchmark suite runs (quick, one op per kind restricted to keep the test short) and writes
well-formed JSON lines."""
import json

import pytest

from bench import __main__ as bench_main
from bench import cases as C


def test_registry_starts_with_the_lfm25_350m_shapes():
    first = C.cases(tier="lfm2")[0]
    assert first.shape["D"] == C.LFM25_350M["hidden"] == 1024 and first.shape["K"] == 3
    assert {c.op for c in C.cases(tier="quick")} == set(C.OPS)
    for c in C.cases(tier="sweep", dtypes=("bf16", "fp32")):
        assert C.bytes_moved(c) > 0


@pytest.mark.parametrize("case", C.cases(tier="quick"), ids=lambda c: c.op)
def test_make_inputs_call_the_op(case):
    import lfm25_kernels as L

    small = C.Case(case.op, case.name, "fp32", {k: (min(v, 64) if isinstance(v, int) and k in ("T", "L", "N", "M", "B")
                                                    else v) for k, v in case.shape.items()})
    getattr(L, small.op)(**C.make_inputs(small))


def test_quick_run_writes_well_formed_results(tmp_path, capsys):
    assert bench_main.main(["--quick", "--ops", "short_conv_update,rms_norm", "--no-e2e",
                            "--results-dir", str(tmp_path)]) == 0
    files = list(tmp_path.glob("*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert {r["op"] for r in rows} == {"short_conv_update", "rms_norm"}
    for r in rows:
        for key in ("run_id", "date", "commit", "device", "cpu", "torch", "backend", "median_us", "gbps",
                    "copy_fraction", "speedup_vs_reference", "copy_gbps"):
            assert key in r, key
        assert r["median_us"] > 0 and r["gbps"] > 0 and r["runs"] >= 3
    assert any(r["backend"] == "reference" for r in rows)
    assert "results appended" in capsys.readouterr().out
