"""Shared test configuration: hypothesis profiles, the one tolerance table, comparison helpers."""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# `ci`: bounded and derandomized (the same cases every run); `thorough`: long local runs; `dev`: quick.
settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=600, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", max_examples=10, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Kernel against reference.py: both compute in fp32 and round once, but sum in different orders (and the
# kernels use fma), so an output may land one ulp of its dtype apart: bf16 has 8 significant bits (ulp <=
# 2^-7 relative), fp16 11 (2^-10).
TOLERANCE = {
    torch.float32: dict(atol=2e-5, rtol=2e-5),
    torch.float16: dict(atol=2e-3, rtol=2e-3),
    torch.bfloat16: dict(atol=1e-2, rtol=1.6e-2),
}

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
# (activations, KV cache) dtypes of the attention ops: the same, or a 16-bit cache under fp32 activations
KV_DTYPES = [(d, d) for d in DTYPES] + [(torch.float32, torch.float16), (torch.float32, torch.bfloat16)]


def assert_close(actual: torch.Tensor, expected: torch.Tensor, msg: str = ""):
    """actual ~ expected within the dtype's tolerance; NaN never passes."""
    assert actual.dtype == expected.dtype, f"{msg}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{msg}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    a, e = actual.cpu().float(), expected.cpu().float()
    assert not a.isnan().any(), f"{msg}: NaN in output"
    torch.testing.assert_close(a, e, **TOLERANCE[actual.dtype], msg=lambda m: f"{msg}: {m}")


def assert_equal(actual: torch.Tensor, expected: torch.Tensor, msg: str = ""):
    """Bit-exact equality (the contract promises it: states, chunked prefill, update vs prefill)."""
    a, e = actual.cpu(), expected.cpu()
    assert a.dtype == e.dtype and a.shape == e.shape, f"{msg}: {a.dtype}{tuple(a.shape)} vs {e.dtype}{tuple(e.shape)}"
    same = a.view(torch.uint8 if a.element_size() == 1 else torch.int16 if a.element_size() == 2 else torch.int32) \
        == e.view(torch.uint8 if e.element_size() == 1 else torch.int16 if e.element_size() == 2 else torch.int32)
    if not bool(same.all()):
        bad = (~same).nonzero()[:5].tolist()
        raise AssertionError(f"{msg}: not bit-exact at {bad} (of {int((~same).sum())} elements)")


def pytest_report_header(config):
    import lfm25_kernels

    return (f"lfm25_kernels: CPU ISAs {lfm25_kernels.available_isas()}, CUDA kernels "
            f"{'built' if lfm25_kernels._C.with_cuda else 'not built'}, GPU "
            f"{'present' if torch.cuda.is_available() else 'absent'}, hypothesis profile "
            f"{settings._current_profile}")
