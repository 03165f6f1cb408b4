"""python -m bench.report RESULTS.jsonl [--run RUN_ID]: the README's performance section, as Markdown, from
one run of a results file (the latest by default)."""
from __future__ import annotations

import argparse
import json
import sys


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.report")
    ap.add_argument("results")
    ap.add_argument("--run", default=None)
    ap.add_argument("--command", default="python -m bench", help="the command that produced the results")
    ap.add_argument("--ops-only", action="store_true", help="leave out the end-to-end rows")
    args = ap.parse_args(argv)
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    run = args.run or rows[-1]["run_id"]
    rows = [r for r in rows if r["run_id"] == run]
    h = rows[0]
    dev = h.get("gpu", h["cpu"])
    print(f"Measured on {dev} ({h['device']}, {h['threads']} threads, copy bandwidth "
          f"{h['copy_gbps']:.1f} GB/s measured in the same run), commit `{h['commit']}`, {h['date'][:10]}, "
          f"torch {h['torch']}; produced by `{args.command}`. Medians; GB/s counts each input read once and each "
          "output written once; \"copy\" is that rate over the copy bandwidth (above 100 % where an op mostly "
          "reads: a copy's writes also cost a read, write-allocate). Median µs: lower is better; the rest: higher is "
          "better.\n")
    print("| op | case | dtype | backend | median µs | GB/s | of copy | vs reference |")
    print("|---|---|---|---|---:|---:|---:|---:|")
    for r in rows:
        if "op" in r:
            print(f"| {r['op']} | {r['case']} | {r['dtype']} | {r['backend']} | {r['median_us']:.1f} | "
                  f"{r['gbps']:.1f} | {100 * r['copy_fraction']:.0f}% | {r['speedup_vs_reference']:.1f}x |")
    e2e = [r for r in rows if ("metric" in r or "unavailable" in r) and not args.ops_only]
    if any("engine" in r for r in e2e):
        from .e2e import print_table

        print("\nEnd to end, LFM2.5-350M shapes, random weights:\n")
        print_table([r for r in e2e if "engine" in r], markdown=True)
    elif e2e:                                   # runs recorded before the engines had names
        print(f"\nEnd to end, LFM2.5-350M shapes, random weights, {e2e[0]['dtype']}:\n")
        print("| metric | implementation | value |")
        print("|---|---|---:|")
        for r in e2e:
            print(f"| {r['metric']} | {r['impl']} | {r['value']:.1f} {r['unit']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
