"""Instructions executed per output element by the aarch64 kernels under qemu-aarch64, NEON against the
portable C++ path compiled with the same flags, at the LFM2.5-350M shapes: the ARM proxy for speed on this x86
machine.

  python -m bench.neon_insn [--dtype bf16,fp16,fp32]

Each count is the whole runner process executing one launch minus the same process answering the same
request without running the kernel (qemu -d in_asm,exec,nochain: every executed translation block, weighted
by its instruction count). One thread, so the count is exact and repeatable."""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import lfm25_kernels as L  # noqa: E402
from lfm25_kernels import ops  # noqa: E402

import neon  # noqa: E402  (tests/neon: the runner and its request format)

from . import cases as C  # noqa: E402

# LFM2.5-350M widths; token and batch counts kept small enough for an instruction trace (per-element counts
# do not depend on them beyond the per-call overhead, which they amortise)
SHAPES = {
    "short_conv": ("prefill 1x64 tokens, D=1024, K=3", dict(B=1, T=64, D=1024, K=3), lambda s: s["T"] * s["D"]),
    "short_conv_update": ("decode batch 16, D=1024, K=3", dict(B=16, D=1024, K=3), lambda s: s["B"] * s["D"]),
    "qk_norm_rope_append": ("16 tokens, 16/8 heads, d=64", dict(N=16, Hq=16, Hkv=8, d=64, L=64),
                            lambda s: s["N"] * (s["Hq"] + 2 * s["Hkv"]) * s["d"]),
    "gqa_decode": ("batch 1 x 512 cached, 16/8 heads, d=64", dict(B=1, L=512, Hq=16, Hkv=8, d=64),
                   lambda s: s["B"] * s["L"] * s["Hkv"] * s["d"] * 2),
    "rms_norm": ("16 rows + residual, D=1024", dict(M=16, D=1024, residual=True), lambda s: s["M"] * s["D"]),
}
_EXEC = re.compile(rb"^Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/")
_INSN = re.compile(rb"^0x([0-9a-f]+):\s")


def count(request: bytes) -> int:
    """Guest instructions executed by the runner for this request (process start to exit)."""
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "q.log")
        subprocess.run([neon.QEMU, "-cpu", "max", "-d", "in_asm,exec,nochain", "-D", log, str(neon.runner_binary())],
                       input=request, stdout=subprocess.DEVNULL, check=True)
        sizes: dict[int, int] = {}
        block: int | None = None
        total = 0
        with open(log, "rb") as f:
            for line in f:
                m = _EXEC.match(line)
                if m:
                    total += sizes.get(int(m.group(1), 16), 0)
                    continue
                if line.startswith(b"IN:"):
                    block = None
                    continue
                m = _INSN.match(line)
                if m:
                    pc = int(m.group(1), 16)
                    if block is None:
                        block = pc
                        sizes[block] = 0
                    sizes[block] += 1
    return total


def captured(op: str, dtype: str, shape: dict):
    case = C.Case(op, "insn", dtype, shape)
    kw = C.make_inputs(case)
    got = {}

    def grab(name, params, tensors):
        params.num_threads = 1
        got.update(params=params, tensors=tensors)
    with ops.launcher(grab):
        getattr(L, op)(**kw)
    return got["params"], got["tensors"]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.neon_insn")
    ap.add_argument("--dtype", default="bf16,fp16,fp32")
    ap.add_argument("--ops", default=",".join(SHAPES))
    args = ap.parse_args(argv)
    print("| op | shape | dtype | portable insn/element | NEON | NEON+BF16 | portable / best NEON |")
    print("|---|---|---|---:|---:|---:|---:|")
    for op in args.ops.split(","):
        label, shape, elements = SHAPES[op]
        for dt in args.dtype.split(","):
            params, tensors = captured(op, dt, shape)
            base = count(neon.encode("portable", 255, params, tensors))
            per = {isa: (count(neon.encode(isa, neon.OPS[op], params, tensors)) - base) / elements(shape)
                   for isa in ("portable", "neon", "neon_bf16")}
            best = min(per["neon"], per["neon_bf16"])
            print(f"| {op} | {label} | {dt} | {per['portable']:.1f} | {per['neon']:.1f} | {per['neon_bf16']:.1f} | "
                  f"{per['portable'] / best:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
