"""The CUDA-on-CPU runtime of tests/cuda_cpu on its own toy kernels (toys.cpp): CUDA's thread numbering,
barriers, shared memory, launch limits, allocation, device properties and rounding, and the checks that make a
broken kernel fail loudly: the race probe, shuffles of part of a warp, the fiber stack guard, misaligned vector
accesses, accesses past an allocation."""
from __future__ import annotations

import os

import pytest
import torch

import cuda_cpu

pytestmark = [pytest.mark.cuda_cpu, pytest.mark.skipif(bool(cuda_cpu.missing_tools()) and not os.environ.get("CI"),
                                                       reason=f"cuda-cpu tests need {cuda_cpu.missing_tools()}")]


def run_ok(name: str, probe: bool = True) -> list[str]:
    r = cuda_cpu.toy(name, probe)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout.decode().splitlines()


def pack(x: int, y: int, z: int) -> int:
    return x | y << 8 | z << 16


def test_threads_are_numbered_x_fastest_and_warps_are_32_consecutive_threads():
    grid, block = (2, 3, 2), (8, 4, 2)
    v = [int(s) for s in run_ok("numbering")]
    n_threads = block[0] * block[1] * block[2]
    coords = lambda i, d: (i % d[0], i // d[0] % d[1], i // (d[0] * d[1]))
    for b in range(grid[0] * grid[1] * grid[2]):
        for t in range(n_threads):
            blk, me, lane0, xor1 = v[(b * n_threads + t) * 4:(b * n_threads + t) * 4 + 4]
            assert blk == pack(*coords(b, grid)), f"block {b}"
            assert me == pack(*coords(t, block)), f"thread {t}: x-fastest numbering"
            assert lane0 == pack(*coords(t // 32 * 32, block)), f"thread {t}: lane 0 of its warp"
            assert xor1 == pack(*coords(t ^ 1, block)), f"thread {t}: lane ^ 1"


def test_syncthreads_orders_shared_memory_under_the_race_probe():
    assert [int(s) for s in run_ok("barrier")] == [3 * t + 1 for t in range(256)]


def test_dynamic_shared_memory_is_poisoned_then_shared_by_the_block():
    v = [int(s) for s in run_ok("dynamic_shared")]
    assert v[:256] == [255 - t for t in range(256)]
    assert v[256:] == [-1] * 256, "dynamic shared memory starts as 0xff bytes"


@pytest.mark.parametrize("name,probe,message", [
    ("missing_barrier", True, "race probe: the result depends on the order of threads or blocks"),
    ("block_race", True, "race probe: the result depends on the order of threads or blocks"),
    ("stale_shared", True, "race probe: the result depends on the order of threads or blocks"),
    ("shuffle_partial_mask", False, "shuffle with a partial mask"),
    ("shuffle_after_exit", False, "shuffle not reached by every lane of the warp"),
    ("shuffle_partial_warp", False, "full-mask shuffle in a warp of fewer than 32 threads"),
    ("barrier_after_exit", False, "__syncthreads after other threads of the block exited"),
    ("stack_overflow", False, "fiber stack overflow (guard page hit)"),
    ("misaligned", False, "misaligned vector access"),
    ("alloc_overrun", False, "write past the end of a buffer"),
    ("alloc_fault", False, "invalid memory access"),
])
def test_a_broken_kernel_aborts_with_a_message(name, probe, message):
    r = cuda_cpu.toy(name, probe)
    assert r.returncode != 0, f"{name} ran to the end: {r.stdout.decode()}"
    assert message in r.stderr.decode(), r.stderr.decode()


def test_the_race_probe_passes_an_order_independent_kernel_that_would_fail_without_its_barrier():
    # the same kernel as missing_barrier, with the barrier: see test_syncthreads_orders_shared_memory...
    r = cuda_cpu.toy("missing_barrier", probe=False)
    assert r.returncode == 0
    assert [int(s) for s in r.stdout.decode().split()] != [3 * t + 1 for t in range(256)]


def test_fiber_stacks_hold_128_kib():
    assert run_ok("stack_128k", probe=False)


def test_launch_limits():
    got = dict(line.split(" ", 1) for line in run_ok("limits", probe=False))
    bad = "invalid configuration argument"
    assert got == {"grid.y=65535": "ok", "grid.y=65536": bad, "grid.z=65536": bad, "grid.x=0": bad,
                   "threads=1024": "ok", "threads=1025": bad, "block=32x64": bad, "block.z=65": bad,
                   "smem=49152": "ok", "smem=49153": bad}


def test_stream_ordered_allocation_and_its_injected_failure():
    assert run_ok("alloc", probe=False) == [
        "injected out of memory out of memory null=1",   # the call fails and sets the last error
        "cleared ok",                                    # which cudaGetLastError clears
        "then ok aligned=1 poisoned=1 live=1",
        "freed live=0"]


def test_device_properties_are_settable():
    assert run_ok("devices", probe=False) == ["device 1 sms=132 threads=1536 pools=1 alloc=ok",
                                              "device 2 sms=7 threads=1536 pools=0 alloc=out of memory"]


def test_fp16_and_bf16_conversions_round_to_nearest_even_as_torch():
    """Every fp16 and bf16 value converts to itself and back exactly; random fp32 values (all exponents,
    ties included) round as torch rounds; NaN becomes the canonical 0x7fff, as cvt.rn does on the GPU."""
    g = torch.Generator().manual_seed(0)
    every16 = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16)
    values = torch.cat([every16.view(torch.float16).float(), every16.view(torch.bfloat16).float(),
                        torch.randint(-2**31, 2**31, (200000,), generator=g, dtype=torch.int64).to(torch.int32)
                        .view(torch.float32),
                        # exact ties of both formats (the bits below the kept ones are 1000...)
                        (torch.randint(0, 2**16, (20000,), generator=g, dtype=torch.int32) << 16 | 0x8000)
                        .view(torch.float32),
                        (torch.randint(0, 2**19, (20000,), generator=g, dtype=torch.int32) << 13 | 0x1000)
                        .view(torch.float32)])
    r = cuda_cpu.toy("rounding", stdin=values.numpy().tobytes())
    assert r.returncode == 0, r.stderr.decode()
    out = torch.frombuffer(bytearray(r.stdout), dtype=torch.uint8).view(-1, 12)
    half = out[:, 0:2].contiguous().view(torch.int16).view(-1)
    bf16 = out[:, 2:4].contiguous().view(torch.int16).view(-1)
    half_back = out[:, 4:8].contiguous().view(torch.float32).view(-1)
    bf16_back = out[:, 8:12].contiguous().view(torch.float32).view(-1)
    nan = values.isnan()
    assert torch.equal(half[~nan], values[~nan].half().view(torch.int16)), "fp16 rounding differs from torch"
    assert torch.equal(bf16[~nan], values[~nan].bfloat16().view(torch.int16)), "bf16 rounding differs from torch"
    assert bool((half[nan] == 0x7fff).all()) and bool((bf16[nan] == 0x7fff).all()), "NaN must become 0x7fff"
    assert torch.equal(half_back[~nan], values[~nan].half().float()), "fp16 -> fp32 differs from torch"
    assert torch.equal(bf16_back[~nan], values[~nan].bfloat16().float()), "bf16 -> fp32 differs from torch"
