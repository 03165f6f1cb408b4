"""The CUDA kernels on the CPU: tests/cuda_cpu/runner.cpp compiles csrc/cuda unchanged (g++ -DLFM25_CUDA_CPU)
against the runtime of runtime.cpp, where every GPU thread is a fiber, and runs as one long-lived process; test
launches are sent to it through lfm25_kernels.ops.launcher with the protocol of tests/neon, so every op test
also runs the CUDA kernels. The device (SM count, memory pools), an injected allocation failure and the race
probe are settings of each request (Device).

Without g++ on an x86-64 host the cuda-cpu tests are skipped locally and fail in CI (CI=true)."""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import neon
from lfm25_kernels import _C

ROOT = Path(__file__).resolve().parents[2]
CXX = os.environ.get("CXX", "g++")


def missing_tools() -> list[str]:
    gone = [] if shutil.which(CXX) else [CXX]
    return gone if platform.machine() == "x86_64" else [*gone, "an x86-64 host (the fibers switch in x86-64 assembly)"]


def _sources() -> list[Path]:
    here = ROOT / "tests/cuda_cpu"
    return sorted([ROOT / "csrc/status.cpp", *(ROOT / "csrc/include/lfm25").glob("*.h"),
                   *(ROOT / "csrc/cuda").glob("*"), *here.glob("*.cpp"), *here.glob("*.h"),
                   *(here / "include").glob("*.h"), here / "build.sh"])


_build_lock = threading.Lock()


def binaries() -> Path:
    """Build (once per source state) the folder holding `runner` and `toys`."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in _sources() if p.is_file())).hexdigest()[:16]
    out = ROOT / "build" / "cuda-cpu" / digest
    with _build_lock:
        if not out.exists():
            gone = missing_tools()
            if gone:
                raise RuntimeError(f"cuda-cpu tests need {gone}")
            tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run(["bash", str(ROOT / "tests/cuda_cpu/build.sh"), str(tmp)], check=True)
            try:
                tmp.rename(out)
            except OSError:   # another test process built the same sources meanwhile
                if not out.exists():
                    raise
                shutil.rmtree(tmp)
    return out


@dataclass(frozen=True)
class Device:
    """What the kernels run on: `sms` multiprocessors of `threads` resident threads each (every launch
    configuration derives from them), stream-ordered allocation or not, cudaMallocAsync failing, race probe."""
    sms: int = 132
    threads: int = 2048
    pools: bool = True
    fail_alloc: bool = False
    probe: bool = True

    def settings(self) -> str:
        return (f"sms={self.sms} threads={self.threads} pools={int(self.pools)} fail_alloc={int(self.fail_alloc)} "
                f"probe={int(self.probe)}")


class Runner(neon.Runner):
    """The runner process: call()'s `isa` carries a Device's settings, its answer is the launch log of
    runtime.h (take_log). A runtime check that aborts the process shows on the test's captured stderr."""

    def __init__(self):
        super().__init__("cuda-cpu")

    def command(self) -> list[str]:
        return [str(binaries() / "runner")]


_runner = Runner()


def launcher(device: Device = Device(), log: list[str] | None = None):
    """A launcher for lfm25_kernels.ops.launcher: every op with a CUDA kernel runs it on `device`; its launch
    log is appended to `log`. An op without one (linear: torch's GEMM serves it on CUDA) skips the test."""
    def run(op, params, tensors):
        if op not in _C.cuda_ops:
            pytest.skip(f"{op} has no CUDA kernel (torch serves it on CUDA)")
        text = _runner.call(device.settings(), op, params, tensors)
        if log is not None:
            log.append(text)
    return run


def toy(name: str, probe: bool = False, stdin: bytes = b"") -> subprocess.CompletedProcess:
    """Run one case of toys.cpp."""
    return subprocess.run([str(binaries() / "toys"), name, *(["probe"] if probe else [])], input=stdin,
                          capture_output=True, timeout=300)
