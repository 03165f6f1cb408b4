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
    fmt = "{:<34} {:<24} {:>12}"
    print("\n" + fmt.format("end to end", "implementation", "tokens/s"))
    for r in rows:
        print(fmt.format(r["metric"], r["impl"], f"{r['tokens_per_s']:.1f}"))
