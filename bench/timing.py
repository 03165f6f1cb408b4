"""Timers and the copy roofline: median and spread of timed runs after warm-up, inputs rotated so that each
run starts from memory rather than cache (CPU) or with L2 flushed (GPU, CUDA events)."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch

CPU_CACHE_BYTES = 256 << 20      # rotate inputs until a round touches more than this (L3: 32 to 105 MiB here)


@dataclass
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    runs: int

    @property
    def spread(self) -> float:
        """(p90 - p10) / median"""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s > 0 else 0.0


def _summary(ts: list[float]) -> Timing:
    ts = sorted(ts)
    q = lambda f: ts[min(len(ts) - 1, int(f * (len(ts) - 1) + 0.5))]
    return Timing(statistics.median(ts), q(0.1), q(0.9), len(ts))


def time_fn(fns: list[Callable[[], object]], device: str, *, min_runs: int = 5, max_runs: int = 50,
            budget_s: float = 1.0, warmup: int = 2) -> Timing:
    """Time fns[i % len(fns)]() (a rotation of prepared input sets) until budget_s or max_runs."""
    for i in range(warmup):
        fns[i % len(fns)]()
    ts: list[float] = []
    if device == "cuda":
        flush = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")   # larger than any L2
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        total = 0.0
        while len(ts) < max_runs and (len(ts) < min_runs or total < budget_s):
            flush.random_(0, 255)
            start.record()
            fns[len(ts) % len(fns)]()
            end.record()
            end.synchronize()
            ts.append(start.elapsed_time(end) / 1e3)
            total += ts[-1]
        return _summary(ts)
    t_end = time.perf_counter() + budget_s
    while len(ts) < max_runs and (len(ts) < min_runs or time.perf_counter() < t_end):
        fn = fns[len(ts) % len(fns)]
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return _summary(ts)


def rotations(nbytes: int, device: str) -> int:
    """How many input sets to rotate through so a round is not served from cache."""
    if device == "cuda":
        return 1                  # the GPU timer flushes L2 before each run
    return max(1, min(16, -(-CPU_CACHE_BYTES // max(nbytes, 1))))


def copy_bandwidth(device: str, nbytes: int = 512 << 20) -> tuple[float, Timing]:
    """The machine's copy bandwidth in bytes/s, counting bytes read plus bytes written."""
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)     # touched: no lazy zero pages
    dst = torch.ones_like(src)
    t = time_fn([lambda: dst.copy_(src)], device, min_runs=5, max_runs=15, budget_s=0.5)
    return 2 * nbytes / t.median_s, t


def copy_of(nbytes: int, device: str) -> Timing:
    """Time of a copy that reads nbytes/2 and writes nbytes/2 (the same traffic as the op), rotated."""
    half = max(nbytes // 2, 1)
    n = rotations(nbytes, device)
    pairs = [(torch.ones(half, dtype=torch.uint8, device=device), torch.ones(half, dtype=torch.uint8, device=device))
             for _ in range(n)]
    return time_fn([lambda s=s, d=d: d.copy_(s) for s, d in pairs], device, budget_s=0.3)
