"""CpuGraph: a captured chain of every op, replayed with new inputs, equals the eager calls bit for bit on each
CPU kernel table; index values are checked at every replay; what cannot be replayed is refused at capture."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import ops

from conftest import assert_equal

D, HQ, HKV, HD, S, LMAX = 96, 4, 2, 32, 5, 16


def decode_step(x, s):
    """One decode step of a conv layer then an attention layer, every op once (state and caches in s)."""
    n, res = L.rms_norm(x, s["norm"], 1e-5, residual=s["residual"])
    bcx = L.linear(n, s["in_proj"])
    y = L.short_conv_update(bcx, s["conv_w"], s["conv_state"], state_indices=s["rows"])
    q, k, v = L.linear(y, s["qkv"]).split([HQ * HD, HKV * HD, HKV * HD], dim=-1)
    B = x.shape[0]
    q = L.qk_norm_rope_append(q.view(B, HQ, HD), k.view(B, HKV, HD), v.view(B, HKV, HD), s["qn"], s["kn"],
                              s["positions"], s["k_cache"], s["v_cache"], s["slots"])
    o = L.gqa_decode(q, s["k_cache"], s["v_cache"], s["seq_lens"], block_table=s["block_table"])
    return L.linear(o.view(B, -1), s["w3"], gate_weight=s["w1"])


def make_state(B, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, scale=1.0: (torch.randn(*shape, generator=g) * scale).to(dtype)
    rows = torch.randperm(S, generator=g)[:B].to(torch.int32)
    return dict(norm=r(D), residual=r(B, D), in_proj=r(3 * D, D, scale=0.1), conv_w=r(D, 3),
                conv_state=r(S, 2, D), rows=rows, qkv=r((HQ + 2 * HKV) * HD, D, scale=0.1), qn=r(HD), kn=r(HD),
                positions=torch.zeros(B, dtype=torch.int32), k_cache=r(S, LMAX, HKV, HD),
                v_cache=r(S, LMAX, HKV, HD), slots=torch.zeros(B, dtype=torch.int32),
                seq_lens=torch.zeros(B, dtype=torch.int32), block_table=rows[:, None].clone(),
                w1=r(40, HQ * HD, scale=0.1), w3=r(40, HQ * HD, scale=0.1))


def clone(s):
    return {k: v.clone() for k, v in s.items()}


@pytest.mark.parametrize("isa", L.available_isas())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("B", [1, 3])
def test_replay_equals_eager_calls(isa, dtype, B):
    static = make_state(B, dtype, seed=B)
    eager = clone(static)
    x = torch.empty(B, D, dtype=dtype)
    graph = L.CpuGraph()
    with ops.cpu_isa(isa), torch.inference_mode():
        with graph.capture():
            out = decode_step(x, static)
        assert len(graph) == 7
        g = torch.Generator().manual_seed(0)
        for step in range(6):   # new tokens at new positions; the states and caches advance in place
            x_new = torch.randn(B, D, generator=g).to(dtype)
            for s in (static, eager):
                s["positions"].fill_(step)
                s["slots"].copy_(s["rows"] * LMAX + step)
                s["seq_lens"].fill_(step + 1)
            x.copy_(x_new)
            graph.replay()
            want = decode_step(x_new, eager)
            assert_equal(out, want, f"step {step}")
            for name in ("conv_state", "k_cache", "v_cache"):
                assert_equal(static[name], eager[name], f"{name}, step {step}")


def test_replay_uses_the_kernel_table_and_threads_of_the_capture():
    x, w = torch.randn(5, 300).bfloat16(), torch.randn(70, 300).bfloat16()
    graph = L.CpuGraph()
    with ops.cpu_isa("portable"), torch.inference_mode(), graph.capture():
        y = L.linear(x, w)
    graph.replay()   # outside the context: still the portable table
    with ops.cpu_isa("portable"):
        assert_equal(y, L.linear(x, w), "portable")


def test_profile_replays_and_times_each_launch():
    static = make_state(2, torch.float32, seed=1)
    eager = clone(static)
    x = torch.randn(2, D)
    graph = L.CpuGraph()
    with pytest.raises(RuntimeError, match="nothing captured"):
        graph.profile()
    with torch.inference_mode(), graph.capture():
        out = decode_step(x, static)
    timings = graph.profile()
    assert [op for op, _ in timings] == ["rms_norm", "linear", "short_conv_update", "linear",
                                         "qk_norm_rope_append", "gqa_decode", "linear"]
    assert all(0 < t < 10 for _, t in timings)
    assert_equal(out, decode_step(x, eager), "profiled replay")


def test_bad_index_values_raise_at_replay():
    s = make_state(2, torch.float32, seed=0)
    x = torch.randn(2, D)
    graph = L.CpuGraph()
    with torch.inference_mode():
        with graph.capture():
            decode_step(x, s)
        s["seq_lens"].fill_(1)
        graph.replay()
        s["rows"][1] = S   # one past the last conv state slot
        with pytest.raises(ValueError, match="state"):
            graph.replay()
        s["rows"][1] = 0
        s["seq_lens"][0] = LMAX + 1
        with pytest.raises(ValueError):
            graph.replay()


def test_capture_refuses_what_it_cannot_replay():
    x, w = torch.randn(2, 8), torch.randn(4, 8)
    graph = L.CpuGraph()
    with pytest.raises(RuntimeError, match="nothing captured"):
        graph.replay()
    with pytest.raises(RuntimeError, match="aten.add"):
        with graph.capture():
            L.linear(x, w) + 1
    with pytest.raises(RuntimeError, match="already captured"):
        with graph.capture():
            pass
    with pytest.raises(RuntimeError, match="not inside another capture"):
        with L.CpuGraph().capture(), L.CpuGraph().capture():
            pass
    with pytest.raises(RuntimeError, match="not inside another capture"):
        with ops.launcher(lambda *a: None), L.CpuGraph().capture():
            pass
    args = (torch.randn(1, 2, 96), torch.randn(1, 1, 96), torch.randn(1, 1, 96), torch.ones(96), torch.ones(96),
            torch.zeros(1, dtype=torch.int32), torch.zeros(1, 4, 1, 96), torch.zeros(1, 4, 1, 96),
            torch.zeros(1, dtype=torch.int32))
    graph = L.CpuGraph()
    with graph.capture():   # the first qk_norm_rope_append of a head size computes its RoPE table: allowed
        L.qk_norm_rope_append(*args, rope_theta=1234.5)
    assert len(graph) == 1


PER_STEP = ("residual", "rows", "positions", "slots", "seq_lens", "block_table")


def graphed_step(s):
    """decode_step as a function of the per-step tensors; weights, conv states and caches from s."""
    return lambda x, *per_step: decode_step(x, {**s, **dict(zip(PER_STEP, per_step))})


def step_inputs(B, dtype, step, seed):
    g = torch.Generator().manual_seed(seed)
    rows = torch.randperm(S, generator=g)[:B].to(torch.int32)
    at = lambda position: torch.full((B,), position, dtype=torch.int32)
    return (torch.randn(B, D, generator=g).to(dtype), torch.randn(B, D, generator=g).to(dtype), rows, at(step),
            rows * LMAX + step, at(step + 1), rows[:, None].clone())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_graphed_captures_once_per_batch_size_and_replays_as_eager(dtype):
    static = make_state(S, dtype, seed=4)
    eager = clone(static)
    graphed, ref = L.Graphed(graphed_step(static)), graphed_step(eager)
    outputs = {}
    with torch.inference_mode():
        for step, B in enumerate([3, 1, 3, 2, 1]):
            inputs = step_inputs(B, dtype, step, seed=step)
            out = graphed(*inputs)
            assert_equal(out, ref(*inputs), f"step {step}, batch {B}")
            for name in ("conv_state", "k_cache", "v_cache"):
                assert_equal(static[name], eager[name], f"{name}, step {step}")
            assert outputs.setdefault(B, out) is out   # the capture's output, rewritten by each replay
    graphs = graphed.graphs
    assert sorted(shapes[0][0] for shapes in graphs) == [1, 2, 3]
    assert all(len(graph) == 7 for graph in graphs.values())
    graphed.reset()
    assert graphed.graphs == {}
    with torch.inference_mode():
        graphed(*step_inputs(2, dtype, 5, seed=9))
    assert [shapes[0][0] for shapes in graphed.graphs] == [2]


def test_graphed_runs_eagerly_what_it_cannot_capture():
    calls = []

    def fn(bcx, w, state):
        calls.append(1)
        return L.short_conv_update(bcx, w, state) * 2   # a torch op: the capture raises CaptureError

    bcx, w, state = torch.randn(2, 3 * D), torch.randn(D, 3), torch.randn(2, 2, D)
    want_state = state.clone()
    want = fn(bcx, w, want_state)
    calls.clear()
    graphed = L.Graphed(fn)
    with torch.inference_mode():
        assert_equal(graphed(bcx, w, state), want, "eager fallback")
        assert_equal(state, want_state, "the failed capture ran nothing: one state update")
        assert len(calls) == 2   # the capture attempt and the eager call
        graphed(bcx, w, state.clone())
        assert len(calls) == 3   # the key is remembered as eager: no second capture
        assert graphed.graphs == {}
        launched = []
        with ops.launcher(lambda op, params, tensors: launched.append(op)):
            L.Graphed(lambda x, w: L.linear(x, w))(torch.randn(2, D), torch.randn(4, D))
        assert launched == ["linear"]   # inside a launcher() block: eager, launches sent there
    with pytest.raises(L.CaptureError, match="aten.mul"), L.CpuGraph().capture():
        fn(bcx, w, state)


def test_a_failed_capture_never_replays_and_a_graph_never_replays_inside_its_capture():
    """A capture that raises has recorded part of a step: replay() and profile() refuse it instead of running
    that part. Inside its own capture a graph has recorded part of a step too."""
    x, w, bad = torch.randn(2, 8), torch.randn(4, 8), torch.randn(4, 9)
    graph = L.CpuGraph()
    with pytest.raises(ValueError, match="linear: weight"):
        with graph.capture():
            L.linear(x, w)      # recorded
            L.linear(x, bad)    # raises: bad shape
    assert len(graph) == 1
    for method in (graph.replay, graph.profile):
        with pytest.raises(RuntimeError, match="the capture raised"):
            method()
    inner = L.CpuGraph()
    with inner.capture():
        L.linear(x, w)
        with pytest.raises(RuntimeError, match="not inside this graph's own capture"):
            inner.replay()
    inner.replay()


MOVES = {
    "resize": lambda state, y: state.resize_(64, 2, D),                  # a bigger storage: the old one is freed
    "set_": lambda state, y: state.set_(torch.randn(4, 2, D)),           # re-pointed at another storage
    "storage resize": lambda state, y: state.untyped_storage().resize_(0),
    "output resize": lambda state, y: y.resize_(1000, D),                # an output of the capture
}


@pytest.mark.parametrize("move", MOVES)
def test_replay_refuses_a_tensor_that_moved(move):
    """A launch writes through the pointers it recorded: once a tensor it points into was resized, re-pointed or
    had its storage resized, replay() refuses (the pointer may reach freed memory) and writes nothing."""
    bcx, w, state = torch.randn(2, 3 * D), torch.randn(D, 3), torch.randn(4, 2, D)
    graph = L.CpuGraph()
    with graph.capture():
        y = L.short_conv_update(bcx, w, state)
    graph.replay()
    MOVES[move](state, y)
    snapshot = lambda: [t.untyped_storage().tolist() for t in (state, y)]   # the bytes, even where not a tensor
    before = snapshot()
    with pytest.raises(RuntimeError, match="short_conv_update's (state|y) was resized, re-pointed"):
        graph.replay()
    assert snapshot() == before


def test_filled_allocations_inside_a_capture():
    """torch.zeros, ones and full are allocations: allowed inside a capture, their value filled once. A launch
    that would write one in place (so that a replay starts from what the last one left) is refused."""
    w, state = torch.randn(D, 3), torch.randn(4, 2, D)
    graph = L.CpuGraph()
    with graph.capture():
        bcx = torch.ones(2, 3 * D)
        y = L.short_conv_update(bcx, w, state, state_indices=torch.full((2,), -1, dtype=torch.int32))
    graph.replay()
    assert torch.equal(y, torch.zeros(2, D))
    bcx = torch.randn(2, 3 * D)
    with pytest.raises(L.CaptureError, match="short_conv_update writes state, which torch.zeros/ones/full"):
        with L.CpuGraph().capture():
            L.short_conv_update(bcx, w, torch.zeros(4, 2, D))


def test_capture_does_not_import_torch_compile_machinery():
    # A TorchDispatchMode wraps its __torch_dispatch__ in torch._dynamo.disable by default, whose first call
    # imports torch._dynamo and all it needs: the capture's op check must not pay that in a generate
    # process that never compiles.
    import subprocess
    import sys

    code = ("import sys, torch, lfm25_kernels as L\n"
            "x = torch.randn(2, 64); w = torch.ones(64); g = L.CpuGraph()\n"
            "with L.ops.cpu_isa('portable'), torch.inference_mode(), g.capture():\n"
            "    y = L.ops.rms_norm(x, w, 1e-5)\n"
            "g.replay()\n"
            "print(len(g), 'torch._dynamo' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False"]
