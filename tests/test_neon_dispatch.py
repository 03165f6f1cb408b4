"""Run-time ISA choice on aarch64 (under qemu): the BF16 table only where the CPU has the BF16 extension, the
plain NEON table otherwise, and the default table runs everywhere."""
import pytest
import torch

import lfm25_kernels as L
from lfm25_kernels import ops, reference as R

import neon
from conftest import assert_close

pytestmark = pytest.mark.neon


def conv_update(isa: str, cpu: str):
    g = torch.Generator().manual_seed(0)
    bcx, w, st = (torch.randn(4, 3 * 40, generator=g).bfloat16(), torch.randn(40, 3, generator=g).bfloat16(),
                  torch.randn(4, 2, 40, generator=g).bfloat16())
    ref = R.short_conv_update(bcx, w, st.clone())
    with ops.launcher(neon.launcher(isa, cpu)):
        y = L.short_conv_update(bcx, w, st)
    assert_close(y, ref, f"{isa} on {cpu}")


@neon.skip_without_tools()
def test_bf16_table_only_where_the_cpu_has_bf16():
    conv_update("neon_bf16", "max")                 # qemu's max CPU has FEAT_BF16
    conv_update("", "cortex-a72")                   # the default table on an ARMv8.0 core (Raspberry Pi 4)
    conv_update("neon", "cortex-a72")
    with pytest.raises(ValueError, match="ISA 'neon_bf16' is not available on this CPU"):
        conv_update("neon_bf16", "cortex-a72")
