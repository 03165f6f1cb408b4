"""Hazards an outside review found (issue 15), each pinned on every backend: a passed tensor without elements is
never taken for an absent one, NaN reaches gqa_decode's output as in the reference, a state slot given twice
is refused, index-value errors name the op and the value, and gqa_decode's output does not depend on the
thread count."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import assert_close, assert_equal

D = 8
i32 = lambda *v: torch.tensor(v, dtype=torch.int32)
CPU_BACKENDS = [b for b in BACKENDS if not b.values[0].cuda]   # the CUDA kernels do not read index values


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_conv_state_of_zero_slots_is_a_state(backend):
    """conv_state [0, K-1, D] has a null data pointer: still a state, so every sequence must be padding (-1,
    zero output) and any slot index is out of range."""
    bcx, w, empty = to(backend, torch.randn(2, 5, 3 * D), torch.randn(D, 3), torch.zeros(0, 2, D))
    with backend.context():
        y = L.short_conv(bcx, w, empty, state_indices=to(backend, i32(-1, -1)))
        assert not y.cpu().any()
        y = L.short_conv_update(bcx[:, 0], w, empty, state_indices=to(backend, i32(-1, -1)))
        assert not y.cpu().any()
        if backend.cuda:
            return   # the CUDA kernels do not check index values (tests/test_errors.py)
        with pytest.raises(ValueError, match=r"short_conv: state_indices holds a value outside .*: 0 at \[1\]"):
            L.short_conv(bcx, w, empty, state_indices=to(backend, i32(-1, 0)))
        with pytest.raises(ValueError, match=r"short_conv_update: state_indices holds a value outside .*: 0 at \[0\]"):
            L.short_conv_update(bcx[:, 0], w, empty, state_indices=to(backend, i32(0, -1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_block_table_of_zero_columns_is_a_block_table(backend):
    """block_table [B, 0] (null data pointer) is a paged cache with no blocks: a sequence can hold no token."""
    q, k, v = to(backend, torch.randn(2, 4, 32), torch.randn(3, 4, 2, 32), torch.randn(3, 4, 2, 32))
    table = to(backend, torch.zeros(2, 0, dtype=torch.int32))
    with backend.context():
        assert not L.gqa_decode(q, k, v, to(backend, i32(0, 0)), block_table=table).cpu().any()
        if backend.cuda:
            return
        with pytest.raises(ValueError, match=r"gqa_decode: seq_lens holds a value outside .*: 2 at \[1\]"):
            L.gqa_decode(q, k, v, to(backend, i32(0, 2)), block_table=table)


def nan_cases():
    """(name, q, k_cache, v_cache, seq_lens): one sequence of 700 tokens (three 256-token splits on the CPU),
    one of 5; d = 64, Hq = 4, Hkv = 2."""
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(2, 4, 64, generator=g), torch.randn(2, 700, 2, 64, generator=g), torch.randn(2, 700, 2, 64, generator=g)
    lens = i32(700, 5)
    cases = []

    def case(name, edit):
        qq, kk, vv = q.clone(), k.clone(), v.clone()
        edit(qq, kk, vv)
        cases.append(pytest.param(qq, kk, vv, lens, id=name))

    case("nan-in-q", lambda q, k, v: q[0, 1, 3].fill_(float("nan")))
    case("nan-in-one-key", lambda q, k, v: k[0, 600, 1, 0].fill_(float("nan")))
    case("nan-in-the-first-key", lambda q, k, v: k[1, 0, 0, :].fill_(float("nan")))
    case("nan-in-one-value", lambda q, k, v: v[0, 300, 0, 5].fill_(float("nan")))
    case("score-overflows-to-inf", lambda q, k, v: (q[0, 0].fill_(1e30), k[0, 100, 0].fill_(1e30)))
    case("score-overflows-to-minus-inf", lambda q, k, v: (q[0, 0].fill_(1e30), k[0, 100, 0].fill_(-1e30)))
    case("every-score-minus-inf", lambda q, k, v: (q[1, 2].fill_(1e30), k[1, :5, 1].fill_(-1e30)))
    return cases


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("q,k,v,lens", nan_cases())
def test_gqa_decode_propagates_nan_as_the_reference(backend, dtype, q, k, v, lens):
    """NaN in q, a key or a value, and scores that overflow fp32 give NaN where the reference (softmax) does,
    and the reference's values elsewhere: the running max must not drop a NaN score, nor the exp clamp turn it
    into a number."""
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    want = R.gqa_decode(q, k, v, lens)
    with backend.context():
        got = L.gqa_decode(*to(backend, q, k, v, lens)).cpu()
    assert torch.equal(got.isnan(), want.isnan()), f"NaN at {got.isnan().nonzero().tolist()[:4]}, reference " \
                                                   f"{want.isnan().nonzero().tolist()[:4]}"
    fine = ~want.isnan()
    assert_close(got[fine], want[fine], "finite outputs")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_state_slot_given_twice_is_refused(backend):
    """The kernels gather every initial state before writing any final one, so two sequences on one slot
    would race: refused, naming the op, the argument and the slot; padding (-1) may repeat. Nothing is written."""
    if backend.cuda:
        pytest.skip("the CUDA kernels do not read index values on the host (tests/test_errors.py)")
    bcx, w, state = torch.randn(3, 4, 3 * D), torch.randn(D, 3), torch.randn(4, 2, D)
    before = state.clone()
    with backend.context():
        with pytest.raises(ValueError, match=r"short_conv: state_indices holds a slot twice .*: 2 at \[2\]"):
            L.short_conv(bcx, w, state, state_indices=i32(2, -1, 2))
        with pytest.raises(ValueError, match=r"short_conv_update: state_indices holds a slot twice .*: 0 at \[1\]"):
            L.short_conv_update(bcx[:, 0], w, state, state_indices=i32(0, 0, 1))
        assert_equal(state, before, "state after a refused call")
        L.short_conv(bcx, w, state, state_indices=i32(-1, 3, -1))
        L.short_conv_update(bcx[:, 0], w, state, state_indices=i32(-1, -1, 1))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("call,text", [
    (lambda: L.short_conv(torch.randn(6, 3 * D), torch.randn(D, 3), cu_seqlens=i32(0, 4, 3, 6)),
     r"short_conv: cu_seqlens must start at 0, never decrease .*: 3 at \[2\]"),
    (lambda: L.qk_norm_rope_append(*[torch.randn(2, h, 32) for h in (2, 1, 1)], torch.ones(32), torch.ones(32),
                                   i32(0, -7), torch.zeros(1, 4, 1, 32), torch.zeros(1, 4, 1, 32), i32(0, 1)),
     r"qk_norm_rope_append: positions holds a negative value: -7 at \[1\]"),
    (lambda: L.qk_norm_rope_append(*[torch.randn(2, h, 32) for h in (2, 1, 1)], torch.ones(32), torch.ones(32),
                                   i32(0, 1), torch.zeros(1, 4, 1, 32), torch.zeros(1, 4, 1, 32), i32(0, 4)),
     r"qk_norm_rope_append: slot_mapping holds a value outside .*: 4 at \[1\]"),
    (lambda: L.gqa_decode(torch.randn(2, 2, 32), torch.randn(4, 2, 1, 32), torch.randn(4, 2, 1, 32), i32(2, 3),
                          block_table=i32(0, 1, 2, 9).view(2, 2)),
     r"gqa_decode: block_table holds a block index outside .*: 9 at \[1, 1\]"),
])
def test_index_value_errors_name_the_op_and_the_value(backend, call, text):
    with backend.context(), pytest.raises(ValueError, match=text):
        call()


@pytest.mark.parametrize("isa", L.available_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_gqa_decode_does_not_depend_on_the_thread_count(isa, dtype):
    """The token splits are a fixed length, so the output is the same bit for bit on any number of threads."""
    g = torch.Generator().manual_seed(1)
    q = torch.randn(3, 8, 64, generator=g).to(dtype)
    k, v = (torch.randn(3, 1500, 2, 64, generator=g).to(dtype) for _ in range(2))
    lens = i32(1500, 700, 3)
    threads = torch.get_num_threads()
    outs = []
    try:
        for n in (1, 2, 3, 7):
            torch.set_num_threads(n)
            with L.cpu_isa(isa):
                outs.append(L.gqa_decode(q, k, v, lens))
    finally:
        torch.set_num_threads(threads)
    for n, out in zip((2, 3, 7), outs[1:]):
        assert_equal(out, outs[0], f"{n} threads vs 1")
