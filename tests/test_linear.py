"""linear (the decode projections) and its fused SwiGLU gate, against reference.py on every backend."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import DTYPES, assert_close, assert_equal

# around every vector width (4, 8, 16 lanes; pairs of them) and the LFM2.5-350M widths
EDGE_K = [1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1024]


def operands(M, K, N, dtype, gated, strided, seed):
    g = torch.Generator().manual_seed(seed)
    # scaled so that the sums are O(1): the tolerance is then a statement about rounding, not about magnitude
    x = torch.randn(M, K + (3 if strided else 0), generator=g).to(dtype)[:, :K]
    w = (torch.randn(N, K + (5 if strided else 0), generator=g) / K ** 0.5).to(dtype)[:, :K]
    gw = (torch.randn(N, K, generator=g) / K ** 0.5).to(dtype) if gated else None
    return x, w, gw


@pytest.mark.parametrize("backend", BACKENDS)
@given(dtype=st.sampled_from(DTYPES), M=st.integers(1, 19), K=st.sampled_from(EDGE_K) | st.integers(1, 600),
       N=st.integers(1, 70), gated=st.booleans(), strided=st.booleans(), seed=st.integers(0, 2**16))
@example(dtype=torch.bfloat16, M=8, K=1024, N=37, gated=True, strided=False, seed=0)
@example(dtype=torch.float32, M=1, K=1024, N=64, gated=False, strided=True, seed=1)
def test_linear_matches_reference(backend, dtype, M, K, N, gated, strided, seed):
    x, w, gw = operands(M, K, N, dtype, gated, strided, seed)
    ref = R.linear(x, w, gate_weight=gw)
    xd, wd, gd = to(backend, x, w, gw)
    with backend.context():
        got = L.linear(xd, wd, gate_weight=gd)
    assert_close(got.cpu(), ref, f"y (M={M}, K={K}, N={N}, gated={gated})")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_rows_are_independent_of_batching(backend, dtype):
    """Row m of a batched call equals the call for that row alone, bit for bit: a decode step's result does
    not depend on which other sequences share the step (the row tiles of 8, 4, 2, 1 sum in the same order)."""
    if backend.device == "cuda":
        pytest.skip("cuBLAS picks its algorithm by shape; no such promise on CUDA")
    # NOTE: two orders of fp32 sums round to different bf16 values in about 1 output of 6000 (K = 1024), so
    # the second case has enough outputs to show a difference in order: about 5 expected if there were one
    for M, K, N, gated, seed in ((13, 200, 21, True, 7), (9, 1024, 384, False, 1), (9, 1024, 384, False, 2),
                                 (9, 1024, 384, True, 3)):
        x, w, gw = operands(M, K, N, dtype, gated, False, seed)
        xd, wd, gd = to(backend, x, w, gw)
        with backend.context():
            full = L.linear(xd, wd, gate_weight=gd)
            for m in range(M):
                assert_equal(L.linear(xd[m:m + 1], wd, gate_weight=gd), full[m:m + 1], f"K={K} row {m}")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("gated", [False, True])
def test_linear_long_rows(backend, gated):
    """K past 2560 (LFM2's w2 has 4608): AMX reads such rows in blocks of 32 instead of 64 outputs, with K
    split over 2 phases; N and K off the tile sizes."""
    x, w, gw = operands(5, 2600 + 13, 37, torch.bfloat16, gated, False, 11)
    xd, wd, gd = to(backend, x, w, gw)
    with backend.context():
        y = L.linear(xd, wd, gate_weight=gd)
    assert_close(y.cpu(), R.linear(x, w, gate_weight=gw), "y")


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_keeps_leading_dims_and_handles_empty(backend):
    x, w = torch.randn(2, 3, 40), torch.randn(24, 40)
    xd, wd = to(backend, x, w)
    with backend.context():
        y = L.linear(xd, wd)
        assert y.shape == (2, 3, 24)
        assert_close(y.cpu(), R.linear(x, w), "y")
        assert L.linear(xd[:, :0], wd).shape == (2, 0, 24)
        z = L.linear(torch.randn(2, 0, device=xd.device), torch.randn(5, 0, device=xd.device))
        assert torch.equal(z.cpu(), torch.zeros(2, 5))


def test_linear_thread_count_does_not_change_the_result():
    x, w, gw = operands(5, 1024, 300, torch.bfloat16, True, False, 3)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = L.linear(x, w, gate_weight=gw)
        torch.set_num_threads(2)
        two = L.linear(x, w, gate_weight=gw)
    finally:
        torch.set_num_threads(before)
    assert_equal(one, two, "1 vs 2 threads")


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_gate_saturates_like_torch(backend):
    """Gates far past where exp over- or underflows: silu(-200) = -200 / inf = -0 and silu(200) = 200, as
    torch's eager silu gives them (sums exact here, so the outputs must match bit for bit)."""
    x = torch.ones(3, 64, dtype=torch.bfloat16)
    w = torch.full((16, 64), 1 / 64, dtype=torch.bfloat16)
    g = (torch.linspace(-200, 200, 16)[:, None] * torch.ones(16, 64) / 64).bfloat16()
    xd, wd, gd = to(backend, x, w, g)
    with backend.context():
        got = L.linear(xd, wd, gate_weight=gd)
    assert_equal(got.cpu(), R.linear(x, w, gate_weight=g), "saturated gates")


def test_kernels_run_on_torchs_openmp_team_from_any_thread():
    """torch's CPU build runs its ops on OpenMP, so our kernels take their threads from the same team (its
    spinning threads would otherwise share the cores with ours); a call from another Python thread (a team
    of its own) gives the same result."""
    import threading

    if "OpenMP" not in torch.__config__.parallel_info():
        pytest.skip("this torch build does not use OpenMP")
    assert L._C.parallel_backend() == "openmp"
    x, w, gw = operands(7, 1000, 200, torch.float32, True, False, 4)
    want = L.linear(x, w, gate_weight=gw)
    got = []
    t = threading.Thread(target=lambda: got.append(L.linear(x, w, gate_weight=gw)))
    t.start()
    t.join()
    assert_equal(got[0], want, "from another thread")
