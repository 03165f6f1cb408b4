"""End to end: the thin model (lfm25_model) against transformers' Lfm2ForCausalLM on the same random
LFM2.5-350M weights: prefill tokens/s, decode tokens/s at batch 1, 8 and 64, time to first token, peak memory."""
from __future__ import annotations


def run(device: str, quick: bool = False) -> list[dict]:
    try:
        import lfm25_model  # noqa: F401
        from lfm25_model import bench as model_bench
    except ImportError as e:
        print(f"\nend-to-end: not run ({e})")
        return []
    return model_bench.compare(device, quick=quick)


def print_table(rows: list[dict]):
    if not rows:
        return
    fmt = "{:<40} {:>14} {:>14} {:>7} {:>9}"
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    print("\n" + fmt.format("end to end (" + rows[0]["dtype"] + ")", impls[0][:14], impls[-1][:14], "unit", "ratio"))
    for metric in dict.fromkeys(r["metric"] for r in rows):
        vals = {r["impl"]: r for r in rows if r["metric"] == metric}
        a, b = vals.get(impls[0]), vals.get(impls[-1])
        ratio = a["value"] / b["value"] if a and b else float("nan")
        if a and a["unit"] != "tok/s":
            ratio = 1 / ratio                      # lower is better: time, memory
        print(fmt.format(metric, f"{a['value']:.1f}" if a else "-", f"{b['value']:.1f}" if b else "-",
                         (a or b)["unit"], f"{ratio:.2f}x"))
