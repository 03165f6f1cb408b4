"""rms_norm with and without the fused residual add, against reference.py."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import DTYPES, assert_close, assert_equal

EDGE_DIMS = [1, 7, 15, 16, 17, 31, 32, 33, 64, 100, 129, 1024]


@pytest.mark.parametrize("backend", BACKENDS)
@given(dtype=st.sampled_from(DTYPES), D=st.sampled_from(EDGE_DIMS) | st.integers(1, 2000),
       rows=st.integers(1, 9), residual=st.booleans(), weight_f32=st.booleans(), strided=st.booleans(),
       eps=st.sampled_from([1e-5, 1e-6]), seed=st.integers(0, 2**16))
@example(dtype=torch.bfloat16, D=1024, rows=64, residual=True, weight_f32=False, strided=False, eps=1e-5, seed=0)
def test_rms_norm_matches_reference(backend, dtype, D, rows, residual, weight_f32, strided, eps, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(rows, D + (5 if strided else 0), generator=g) * 3).to(dtype)[:, :D]
    w = (torch.rand(D, generator=g) + 0.5).to(torch.float32 if weight_f32 else dtype)
    r = torch.randn(rows, D, generator=g).to(dtype) if residual else None
    ref = R.rms_norm(x, w, eps, r)
    xd, wd, rd = to(backend, x, w, r)
    with backend.context():
        got = L.rms_norm(xd, wd, eps, rd)
    if residual:
        assert_close(got[0].cpu(), ref[0], "y")
        assert_equal(got[1].cpu(), ref[1], "x + residual")   # one rounding of an exact fp32 sum
    else:
        assert_close(got.cpu(), ref, "y")


@pytest.mark.parametrize("backend", BACKENDS)
def test_rms_norm_keeps_leading_dims(backend):
    x = torch.randn(2, 3, 40)
    w = torch.rand(40) + 0.5
    xd, wd = to(backend, x, w)
    with backend.context():
        y = L.rms_norm(xd, wd, 1e-5)
    assert y.shape == (2, 3, 40)
    assert_close(y.cpu(), R.rms_norm(x, w, 1e-5), "y")
