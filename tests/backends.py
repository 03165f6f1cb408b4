"""Every place an op can run, as test parameters: each CPU kernel table of this machine, the aarch64 kernels
under qemu (tests/neon), the CUDA kernels on the CPU (tests/cuda_cpu) and on a GPU when one is present. Tests
build inputs on the CPU, move them to `backend.device`, run the op inside `backend.context()` and compare with
reference.py on the CPU."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, ContextManager

import pytest
import torch

import lfm25_kernels
from lfm25_kernels import ops


@dataclass(frozen=True)
class Backend:
    name: str
    device: str
    context: Callable[[], ContextManager]
    cuda: bool = False  # runs the CUDA kernels (which never read index values on the host)

    def __repr__(self):
        return self.name


def _cpu(isa: str) -> Backend:
    return Backend(f"cpu-{isa}", "cpu", lambda: ops.cpu_isa(isa))


def _qemu(isa: str, cpu: str) -> Backend:
    import neon

    return Backend(f"qemu-{cpu}-{isa}", "cpu", lambda: ops.launcher(neon.launcher(isa, cpu)))


def _cuda_cpu() -> Backend:
    import cuda_cpu

    return Backend("cuda-cpu", "cpu", lambda: ops.launcher(cuda_cpu.launcher()), cuda=True)


def qemu_backends(isas=("neon_bf16", "neon", "portable"), cpu: str = "max") -> list:
    """aarch64 kernels under qemu `-cpu cpu`: NEON and the portable path (the second oracle) compiled for
    aarch64. "max" has every extension the tables use (BF16, the dot product, i8mm); the NEON tables choose
    linear_q's kernel by the extensions at run time, so its tests also run the neon table on CPUS_WITHOUT_I8MM.
    Without the tools they are skipped here and fail in CI, where .ci/run installs them."""
    import neon

    tag = "" if cpu == "max" else f"{cpu}-"
    marks = [pytest.mark.neon, neon.skip_without_tools()]
    return [pytest.param(_qemu(isa, cpu), id=f"aarch64-{tag}{isa}", marks=marks) for isa in isas]


# the dot product without i8mm (Cortex-A76, Neoverse N1), and neither (Cortex-A72: ARMv8.0, a Raspberry Pi 4)
CPUS_WITHOUT_I8MM = ("cortex-a76", "cortex-a72")


def all_backends() -> list:
    import cuda_cpu

    found = [pytest.param(_cpu(isa), id=f"cpu-{isa}") for isa in lfm25_kernels.available_isas()]
    found += qemu_backends()
    # the CUDA kernels on the CPU (every thread a fiber, every launch run twice by the race probe): skipped here
    # without g++ on x86-64, failing in CI
    gone = cuda_cpu.missing_tools()
    found.append(pytest.param(_cuda_cpu(), id="cuda-cpu", marks=[pytest.mark.cuda_cpu, pytest.mark.skipif(
        bool(gone) and not os.environ.get("CI"), reason=f"cuda-cpu tests need {gone}")]))
    found.append(pytest.param(Backend("cuda", "cuda", contextlib.nullcontext, cuda=True), id="cuda",
                              marks=[pytest.mark.cuda, pytest.mark.skipif(
                                  not lfm25_kernels.cuda_available(), reason="no CUDA GPU or CUDA kernels")]))
    return found


BACKENDS = all_backends()


def to(backend: Backend, *tensors):
    out = tuple(None if t is None else t.to(backend.device) for t in tensors)
    return out if len(out) != 1 else out[0]


def randn(*shape, dtype=torch.float32, scale=1.0, gen=None):
    return (torch.randn(*shape, generator=gen) * scale).to(dtype)
