"""python -m bench: every op on every backend of this machine at the LFM2.5-350M shapes, against the copy
roofline measured in the same run and against the PyTorch reference; then the end-to-end model.

  python -m bench                       all LFM2.5-350M shapes, bf16, this machine's devices
  python -m bench --quick               one case per op, short timings, a small end-to-end run
  python -m bench --ops gqa_decode --dtype bf16,fp32 --device cpu --tier sweep
  python -m bench --device cuda --no-e2e --results-dir DIR      the CUDA kernels, cold and graph-replayed
Each op is timed by bench/timing.py: the median of cold runs (inputs rotated on the CPU, L2 flushed on a GPU);
on a GPU also per call in a replayed CUDA graph of back-to-back calls (graph_us). The end-to-end part is
bench/e2e.py. Results: a table on the terminal, JSON lines appended to bench/results/<device>.jsonl, a PNG chart.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

import torch

from . import cases as C
from . import env, timing
from .backends import backends

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
GRAPH_CALLS = 20                 # calls per replayed CUDA graph


def parse(argv):
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one case per op, short timings, small e2e")
    ap.add_argument("--tier", choices=("quick", "lfm2", "sweep"), default=None, help="case set (default lfm2)")
    ap.add_argument("--ops", default=",".join(C.OPS), help="comma-separated ops")
    ap.add_argument("--dtype", default="bf16", help="comma-separated: bf16, fp16, fp32")
    ap.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present, else cpu)")
    ap.add_argument("--all-isas", action="store_true", help="also time every other CPU kernel table")
    ap.add_argument("--no-e2e", action="store_true", help="skip the end-to-end model benchmark")
    ap.add_argument("--results-dir", default=RESULTS)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    return ap.parse_args(argv)


def progress(i: int, n: int, label: str):
    if sys.stderr.isatty():
        bar = "#" * int(30 * i / n)
        sys.stderr.write(f"\r[{bar:<30}] {i}/{n} {label[:60]:<60}")
        sys.stderr.flush()
        if i == n:
            sys.stderr.write("\n")


def run_case(case: C.Case, device: str, copy_bw: float, quick: bool, all_isas: bool) -> list[dict]:
    nbytes = C.bytes_moved(case)
    sets = [C.make_inputs(case, device, seed=i) for i in range(timing.rotations(nbytes, device))]
    budget = 0.25 if quick else 1.0
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
    ref = next(r for r in rows if r["backend"] == "reference")
    for r in rows:
        r["speedup_vs_reference"] = ref["median_us"] / r["median_us"]
    return rows


def print_table(rows: list[dict], header: dict):
    print(f"\n{header['device']}: {header.get('gpu', header['cpu'])} | {header['threads']} threads | copy "
          f"{header['copy_gbps']:.1f} GB/s | torch {header['torch']} | commit {header['commit']}")
    graphs = any("graph_us" in r for r in rows)
    fmt = "{:<20} {:<26} {:<5} {:<26} {:>11} {:>7} {:>8} {:>7} {:>9}" + (" {:>10}" if graphs else "")
    print(fmt.format("op", "case", "dtype", "backend", "median us", "+-%", "GB/s", "copy%", "vs ref", "graph us"))
    for r in rows:
        g = r.get("graph_us")
        print(fmt.format(r["op"], r["case"], r["dtype"], r["backend"], f"{r['median_us']:.1f}",
                         f"{100 * (r['p90_us'] - r['p10_us']) / 2 / r['median_us']:.0f}", f"{r['gbps']:.1f}",
                         f"{100 * r['copy_fraction']:.0f}%", f"{r['speedup_vs_reference']:.1f}x",
                         "-" if g is None else f"{g:.1f}"))


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

    header = env.describe(device)
    copy_bw, _ = timing.copy_bandwidth(device)
    header["copy_gbps"] = copy_bw / 1e9
    run_id = uuid.uuid4().hex[:12]
    rows: list[dict] = []
    t0 = time.time()
    for i, case in enumerate(todo):
        progress(i, len(todo), case.id)
        rows += run_case(case, device, copy_bw, args.quick, args.all_isas)
    progress(len(todo), len(todo), "done")
    # the copy roofline again at the end: the fraction uses the mean of both measurements
    copy_end, _ = timing.copy_bandwidth(device)
    header["copy_gbps_end"] = copy_end / 1e9
    print_table(rows, header)

    e2e_rows = []
    if not args.no_e2e:
        try:
            from . import e2e
        except ImportError as e:
            print(f"\nend-to-end: not run ({e})")
        else:
            e2e_rows = e2e.compare(device, quick=args.quick)
            e2e.print_table(e2e_rows)

    os.makedirs(args.results_dir, exist_ok=True)
    name = header.get("gpu", header["cpu"]) if device == "cuda" else "cpu-" + header["cpu"]
    slug = "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")
    path = os.path.join(args.results_dir, f"{slug}.jsonl")
    with open(path, "a") as f:
        for r in rows + e2e_rows:
            f.write(json.dumps(dict(run_id=run_id, **header, **r)) + "\n")
    print(f"\n{len(rows) + len(e2e_rows)} results appended to {os.path.relpath(path)} (run {run_id}, "
          f"{time.time() - t0:.0f} s)")
    try:
        from .chart import chart

        png = chart(rows, e2e_rows, header, os.path.join(args.results_dir, f"{slug}.png"))
        print(f"chart: {os.path.relpath(png)}")
    except ImportError as e:
        print(f"chart skipped: {e} (pip install matplotlib)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
