"""short_conv and short_conv_update against reference.py, and the bit-exact properties of DESIGN §2:
chunked prefill == whole prefill, update == one-token prefill, padding and unused slots untouched."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import DTYPES, assert_close, assert_equal

EDGE_DIMS = [1, 7, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 129, 257, 1024]


@dataclass
class ConvProblem:
    dtype: torch.dtype
    D: int
    K: int
    lens: list[int]          # tokens per sequence
    packed: bool
    with_state: bool
    slots: list[int] | None  # state_indices, -1 = padding
    n_slots: int
    has_init: list[bool] | None
    weight_f32: bool
    weight_3d: bool
    pad_cols: int            # bcx is a view of a projection output `pad_cols` wider
    seed: int

    def inputs(self):
        g = torch.Generator().manual_seed(self.seed)
        D, K, n_seq = self.D, self.K, len(self.lens)
        wdt = torch.float32 if self.weight_f32 else self.dtype
        weight = (torch.randn(D, 1, K, generator=g) * 0.5).to(wdt)
        if not self.weight_3d:
            weight = weight[:, 0, :]
        if self.packed:
            proj = torch.randn(sum(self.lens), 3 * D + self.pad_cols, generator=g).to(self.dtype)
            bcx = proj[:, self.pad_cols:]
            cu = torch.tensor([0] + torch.tensor(self.lens).cumsum(0).tolist(), dtype=torch.int32)
        else:
            # [T, B, 3D+pad] transposed: batch stride 3D+pad, token stride B*(3D+pad)
            proj = torch.randn(self.lens[0], n_seq, 3 * D + self.pad_cols, generator=g).to(self.dtype)
            bcx = proj.transpose(0, 1)[..., self.pad_cols:]
            cu = None
        state = idx = has = None
        if self.with_state:
            state = torch.randn(self.n_slots, K - 1, D, generator=g).to(self.dtype)
            idx = None if self.slots is None else torch.tensor(self.slots, dtype=torch.int32)
            has = None if self.has_init is None else torch.tensor(self.has_init, dtype=torch.bool)
        return bcx, weight, state, dict(cu_seqlens=cu, state_indices=idx, has_initial_state=has)


@st.composite
def conv_problems(draw, packed=None, with_state=None, max_len=40):
    dtype = draw(st.sampled_from(DTYPES))
    D = draw(st.sampled_from(EDGE_DIMS) | st.integers(1, 300))
    K = draw(st.integers(2, 4))
    packed = draw(st.booleans()) if packed is None else packed
    n_seq = draw(st.integers(1, 4))
    if packed:
        lens = draw(st.lists(st.integers(0, max_len), min_size=n_seq, max_size=n_seq))
    else:
        lens = [draw(st.integers(1, max_len))] * n_seq
    with_state = draw(st.booleans()) if with_state is None else with_state
    extra = draw(st.integers(0, 3))
    slots = None
    if draw(st.booleans()):
        perm = draw(st.permutations(range(n_seq + extra)))[:n_seq]
        slots = [s if draw(st.integers(0, 4)) else -1 for s in perm]
    has_init = draw(st.none() | st.lists(st.booleans(), min_size=n_seq, max_size=n_seq))
    return ConvProblem(dtype, D, K, lens, packed, with_state, slots, n_seq + extra, has_init,
                       draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from([0, 0, 3, 64])),
                       draw(st.integers(0, 2**16)))


def run_conv(backend, bcx, weight, state, kw):
    bcx_d, w_d, st_d = to(backend, bcx, weight, state)
    kw_d = {k: to(backend, v) for k, v in kw.items()}
    with backend.context():
        y = L.short_conv(bcx_d, w_d, st_d, **kw_d)
    return y.cpu(), None if st_d is None else st_d.cpu()


@pytest.mark.parametrize("backend", BACKENDS)
@given(prob=conv_problems())
@example(prob=ConvProblem(torch.bfloat16, 1024, 3, [4096], False, True, None, 1, None, False, True, 0, 0))
@example(prob=ConvProblem(torch.float32, 17, 4, [1, 2, 0, 5], True, True, [3, -1, 0, 2], 5, [True, True, False, True],
                          True, False, 3, 1))
def test_short_conv_matches_reference(backend, prob):
    bcx, weight, state, kw = prob.inputs()
    if not prob.with_state:
        kw = dict(cu_seqlens=kw["cu_seqlens"])
    ref_state = None if state is None else state.clone()
    y_ref = R.short_conv(bcx, weight, ref_state, **kw)
    y, new_state = run_conv(backend, bcx, weight, state, kw)
    assert_close(y, y_ref, "y")
    if state is not None:
        # final states hold U = round(B * X) or shifted old rows: exact in every backend
        assert_equal(new_state, ref_state, "conv_state")
        if prob.slots is not None:
            pad = torch.tensor(prob.slots) == -1
            rows = y.split(prob.lens) if prob.packed else y.unbind(0)
            for i, r in enumerate(rows):
                if pad[i]:
                    assert bool((r == 0).all()), f"padding sequence {i} has non-zero output"


@pytest.mark.parametrize("backend", BACKENDS)
@given(prob=conv_problems(packed=True, with_state=True, max_len=30), data=st.data())
def test_short_conv_chunked_prefill_is_bit_exact(backend, prob, data):
    """Prefill of T1 tokens then T2 tokens == prefill of T1+T2 tokens, outputs and states, bit for bit."""
    bcx, weight, state, kw = prob.inputs()
    cuts = [data.draw(st.integers(0, n), label=f"cut{i}") for i, n in enumerate(prob.lens)]
    y_all, st_all = run_conv(backend, bcx, weight, state.clone(), kw)

    seqs = bcx.split(prob.lens)
    first = torch.cat([s[:c] for s, c in zip(seqs, cuts)])
    second = torch.cat([s[c:] for s, c in zip(seqs, cuts)])
    cu = lambda ls: torch.tensor([0] + torch.tensor(ls).cumsum(0).tolist(), dtype=torch.int32)
    y1, st1 = run_conv(backend, first, weight, state.clone(), dict(kw, cu_seqlens=cu(cuts)))
    y2, st2 = run_conv(backend, second, weight, st1, dict(kw, cu_seqlens=cu([n - c for n, c in zip(prob.lens, cuts)]),
                                                         has_initial_state=None))
    # a sequence starting from zeros in chunk 1 continues from its (now written) state in chunk 2
    y_chunked = torch.cat([torch.cat([a, b]) for a, b in zip(y1.split(cuts), y2.split([n - c for n, c in zip(prob.lens, cuts)]))])
    assert_equal(y_chunked, y_all, "y (chunked vs whole)")
    assert_equal(st2, st_all, "conv_state (chunked vs whole)")


@st.composite
def update_problems(draw):
    dtype = draw(st.sampled_from(DTYPES))
    D = draw(st.sampled_from(EDGE_DIMS) | st.integers(1, 300))
    K = draw(st.integers(2, 4))
    B = draw(st.integers(1, 9))
    extra = draw(st.integers(0, 3))
    slots = None
    if draw(st.booleans()):
        perm = draw(st.permutations(range(B + extra)))[:B]
        slots = [s if draw(st.integers(0, 4)) else -1 for s in perm]
    return ConvProblem(dtype, D, K, [1] * B, False, True, slots, B + extra, None, draw(st.booleans()),
                       draw(st.booleans()), draw(st.sampled_from([0, 5])), draw(st.integers(0, 2**16)))


@pytest.mark.parametrize("backend", BACKENDS)
@given(prob=update_problems())
@example(prob=ConvProblem(torch.bfloat16, 1024, 3, [1] * 64, False, True, None, 64, None, False, True, 0, 2))
def test_short_conv_update_matches_reference_and_prefill(backend, prob):
    """update == reference, and update == short_conv with T=1 in the same backend, bit for bit."""
    bcx3, weight, state, kw = prob.inputs()      # bcx3: [B, 1, 3D]
    bcx = bcx3[:, 0]
    ref_state = state.clone()
    y_ref = R.short_conv_update(bcx, weight, ref_state, state_indices=kw["state_indices"])

    bcx_d, w_d, st_d, idx_d = to(backend, bcx, weight, state.clone(), kw["state_indices"])
    with backend.context():
        y = L.short_conv_update(bcx_d, w_d, st_d, state_indices=idx_d)
    assert_close(y.cpu(), y_ref, "y")
    assert_equal(st_d.cpu(), ref_state, "conv_state")

    y_prefill, st_prefill = run_conv(backend, bcx3, weight, state.clone(), dict(state_indices=kw["state_indices"]))
    assert_equal(y.cpu(), y_prefill[:, 0], "y (update vs one-token prefill)")
    assert_equal(st_d.cpu(), st_prefill, "conv_state (update vs one-token prefill)")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_short_conv_long_sequence_lfm2_shape(backend, dtype):
    """LFM2.5-350M conv shape, long packed batch with a state: many chunks per sequence on every thread."""
    g = torch.Generator().manual_seed(7)
    D, K, lens = 1024, 3, [3000, 1, 517]
    bcx = torch.randn(sum(lens), 3 * D, generator=g).to(dtype)
    weight = torch.randn(D, 1, K, generator=g).to(dtype)
    state = torch.randn(3, K - 1, D, generator=g).to(dtype)
    kw = dict(cu_seqlens=torch.tensor([0, 3000, 3001, 3518], dtype=torch.int32),
              state_indices=torch.tensor([2, 0, 1], dtype=torch.int32))
    ref_state = state.clone()
    y_ref = R.short_conv(bcx, weight, ref_state, **kw)
    y, new_state = run_conv(backend, bcx, weight, state, kw)
    assert_close(y, y_ref, "y")
    assert_equal(new_state, ref_state, "conv_state")


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.id.startswith("cpu")])
def test_short_conv_is_independent_of_thread_count(backend):
    """Work is split by torch.get_num_threads(); every split computes each output the same way."""
    g = torch.Generator().manual_seed(5)
    bcx = torch.randn(1500, 3 * 200, generator=g).to(torch.bfloat16)
    weight = torch.randn(200, 3, generator=g).to(torch.bfloat16)
    kw = dict(cu_seqlens=torch.tensor([0, 1000, 1500], dtype=torch.int32))
    results = []
    old = torch.get_num_threads()
    try:
        for n in (1, 2, 3, 7):
            torch.set_num_threads(n)
            state = torch.zeros(2, 2, 200, dtype=torch.bfloat16)
            results.append(run_conv(backend, bcx, weight, state, kw))
    finally:
        torch.set_num_threads(old)
    for y, st in results[1:]:
        assert_equal(y, results[0][0], "y across thread counts")
        assert_equal(st, results[0][1], "state across thread counts")
