"""qk_norm_rope_append and gqa_decode against reference.py: contiguous and paged caches (shuffled block
tables), caches in the activations' dtype or 16-bit under fp32, views of one qkv projection, skipped slots,
GQA groups 1..8, seq_len 0."""
from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import reference as R

from backends import BACKENDS, to
from conftest import KV_DTYPES, assert_close, assert_equal

HEAD_DIMS = [32, 64, 96, 128]


def heads(draw):
    hkv = draw(st.sampled_from([1, 2, 3, 8]))
    return hkv * draw(st.sampled_from([1, 2, 4, 8])), hkv


def make_cache(g, n_blocks, block_size, hkv, d, dtype):
    # caches start with random data so a missing or misplaced write shows
    return (torch.randn(n_blocks, block_size, hkv, d, generator=g).to(dtype),
            torch.randn(n_blocks, block_size, hkv, d, generator=g).to(dtype))


@st.composite
def append_problems(draw):
    dtype, cache_dtype = draw(st.sampled_from(KV_DTYPES))
    d = draw(st.sampled_from(HEAD_DIMS))
    hq, hkv = heads(draw)
    n = draw(st.integers(1, 12))
    paged = draw(st.booleans())
    block_size = draw(st.sampled_from([1, 4, 16])) if paged else draw(st.integers(1, 40))
    n_blocks = draw(st.integers((n + block_size - 1) // block_size, 6 + n))
    perm = draw(st.permutations(range(n_blocks * block_size)))[:n]     # distinct slots, some skipped
    slots = [s if draw(st.integers(0, 4)) else -1 for s in perm]
    positions = draw(st.lists(st.integers(0, 40000), min_size=n, max_size=n))
    return dict(dtype=dtype, cache_dtype=cache_dtype, d=d, hq=hq, hkv=hkv, n=n, block_size=block_size,
                n_blocks=n_blocks, slots=slots, positions=positions, weight_f32=draw(st.booleans()), theta=draw(st.sampled_from([1e6, 1e4])),
                seed=draw(st.integers(0, 2**16)))


def append_inputs(p):
    g = torch.Generator().manual_seed(p["seed"])
    dt, d, hq, hkv, n = p["dtype"], p["d"], p["hq"], p["hkv"], p["n"]
    qkv = (torch.randn(n, (hq + 2 * hkv) * d, generator=g) * 2).to(dt)        # one projection output
    q, k, v = qkv.split([hq * d, hkv * d, hkv * d], dim=-1)
    q, k, v = q.view(n, hq, d), k.view(n, hkv, d), v.view(n, hkv, d)
    wdt = torch.float32 if p["weight_f32"] else dt
    qw, kw = (torch.rand(d, generator=g) + 0.5).to(wdt), (torch.rand(d, generator=g) + 0.5).to(wdt)
    kc, vc = make_cache(g, p["n_blocks"], p["block_size"], hkv, d, p["cache_dtype"])
    pos = torch.tensor(p["positions"], dtype=torch.int32)
    slots = torch.tensor(p["slots"], dtype=torch.int32)
    return (q, k, v, qw, kw, pos, kc, vc, slots), dict(eps=1e-5, rope_theta=p["theta"])


@pytest.mark.parametrize("backend", BACKENDS)
@given(p=append_problems())
@example(p=dict(dtype=torch.bfloat16, cache_dtype=torch.bfloat16, d=64, hq=16, hkv=8, n=5, block_size=4096,
                n_blocks=1, slots=[0, 4095, 17, -1, 3], positions=[0, 4095, 17, 9, 32767], weight_f32=False,
                theta=1e6, seed=1))
@example(p=dict(dtype=torch.float32, cache_dtype=torch.float16, d=64, hq=16, hkv=8, n=6, block_size=16, n_blocks=3,
                slots=[47, 0, 5, -1, 16, 31], positions=[0, 4095, 17, 9, 32767, 3], weight_f32=True, theta=1e6,
                seed=2))
@example(p=dict(dtype=torch.float32, cache_dtype=torch.bfloat16, d=96, hq=6, hkv=3, n=4, block_size=7, n_blocks=2,
                slots=[13, 2, 0, -1], positions=[1, 2, 40000, 3], weight_f32=False, theta=1e4, seed=3))
def test_qk_norm_rope_append_matches_reference(backend, p):
    args, kw = append_inputs(p)
    q, k, v, qw, kwt, pos, kc, vc, slots = args
    kc_ref, vc_ref = kc.clone(), vc.clone()
    q_ref = R.qk_norm_rope_append(q, k, v, qw, kwt, pos, kc_ref, vc_ref, slots, **kw)
    dev = to(backend, *args)
    with backend.context():
        q_out = L.qk_norm_rope_append(*dev, **kw)
    assert_close(q_out.cpu(), q_ref, "q_out")
    kc_out, vc_out = dev[6].cpu(), dev[7].cpu()
    assert_close(kc_out, kc_ref, "k_cache")
    assert_equal(vc_out, vc_ref, "v_cache")                  # v is copied (converted: one rounding)
    written = torch.zeros(kc.shape[0] * kc.shape[1], dtype=torch.bool)
    written[slots[slots >= 0].long()] = True
    untouched = ~written.view(kc.shape[0], kc.shape[1])
    assert_equal(kc_out[untouched], kc[untouched], "k_cache slots not in slot_mapping")


@st.composite
def decode_problems(draw):
    dtype, cache_dtype = draw(st.sampled_from(KV_DTYPES))
    d = draw(st.sampled_from(HEAD_DIMS))
    hq, hkv = heads(draw)
    B = draw(st.integers(1, 5))
    paged = draw(st.booleans())
    block_size = draw(st.sampled_from([1, 3, 16, 64])) if paged else draw(st.integers(1, 700))
    max_blocks = draw(st.integers(1, 8)) if paged else 1
    cap = block_size * max_blocks
    lens = draw(st.lists(st.integers(0, cap), min_size=B, max_size=B))
    return dict(dtype=dtype, cache_dtype=cache_dtype, d=d, hq=hq, hkv=hkv, B=B, paged=paged, block_size=block_size,
                max_blocks=max_blocks, lens=lens, q_view=draw(st.booleans()), scale=draw(st.sampled_from([None, 0.3])),
                seed=draw(st.integers(0, 2**16)))


def decode_inputs(p):
    g = torch.Generator().manual_seed(p["seed"])
    dt, d, hq, hkv, B = p["dtype"], p["d"], p["hq"], p["hkv"], p["B"]
    if p["q_view"]:                                         # q as a view of a wider qkv projection
        q = torch.randn(B, (hq + 2 * hkv) * d, generator=g).to(dt)[:, :hq * d].view(B, hq, d)
    else:
        q = torch.randn(B, hq, d, generator=g).to(dt)
    bt = None
    if p["paged"]:
        n_blocks = B * p["max_blocks"] + 2
        bt = torch.randperm(n_blocks, generator=g)[:B * p["max_blocks"]].view(B, p["max_blocks"]).to(torch.int32)
        kc, vc = make_cache(g, n_blocks, p["block_size"], hkv, d, p["cache_dtype"])
    else:
        kc, vc = make_cache(g, B, p["block_size"], hkv, d, p["cache_dtype"])
    kc.mul_(2)                                              # sharper softmax
    lens = torch.tensor(p["lens"], dtype=torch.int32)
    return (q, kc, vc, lens), dict(block_table=bt, scale=p["scale"])


@pytest.mark.parametrize("backend", BACKENDS)
@given(p=decode_problems())
@example(p=dict(dtype=torch.bfloat16, cache_dtype=torch.bfloat16, d=64, hq=16, hkv=8, B=2, paged=False,
                block_size=4096, max_blocks=1, lens=[4096, 0], q_view=True, scale=None, seed=3))
@example(p=dict(dtype=torch.float32, cache_dtype=torch.float32, d=64, hq=16, hkv=8, B=1, paged=True, block_size=16,
                max_blocks=160, lens=[2500], q_view=False, scale=None, seed=4))
@example(p=dict(dtype=torch.float32, cache_dtype=torch.float16, d=64, hq=16, hkv=8, B=3, paged=False,
                block_size=700, max_blocks=1, lens=[700, 0, 257], q_view=True, scale=None, seed=5))
@example(p=dict(dtype=torch.float32, cache_dtype=torch.bfloat16, d=128, hq=8, hkv=2, B=2, paged=True, block_size=3,
                max_blocks=8, lens=[24, 5], q_view=False, scale=0.3, seed=6))
def test_gqa_decode_matches_reference(backend, p):
    args, kw = decode_inputs(p)
    out_ref = R.gqa_decode(*args, **kw)
    dev = to(backend, *args)
    with backend.context():
        out = L.gqa_decode(*dev, block_table=to(backend, kw["block_table"]), scale=kw["scale"])
    assert_close(out.cpu(), out_ref, "out")
    empty = torch.tensor(p["lens"]) == 0
    assert bool((out.cpu()[empty] == 0).all()), "seq_len 0 must give zeros"


@pytest.mark.parametrize("backend", BACKENDS)
def test_gqa_decode_long_context_batch_one(backend):
    """Batch 1, long cache: split across workers and combined; LFM2.5-350M head shape."""
    g = torch.Generator().manual_seed(11)
    q = torch.randn(1, 16, 64, generator=g).to(torch.bfloat16)
    kc, vc = make_cache(g, 1, 20000, 8, 64, torch.bfloat16)
    lens = torch.tensor([19999], dtype=torch.int32)
    out_ref = R.gqa_decode(q, kc, vc, lens)
    dev = to(backend, q, kc, vc, lens)
    with backend.context():
        out = L.gqa_decode(*dev)
    assert_close(out.cpu(), out_ref, "out")
