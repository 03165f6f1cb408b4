"""GPU-only properties (the op tests in the other files also run on the GPU through the "cuda" backend): a
decode step captured in a CUDA graph and replayed with new sequence lengths, torch.compile of a function
calling the ops, no host synchronisation, and out-of-range indices skipped instead of dereferenced."""
import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import reference as R

from conftest import assert_close

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not L.cuda_available(), reason="no CUDA GPU or CUDA kernels")]
dev = "cuda"
i32 = lambda *v: torch.tensor(v, dtype=torch.int32, device=dev)


def decode_inputs(B=4, D=1024, Hq=16, Hkv=8, d=64, Lmax=256, dtype=torch.bfloat16):
    g = torch.Generator(device=dev).manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g, device=dev).to(dtype)
    return dict(bcx=r(B, 3 * D), w=r(D, 3), state=r(B, 2, D), q=r(B, Hq, d), k=r(B, Hkv, d), v=r(B, Hkv, d),
                qw=r(d), kw=r(d), kc=r(B, Lmax, Hkv, d), vc=r(B, Lmax, Hkv, d))


def step(t, positions, slots, lens):
    y = L.short_conv_update(t["bcx"], t["w"], t["state"])
    q = L.qk_norm_rope_append(t["q"], t["k"], t["v"], t["qw"], t["kw"], positions, t["kc"], t["vc"], slots)
    return y, L.gqa_decode(q, t["kc"], t["vc"], lens)


def test_decode_step_in_a_cuda_graph_replays_with_new_lengths():
    t = decode_inputs()
    ref = {k: v.clone() for k, v in t.items()}
    positions, lens = i32(3, 10, 0, 200), i32(4, 11, 1, 201)
    slots = torch.arange(4, device=dev, dtype=torch.int32) * 256 + positions
    static = dict(positions=positions.clone(), slots=slots.clone(), lens=lens.clone())
    step(dict((k, v.clone()) for k, v in t.items()), **static)          # warm-up (allocations, autotune)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y, o = step(t, **static)
    for new in ([5, 12, 1, 201], [100, 1, 30, 250]):                     # replay with other lengths
        static["positions"].copy_(torch.tensor(new, device=dev) - 1)
        static["lens"].copy_(torch.tensor(new, device=dev))
        static["slots"].copy_(torch.arange(4, device=dev, dtype=torch.int32) * 256 + static["positions"])
        graph.replay()
        ry, ro = step(ref, **{k: v.clone() for k, v in static.items()})
        torch.testing.assert_close(y, ry, rtol=0, atol=0)
        assert_close(o, ro, "gqa_decode in a graph")


def test_ops_do_not_synchronise_with_the_host():
    t = decode_inputs()
    positions, lens = i32(3, 10, 0, 200), i32(4, 11, 1, 201)
    slots = torch.arange(4, device=dev, dtype=torch.int32) * 256 + positions
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(t, positions, slots, lens)
        L.short_conv(t["bcx"].view(2, 2, -1), t["w"], t["state"], cu_seqlens=None)
        L.rms_norm(t["bcx"], t["bcx"][0], 1e-5, residual=t["bcx"])
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_torch_compile_on_the_gpu():
    t = decode_inputs()
    positions, lens = i32(3, 10, 0, 200), i32(4, 11, 1, 201)
    slots = torch.arange(4, device=dev, dtype=torch.int32) * 256 + positions
    ref = {k: v.clone() for k, v in t.items()}
    got = torch.compile(step, fullgraph=True)(t, positions, slots, lens)
    want = step(ref, positions, slots, lens)
    for a, b in zip(got, want):
        assert_close(a, b, "compiled")


def test_out_of_range_indices_are_skipped_not_dereferenced():
    t = decode_inputs()
    before = t["state"].clone()
    y = L.short_conv_update(t["bcx"], t["w"], t["state"], state_indices=i32(0, 99, -5, 1))
    torch.cuda.synchronize()
    assert bool((y[1:3] == 0).all()) and torch.equal(t["state"][2:], before[2:])
    out = L.gqa_decode(t["q"], t["kc"], t["vc"], i32(10, 10_000, -3, 5), block_table=i32(0, 77, 1, 2).view(4, 1))
    torch.cuda.synchronize()
    assert not out.isnan().any()
