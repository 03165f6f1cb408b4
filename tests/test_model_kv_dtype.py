"""lfm25_model's KV caches in a 16-bit dtype under fp32 activations (kv_dtype): the logits of the prefill and of
the decode steps stay close to those of the fp32 caches, equal the reference backend's with the same caches,
the default follows the weights, and a bad kv_dtype is refused in words."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from lfm25_model import Lfm2ForCausalLM  # noqa: E402
from test_model import make_checkpoint  # noqa: E402
from test_quantized_model import rel_err  # noqa: E402

PROMPTS = [[5, 17, 42, 9, 100, 3, 77, 12, 150, 4, 4, 60, 2], [8, 21, 33]]
STEPS = [[19, 200], [7, 7], [64, 1], [3, 99]]   # teacher-forced decode tokens, one per prompt per step

# Bounds on the relative RMS difference of the logits from those of the fp32 caches: the cached keys and values
# rounded once to 16 bits (fp16 keeps 11 significant bits, bf16 8), carried through the layers after.
CLOSE_TO_FP32 = {torch.float16: 2e-3, torch.bfloat16: 1.5e-2}
# and from the reference backend's with the same caches: the kernels' fp32 sums in another order may round a
# cached key to the neighbouring 16-bit value, an effect far below the cache's own
CLOSE_TO_REFERENCE = 1e-4


def logits(model: Lfm2ForCausalLM, paged: bool = False) -> list[torch.Tensor]:
    """The prefill's last-token logits of PROMPTS, then those of each teacher-forced decode step of STEPS."""
    model.setup_caches(len(PROMPTS), 32, paged=paged, block_size=4)
    rows = torch.arange(len(PROMPTS), dtype=torch.int32)
    positions = torch.tensor([len(p) for p in PROMPTS], dtype=torch.int32)
    with torch.inference_mode():
        out = [model._prefill(torch.tensor([t for p in PROMPTS for t in p]), [len(p) for p in PROMPTS], rows,
                              last_only=True).clone()]
        for tokens in STEPS:
            out.append(model._decode(torch.tensor(tokens), rows, positions, model.caches.block_table).clone())
            positions = positions + 1
    return out


@pytest.mark.parametrize("kv_dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("paged", [False, True])
def test_16_bit_caches_keep_the_logits_close_to_fp32_caches(tmp_path, kv_dtype, paged):
    _, path = make_checkpoint(tmp_path, "h160-g5-k4")   # attention first and last, GQA 5
    fp32 = logits(Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32), paged)
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, kv_dtype=kv_dtype)
    got = logits(model, paged)
    assert {t.dtype for kv in model.caches.kv.values() for t in kv} == {kv_dtype}
    reference = logits(Lfm2ForCausalLM.from_pretrained(path, backend="reference", dtype=torch.float32,
                                                       kv_dtype=kv_dtype), paged)
    for i, (g, r, f) in enumerate(zip(got, reference, fp32)):
        assert g.dtype == torch.float32
        assert rel_err(g, r) <= CLOSE_TO_REFERENCE, f"step {i}: {rel_err(g, r)} from the reference backend"
        assert 0 < rel_err(g, f) <= CLOSE_TO_FP32[kv_dtype], f"step {i}: {rel_err(g, f)} from the fp32 caches"


@pytest.mark.parametrize("dtype, quantize, want", [
    (torch.float32, "int8", torch.float16),     # quantized weights under fp32 activations: llama.cpp's f16 cache
    (torch.float32, "q4", torch.float16),
    (torch.float32, None, torch.float32),
    (torch.bfloat16, None, torch.bfloat16),
    (torch.bfloat16, "q4", torch.bfloat16),
])
def test_the_default_kv_dtype_follows_the_weights(tmp_path, dtype, quantize, want):
    _, path = make_checkpoint(tmp_path, "h128-g2-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=dtype, quantize=quantize)
    assert model.kv_dtype == want
    model.generate([[3, 4, 5]], 2)
    assert {t.dtype for kv in model.caches.kv.values() for t in kv} == {want}
    assert {t.dtype for t in model.caches.conv.values()} == {dtype}


def test_a_new_kv_dtype_drops_the_caches(tmp_path):
    _, path = make_checkpoint(tmp_path, "h128-g2-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, quantize="int8", kv_dtype="fp32")
    first = model.generate([[3, 4, 5]], 4)
    caches = model.caches
    model.kv_dtype = torch.float32
    assert model.caches is caches                       # unchanged: kept
    model.kv_dtype = None                               # the default of a quantized fp32 model
    assert model.kv_dtype == torch.float16 and model.caches is None and not model.decode_graphs()
    assert len(model.generate([[3, 4, 5]], 4)[0]) == len(first[0])
    assert {t.dtype for kv in model.caches.kv.values() for t in kv} == {torch.float16}


@pytest.mark.parametrize("dtype, kv_dtype, exc, match", [
    (torch.bfloat16, torch.float16, ValueError, "kv_dtype must be torch.bfloat16 for torch.bfloat16 activations"),
    (torch.float16, torch.float32, ValueError, "kv_dtype must be torch.float16 for torch.float16 activations"),
    (torch.float32, "int8", ValueError, "dtype must be one of"),
    (torch.float32, torch.int8, TypeError, "dtype must be torch.float32, torch.float16, torch.bfloat16"),
])
def test_a_bad_kv_dtype_is_refused_in_words(tmp_path, dtype, kv_dtype, exc, match):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    with pytest.raises(exc, match=match):
        Lfm2ForCausalLM.from_pretrained(path, dtype=dtype, kv_dtype=kv_dtype)
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=dtype)
    with pytest.raises(exc, match=match):
        model.kv_dtype = kv_dtype
    assert model.kv_dtype == dtype
