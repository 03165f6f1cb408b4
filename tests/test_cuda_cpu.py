"""The CUDA kernels on the CPU (tests/cuda_cpu) across devices: the launch rules that depend on the device
(short_conv's chunk length, gqa_decode's split count) and the split-KV workspace's allocation failing. The op
tests of the other files run the kernels on one device (the `cuda-cpu` backend); here the same problems run on
a sweep of devices, and the launch log shows which rule each took."""
from __future__ import annotations

import os
import re

import pytest
import torch
from hypothesis import given, strategies as st

import cuda_cpu
import lfm25_kernels as L
from cuda_cpu import Device
from lfm25_kernels import ops, reference as R

from conftest import KV_DTYPES, assert_close, assert_equal
from test_attention import append_inputs, decode_inputs, decode_problems
from test_short_conv import conv_problems

pytestmark = [pytest.mark.cuda_cpu, pytest.mark.skipif(bool(cuda_cpu.missing_tools()) and not os.environ.get("CI"),
                                                       reason=f"cuda-cpu tests need {cuda_cpu.missing_tools()}")]

# short_conv's chunk is the longest of 64..8 tokens that still gives half a wave of threads: a device of 256
# resident threads takes 64 for nearly every problem, 132 full SMs take 8, the others fall between
CONV_DEVICES = [Device(sms=1, threads=256), Device(sms=3, threads=1024), Device(sms=132)]
# gqa_decode splits a sequence over up to ceil(4 x SMs / units) blocks when its capacity exceeds 256 tokens;
# the split workspace comes from cudaMallocAsync, which may fail (or the device may have no pools): one split
DECODE_DEVICES = [Device(sms=1, threads=256), Device(sms=132), Device(sms=2048), Device(sms=132, fail_alloc=True),
                  Device(sms=132, pools=False)]


def run(device: Device, fn, *args, **kw):
    log: list[str] = []
    with ops.launcher(cuda_cpu.launcher(device, log)):
        out = fn(*args, **kw)
    return out, "".join(log)


def grids(log: str, kernel: str) -> list[str]:
    return re.findall(rf"launch \({kernel}<[^>]*>\) grid=(\S+)", log)


@given(prob=conv_problems())
def test_short_conv_is_bit_exact_across_chunk_lengths(prob):
    """Chunks are an implementation detail: every device's chunking gives the same bits, y and state."""
    bcx, weight, state, kw = prob.inputs()
    results = []
    for device in CONV_DEVICES:
        st_d = None if state is None else state.clone()
        y, _ = run(device, L.short_conv, bcx, weight, st_d, **kw)
        results.append((y, st_d))
    ref_state = None if state is None else state.clone()
    assert_close(results[0][0], R.short_conv(bcx, weight, ref_state, **kw), "y")
    for (y, st_d), device in zip(results[1:], CONV_DEVICES[1:]):
        assert_equal(y, results[0][0], f"y on {device}")
        if st_d is not None:
            assert_equal(st_d, results[0][1], f"conv_state on {device}")
            assert_equal(st_d, ref_state, f"conv_state on {device} vs reference")


def test_the_device_sweep_reaches_both_ends_of_the_chunk_rule():
    """600 tokens x 1024 bf16 channels = 128 channel threads per chunk: 64-token chunks (10 of them) on the
    small device, 8-token chunks (75) on 132 SMs."""
    g = torch.Generator().manual_seed(0)
    bcx = torch.randn(1, 600, 3 * 1024, generator=g).bfloat16()
    weight = torch.randn(1024, 3, generator=g).bfloat16()
    _, small = run(CONV_DEVICES[0], L.short_conv, bcx, weight)
    _, big = run(CONV_DEVICES[-1], L.short_conv, bcx, weight)
    assert grids(small, "short_conv_kernel") == ["10,1,1"]
    assert grids(big, "short_conv_kernel") == ["75,1,1"]


