"""Hypothesis over bad arguments of every op in the op list: one argument of a valid call is made bad in a way
no contract allows (not a tensor, float64, a dimension more, a strided last dimension, an expanded view of a
tensor written in place, an index value out of range, a slot given twice, a scalar out of range), on a CPU
table drawn too. The call must raise TypeError or ValueError naming the op and the argument, and leave every
byte of the states and caches as it was."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, strategies as st

import lfm25_kernels as L
from lfm25_kernels import _C

i32 = lambda *v: torch.tensor(v, dtype=torch.int32)
D, K = 16, 3


def short_conv():
    return dict(bcx=torch.randn(7, 3 * D), weight=torch.randn(D, K), conv_state=torch.randn(4, K - 1, D),
                cu_seqlens=i32(0, 3, 7), state_indices=i32(2, 0), has_initial_state=torch.tensor([True, False]))


def short_conv_update():
    return dict(bcx=torch.randn(3, 3 * D), weight=torch.randn(D, 1, K), conv_state=torch.randn(4, K - 1, D),
                state_indices=i32(1, -1, 3))


def qk_norm_rope_append():
    return dict(q=torch.randn(3, 4, 32), k=torch.randn(3, 2, 32), v=torch.randn(3, 2, 32), q_norm_weight=torch.ones(32),
                k_norm_weight=torch.ones(32), positions=i32(0, 1, 2), k_cache=torch.zeros(2, 8, 2, 32),
                v_cache=torch.zeros(2, 8, 2, 32), slot_mapping=i32(0, 9, -1), eps=1e-5, rope_theta=1e4)


def gqa_decode():
    return dict(q=torch.randn(2, 4, 64), k_cache=torch.randn(4, 16, 2, 64), v_cache=torch.randn(4, 16, 2, 64),
                seq_lens=i32(3, 20), block_table=i32(1, 0, 2, 3).view(2, 2), scale=0.125)


def rms_norm():
    return dict(x=torch.randn(4, D), weight=torch.ones(D), eps=1e-5, residual=torch.randn(4, D))


def linear():
    return dict(x=torch.randn(3, D), weight=torch.randn(5, D), gate_weight=torch.randn(5, D))


def linear_q():
    return dict(x=torch.randn(3, 40), weight=L.quantize_weight(torch.randn(5, 40), torch.randn(5, 40), format="q4"))


CALLS = {f.__name__: f for f in (short_conv, short_conv_update, qk_norm_rope_append, gqa_decode, rms_norm, linear,
                                 linear_q)}
WRITTEN = ("conv_state", "k_cache", "v_cache")
ANY_NDIM = {("rms_norm", "x"), ("rms_norm", "residual"), ("linear", "x"), ("linear_q", "x")}   # [..., D]: a leading dim is valid
SCALARS = {"eps": [-1e-3, float("nan"), "1e-5", True], "rope_theta": [0.0, -1.0, float("inf"), None],
           "scale": [float("nan"), "0.1", float("inf")]}
# index values no call allows, per index argument
BAD_VALUES = {"state_indices": [-2, 10**6], "cu_seqlens": [-1, 10**6], "positions": [-1, -(2**31)],
              "slot_mapping": [-2, 10**6], "seq_lens": [-1, 17 * 4], "block_table": [-1, 4]}


def test_every_op_is_fuzzed():
    assert set(CALLS) == set(_C.ops), "tests/test_fuzz.py needs a valid call of every op in the op list"


def strided(t):
    """t with its last dimension at stride 2 (same values)."""
    wide = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
    wide[..., ::2] = t
    return wide[..., ::2]


def bad_versions(op: str, name: str, value):
    """(description, bad value) pairs for one argument of op."""
    if name in SCALARS:
        return [(f"{name}={v!r}", v) for v in SCALARS[name]]
    if isinstance(value, L.QuantizedWeight):
        return [("the weight it holds, as a tensor", value.dequantize()[0]), ("a string", "weight")]
    out = [("not a tensor", value.tolist()), ("a string", "tensor"), ("float64", value.to(torch.float64))]
    if (op, name) not in ANY_NDIM:
        out.append(("a dimension more", value.unsqueeze(0)))
    if value.shape[-1] > 1:
        out.append(("a strided last dimension", strided(value)))
    if name in WRITTEN:
        out.append(("an expanded view", value[:1].expand(value.shape)))
    for v in BAD_VALUES.get(name, []):
        bad = value.clone()
        bad.view(-1)[0] = v
        out.append((f"{name}[0] = {v}", bad))
    if name == "state_indices":
        bad = value.clone()
        bad[-1] = bad[0] = 2
        out.append(("a slot twice", bad))
    return out


@pytest.mark.parametrize("op", sorted(CALLS))
@given(data=st.data())
def test_a_bad_argument_raises_naming_op_and_argument_and_writes_nothing(op, data):
    args = CALLS[op]()
    fn = getattr(L, op)
    fn(**args)   # the valid call
    name = data.draw(st.sampled_from(sorted(args)), label="argument")
    what, bad = data.draw(st.sampled_from(bad_versions(op, name, args[name])), label="bad version")
    isa = data.draw(st.sampled_from(L.available_isas()), label="table")
    written = {k: (args[k], args[k].clone()) for k in WRITTEN if k in args}   # the tensor and its bytes before
    args[name] = bad
    with L.cpu_isa(isa), pytest.raises((TypeError, ValueError)) as e:
        fn(**args)
    message = str(e.value)
    assert message.startswith(f"{op}: ") and name in message, f"{name} made {what}: {message}"
    for k, (t, before) in written.items():
        assert t.view(torch.uint8).equal(before.view(torch.uint8)), f"{k} changed by a call that raised ({name} " \
                                                                     f"made {what})"
