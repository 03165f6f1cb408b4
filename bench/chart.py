"""One PNG per run, one panel per question: how close each op comes to the copy bandwidth (our kernels, this
machine's table), how much faster it is than the best other implementation, and end-to-end tokens/s of each
engine. Value labels on every bar; log axes where the values span decades."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

OURS, AHEAD, BEHIND = "#1f4e9c", "#2e7d32", "#c62828"
ENGINE_COLORS = {"lfm25": ["#1f4e9c", "#4f83cc", "#9bbbe8", "#0b2a5b"], "llama.cpp": ["#d84315", "#f4511e", "#ffab91", "#8d2a0c"],
                 "transformers": ["#757575", "#bdbdbd"]}


def chart(rows: list[dict], e2e_rows: list[dict], header: dict, path: str) -> str:
    ours = [r for r in rows if r["backend"].startswith("lfm25")]
    main = ours[0]["backend"] if ours else None         # this machine's table: the first of ours per case
    cases = [r for r in ours if r["backend"] == main]
    e2e = [r for r in e2e_rows if r.get("unit") == "tok/s"]
    heights = [0.26 * len(cases) + 1.4] * 2 * bool(cases) + ([0.22 * len(e2e) + 1.8] if e2e else [])
    if not heights:
        return path
    fig, axes = plt.subplots(len(heights), 1, figsize=(12, sum(heights) + 0.8), squeeze=False,
                             gridspec_kw=dict(height_ratios=heights))
    axes = [a[0] for a in axes]
    dev = header.get("gpu", header["cpu"])
    fig.suptitle(f"lfm25-kernels on {dev}, {header['threads']} threads, commit {header['commit']}, "
                 f"{header['date'][:10]}", fontsize=11)
    if cases:
        names = [f"{r['op']}  {r['case']}  {r['dtype']}" for r in cases]
        _copy_panel(axes[0], names, cases, main, header)
        _peer_panel(axes[1], names, cases)
    if e2e:
        _e2e_panel(axes[-1], e2e)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _bars(ax, names: list[str], values: list[float], colors, labels: list[str]):
    y = range(len(names))
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_yticks(list(y))
    ax.set_yticklabels(names, fontsize=8)
    ax.invert_yaxis()
    for i, (v, text) in enumerate(zip(values, labels)):
        ax.text(v, i, " " + text, va="center", fontsize=7)
    ax.grid(axis="x", alpha=0.3)


def _copy_panel(ax, names, cases, main, header):
    pct = [100 * r["copy_fraction"] for r in cases]
    _bars(ax, names, pct, OURS, [f"{p:.0f} %" for p in pct])
    ax.axvline(100, color="black", linestyle="--", linewidth=1)
    ax.set_xlim(0, max(pct + [100]) * 1.15)
    ax.set_title(f"How close to the memory roofline? {main}: bytes moved / time, as % of the copy bandwidth "
                 f"measured in this run ({header['copy_gbps']:.1f} GB/s).\nHigher is better. Above 100 %: an op "
                 "that mostly reads skips the write-allocate a copy pays, or the caches serve a small case",
                 fontsize=9, loc="left")


def _peer_panel(ax, names, cases):
    s = [r["speedup_vs_best_peer"] for r in cases]
    _bars(ax, names, s, [AHEAD if x >= 1 else BEHIND for x in s], [f"{x:.2f}x vs {r['best_peer']}" for x, r in
                                                                   zip(s, cases)])
    ax.set_xscale("log")
    ax.axvline(1, color="black", linewidth=1)
    ax.set_xlim(min(s + [0.5]) / 1.5, max(s + [2]) * 4)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_title("Faster than the best other implementation (torch, causal-conv1d, flash-attn, or the reference)?"
                 "\nIts time / ours, log scale; green: ours faster. Higher is better", fontsize=9, loc="left")


def _e2e_panel(ax, rows):
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    count = {}
    colors = {}
    for e in engines:
        impl = next(r["label"] for r in rows if r["engine"] == e).split()[0].replace("lfm25_model", "lfm25")
        palette = ENGINE_COLORS.get(impl, ["#6a1b9a"])
        colors[e] = palette[count.get(impl, 0) % len(palette)]
        count[impl] = count.get(impl, 0) + 1
    h = 0.8 / len(engines)
    for j, e in enumerate(engines):
        vals = []
        for m in metrics:
            xs = [r["value"] for r in rows if r["engine"] == e and r["metric"] == m]
            vals.append(sorted(xs)[len(xs) // 2] if xs else 0)
        ys = [i - 0.4 + h * (j + 0.5) for i in range(len(metrics))]
        label = next(r["label"] for r in rows if r["engine"] == e)
        ax.barh(ys, vals, height=h * 0.95, color=colors[e], label=label)
        for y, v in zip(ys, vals):
            if v:
                ax.text(v, y, f" {v:.0f}" if v >= 10 else f" {v:.1f}", va="center", fontsize=7)
    ax.set_yticks(range(len(metrics)))
    ax.set_yticklabels(metrics, fontsize=9)
    ax.invert_yaxis()
    ax.set_xscale("log")
    top = max(r["value"] for r in rows)
    ax.set_xlim(min(r["value"] for r in rows) / 2, top * 3)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_title("End to end, LFM2.5-350M shapes, random weights: tokens/s, median over rounds, log scale."
                 "\nHigher is better", fontsize=9, loc="left")
