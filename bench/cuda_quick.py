"""Standalone GPU timing of the CUDA kernels at the issue's shapes, against a device copy of the same bytes and
against PyTorch (the unfused torch ops; SDPA with enable_gqa for decode attention).

  python bench/cuda_quick.py [--out results.jsonl] [--dtype bf16]

Each case is timed two ways: `cold` = median of single launches with CUDA events, the L2 flushed (a 256 MiB
write) before each; `graph` = a CUDA graph of 20 back-to-back calls, replayed, per call (warm L2, no launch
gaps: the decode-loop regime). GB/s counts the bytes an ideal kernel moves (each input read once, each output
written once); `copy` is a device copy of that many bytes (read + write), timed the same way.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import lfm25_kernels as L  # noqa: E402
from lfm25_kernels import reference as R  # noqa: E402

dev = "cuda"
_flush = None


def flush_l2():
    global _flush
    if _flush is None:
        _flush = torch.empty(256 << 20, dtype=torch.uint8, device=dev)
    _flush.fill_(1)


def time_cold(fn, reps=50) -> float:
    """Median microseconds of single calls with a cold L2."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        flush_l2()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3)
    return statistics.median(times)


def time_graph(fn, calls=20, reps=20) -> float | None:
    """Microseconds per call of a CUDA graph holding `calls` calls (None when the call cannot be captured)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(g):
            for _ in range(calls):
                fn()
    except Exception:  # noqa: BLE001  (torch baselines may not be capturable)
        return None
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e3 / calls)
    return statistics.median(times)


def copy_of(nbytes: int):
    src = torch.empty(max(nbytes // 2, 16), dtype=torch.uint8, device=dev).random_(0, 255)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


def rnd(*shape, dtype, scale=1.0):
    return (torch.randn(*shape, device=dev) * scale).to(dtype)


# ---- cases: (name, bytes, ours, {baseline name: fn}) ------------------------------------------------------
def short_conv_case(dt, B=8, T=4096, D=1024, K=3):
    bcx, w, st = rnd(B, T, 3 * D, dtype=dt), rnd(D, K, dtype=dt, scale=0.5), rnd(B, K - 1, D, dtype=dt)
    e = bcx.element_size()
    nbytes = e * (B * T * 4 * D + 2 * B * (K - 1) * D + D * K)

    def torch_unfused():  # gates and a depthwise conv1d as separate torch ops (no state update)
        b, c, x = bcx.split(D, dim=-1)
        u = (b * x).transpose(1, 2)
        z = F.conv1d(u, w.unsqueeze(1), padding=K - 1, groups=D)[..., :T]
        return c * z.transpose(1, 2)
    return f"short_conv {B}x{T} D={D}", nbytes, lambda: L.short_conv(bcx, w, st), {"torch unfused": torch_unfused}


def update_case(dt, B=256, D=1024, K=3):
    bcx, w, st = rnd(B, 3 * D, dtype=dt), rnd(D, K, dtype=dt, scale=0.5), rnd(B, K - 1, D, dtype=dt)
    idx = torch.randperm(B, device=dev).to(torch.int32)
    e = bcx.element_size()
    nbytes = e * (B * (4 * D + 2 * (K - 1) * D) + D * K)

    def torch_unfused():  # gather, gates, conv, scatter as torch ops
        b, c, x = bcx.split(D, dim=-1)
        win = torch.cat([st[idx.long()], (b * x).unsqueeze(1)], dim=1)
        y = c * (win.float() * w.float().t().unsqueeze(0)).sum(1).to(dt)
        st[idx.long()] = win[:, 1:]
        return y
    return f"short_conv_update batch {B}", nbytes, lambda: L.short_conv_update(bcx, w, st, state_indices=idx), \
        {"torch unfused": torch_unfused}


def append_case(dt, N=256, Hq=16, Hkv=8, d=64, L_max=4096):
    qkv = rnd(N, (Hq + 2 * Hkv) * d, dtype=dt)
    q, k, v = (t.view(N, -1, d) for t in qkv.split([Hq * d, Hkv * d, Hkv * d], dim=-1))
    qw, kw = rnd(d, dtype=dt), rnd(d, dtype=dt)
    kc, vc = rnd(N, L_max, Hkv, d, dtype=dt), rnd(N, L_max, Hkv, d, dtype=dt)
    pos = torch.randint(0, L_max, (N,), device=dev, dtype=torch.int32)
    slots = (torch.arange(N, device=dev, dtype=torch.int32) * L_max + pos).to(torch.int32)
    nbytes = qkv.element_size() * (2 * N * Hq * d + 4 * N * Hkv * d)
    args = (q, k, v, qw, kw, pos, kc, vc, slots)
    return f"qk_norm_rope_append {N} tokens", nbytes, lambda: L.qk_norm_rope_append(*args), \
        {"torch reference": lambda: R.qk_norm_rope_append(*args)}


def decode_case(dt, B, Lc, Hq=16, Hkv=8, d=64):
    q = rnd(B, Hq, d, dtype=dt)
    kc, vc = rnd(B, Lc, Hkv, d, dtype=dt), rnd(B, Lc, Hkv, d, dtype=dt)
    lens = torch.full((B,), Lc, dtype=torch.int32, device=dev)
    nbytes = q.element_size() * (2 * B * Lc * Hkv * d + 2 * B * Hq * d)
    qs, ks, vs = q.unsqueeze(2), kc.transpose(1, 2), vc.transpose(1, 2)
    return f"gqa_decode {B}x{Lc}", nbytes, lambda: L.gqa_decode(q, kc, vc, lens), \
        {"torch sdpa enable_gqa": lambda: F.scaled_dot_product_attention(qs, ks, vs, enable_gqa=True)}


def rms_case(dt, M=256, D=1024):
    x, r, w = rnd(M, D, dtype=dt), rnd(M, D, dtype=dt), rnd(D, dtype=dt)
    nbytes = x.element_size() * (4 * M * D + D)
    return f"rms_norm {M}x{D} + residual", nbytes, lambda: L.rms_norm(x, w, 1e-5, residual=r), \
        {"torch reference": lambda: R.rms_norm(x, w, 1e-5, r)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "cuda_quick.jsonl"))
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    args = ap.parse_args()
    if not L.cuda_available():
        sys.exit("cuda_quick: needs a GPU and lfm25_kernels built with CUDA")
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                            text=True).stdout.strip()
    meta = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=commit,
                gpu=torch.cuda.get_device_name(), sms=torch.cuda.get_device_properties(0).multi_processor_count,
                torch=torch.__version__, dtype=args.dtype)
    big = copy_of(2 << 30)
    peak = (2 << 30) / (time_cold(big, reps=10) * 1e-6) / 1e9
    print(f"{meta['gpu']}, {meta['sms']} SMs, commit {commit}: device copy {peak:.0f} GB/s (2 GiB, read + write)")
    cases = [short_conv_case(dt), update_case(dt), append_case(dt), decode_case(dt, 64, 4096),
             decode_case(dt, 1, 32768), decode_case(dt, 1, 4096), decode_case(dt, 256, 512), rms_case(dt)]
    rows = []
    print(f"{'case':34} {'MB':>7} {'copy us':>8} {'ours cold':>10} {'GB/s':>6} {'%copy':>6} {'graph':>8}  "
          "baselines (cold us, speedup)")
    for name, nbytes, ours, baselines in cases:
        copy_us = time_cold(copy_of(nbytes))
        cold, graph = time_cold(ours), time_graph(ours)
        base = {b: time_cold(fn, reps=20) for b, fn in baselines.items()}
        gbs = nbytes / (cold * 1e-6) / 1e9
        row = dict(meta, case=name, bytes=nbytes, copy_us=copy_us, cold_us=cold, graph_us=graph, gbs=gbs,
                   frac_copy=copy_us / cold, peak_copy_gbs=peak, baselines=base)
        rows.append(row)
        bs = ", ".join(f"{b} {t:.1f} ({t / cold:.1f}x)" for b, t in base.items())
        gs = f"{graph:8.1f}" if graph is not None else "       -"
        print(f"{name:34} {nbytes / 1e6:7.2f} {copy_us:8.1f} {cold:10.1f} {gbs:6.0f} {100 * copy_us / cold:5.0f}% "
              f"{gs}  {bs}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(f"results appended to {args.out}")


if __name__ == "__main__":
    main()
