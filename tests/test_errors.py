"""Every bad input of each op raises the documented exception, naming the argument, and leaves the
in-place tensors (conv state, KV caches) untouched."""
from __future__ import annotations

import pytest
import torch

import lfm25_kernels as L

from backends import BACKENDS, to

D, K = 8, 3
i32 = lambda *v: torch.tensor(v, dtype=torch.int32)


def conv_args():
    return dict(bcx=torch.randn(2, 5, 3 * D), weight=torch.randn(D, K), conv_state=torch.randn(3, K - 1, D))


def packed_args():
    return dict(bcx=torch.randn(6, 3 * D), weight=torch.randn(D, K), conv_state=torch.randn(3, K - 1, D),
                cu_seqlens=i32(0, 2, 6), state_indices=i32(0, 2), has_initial_state=torch.tensor([True, False]))


def update_args():
    return dict(bcx=torch.randn(2, 3 * D), weight=torch.randn(D, 1, K), conv_state=torch.randn(3, K - 1, D),
                state_indices=i32(1, 0))


def append_args():
    n, hq, hkv, d = 3, 4, 2, 32
    return dict(q=torch.randn(n, hq, d), k=torch.randn(n, hkv, d), v=torch.randn(n, hkv, d),
                q_norm_weight=torch.ones(d), k_norm_weight=torch.ones(d), positions=i32(0, 1, 2),
                k_cache=torch.zeros(2, 8, hkv, d), v_cache=torch.zeros(2, 8, hkv, d), slot_mapping=i32(0, 9, -1))


def decode_args():
    return dict(q=torch.randn(2, 4, 64), k_cache=torch.randn(4, 16, 2, 64), v_cache=torch.randn(4, 16, 2, 64),
                seq_lens=i32(3, 20), block_table=i32(0, 1, 2, 3).view(2, 2))


def norm_args():
    return dict(x=torch.randn(4, D), weight=torch.ones(D), eps=1e-5, residual=torch.randn(4, D))


def linear_args():
    return dict(x=torch.randn(3, D), weight=torch.randn(5, D), gate_weight=torch.randn(5, D))


OPS = {
    "short_conv": (L.short_conv, conv_args),
    "short_conv_packed": (L.short_conv, packed_args),
    "short_conv_update": (L.short_conv_update, update_args),
    "qk_norm_rope_append": (L.qk_norm_rope_append, append_args),
    "gqa_decode": (L.gqa_decode, decode_args),
    "rms_norm": (L.rms_norm, norm_args),
    "linear": (L.linear, linear_args),
}

