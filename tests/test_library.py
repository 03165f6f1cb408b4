"""torch.library registration: opcheck of every custom op (schema, fake implementation, mutation
annotations), torch.compile through the public functions without graph breaks, and each call checking its
arguments once, the custom ops never calling back into the public functions."""
from __future__ import annotations

import collections
import importlib

import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import reference as R

from conftest import assert_close

i32 = lambda *v: torch.tensor(v, dtype=torch.int32)


def samples():
    D, K = 16, 3
    yield "short_conv", (torch.randn(7, 3 * D), torch.randn(D, K), torch.randn(2, K - 1, D), i32(0, 3, 7), i32(1, 0),
                         torch.tensor([True, False]))
    yield "short_conv", (torch.randn(2, 5, 3 * D).bfloat16(), torch.randn(D, K), None, None, None, None)
    yield "short_conv_update", (torch.randn(2, 3 * D), torch.randn(D, K), torch.randn(3, K - 1, D), i32(2, -1))
    yield "qk_norm_rope_append", (torch.randn(3, 4, 32), torch.randn(3, 2, 32), torch.randn(3, 2, 32),
                                  torch.rand(32), torch.rand(32), i32(5, 6, 7), torch.zeros(2, 4, 2, 32),
                                  torch.zeros(2, 4, 2, 32), i32(1, 6, -1), 1e-5, 1e6)
    yield "gqa_decode", (torch.randn(2, 4, 64), torch.randn(3, 8, 2, 64), torch.randn(3, 8, 2, 64), i32(5, 9),
                         i32(2, 0, 1, 0).view(2, 2), 0.125)
    yield "gqa_decode", (torch.randn(2, 4, 64), torch.randn(2, 8, 2, 64), torch.randn(2, 8, 2, 64), i32(8, 0), None,
                         0.125)
    yield "rms_norm", (torch.randn(3, 40), torch.rand(40), 1e-5)
    yield "add_rms_norm", (torch.randn(3, 40), torch.rand(40), 1e-5, torch.randn(3, 40))
    yield "linear", (torch.randn(3, 40), torch.randn(24, 40), None)
    yield "linear", (torch.randn(2, 1, 40).bfloat16(), torch.randn(24, 40).bfloat16(), torch.randn(24, 40).bfloat16())


@pytest.mark.parametrize("name,args", list(samples()), ids=[n for n, _ in samples()])
def test_opcheck(name, args):
    # aot_dispatch_dynamic needs autograd support, which inference kernels do not register
    torch.library.opcheck(getattr(torch.ops.lfm25, name).default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_static"))


def test_torch_compile_calls_the_ops_without_graph_breaks():
    D, K = 32, 3

    def layer(bcx, w, state, q, kc, vc, lens, x, nw):
        y = L.short_conv_update(bcx, w, state)
        o = L.gqa_decode(q, kc, vc, lens)
        n, h = L.rms_norm(x, nw, 1e-5, residual=x)
        return y, o, n, h

    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    args = [torch.randn(2, 3 * D), torch.randn(D, K), torch.randn(2, K - 1, D), torch.randn(2, 4, 64),
            torch.randn(2, 16, 2, 64), torch.randn(2, 16, 2, 64), i32(16, 3), torch.randn(2, D), torch.rand(D)]
    ref_args = [a.clone() for a in args]
    got = compiled(*args)
    want = (R.short_conv_update(*ref_args[:3]), R.gqa_decode(*ref_args[3:7]), *R.rms_norm(ref_args[7], ref_args[8],
                                                                                           1e-5, ref_args[7]))
    for g, w in zip(got, want):
        assert_close(g, w, "compiled output")
    assert torch.equal(args[2], ref_args[2]), "conv_state mutated differently under torch.compile"


# custom op -> the module (lfm25_kernels/ops/<module>.py) and public function that hold it
MODULES = {"short_conv": "short_conv", "short_conv_update": "short_conv_update",
           "qk_norm_rope_append": "qk_norm_rope_append", "gqa_decode": "gqa_decode", "rms_norm": "rms_norm",
           "add_rms_norm": "rms_norm", "linear": "linear"}
PUBLIC = {name: getattr(L, name) for name in MODULES.values()}   # as imported, before the fixture patches them


@pytest.fixture
def checks(monkeypatch):
    """Counts each op module's _check calls; its public function, as seen from the package and from its own
    module, raises (a custom op calling it would fail)."""
    counts = collections.Counter()

    def refuse(*args, **kwargs):
        raise AssertionError("a custom op called back into a public function")

    for name in set(MODULES.values()):
        module = importlib.import_module(f"lfm25_kernels.ops.{name}")
        check = module._check
        monkeypatch.setattr(module, "_check", lambda *a, _name=name, _check=check: (counts.update([_name]),
                                                                                     _check(*a))[1])
        for namespace in (module, L.ops, L):
            monkeypatch.setattr(namespace, name, refuse)
    return counts


@pytest.mark.parametrize("name,args", list(samples()), ids=[n for n, _ in samples()])
def test_custom_ops_check_once_and_do_not_call_the_public_functions(checks, name, args):
    getattr(torch.ops.lfm25, name)(*args)
    assert checks == {MODULES[name]: 1}


def test_eager_and_compiled_calls_check_once(checks):
    x, w = torch.randn(2, 40), torch.rand(40)
    PUBLIC["rms_norm"](x, w, 1e-5, residual=x)
    assert checks == {"rms_norm": 1}

    def layer(q, kc, vc, lens):
        return PUBLIC["gqa_decode"](q, kc, vc, lens)

    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    args = (torch.randn(2, 4, 64), torch.randn(2, 16, 2, 64), torch.randn(2, 16, 2, 64), i32(16, 3))
    compiled(*args)                     # traced: the fake runs the checks on fake tensors
    checks.clear()
    assert_close(compiled(*args), R.gqa_decode(*args), "compiled gqa_decode")
    assert checks == {"gqa_decode": 1}
