"""GPU-only properties (the op tests in the other files also run on the GPU through the "cuda" backend): a
decode step captured in a CUDA graph and replayed with new lengths, torch.compile of the ops, no host
synchronisation, out-of-range indices skipped instead of dereferenced, the element-wise fallbacks for views
that are not 16-byte aligned, and concurrent streams."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import reference as R

from conftest import assert_close, assert_equal

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not L.cuda_available(), reason="no CUDA GPU or CUDA kernels")]
dev = "cuda"


def i32(*v):
    return torch.tensor(v, dtype=torch.int32, device=dev)


class DecodeStep:
    """Static buffers of one LFM2.5-350M-shaped decode step (a conv layer and an attention layer) for B
    sequences; `paged` caches hold blocks of 16 tokens in shuffled order."""

    def __init__(self, B=3, D=1024, Hq=16, Hkv=8, d=64, L_max=4096, paged=False, dtype=torch.bfloat16, seed=0):
        g = torch.Generator(device=dev).manual_seed(seed)
        r = lambda *s: torch.randn(*s, generator=g, device=dev).to(dtype)
        self.B, self.L_max, self.paged = B, L_max, paged
        self.bcx, self.w, self.state = r(B, 3 * D), r(D, 3), r(B, 2, D)
        self.qkv = r(B, (Hq + 2 * Hkv) * d)
        self.qw, self.kw = r(d).abs() + 0.5, r(d).abs() + 0.5
        self.block = 16 if paged else L_max
        n_blocks = B * L_max // self.block
        self.kc, self.vc = r(n_blocks, self.block, Hkv, d), r(n_blocks, self.block, Hkv, d)
        self.table = (torch.randperm(n_blocks, generator=g, device=dev).view(B, -1).to(torch.int32)
                      if paged else None)
        self.positions = torch.zeros(B, dtype=torch.int32, device=dev)
        self.slots = torch.zeros(B, dtype=torch.int32, device=dev)
        self.lens = torch.zeros(B, dtype=torch.int32, device=dev)
        self.Hq, self.Hkv, self.d = Hq, Hkv, d

    def set_lengths(self, lens: list[int]):
        """The new token of sequence b goes to position lens[b] - 1 (its slot through the block table)."""
        pos = torch.tensor(lens, device=dev) - 1
        if self.paged:
            blocks = self.table.long().gather(1, (pos // self.block).view(-1, 1)).view(-1)
            slots = blocks * self.block + pos % self.block
        else:
            slots = torch.arange(self.B, device=dev) * self.L_max + pos
        self.positions.copy_(pos)
        self.slots.copy_(slots)
        self.lens.copy_(torch.tensor(lens, device=dev))

    def views(self):
        q, k, v = self.qkv.split([self.Hq * self.d, self.Hkv * self.d, self.Hkv * self.d], dim=-1)
        return q.view(self.B, self.Hq, self.d), k.view(self.B, self.Hkv, self.d), v.view(self.B, self.Hkv, self.d)

    def run(self, ops=L):
        q, k, v = self.views()
        y = ops.short_conv_update(self.bcx, self.w, self.state)
        q_out = ops.qk_norm_rope_append(q, k, v, self.qw, self.kw, self.positions, self.kc, self.vc, self.slots)
        o = ops.gqa_decode(q_out, self.kc, self.vc, self.lens, block_table=self.table)
        return y, o

    def clone(self):
        other = object.__new__(DecodeStep)
        other.__dict__ = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in self.__dict__.items()}
        return other


@pytest.mark.parametrize("paged", [False, True], ids=["contiguous", "paged"])
@pytest.mark.parametrize("B", [3, 64], ids=["split-kv", "one-split"])
def test_decode_step_in_a_cuda_graph_replays_with_new_lengths(paged, B):
    step = DecodeStep(B=B, L_max=4096 if B == 3 else 256, paged=paged)
    cap = step.L_max
    step.set_lengths([1 + (37 * b) % cap for b in range(B)])
    eager = step.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):                        # warm-up on a side stream, as torch recommends
        step.clone().run()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y, o = step.run()
    for lens in ([max(1, cap - 5 * b) for b in range(B)], [1 + (b * 911) % cap for b in range(B)], [cap] * B):
        step.set_lengths(lens)
        eager.set_lengths(lens)
        ref = eager.clone()
        graph.replay()
        y_e, o_e = eager.run()                           # the same kernels, launched eagerly
        torch.cuda.synchronize()
        assert_equal(y, y_e, "short_conv_update in a graph")
        assert_equal(step.state, eager.state, "conv state in a graph")
        assert_equal(step.kc, eager.kc, "k_cache in a graph")
        assert_equal(step.vc, eager.vc, "v_cache in a graph")
        assert_equal(o, o_e, "gqa_decode in a graph")     # same shapes -> same split count -> same sums
        y_r, o_r = ref.run(R)
        assert_close(y, y_r, "short_conv_update vs reference")
        assert_close(o, o_r, "gqa_decode vs reference")


def test_ops_do_not_synchronise_with_the_host():
    step = DecodeStep(B=3, paged=True)
    step.set_lengths([5, 4000, 1])
    bcx = torch.randn(50, 3 * 1024, device=dev).bfloat16()
    state = torch.randn(4, 2, 1024, device=dev).bfloat16()
    cu, idx = i32(0, 20, 20, 50), i32(3, 1, 0)                 # index tensors made before the check:
    has = torch.tensor([True, False, True], device=dev)        # a copy from the host synchronises
    nw = torch.rand(1024, device=dev).bfloat16()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step.run()
        L.short_conv(bcx, step.w, state, cu_seqlens=cu, state_indices=idx, has_initial_state=has)
        L.short_conv(bcx.view(2, 25, -1), step.w, state[:2])
        L.rms_norm(bcx[:, :1024], nw, 1e-5, residual=bcx[:, 1024:2048])
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("paged", [False, True], ids=["contiguous", "paged"])
def test_torch_compile_fullgraph_on_the_gpu(paged):
    step = DecodeStep(B=4, L_max=512, paged=paged)
    step.set_lengths([3, 512, 100, 1])
    ref = step.clone()
    x = torch.randn(4, 1024, device=dev).bfloat16()
    nw = torch.rand(1024, device=dev).bfloat16()

    def layer(s: DecodeStep, x, nw):
        y, o = s.run()
        n, h = L.rms_norm(x, nw, 1e-5, residual=y)
        return y, o, n, h

    got = torch.compile(layer, fullgraph=True)(step, x, nw)
    y, o = ref.run()
    want = (y, o, *L.rms_norm(x, nw, 1e-5, residual=y))
    for a, b, name in zip(got, want, ("y", "attention", "norm", "residual")):
        assert_close(a, b, f"compiled {name}")
    assert_equal(step.state, ref.state, "conv state mutated under torch.compile")
    assert_equal(step.kc, ref.kc, "k_cache mutated under torch.compile")


def test_out_of_range_indices_are_skipped_not_dereferenced():
    D, K = 64, 3
    bcx = torch.randn(4, 3 * D, device=dev)
    w = torch.randn(D, K, device=dev)
    state = torch.randn(3, K - 1, D, device=dev)
    before = state.clone()
    y = L.short_conv_update(bcx, w, state, state_indices=i32(0, 99, -5, 1))
    torch.cuda.synchronize()
    assert bool((y[1:3] == 0).all()), "out-of-range slots must act as padding"
    assert_equal(state[2], before[2], "a slot no index names")

    # prefill: slots out of range and cu_seqlens that decrease or run past N
    state = before.clone()
    y = L.short_conv(bcx, w, state, cu_seqlens=i32(0, 3, 1, 9), state_indices=i32(7, -3, 0))
    y2 = L.short_conv(bcx.view(1, 4, -1), w, state, state_indices=i32(1000))
    torch.cuda.synchronize()
    assert not y.isnan().any() and bool((y2 == 0).all())

    # attention: a slot past the cache, seq_lens past the capacity or negative, block ids out of range
    q, k, v = (torch.randn(3, 4, 64, device=dev) for _ in range(3))
    kc, vc = torch.randn(2, 16, 2, 64, device=dev), torch.randn(2, 16, 2, 64, device=dev)
    kc0 = kc.clone()
    L.qk_norm_rope_append(q, k[:, :2], v[:, :2], torch.ones(64, device=dev), torch.ones(64, device=dev),
                          i32(0, 1, 2), kc, vc, i32(32, -7, 1 << 30))
    torch.cuda.synchronize()
    assert_equal(kc, kc0, "k_cache written through an out-of-range slot")
    lens = i32(10_000, -3, 5)
    out = L.gqa_decode(q, kc, vc, lens, block_table=i32(0, 77, -1, 1, 0, 1).view(3, 2))
    torch.cuda.synchronize()
    assert not out.isnan().any()
    assert bool((out[1] == 0).all()), "a negative seq_len gives zeros"
    # seq_len 10000 is clamped to the capacity (32); block 77 is skipped, block 0 is used
    ref = R.gqa_decode(q[:1], kc[:1], vc[:1], i32(16))
    assert_close(out[:1], ref, "clamped length, skipped block")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_views_that_are_not_16_byte_aligned_take_the_elementwise_path(dtype):
    g = torch.Generator(device=dev).manual_seed(3)
    r = lambda *s: torch.randn(*s, generator=g, device=dev).to(dtype)
    # gqa_decode: caches offset by one element, a group of 16 (two head tiles of 8)
    B, Hq, Hkv, d, Lm = 2, 16, 1, 64, 300
    kc = r(B * Lm * Hkv * d + 1)[1:].view(B, Lm, Hkv, d)
    vc = r(B * Lm * Hkv * d + 1)[1:].view(B, Lm, Hkv, d)
    q, lens = r(B, Hq, d), i32(300, 77)
    assert_close(L.gqa_decode(q, kc, vc, lens), R.gqa_decode(q.cpu(), kc.cpu(), vc.cpu(), lens.cpu()), "gqa")
    # qk_norm_rope_append: q/k/v views one element off
    N, d = 5, 128
    qkv = r(N, 6 * d + 1)[:, 1:]
    q, k, v = qkv[:, :4 * d].view(N, 4, d), qkv[:, 4 * d:5 * d].view(N, 1, d), qkv[:, 5 * d:].view(N, 1, d)
    kc, vc = r(2, 8, 1, d), r(2, 8, 1, d)
    kc_r, vc_r = kc.cpu(), vc.cpu()
    pos, slots = i32(0, 7, 300, 32767, 4), i32(3, 9, -1, 15, 0)
    qw, kw = r(d).abs() + 0.5, r(d).abs() + 0.5
    got = L.qk_norm_rope_append(q, k, v, qw, kw, pos, kc, vc, slots)
    want = R.qk_norm_rope_append(q.cpu(), k.cpu(), v.cpu(), qw.cpu(), kw.cpu(), pos.cpu(), kc_r, vc_r, slots.cpu())
    assert_close(got, want, "q_out")
    assert_close(kc, kc_r, "k_cache")
    assert_equal(vc, vc_r, "v_cache")
    # rms_norm: rows one element off
    x = r(7, 1025)[:, 1:]
    wt = r(1024).abs()
    assert_close(L.rms_norm(x, wt, 1e-5), R.rms_norm(x.cpu(), wt.cpu(), 1e-5), "rms_norm")


def test_concurrent_streams_keep_their_own_split_workspace():
    """Two long-context decodes on two streams at once: each call's split-KV scratch is its own."""
    g = torch.Generator(device=dev).manual_seed(9)
    q = [torch.randn(1, 16, 64, generator=g, device=dev).bfloat16() for _ in range(2)]
    kc = torch.randn(1, 16384, 8, 64, generator=g, device=dev).bfloat16()
    vc = torch.randn(1, 16384, 8, 64, generator=g, device=dev).bfloat16()
    lens = i32(16384)
    want = [L.gqa_decode(qi, kc, vc, lens) for qi in q]
    streams = [torch.cuda.Stream() for _ in range(2)]
    torch.cuda.synchronize()
    got = []
    for s, qi in zip(streams, q):
        with torch.cuda.stream(s):
            got.append([L.gqa_decode(qi, kc, vc, lens) for _ in range(20)])
    torch.cuda.synchronize()
    for outs, w in zip(got, want):
        for o in outs:
            assert_equal(o, w, "gqa_decode on a second stream")


