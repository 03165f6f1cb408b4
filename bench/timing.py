"""Timers and the copy roofline, for the op benchmark and the end-to-end one (docs/DESIGN.md section 8).

time_fn times a rotation of prepared calls and gives the median and spread after warm-up:
  CPU          the wall clock; inputs rotated so that each run starts from memory rather than cache
  CUDA, cold   CUDA events around single launches, the L2 flushed before each
  CUDA, graph  graph_calls=N: a CUDA graph of N back-to-back calls replayed, per call (warm L2, no launch gaps:
               the regime of a decode loop)
  wall=True    the wall clock between device synchronisations, on any device (a call that waits on the host)
Stamps (bench/engine.py) times a stream of events (the tokens of each decode step) by the gaps between them."""
from __future__ import annotations

import time
from typing import Callable

import torch

from .engine import Stamps, Timing, summarize  # noqa: F401  (torch-free, shared with the engines' processes)

CPU_CACHE_BYTES = 256 << 20      # rotate inputs until a round touches more than this (larger than the L3)
SETS_BYTES = 1 << 30             # but keep all the rotated input sets of a case within this
L2_FLUSH_BYTES = 512 << 20       # written before each cold CUDA launch: larger than any L2


def time_fn(fns: list[Callable[[], object]], device: str, *, min_runs: int = 5, max_runs: int = 50,
            budget_s: float = 1.0, warmup: int = 2, graph_calls: int = 0, wall: bool = False) -> Timing | None:
    """Time fns[i % len(fns)]() (a rotation of prepared input sets) until budget_s or max_runs (see the module
    docstring for the clocks). With graph_calls, fns[0] only; None when its calls cannot be captured."""
    if graph_calls and (device != "cuda" or wall):
        raise ValueError(f"time_fn: graph_calls needs device 'cuda' and wall=False, got {device!r}, wall={wall}")
    for i in range(warmup):
        fns[i % len(fns)]()
    if device != "cuda" or wall:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        deadline = time.perf_counter() + budget_s

        def host(i: int) -> float:
            sync()
            t0 = time.perf_counter()
            fns[i % len(fns)]()
            sync()
            return time.perf_counter() - t0
        return _repeat(host, min_runs, max_runs, lambda ts: time.perf_counter() < deadline)
    if graph_calls:
        graph = _capture(fns[0], graph_calls)
        if graph is None:
            return None
        return _repeat(lambda i: _event_time(graph.replay) / graph_calls, min_runs, max_runs,
                       lambda ts: sum(ts) * graph_calls < budget_s)
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device="cuda")

    def cold(i: int) -> float:
        flush.random_(0, 255)
        return _event_time(fns[i % len(fns)])
    return _repeat(cold, min_runs, max_runs, lambda ts: sum(ts) < budget_s)


def _repeat(run: Callable[[int], float], min_runs: int, max_runs: int,
            time_left: Callable[[list[float]], bool]) -> Timing:
    ts: list[float] = []
    while len(ts) < max_runs and (len(ts) < min_runs or time_left(ts)):
        ts.append(run(len(ts)))
    return summarize(ts)


def _event_time(fn: Callable[[], object]) -> float:
    """Seconds between CUDA events recorded on the current stream before and after fn()."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def _capture(fn: Callable[[], object], calls: int):
    """A torch.cuda.CUDAGraph of `calls` calls of fn, replayed once; None when fn cannot be captured (a torch
    baseline that synchronises with the host, for example)."""
    side = torch.cuda.Stream()              # warm-up on a side stream, as torch.cuda.graph requires
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
    except RuntimeError:
        return None
    graph.replay()
    torch.cuda.synchronize()
    return graph


def rotations(nbytes: int, device: str, footprint: int = 0) -> int:
    """How many input sets to rotate through so a round is not served from cache: enough to touch
    CPU_CACHE_BYTES, as long as the sets (footprint bytes each, more than nbytes where a call touches part of a
    large cache) stay within SETS_BYTES."""
    if device == "cuda":
        return 1                  # the GPU timer flushes L2 before each run
    return max(1, min(16, -(-CPU_CACHE_BYTES // max(nbytes, 1)), SETS_BYTES // max(footprint, 1)))


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