@given(p=decode_problems(), device=st.sampled_from(DECODE_DEVICES))
def test_gqa_decode_on_every_device_and_allocation_outcome(p, device):
    args, kw = decode_inputs(p)
    out, log = run(device, L.gqa_decode, *args, **kw)
    assert_close(out, R.gqa_decode(*args, **kw), f"out on {device}")
    assert bool((out[torch.tensor(p["lens"]) == 0] == 0).all()), "seq_len 0 must give zeros"
    split = bool(grids(log, "gqa_combine_kernel"))
    assert split == ("alloc " in log), log          # a split run has its workspace, and only then
    assert log.count("alloc ") == log.count("free"), log
    if device.fail_alloc or not device.pools:
        assert not split, log


@pytest.mark.parametrize("device,splits", [
    pytest.param(DECODE_DEVICES[0], 1, id="1-sm"),            # 8 units already give 4 x 1 SM blocks
    pytest.param(DECODE_DEVICES[1], 66, id="132-sms"),        # ceil(4 x 132 / 8)
    pytest.param(DECODE_DEVICES[2], 79, id="2048-sms"),       # clamped to ceil(20000 / 256)
    pytest.param(DECODE_DEVICES[3], 1, id="alloc-fails"),     # allocation failed
    pytest.param(DECODE_DEVICES[4], 1, id="no-pools"),        # no stream-ordered allocation
])
def test_gqa_decode_split_count_follows_the_device(device, splits):
    """Batch 1 with 20000 cached tokens, 8 KV heads of 2 query heads: units = 8 blocks before splitting."""
    g = torch.Generator().manual_seed(11)
    q = torch.randn(1, 16, 64, generator=g).bfloat16()
    kc, vc = (torch.randn(1, 20000, 8, 64, generator=g).bfloat16() for _ in range(2))
    lens = torch.tensor([19999], dtype=torch.int32)
    out, log = run(device, L.gqa_decode, q, kc, vc, lens)
    assert_close(out, R.gqa_decode(q, kc, vc, lens), "out")
    assert grids(log, "gqa_split_kernel") == [f"{8 * splits},1,1"], log
    assert grids(log, "gqa_combine_kernel") == (["4,1,1"] if splits > 1 else []), log
    assert ("alloc-failed" in log) == device.fail_alloc, log


def unaligned(t: torch.Tensor) -> torch.Tensor:
    """A copy of t one element past a 16-byte boundary."""
    out = torch.empty(t.numel() + 1, dtype=t.dtype)[1:].view(t.shape).copy_(t)
    assert out.data_ptr() % 16 != 0
    return out


@pytest.mark.parametrize("dtype,cache_dtype", KV_DTYPES)
def test_unaligned_caches_take_the_element_wise_kernels(dtype, cache_dtype):
    """Caches that are not 16-byte aligned send gqa_decode and qk_norm_rope_append to their element-wise
    kernels, which the op tests (fresh caches, always aligned) never reach."""
    p = dict(dtype=dtype, cache_dtype=cache_dtype, d=96, hq=12, hkv=3, B=3, paged=True, block_size=16,
             max_blocks=20, lens=[300, 0, 17], q_view=False, scale=None, seed=1)
    (q, kc, vc, lens), kw = decode_inputs(p)
    kc, vc = unaligned(kc), unaligned(vc)
    out, log = run(Device(), L.gqa_decode, q, kc, vc, lens, **kw)
    assert_close(out, R.gqa_decode(q, kc, vc, lens, **kw), "gqa_decode out")
    assert grids(log, "gqa_combine_kernel"), "a split run"

    p = dict(dtype=dtype, cache_dtype=cache_dtype, d=64, hq=8, hkv=2, n=7, block_size=4, n_blocks=5,
             slots=[3, 0, -1, 19, 8, 9, 12], positions=[5, 0, 1, 40000, 7, 8, 9], weight_f32=False, theta=1e6, seed=2)
    (q, k, v, qw, kwt, pos, kc, vc, slots), kw = append_inputs(p)
    kc, vc = unaligned(kc), unaligned(vc)
    kc_ref, vc_ref = kc.clone(), vc.clone()
    q_ref = R.qk_norm_rope_append(q, k, v, qw, kwt, pos, kc_ref, vc_ref, slots, **kw)
    q_out, _ = run(Device(), L.qk_norm_rope_append, q, k, v, qw, kwt, pos, kc, vc, slots, **kw)
    assert_close(q_out, q_ref, "q_out")
    assert_close(kc, kc_ref, "k_cache")
    assert_equal(vc, vc_ref, "v_cache")