# (op, argument, bad value as a function of the good arguments, exception, text the message must contain)
BAD = [
    ("short_conv", "bcx", lambda a: a["bcx"].numpy(), TypeError, "bcx must be a torch.Tensor"),
    ("short_conv", "bcx", lambda a: a["bcx"].to(torch.float64), TypeError, "bcx must be of dtype"),
    ("short_conv", "bcx", lambda a: a["bcx"][0], ValueError, "bcx must be a 3-D tensor"),
    ("short_conv", "bcx", lambda a: a["bcx"][..., :-1], ValueError, "bcx must be of width 3*D"),
    ("short_conv", "bcx", lambda a: a["bcx"].transpose(1, 2).contiguous().transpose(1, 2), ValueError,
     "bcx must be contiguous in its last dimension"),
    ("short_conv", "weight", lambda a: a["weight"][:-1], ValueError, "weight must be of shape"),
    ("short_conv", "weight", lambda a: torch.randn(D, 5), ValueError, "weight must be of width K in 2..4"),
    ("short_conv", "weight", lambda a: a["weight"].half(), TypeError, "weight must be of dtype"),
    ("short_conv", "weight", lambda a: torch.randn(D, 2, K), ValueError, "weight must be [D, K] or [D, 1, K]"),
    ("short_conv", "conv_state", lambda a: a["conv_state"][:, :1], ValueError, "conv_state must be of shape"),
    ("short_conv", "conv_state", lambda a: a["conv_state"][:1], ValueError, "conv_state must be of at least 2 slots"),
    ("short_conv", "conv_state", lambda a: a["conv_state"].double(), TypeError, "conv_state must be of dtype"),
    ("short_conv", "state_indices", lambda a: i32(0), ValueError, "state_indices must be of shape [2]"),
    ("short_conv", "state_indices", lambda a: torch.tensor([0, 1]), TypeError, "state_indices must be of dtype torch.int32"),
    ("short_conv", "state_indices", lambda a: i32(0, 3), ValueError, "state_indices holds a value outside"),
    ("short_conv", "state_indices", lambda a: i32(-2, 0), ValueError, "state_indices holds a value outside"),
    ("short_conv", "has_initial_state", lambda a: torch.tensor([1, 0], dtype=torch.int32), TypeError,
     "has_initial_state must be of dtype torch.bool"),
    ("short_conv_packed", "bcx", lambda a: a["bcx"].unsqueeze(0), ValueError, "bcx must be a 2-D tensor"),
    ("short_conv_packed", "cu_seqlens", lambda a: i32(0, 4, 2), ValueError, "cu_seqlens must start at 0, never decrease"),
    ("short_conv_packed", "cu_seqlens", lambda a: i32(0, 2, 7), ValueError, "cu_seqlens must start at 0"),
    ("short_conv_packed", "cu_seqlens", lambda a: i32(1, 2, 6), ValueError, "cu_seqlens must start at 0"),
    ("short_conv_packed", "cu_seqlens", lambda a: i32(0, 2, 4, 6), ValueError, "state_indices must be of shape [3]"),
    ("short_conv_update", "bcx", lambda a: a["bcx"].unsqueeze(1), ValueError, "bcx must be a 2-D tensor"),
    ("short_conv_update", "conv_state", lambda a: a["conv_state"].half(), TypeError, "conv_state must be of dtype"),
    ("short_conv_update", "state_indices", lambda a: i32(1, 5), ValueError, "state_indices holds a value outside"),
    ("qk_norm_rope_append", "q", lambda a: torch.randn(3, 4, 48), ValueError, "q must be of head_dim in"),
    ("qk_norm_rope_append", "k", lambda a: torch.randn(3, 3, 32), ValueError, "q must be of a head count that is a multiple of the 3 KV heads"),
    ("qk_norm_rope_append", "v", lambda a: torch.randn(2, 2, 32), ValueError, "v must be of shape [3, 2, 32]"),
    ("qk_norm_rope_append", "k", lambda a: a["k"].half(), TypeError, "k must be of dtype torch.float32"),
    ("qk_norm_rope_append", "q_norm_weight", lambda a: torch.ones(16), ValueError, "q_norm_weight must be of shape [32]"),
    ("qk_norm_rope_append", "positions", lambda a: i32(0, -1, 2), ValueError, "positions holds a negative value"),
    ("qk_norm_rope_append", "slot_mapping", lambda a: i32(0, 16, 1), ValueError, "slot_mapping holds a value outside"),
    ("qk_norm_rope_append", "slot_mapping", lambda a: i32(0, 1), ValueError, "slot_mapping must be of shape [3]"),
    ("qk_norm_rope_append", "v_cache", lambda a: torch.zeros(2, 4, 2, 32), ValueError, "v_cache must be of shape"),
    ("qk_norm_rope_append", "k_cache", lambda a: torch.zeros(2, 8, 3, 32), ValueError, "k_cache must be of shape"),
    ("qk_norm_rope_append", "k_cache", lambda a: a["k_cache"].double(), TypeError,
     "qk_norm_rope_append: k_cache must be of dtype torch.float32 or torch.float16 or torch.bfloat16 for "
     "torch.float32 activations"),
    ("qk_norm_rope_append", "v_cache", lambda a: a["v_cache"].half(), TypeError,
     "qk_norm_rope_append: v_cache must be of dtype torch.float32"),
    ("gqa_decode", "q", lambda a: torch.randn(2, 3, 64), ValueError, "q must be of a head count that is a multiple"),
    ("gqa_decode", "q", lambda a: torch.randn(2, 4, 80), ValueError, "q must be of head_dim in"),
    ("gqa_decode", "seq_lens", lambda a: i32(3, 33), ValueError, "seq_lens holds a value outside"),
    ("gqa_decode", "seq_lens", lambda a: i32(-1, 3), ValueError, "seq_lens holds a value outside"),
    ("gqa_decode", "block_table", lambda a: i32(0, 1, 2, 7).view(2, 2), ValueError, "block_table holds a block index"),
    ("gqa_decode", "block_table", lambda a: i32(0, 1).view(1, 2), ValueError, "block_table must be of shape [2, *]"),
    ("gqa_decode", "v_cache", lambda a: a["v_cache"].half(), TypeError, "v_cache must be of dtype"),
    ("gqa_decode", "q", lambda a: a["q"].bfloat16(), TypeError,
     "gqa_decode: k_cache must be of dtype torch.bfloat16 for torch.bfloat16 activations"),
    ("gqa_decode", "k_cache", lambda a: a["k_cache"].bfloat16(), TypeError,
     "gqa_decode: v_cache must be of dtype torch.bfloat16"),
    ("rms_norm", "weight", lambda a: torch.ones(D + 1), ValueError, "weight must be of shape"),
    ("rms_norm", "residual", lambda a: torch.randn(4, D + 1), ValueError, "residual must be of shape"),
    ("rms_norm", "x", lambda a: a["x"].to(torch.int32), TypeError, "x must be of dtype"),
    ("rms_norm", "eps", lambda a: -1e-6, ValueError, "rms_norm: eps must be a finite number >= 0, got -1e-06"),
    ("rms_norm", "eps", lambda a: "1e-5", TypeError, "rms_norm: eps must be a float, got str"),
    ("qk_norm_rope_append", "eps", lambda a: -1.0, ValueError, "qk_norm_rope_append: eps must be a finite number >= 0"),
    ("qk_norm_rope_append", "rope_theta", lambda a: 0.0, ValueError,
     "qk_norm_rope_append: rope_theta must be a finite number > 0, got 0.0"),
    ("linear", "x", lambda a: a["x"].to(torch.float64), TypeError, "x must be of dtype"),
    ("linear", "weight", lambda a: torch.randn(5, D + 1), ValueError, "weight must be of shape [*, 8]"),
    ("linear", "weight", lambda a: torch.randn(5, D).half(), TypeError, "weight must be of dtype torch.float32"),
    ("linear", "weight", lambda a: torch.randn(D, 5).T, ValueError, "weight must"),
    ("linear", "gate_weight", lambda a: torch.randn(4, D), ValueError, "gate_weight must be of shape [5, 8]"),
]

