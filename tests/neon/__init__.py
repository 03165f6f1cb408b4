"""The aarch64 kernels under emulation: tests/neon/runner.cpp is cross-built with aarch64-linux-gnu-g++ and
run under qemu-aarch64 as one long-lived process; test launches are sent to it through
lfm25_kernels.ops.launcher, so every op test also runs the NEON (and aarch64 portable) kernels unchanged.

Without the cross compiler or qemu the NEON backends are skipped locally and fail in CI (CI=true)."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

from lfm25_kernels import _C

ROOT = Path(__file__).resolve().parents[2]
CXX = os.environ.get("LFM25_AARCH64_CXX", "aarch64-linux-gnu-g++")
QEMU = os.environ.get("LFM25_QEMU_AARCH64", "qemu-aarch64")
OPS = {op: code for code, op in enumerate(_C.ops)}   # op codes of runner.cpp: the index in the op list
THREADS = 2                                         # exercise the thread pool


def missing_tools() -> list[str]:
    return [t for t in (CXX, QEMU) if shutil.which(t) is None]


def missing_tools_message() -> str:
    return (f"NEON tests need {' and '.join(missing_tools())}: apt-get install g++-aarch64-linux-gnu qemu-user "
            "(or set LFM25_AARCH64_CXX and LFM25_QEMU_AARCH64)")


def skip_without_tools():
    """Skips a test where the cross compiler or qemu is missing, except in CI (CI=true), where it fails."""
    import pytest

    return pytest.mark.skipif(bool(missing_tools()) and not os.environ.get("CI"), reason=missing_tools_message())


def _sources() -> list[Path]:
    return sorted([ROOT / "tests/neon/runner.cpp", ROOT / "tests/neon/build.sh", ROOT / "csrc/status.cpp",
                   *(ROOT / "csrc/include/lfm25").glob("*.h"), *(ROOT / "csrc/cpu").rglob("*")])


_build_lock = threading.Lock()


def runner_binary() -> Path:
    """Build (once per source state) and return the aarch64 runner."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in _sources() if p.is_file())).hexdigest()[:16]
    out = ROOT / "build" / "neon-qemu" / f"runner-{digest}"
    with _build_lock:
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            subprocess.run(["bash", str(ROOT / "tests/neon/build.sh"), str(tmp)], check=True)
            tmp.rename(out)
    return out


def translated_code(cpu: str, request: bytes) -> str:
    """qemu's disassembly (-d in_asm) of the guest code it translates while the runner answers one request
    under `-cpu cpu`: the instructions that ran, for the tests of the run-time kernel choice."""
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "in_asm.log"
        subprocess.run([QEMU, "-cpu", cpu, "-d", "in_asm", "-D", str(log), str(runner_binary())], input=request,
                       stdout=subprocess.DEVNULL, check=True)
        return log.read_text(errors="replace")


def _span(t: torch.Tensor) -> tuple[int, int]:
    """(address, bytes) of the memory a strided view can touch."""
    if t.numel() == 0:
        return t.data_ptr(), 0
    last = sum((s - 1) * st for s, st in zip(t.shape, t.stride()))
    return t.data_ptr(), (last + 1) * t.element_size()


class Runner:
    """One long-lived process speaking runner.cpp's protocol: here qemu-aarch64 running the runner for CPU
    model `cpu` (tests/cuda_cpu runs its own runner through a subclass)."""

    def __init__(self, cpu: str):
        self.cpu = cpu
        self.proc = None
        self.lock = threading.Lock()

    def command(self) -> list[str]:
        if missing_tools():
            raise RuntimeError(missing_tools_message())
        return [QEMU, "-cpu", self.cpu, str(runner_binary())]

    def _start(self):
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def call(self, isa: str, op: str, params, tensors: dict[str, torch.Tensor]) -> str:
        """Run op; returns the runner's message, raises ValueError with it when the status is not ok."""
        params.num_threads = THREADS
        spans = {name: _span(t) for name, t in tensors.items()}
        outputs = {name for name, _, writes in type(params).fields if writes}
        with self.lock:
            self._start()
            self.proc.stdin.write(encode(isa, OPS[op], params, tensors))
            self.proc.stdin.flush()
            read = self.proc.stdout.read
            head = read(8)
            if len(head) < 8:
                raise RuntimeError(f"{self.command()[0]} runner ({self.cpu}) died with code {self.proc.wait()} "
                                   f"running {op} (buffers in the order sent: {', '.join(tensors)})")
            status, mlen = struct.unpack("<iI", head)
            text = read(mlen).decode()
            wrote_inputs = []
            for name, (addr, n) in spans.items():
                data = read(n)
                if name in outputs and n:
                    ctypes.memmove(addr, data, n)
                elif name not in outputs and data != ctypes.string_at(addr, n):
                    wrote_inputs.append(name)
        if wrote_inputs:
            raise AssertionError(f"{op} wrote to its inputs {wrote_inputs}")
        if status != 0:
            raise ValueError(text)
        return text

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def encode(isa: str, op_code: int, params, tensors: dict[str, torch.Tensor]) -> bytes:
    """One request for runner.cpp (its header comment has the format)."""
    raw = params.to_bytes()
    offsets = type(params).pointer_offsets
    msg = [struct.pack("<II", op_code, len(isa)), isa.encode(), struct.pack("<I", len(raw)), raw,
           struct.pack("<I", len(tensors))]
    for name, t in tensors.items():
        addr, n = _span(t)
        msg += [struct.pack("<IQQ", offsets[name], 0, n), ctypes.string_at(addr, n)]
    return b"".join(msg)


_runners: dict[str, Runner] = {}


def runner(cpu: str) -> Runner:
    if cpu not in _runners:
        _runners[cpu] = Runner(cpu)
    return _runners[cpu]


def launcher(isa: str, cpu: str):
    """A launcher for lfm25_kernels.ops.launcher: every op runs the aarch64 `isa` table under qemu `-cpu`."""
    return lambda op, params, tensors: runner(cpu).call(isa, op, params, tensors)
