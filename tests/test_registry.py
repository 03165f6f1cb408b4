"""The benchmark registry's LFM2.5-350M cases (bench/cases.py, the one source of those shapes) on every
backend against reference.py, with the inputs the benchmark times."""
import pytest
import torch

import lfm25_kernels as L

from backends import BACKENDS, to
from bench import cases as C
from bench.backends import backends
from conftest import assert_close


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", C.cases(tier="quick", dtypes=("bf16", "fp32")), ids=lambda c: c.id)
def test_registry_case_matches_reference(backend, case):
    kw = C.make_inputs(case, seed=1)
    ref_kw = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    want = backends(case.op, "cpu")["reference"](ref_kw)()   # the reference the benchmark times
    dev_kw = {k: to(backend, v) if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    with backend.context():
        got = getattr(L, case.op)(**dev_kw)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        assert_close(g.cpu(), w, case.id)
    for name in ("conv_state", "k_cache", "v_cache"):       # in-place state written like the reference's
        if name in kw:
            assert_close(dev_kw[name].cpu(), ref_kw[name], f"{case.id} {name}")