# messages raised by the CPU kernels' index checks (lfm25::status_message), not by the Python argument checks
VALUE_CHECKS = {"state_indices holds a value outside", "cu_seqlens must start at 0, never decrease",
                "cu_seqlens must start at 0", "positions holds a negative value", "slot_mapping holds a value outside",
                "seq_lens holds a value outside", "block_table holds a block index"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op,arg,bad,exc,text", BAD, ids=[f"{b[0]}-{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_raises(backend, op, arg, bad, exc, text):
    fn, make = OPS[op]
    args = make()
    args[arg] = bad(args)
    args = {k: to(backend, v) if isinstance(v, torch.Tensor) else v for k, v in args.items()}
    before = {k: v.clone() for k, v in args.items() if k in ("conv_state", "k_cache", "v_cache")}
    if backend.cuda and text in VALUE_CHECKS:
        # NOTE: the CUDA path never reads index values on the host (no synchronisation); the kernels skip an
        # out-of-range entry instead. The call must complete without a fault (on cuda-cpu every buffer sits
        # between guard pages, so an access outside it aborts the runner).
        with backend.context():
            fn(**args)
        if backend.device == "cuda":
            torch.cuda.synchronize()
        return
    with backend.context(), pytest.raises(exc, match=text.replace("[", r"\[").replace("*", r"\*")):
        fn(**args)
    for k, v in before.items():
        assert torch.equal(args[k], v), f"{k} changed by a call that raised"


@pytest.mark.parametrize("op", OPS)
def test_good_arguments_of_error_tests_run(op):
    """The baselines above are valid, so each error test fails for the one argument it changes."""
    fn, make = OPS[op]
    fn(**make())


def test_unknown_isa_is_rejected():
    with pytest.raises(ValueError, match="cpu_isa: name must be one of"):
        with L.cpu_isa("sse9"):
            pass


def test_packed_weight_data_must_match_its_sizes():
    """PackedWeight and the linear_packed custom op take data, N, K and gated from the caller: the kernel reads
    the whole layout those sizes imply, so data of another shape is refused before any launch, on every table."""
    N, Kp = 70, 40
    good = L.pack_weight(torch.randn(N, Kp).to(torch.bfloat16), layout="tiles").data
    x = torch.randn(2, Kp).to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"PackedWeight: data must be of shape \[3, 2, 4, 16, 32\]"):
        L.PackedWeight(good, 2 * 64 + 1, Kp, False)          # one block more than data holds
    with pytest.raises(ValueError, match=r"PackedWeight: data must be of shape \[3, 2, 4, 16, 32\]"):
        L.PackedWeight(good, N, Kp, True)                     # gated: blocks of 32 rows
    with pytest.raises(ValueError, match=r"linear: data must be of shape \[2, 3, 4, 16, 32\]"):
        torch.ops.lfm25.linear_packed(x.new_zeros(2, 65), good, N, 65, False)
    with pytest.raises(ValueError, match="linear: out_features must be non-negative"):
        torch.ops.lfm25.linear_packed(x, good, -1, Kp, False)
    with pytest.raises(TypeError, match="PackedWeight: data must be of dtype torch.bfloat16"):
        L.PackedWeight(good.float(), N, Kp, False)
    with pytest.raises(ValueError, match="PackedWeight: data must be contiguous"):
        L.PackedWeight(good.transpose(0, 1).contiguous().transpose(0, 1), N, Kp, False)
    with pytest.raises(TypeError, match="PackedWeight: gated must be a bool"):
        L.PackedWeight(good, N, Kp, 1)
    assert L.PackedWeight(good, N, Kp, False).shape == (N, Kp)
    pairs = L.pack_weight(torch.randn(N, Kp + 1).to(torch.bfloat16), layout="pairs").data
    with pytest.raises(ValueError, match=r"PackedWeight: data must be of shape \[3, 21, 64, 2\]"):
        L.PackedWeight(pairs, 2 * 64 + 1, Kp + 1, False, "pairs")
    with pytest.raises(ValueError, match=r"linear: data must be of shape \[2, 20, 64, 2\]"):
        torch.ops.lfm25.linear_packed(x, pairs, N, Kp, False, "pairs")   # K 40 is 20 pairs, not 21
    assert L.PackedWeight(pairs, N, Kp + 1, False, "pairs").shape == (N, Kp + 1)


def test_written_tensors_must_not_share_memory():
    """conv_state, k_cache and v_cache are written in place: an expanded view (stride 0) or a v_cache that is
    k_cache would have two writes land on one element, so they are refused, as torch's in-place ops refuse them.
    k and v interleaved in one buffer (strided views) stay valid."""
    args = conv_args()
    shared = torch.randn(1, K - 1, D).expand(3, K - 1, D)
    with pytest.raises(ValueError, match="short_conv: conv_state must be a tensor whose elements do not share"):
        L.short_conv(args["bcx"], args["weight"], shared)
    with pytest.raises(ValueError, match="short_conv_update: conv_state must be a tensor whose elements do not"):
        L.short_conv_update(args["bcx"][:, 0], args["weight"], shared)
    q, k, v = torch.randn(2, 4, 32), torch.randn(2, 2, 32), torch.randn(2, 2, 32)
    w, pos, slots = torch.ones(32), i32(0, 1), i32(0, 1)
    cache, blocks = torch.zeros(2, 4, 2, 32), torch.zeros(3, 4, 2, 32)
    before = cache.clone()
    with pytest.raises(ValueError, match="qk_norm_rope_append: v_cache must be memory apart from k_cache"):
        L.qk_norm_rope_append(q, k, v, w, w, pos, cache, cache, slots)
    with pytest.raises(ValueError, match="qk_norm_rope_append: v_cache must be memory apart from k_cache"):
        L.qk_norm_rope_append(q, k, v, w, w, pos, blocks[:2], blocks[1:], slots)   # one block in common
    with pytest.raises(ValueError, match="qk_norm_rope_append: k_cache must be a tensor whose elements do not"):
        L.qk_norm_rope_append(q, k, v, w, w, pos, cache[:1].expand(2, 4, 2, 32), blocks[:1].expand(2, 4, 2, 32),
                              slots)
    assert torch.equal(cache, before) and not blocks.any()
    kv = torch.zeros(2, 4, 2, 2, 32)                    # [blocks, block_size, k|v, Hkv, d]
    L.qk_norm_rope_append(q, k, v, w, w, pos, kv[:, :, 0], kv[:, :, 1], slots)
    assert torch.equal(kv[:, :, 1].reshape(-1, 2, 32)[:2], v)


def test_tensors_on_a_device_the_kernels_do_not_run_on_are_blamed_on_the_first():
    """The first tensor of an op sets the device the others must share: on the meta device the error names it,
    not the next tensor that differs."""
    args = conv_args()
    with pytest.raises(ValueError, match="short_conv: bcx must be on a cpu or cuda device, got meta"):
        L.short_conv(args["bcx"].to("meta"), args["weight"], args["conv_state"])
    with pytest.raises(ValueError, match="rms_norm: x must be on a cpu or cuda device, got meta"):
        L.rms_norm(torch.empty(2, D, device="meta"), torch.ones(D), 1e-5)


def test_packed_weight_rows_takes_an_integer_index_tensor():
    """PackedWeight.rows is weight[index]: a float index is refused rather than truncated, an int is not a
    tensor, an empty index gives no rows."""
    w = torch.randn(70, 40).to(torch.bfloat16)
    packed = L.pack_weight(w)
    with pytest.raises(TypeError, match="PackedWeight.rows: index must be of an integer dtype, got torch.float32"):
        packed.rows(torch.tensor([1.5]))
    with pytest.raises(TypeError, match="PackedWeight.rows: index must be a torch.Tensor, got int"):
        packed.rows(3)
    assert packed.rows(torch.zeros(0, dtype=torch.long)).shape == (0, 40)
    assert torch.equal(packed.rows(torch.tensor([[69, 0]], dtype=torch.int32)), w[[69, 0]])
