"""Storage rounding at the edges of each dtype: subnormals, ties, overflow to inf, inf and NaN. The conv state
holds round(B * X), so it must equal torch's own conversion bit for bit (NaN only as NaN: torch itself uses
different NaN payloads in its scalar and vector paths)."""
from __future__ import annotations

import itertools

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import DTYPES


def special_values(dtype):
    fi = torch.finfo(dtype)
    vals = [0.0, -0.0, 1.0, -1.5, fi.tiny, fi.tiny * 0.75, fi.smallest_normal / 1024, fi.max, -fi.max,
            fi.max / 3, 1.0 + fi.eps / 2, 1.0 + 1.5 * fi.eps, 3.0 + fi.eps, fi.eps, float("inf"),
            float("-inf"), float("nan"), 1 / 3, 2 ** -20, 2 ** -70, 1e30, 12345.678]
    return torch.tensor(vals, dtype=torch.float32).to(dtype)


def same_or_both_nan(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.float(), b.float()
    return bool(((a == b) | (a.isnan() & b.isnan())).all()) and bool((a.signbit() == b.signbit())[~a.isnan()].all())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_state_rounding_matches_torch_at_dtype_edges(backend, dtype):
    v = special_values(dtype)
    pairs = torch.tensor(list(itertools.product(range(len(v)), repeat=2)))
    b, x = v[pairs[:, 0]], v[pairs[:, 1]]                    # every product of two special values
    D, K = b.numel(), 3
    bcx = torch.cat([b, torch.ones(D, dtype=dtype), x]).view(1, 1, 3 * D).expand(1, 2, 3 * D).contiguous()
    weight = torch.ones(D, K, dtype=dtype)
    state = torch.zeros(1, K - 1, D, dtype=dtype)
    ref_state = state.clone()
    R.short_conv(bcx, weight, ref_state)
    bcx_d, w_d, st_d = to(backend, bcx, weight, state)
    with backend.context():
        L.short_conv(bcx_d, w_d, st_d)
    assert same_or_both_nan(st_d.cpu(), ref_state), "round(B * X) differs from torch's conversion"
    # the same products through the decode kernel
    st2 = torch.zeros(1, K - 1, D, dtype=dtype)
    bcx_u, st2_d = to(backend, bcx[:, 0].contiguous(), st2)
    with backend.context():
        L.short_conv_update(bcx_u, w_d, st2_d)
    assert same_or_both_nan(st2_d.cpu()[:, -1], ref_state[:, -1]), "update: round(B * X) differs from torch"
