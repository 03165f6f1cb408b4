"""python -m bench: every op on every backend of this machine at the LFM2.5-350M shapes, against the copy
bandwidth measured in the same run, the PyTorch reference and the software people use today; then the model
end to end against transformers and llama.cpp; then a summary of what beats what.

  python -m bench                       all LFM2.5-350M op shapes, bf16; end to end bf16, one round (a few minutes)
  python -m bench --quick               one case per op, short timings, a short end-to-end run (about a minute)
  python -m bench --side-by-side        end to end: lfm25_model bf16/int8/q4 against llama.cpp bf16/Q8_0/Q4_0,
                                        3 rounds, with the logits error (about 10 minutes more)
  python -m bench --ops gqa_decode --dtype bf16,fp32 --device cpu --tier sweep --no-e2e
  python -m bench --device cuda --no-e2e        the CUDA kernels, cold and graph-replayed
Each op is timed by bench/timing.py: the median of cold runs (inputs rotated on the CPU, L2 flushed on a GPU);
on a GPU also per call in a replayed CUDA graph of back-to-back calls (graph_us). The end-to-end part is
bench/e2e.py. Results: tables and a summary on the terminal, JSON lines appended to bench/runs/<device>.jsonl
and a PNG chart next to them (bench/runs is untracked; the project's reference results in bench/results are
written only when --results-dir names them).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid

import torch

from . import cases as C
from . import env, timing
from .backends import backends

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")   # the project's reference results
RUNS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "runs")         # a user's runs (untracked)
GRAPH_CALLS = 20                 # calls per replayed CUDA graph
BUSY_SPREAD = 0.3                # a median (p90 - p10) / median above this: the machine is noisy
BUSY_COPY_DRIFT = 0.25           # the copy bandwidth at the end this far from the start: noisy
LEGEND = ("median us: lower is better; GB/s, copy%, vs ref, vs peer: higher is better. +-%: half the p10-p90 "
          "range. copy% is GB/s over the copy bandwidth measured in this run; it can pass 100 %: a copy's "
          "writes also cost a read of the destination (write-allocate) while an op that mostly reads (linear, "
          "gqa_decode) does not, and small cases are served from the caches. vs peer: against the fastest of "
          "the other implementations (torch, causal-conv1d, flash-attn, the reference).")


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one case per op, short timings, short end-to-end run")
    ap.add_argument("--tier", choices=("quick", "lfm2", "sweep"), default=None, help="case set (default lfm2)")
    ap.add_argument("--ops", default=",".join(C.OPS), help="comma-separated ops")
    ap.add_argument("--dtype", default="bf16", help="comma-separated: bf16, fp16, fp32")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present, else cpu)")
    ap.add_argument("--all-isas", action="store_true", help="also time every other CPU kernel table")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end model benchmark")
    ap.add_argument("--side-by-side", action="store_true",
                    help="end to end: lfm25_model bf16/int8/q4 against llama.cpp bf16/Q8_0/Q4_0 with the logits "
                         "error, 3 rounds (about 10 minutes)")
    ap.add_argument("--rounds", type=int, default=None, help="end-to-end rounds (default 1, 3 with --side-by-side)")
    ap.add_argument("--results-dir", default=RUNS, help=f"default {os.path.relpath(RUNS)} (untracked)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    return ap.parse_args(argv)


class Progress:
    """A bar with a time estimate on a terminal, one line per step otherwise (a log stays readable)."""

    def __init__(self, n: int):
        self.n, self.t0, self.tty = n, time.time(), sys.stderr.isatty()

    def __call__(self, i: int, label: str):
        left = (time.time() - self.t0) / i * (self.n - i) if i else None
        eta = "" if left is None else f" ~{left / 60:.1f} min left" if left >= 90 else f" ~{left:.0f} s left"
        if self.tty:
            bar = "#" * int(30 * i / self.n)
            sys.stderr.write(f"\r[{bar:<30}] {i}/{self.n}{eta:<16} {label[:50]:<50}")
            if i == self.n:
                sys.stderr.write("\n")
        elif i < self.n:
            sys.stderr.write(f"  [{i + 1}/{self.n}] {label}{eta}\n")
        sys.stderr.flush()


def run_case(case: C.Case, device: str, copy_bw: float, quick: bool, all_isas: bool) -> list[dict]:
    nbytes = C.bytes_moved(case)
    sets = [C.make_inputs(case, device, seed=0)]
    footprint = sum(t.numel() * t.element_size() for t in sets[0].values() if isinstance(t, torch.Tensor))
    sets += [C.make_inputs(case, device, seed=i) for i in range(1, timing.rotations(nbytes, device, footprint))]
    budget = 0.15 if quick else 0.4
    copy_same = timing.copy_of(nbytes, device)
    rows = []
    for name, make in backends(case.op, device, all_isas).items():
        slow = name == "reference" or name.startswith("torch")
        fns = [make(kw) for kw in (sets[:1] if slow else sets)]
        t = timing.time_fn(fns, device, min_runs=3 if slow else 5, max_runs=10 if slow else 200,
                           budget_s=budget, warmup=1 if slow else 3)
        rows.append(dict(op=case.op, case=case.name, dtype=case.dtype, shape=case.shape, backend=name,
                         median_us=t.median_s * 1e6, p10_us=t.p10_s * 1e6, p90_us=t.p90_s * 1e6, runs=t.runs,
                         bytes=nbytes, gbps=nbytes / t.median_s / 1e9, copy_fraction=nbytes / t.median_s / copy_bw,
                         copy_same_bytes_us=copy_same.median_s * 1e6))
        if device == "cuda" and name != "reference":
            g = timing.time_fn(fns[:1], device, min_runs=3 if slow else 5, max_runs=10 if slow else 50,
                               budget_s=budget, warmup=1, graph_calls=GRAPH_CALLS)
            rows[-1]["graph_us"] = g.median_s * 1e6 if g else None      # None: the calls cannot be captured
    return add_speedups(rows)


def add_speedups(rows: list[dict]) -> list[dict]:
    """Each row of one case against the reference; ours also against the fastest other implementation."""
    ref = next(r for r in rows if r["backend"] == "reference")
    best = min((r for r in rows if not r["backend"].startswith("lfm25")), key=lambda r: r["median_us"])
    for r in rows:
        r["speedup_vs_reference"] = ref["median_us"] / r["median_us"]
        if r["backend"].startswith("lfm25"):
            r["best_peer"], r["speedup_vs_best_peer"] = best["backend"], best["median_us"] / r["median_us"]
    return rows


def print_table(rows: list[dict], header: dict):
    print(f"\n{header['device']}: {header.get('gpu', header['cpu'])} | {header['threads']} threads | copy "
          f"{header['copy_gbps']:.1f} GB/s | torch {header['torch']} | commit {header['commit']}")
    print(LEGEND)
    graphs = any("graph_us" in r for r in rows)
    head = ["op", "case", "dtype", "backend", "median us", "+-%", "GB/s", "copy%", "vs ref", "vs peer"] + (
        ["graph us"] if graphs else [])
    body = []
    for r in rows:
        g, peer = r.get("graph_us"), r.get("speedup_vs_best_peer")
        body.append([r["op"], r["case"], r["dtype"], r["backend"], f"{r['median_us']:.1f}",
                     f"{100 * (r['p90_us'] - r['p10_us']) / 2 / r['median_us']:.0f}", f"{r['gbps']:.1f}",
                     f"{100 * r['copy_fraction']:.0f}%", f"{r['speedup_vs_reference']:.1f}x",
                     "" if peer is None else f"{peer:.2f}x"] + (["-" if g is None else f"{g:.1f}"] if graphs else []))
    widths = [max(len(x[i]) for x in [head] + body) for i in range(len(head))]
    for line in [head] + body:
        print("  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))


def noisy(rows: list[dict], header: dict, reference_dir: str = RESULTS) -> list[str]:
    """Why this run's figures may not be trusted: load on the machine, the copy bandwidth drifting in the run
    or far below this CPU's in the project's reference results, wide spreads. Empty when quiet."""
    why = []
    cores = os.cpu_count() or 1
    if header.get("loadavg", 0) > cores:
        why.append(f"load average {header['loadavg']:.1f} on {cores} cores before the run")
    a, b = header["copy_gbps"], header.get("copy_gbps_end", header["copy_gbps"])
    if abs(a - b) > BUSY_COPY_DRIFT * max(a, b):
        why.append(f"copy bandwidth {a:.1f} GB/s at the start, {b:.1f} at the end")
    expected = _reference_copy_gbps(header, reference_dir)
    if expected and min(a, b) < 0.6 * expected:
        why.append(f"copy bandwidth {min(a, b):.1f} GB/s against {expected:.1f} in {os.path.relpath(reference_dir)}")
    spreads = [(r["p90_us"] - r["p10_us"]) / r["median_us"] for r in rows]
    if spreads and statistics.median(spreads) > BUSY_SPREAD:
        why.append(f"median spread +-{50 * statistics.median(spreads):.0f} % (p10-p90)")
    return why


def _reference_copy_gbps(header: dict, reference_dir: str) -> float | None:
    """The median copy bandwidth of this CPU's runs in the project's reference results, if any."""
    path = os.path.join(reference_dir, results_name(header) + ".jsonl")
    if header["device"] != "cpu" or not os.path.exists(path):
        return None
    with open(path) as f:
        runs = {(r := json.loads(line))["run_id"]: r["copy_gbps"] for line in f if line.strip()}
    return statistics.median(runs.values()) if runs else None


def conclusion(rows: list[dict], e2e_rows: list[dict], header: dict) -> list[str]:
    """What beats what, in a few lines."""
    out = ["", "Summary (higher is better unless said):"]
    ours = [r for r in rows if r["backend"].startswith("lfm25")]
    for backend in dict.fromkeys(r["backend"] for r in ours):
        mine = [r for r in ours if r["backend"] == backend]
        ahead = [r for r in mine if r["speedup_vs_best_peer"] > 1]
        worst = min(mine, key=lambda r: r["speedup_vs_best_peer"])
        out.append(f"  ops, {backend}: a median {100 * statistics.median(r['copy_fraction'] for r in mine):.0f} % of "
                   f"the copy bandwidth over {len(mine)} cases; faster than the best other implementation in "
                   f"{len(ahead)} of {len(mine)} (median "
                   f"{statistics.median(r['speedup_vs_best_peer'] for r in mine):.2f}x; least: {worst['op']} "
                   f"{worst['case']} {worst['speedup_vs_best_peer']:.2f}x against {worst['best_peer']})")
    if e2e_rows:
        from . import e2e

        for (o, p), cs in _by_pair(e2e.comparison(e2e_rows, e2e.pairs_for(_engines(e2e_rows)))).items():
            cells = [f"{c['metric']} {c['ratio']:.2f}x" + ("" if c["better"] == "higher" else " (lower is better)")
                     for c in cs if c["ratio"]]
            if cells:
                out.append(f"  end to end, {e2e.label(o)} / {e2e.label(p)}: " + ", ".join(cells))
        out += [f"  {r['label']}: not available ({r['unavailable'].splitlines()[0]})" for r in e2e_rows
                if "unavailable" in r]
    why = noisy(rows, header)
    if why:
        out.append("  WARNING: the machine was busy (" + "; ".join(why) + "): the figures are unreliable; rerun on "
                   "a quiet machine")
    return out


def _engines(rows):
    return list(dict.fromkeys(r["engine"] for r in rows))


def _by_pair(comp):
    out = {}
    for c in comp:
        out.setdefault((c["ours"], c["peer"]), []).append(c)
    return out


def results_name(header: dict) -> str:
    name = header.get("gpu", header["cpu"]) if header["device"] == "cuda" else "cpu-" + header["cpu"]
    return env.slug(name)


def main(argv=None) -> int:
    args = parse(argv if argv is not None else sys.argv[1:])
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tier = args.tier or ("quick" if args.quick else "lfm2")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    bad = [o for o in ops if o not in C.OPS]
    if bad:
        raise SystemExit(f"--ops: unknown {bad}; choose from {list(C.OPS)}")
    dtypes = [d.strip() for d in args.dtype.split(",")]
    if any(d not in C.DTYPES for d in dtypes):
        raise SystemExit(f"--dtype: choose from {list(C.DTYPES)}")
    todo = C.cases(ops, dtypes, tier)
    engines, e2e_runs = _e2e_plan(args)
    est = len(todo) * (1.5 if args.quick else 3) + e2e_runs * (20 if args.quick else 40)
    print(f"{len(todo)} op cases" + (f", then {e2e_runs} end-to-end runs ({', '.join(engines)})" if engines else "")
          + f": about {max(1, round(est / 60))} min on a quiet machine. --quick: about a minute; --no-e2e: ops only; "
          "--side-by-side: the full llama.cpp comparison.", flush=True)

    header = env.describe(device)
    header["loadavg"] = os.getloadavg()[0]
    copy_bw, _ = timing.copy_bandwidth(device)
    header["copy_gbps"] = copy_bw / 1e9
    run_id = uuid.uuid4().hex[:12]
    rows: list[dict] = []
    t0 = time.time()
    progress = Progress(len(todo))
    for i, case in enumerate(todo):
        progress(i, case.id)
        rows += run_case(case, device, copy_bw, args.quick, args.all_isas)
    progress(len(todo), "done")
    # the copy bandwidth again at the end: a drift between the two says the machine's load changed
    copy_end, _ = timing.copy_bandwidth(device)
    header["copy_gbps_end"] = copy_end / 1e9
    print_table(rows, header)

    e2e_rows = _run_e2e(args, device, engines) if engines else []
    os.makedirs(args.results_dir, exist_ok=True)
    path = os.path.join(args.results_dir, results_name(header) + ".jsonl")
    with open(path, "a") as f:
        for r in rows + e2e_rows:
            f.write(json.dumps(dict(run_id=run_id, **header, **r)) + "\n")
    print("\n".join(conclusion(rows, e2e_rows, header)))
    print(f"\n{len(rows) + len(e2e_rows)} results appended to {os.path.relpath(path)} (run {run_id}, "
          f"{time.time() - t0:.0f} s)")
    try:
        from .chart import chart

        png = chart(rows, e2e_rows, header, path[:-len(".jsonl")] + ".png")
        print(f"chart: {os.path.relpath(png)}")
    except ImportError as e:
        print(f"chart skipped: {e} (pip install matplotlib)")
    return 0


def _e2e_plan(args) -> tuple[list[str], int]:
    """The end-to-end engines and how many processes they take: by default lfm25_model bf16 against
    transformers and llama.cpp bf16, one round."""
    if args.no_e2e:
        return [], 0
    from . import e2e

    engines = list(e2e.SIDE_BY_SIDE) if args.side_by_side else ["lfm25 bf16", "transformers bf16", "llama.cpp bf16"]
    rounds = args.rounds or (3 if args.side_by_side else 1)
    return engines, len(engines) * (rounds + (1 if args.side_by_side else 0))


def _run_e2e(args, device: str, engines: list[str]) -> list[dict]:
    try:
        from . import e2e
        from .engine import Settings
    except ImportError as e:
        print(f"\nend-to-end: not run ({e})")
        return []
    threads = args.threads or torch.get_num_threads()
    s = Settings.quick(threads) if args.quick else Settings(threads=threads)
    print(f"\nend to end ({', '.join(engines)}), each engine in its own process:", flush=True)
    rows = e2e.compare(engines, device, s, args.rounds or (3 if args.side_by_side else 1), args.side_by_side,
                       say=lambda m: print(m, flush=True))
    print()
    e2e.print_table(rows)
    return rows


if __name__ == "__main__":
    sys.exit(main())
