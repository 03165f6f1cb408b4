"""lfm25_kernels.memory: packed weights on transparent huge pages, densely inside weight_memory(), each in its own
mapping outside; the same results as weights in ordinary memory."""
from __future__ import annotations

import mmap
import sys

import pytest
import torch
from torch import Tensor

import lfm25_kernels as L
from lfm25_kernels import memory

from conftest import assert_equal

HUGE = 2 << 20


def thp_mode() -> str | None:
    """The kernel's transparent huge page mode ("always", "madvise", "never"), None where there is none."""
    try:
        text = open("/sys/kernel/mm/transparent_hugepage/enabled").read()
    except OSError:
        return None
    return text.split("[")[1].split("]")[0]


HAS_THP = sys.platform == "linux" and hasattr(mmap, "MADV_HUGEPAGE") and thp_mode() in ("always", "madvise")
needs_thp = pytest.mark.skipif(not HAS_THP, reason="no transparent huge pages to ask for on this system")


def mapping(t: Tensor) -> tuple[int, int]:
    """(start, AnonHugePages bytes) of the mapping that holds t's first byte (/proc/self/smaps)."""
    addr, start = t.data_ptr(), None
    for line in open("/proc/self/smaps"):
        head = line.split()[0]
        if "-" in head and ":" not in head:   # a mapping's first line: start-end perms ...
            lo, hi = (int(v, 16) for v in head.split("-"))
            start = lo if lo <= addr < hi else None
        elif start is not None and head == "AnonHugePages:":
            return start, int(line.split()[1]) * 1024
    raise AssertionError(f"no mapping holds {addr:#x}")


def huge_bytes(t: Tensor) -> int:
    return mapping(t)[1]


@pytest.mark.parametrize("dtype", [torch.uint8, torch.bfloat16])
def test_zeros_are_zero_in_and_outside_a_block(dtype):
    with memory.weight_memory():
        a = memory.zeros((3, 5, 7), dtype)
    b = memory.zeros((3, 5, 7), dtype)
    for t in (a, b):
        assert t.shape == (3, 5, 7) and t.dtype == dtype and t.is_contiguous() and not t.any()
        assert t.data_ptr() % 64 == 0


@needs_thp
def test_weights_of_a_block_share_huge_pages():
    with memory.weight_memory():
        ts = [memory.zeros((3 << 20) + 100, torch.uint8) for _ in range(3)]
        for t in ts:
            t.fill_(1)
    assert ts[0].data_ptr() % HUGE == 0
    assert [t.data_ptr() - ts[0].data_ptr() for t in ts] == [0, (3 << 20) + 128, 2 * ((3 << 20) + 128)]
    assert huge_bytes(ts[0]) >= 4 * HUGE   # the 9 MiB used lie on huge pages but for part of the last one
    assert all(bool((t == 1).all()) for t in ts)


@needs_thp
def test_a_weight_outside_a_block_backs_only_its_whole_huge_pages():
    t = memory.zeros((5 << 20) + 100, torch.uint8)
    t.fill_(1)
    assert t.data_ptr() % HUGE == 0 and huge_bytes(t) == 2 * HUGE


def test_blocks_nest_and_restore_the_outer_slab():
    with memory.weight_memory():
        a = memory.zeros(100, torch.uint8)
        with memory.weight_memory():
            memory.zeros(100, torch.uint8)
        b = memory.zeros(100, torch.uint8)
    if HAS_THP:
        assert b.data_ptr() == a.data_ptr() + 128
    assert getattr(memory._local, "slab", None) is None


@needs_thp
@pytest.mark.parametrize("fmt", ["int8", "q4"])
def test_quantized_weights_on_huge_pages_give_the_same_bits(fmt):
    gen = torch.Generator().manual_seed(0)
    lo, hi = L.reference.QUANT_RANGE[fmt]
    parts = [(torch.randint(lo, hi + 1, (2048, 1024), generator=gen, dtype=torch.int8),
              torch.rand(2048, 32, generator=gen).half() / 64) for _ in range(2)]
    with memory.weight_memory():
        q = L.QuantizedWeight.from_codes(fmt, 1024, *parts[0], *parts[1])
    assert huge_bytes(q.data) >= q.nbytes - HUGE
    plain = L.QuantizedWeight(q.data.clone(), fmt, 2048, 1024, True)
    x = torch.randn(3, 1024)
    assert_equal(L.linear_q(x, q), L.linear_q(x, plain), "huge pages vs a clone")


@needs_thp
@pytest.mark.parametrize("quantize,saved", [(None, False), ("q4", False), ("q4", True)])
def test_a_model_packs_its_weights_densely_on_huge_pages(quantize, saved, tmp_path):
    """All of a model's packed or quantized weights in a few slabs of huge pages (bf16: where the x86 tables
    pack them), also when loaded from a checkpoint of save_quantized."""
    from lfm25_model import Lfm2ForCausalLM
    from lfm25_model.config import Lfm2Config

    cfg = Lfm2Config.from_dict(dict(vocab_size=4096, hidden_size=512, intermediate_size=1536, num_hidden_layers=4,
                                    num_attention_heads=8, num_key_value_heads=2, layer_types=[
                                        "conv", "full_attention", "conv", "full_attention"]))
    m = Lfm2ForCausalLM.random(cfg, quantize=quantize, dtype=torch.float32 if quantize else torch.bfloat16)
    if saved:
        m.save_quantized(str(tmp_path))
        m = Lfm2ForCausalLM.from_pretrained(str(tmp_path))
    weights = [p.weight for p in m.named_weights.values() if isinstance(p, L.Projection) and (p.quantized or p.packed)]
    if not weights:
        pytest.skip("this CPU's tables do not pack bf16 weights")
    slabs = {}
    for w in weights:
        start, huge = mapping(w.data)
        slabs[start] = huge
    used = sum(w.data.nbytes for w in weights)
    assert len(slabs) <= -(-used // (64 << 20)) + 1
    assert sum(slabs.values()) >= used - len(slabs) * HUGE