def test_short_conv_chunk_edges_and_many_sequences():
    """Packed batches whose sequences start and end on every offset of a chunk (8..64 tokens), with states:
    whole == chunked bit for bit, and equal to the reference."""
    g = torch.Generator().manual_seed(4)
    D, K = 256, 3
    lens = [0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 129, 0, 2, 300]
    bcx = torch.randn(sum(lens), 3 * D, generator=g).bfloat16()
    w = torch.randn(D, K, generator=g).bfloat16()
    state = torch.randn(len(lens) + 2, K - 1, D, generator=g).bfloat16()
    cu = torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32)
    idx = torch.randperm(len(lens) + 2, generator=g)[:len(lens)].to(torch.int32)
    has = torch.tensor([i % 3 != 1 for i in range(len(lens))])
    ref_state = state.clone()
    y_ref = R.short_conv(bcx, w, ref_state, cu_seqlens=cu, state_indices=idx, has_initial_state=has)
    st = state.to(dev)
    y = L.short_conv(bcx.to(dev), w.to(dev), st, cu_seqlens=cu.to(dev), state_indices=idx.to(dev),
                     has_initial_state=has.to(dev))
    assert_close(y.cpu(), y_ref, "y")
    assert_equal(st.cpu(), ref_state, "conv_state")
