"""One PNG per run: achieved bandwidth of each op and backend against the copy roofline, and end-to-end
tokens/s when measured."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLORS = {"reference": "#9e9e9e", "torch sdpa": "#8d6e63", "torch unfused": "#8d6e63", "torch F.linear": "#8d6e63",
          "causal-conv1d + torch gates": "#8d6e63", "flash-attn": "#a1887f"}


def _color(backend: str) -> str:
    if backend in COLORS:
        return COLORS[backend]
    return "#1565c0" if "portable" not in backend else "#64b5f6"


def chart(rows: list[dict], e2e_rows: list[dict], header: dict, path: str) -> str:
    cases = list(dict.fromkeys((r["op"], r["case"], r["dtype"]) for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    e2e_rows = [r for r in e2e_rows if r["unit"] == "tok/s"]
    n_panels = 2 if e2e_rows else 1
    fig, axes = plt.subplots(n_panels, 1, figsize=(13, 0.42 * len(cases) * max(1, len(backends) / 2) + 2.5 +
                                                   (3 if e2e_rows else 0)), squeeze=False)
    ax = axes[0][0]
    height = 0.8 / len(backends)
    for j, b in enumerate(backends):
        ys, xs = [], []
        for i, c in enumerate(cases):
            r = next((r for r in rows if (r["op"], r["case"], r["dtype"]) == c and r["backend"] == b), None)
            if r:
                ys.append(i + j * height)
                xs.append(r["gbps"])
        ax.barh(ys, xs, height=height, color=_color(b), label=b, alpha=0.9 if j == 0 or "lfm25" in b else 0.7)
    copy = header["copy_gbps"]
    ax.axvline(copy, color="#d32f2f", linestyle="--", linewidth=1.5, label=f"copy roofline {copy:.0f} GB/s")
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(cases))])
    ax.set_yticklabels([f"{op}  {case}  {dt}" for op, case, dt in cases], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("achieved GB/s (bytes each op must move / median time)")
    dev = header.get("gpu", header["cpu"])
    ax.set_title(f"lfm25-kernels on {dev} ({header['threads']} threads) - commit {header['commit']}, "
                 f"{header['date'][:10]}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="x", alpha=0.3)
    if e2e_rows:
        ax2 = axes[1][0]
        labels = list(dict.fromkeys(r["metric"] for r in e2e_rows))
        impls = list(dict.fromkeys(r["impl"] for r in e2e_rows))
        h = 0.8 / len(impls)
        for j, impl in enumerate(impls):
            vals = [next((r["value"] for r in e2e_rows if r["metric"] == m and r["impl"] == impl), 0) for m in labels]
            ax2.barh([i + j * h for i in range(len(labels))], vals, height=h, label=impl,
                     color="#1565c0" if "lfm25" in impl else "#9e9e9e")
        ax2.set_yticks([i + 0.4 - h / 2 for i in range(len(labels))])
        ax2.set_yticklabels(labels, fontsize=8)
        ax2.invert_yaxis()
        ax2.set_xscale("log")
        ax2.set_xlabel("end-to-end tokens/s (log scale), LFM2.5-350M shapes, random weights")
        ax2.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        ax2.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
