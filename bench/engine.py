"""What one end-to-end engine's process measures, the same for every engine (lfm25_model, transformers,
llama.cpp): given its greedy generate(prompts, n, on_step), the prefill rate, the time to first token, the
decode rate at each batch size and the peak RSS of the process. Torch-free, so that llama.cpp's process
carries no torch in its memory; the timing statistics (Timing, Stamps) live here for the same reason."""
from __future__ import annotations

import random
import resource
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable


@dataclass
class Timing:
    median_s: float
    p10_s: float
    p90_s: float
    runs: int
    min_s: float

    @property
    def spread(self) -> float:
        """(p90 - p10) / median"""
        return (self.p90_s - self.p10_s) / self.median_s if self.median_s > 0 else 0.0


def summarize(ts: list[float]) -> Timing:
    ts = sorted(ts)
    q = lambda f: ts[min(len(ts) - 1, int(f * (len(ts) - 1) + 0.5))]
    return Timing(statistics.median(ts), q(0.1), q(0.9), len(ts), ts[0])


class Stamps:
    """Host-clock stamps of a stream of events; call it as each event happens (a decode step's tokens out)."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self):
        self.stamps.append(time.perf_counter())

    def gaps(self, n: int) -> Timing:
        """The last n gaps between consecutive stamps."""
        last = self.stamps[-n - 1:]
        return summarize([b - a for a, b in zip(last, last[1:])])


@dataclass
class Settings:
    """What an end-to-end run times (the defaults are the side-by-side's)."""
    prefill: int = 1024          # prompt tokens of the prefill timing
    prompt: int = 128            # prompt tokens before the decode timings
    new: int = 64                # greedy tokens of each decode timing
    batches: tuple = (1, 8)      # decode batch sizes
    reps: int = 3                # prefill timings after one warm-up (the fastest is kept)
    threads: int = 2

    @classmethod
    def quick(cls, threads: int = 2) -> "Settings":
        return cls(prefill=256, new=16, reps=2, threads=threads)

    def to_dict(self) -> dict:
        return asdict(self)


Generate = Callable[[list[list[int]], int, Callable[[], None] | None], object]


def prompts(vocab: int, seed: int = 0) -> Callable[[int], list[int]]:
    """A maker of random prompts of T token ids, the same sequence in every engine's process."""
    rng = random.Random(seed)
    high = min(60000, vocab)
    return lambda T: [rng.randrange(10, high) for _ in range(T)]


def measure(generate: Generate, vocab: int, s: Settings) -> list[dict]:
    """The rows of one engine in this process: prefill, time to first token, decode at each batch size, peak
    RSS (the whole process: loading and every run before it)."""
    make = prompts(vocab)
    long_prompt = [make(s.prefill)]
    t = _fastest(lambda: generate(long_prompt, 1, None), s.reps)
    rows = [dict(metric=f"prefill {s.prefill} tokens", value=s.prefill / t, unit="tok/s")]
    short = [make(s.prompt)]
    t = _fastest(lambda: generate(short, 1, None), s.reps)
    rows.append(dict(metric=f"time to first token, {s.prompt}-token prompt", value=1e3 * t, unit="ms"))
    for B in s.batches:
        ps = [make(s.prompt) for _ in range(B)]
        generate(ps, 2, None)                       # warm-up at this batch size
        stamps = Stamps()
        generate(ps, s.new, stamps)
        rows.append(dict(metric=f"decode batch {B}", value=B / stamps.gaps(s.new - 1).median_s, unit="tok/s"))
    rows.append(dict(metric="peak RSS", value=peak_rss_mib(), unit="MiB"))
    return rows


def _fastest(fn: Callable[[], object], reps: int) -> float:
    """The fastest of reps wall-clock runs after one warm-up (a run slowed by another process is dropped)."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def peak_rss_mib() -> float:
    # NOTE: VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child starts with its parent's peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
