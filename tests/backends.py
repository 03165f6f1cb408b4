"""Every place an op can run, as test parameters: each CPU kernel table of this machine, the aarch64 kernels
under qemu (tests/neon), and the CUDA kernels when a GPU is present. Tests build inputs on the CPU, move them
to `backend.device`, run the op inside `backend.context()` and compare with reference.py on the CPU."""
from __future__ import annotations

import contextlib
import os
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

    def __repr__(self):
        return self.name


def _cpu(isa: str) -> Backend:
    return Backend(f"cpu-{isa}", "cpu", lambda: ops.cpu_isa(isa))


def _qemu(isa: str, cpu: str) -> Backend:
    import neon

    return Backend(f"qemu-{cpu}-{isa}", "cpu", lambda: ops.launcher(neon.launcher(isa, cpu)))


def qemu_backends(isas=("neon_bf16", "neon", "portable"), cpu: str = "max") -> list:
    """aarch64 kernels under qemu `-cpu cpu`: NEON and the portable path (the second oracle) compiled for
    aarch64. "max" has every extension the tables use (BF16, the dot product, i8mm); the NEON tables choose
    linear_q's kernel by the extensions at run time, so its tests also run the neon table on CPUS_WITHOUT_I8MM.
    Without the tools they are skipped here and fail in CI, where .ci/run installs them."""
    import neon

    gone = neon.missing_tools()
    skip = [pytest.mark.skipif(bool(gone) and not os.environ.get("CI"), reason=f"NEON tests need {gone}")]
    tag = "" if cpu == "max" else f"{cpu}-"
    return [pytest.param(_qemu(isa, cpu), id=f"aarch64-{tag}{isa}", marks=[pytest.mark.neon, *skip]) for isa in isas]


# the dot product without i8mm (Cortex-A76, Neoverse N1), and neither (Cortex-A72: ARMv8.0, a Raspberry Pi 4)
CPUS_WITHOUT_I8MM = ("cortex-a76", "cortex-a72")


def all_backends() -> list:
    found = [pytest.param(_cpu(isa), id=f"cpu-{isa}") for isa in lfm25_kernels.available_isas()]
    found += qemu_backends()
    found.append(pytest.param(Backend("cuda", "cuda", contextlib.nullcontext), id="cuda",
                              marks=[pytest.mark.cuda, pytest.mark.skipif(
                                  not lfm25_kernels.cuda_available(), reason="no CUDA GPU or CUDA kernels")]))
    return found


BACKENDS = all_backends()


def to(backend: Backend, *tensors):
    out = tuple(None if t is None else t.to(backend.device) for t in tensors)
    return out if len(out) != 1 else out[0]


def randn(*shape, dtype=torch.float32, scale=1.0, gen=None):
    return (torch.randn(*shape, generator=gen) * scale).to(dtype)
