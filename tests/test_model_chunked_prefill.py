"""lfm25_model's chunked prefill (prefill_chunk) against the whole prefill: logits, conv states and KV caches of
packed prompts of different lengths, in pieces that end inside a sequence and begin the next, on both
backends, bf16 and fp32, quantized weights and paged caches; and the caches freed before they are replaced."""
from __future__ import annotations

import weakref

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

import lfm25_model.model as model_module  # noqa: E402
from conftest import assert_equal  # noqa: E402
from lfm25_model import Lfm2ForCausalLM  # noqa: E402
from test_model import make_checkpoint  # noqa: E402
from test_quantized_model import rel_err  # noqa: E402

LENS = [7, 1, 19, 4]        # 31 tokens: one prompt of a single token, one longer than several pieces
CHUNKS = [1, 3, 5, 8, 64]   # a token at a time, shorter than the conv state (K - 1 = 3), odd, even, all at once

# Bounds on the relative RMS difference of the chunked prefill from the whole one. Attention sums in another
# order (a piece's queries against the cached keys of the earlier pieces, masked), and so may torch's GEMM,
# which unquantized projections of many rows run: a few ulps of the dtype, carried through the layers after. With quantized weights, such a difference can move an activation
# across a rounding boundary of its int8 code (1/127 of its group's amax).
BOUND = {torch.float32: 1e-5, torch.bfloat16: 3e-2, "quantized": 2e-2}

CASES = [  # backend, dtype, quantize, paged
    ("kernels", torch.float32, None, False),
    ("kernels", torch.bfloat16, None, False),
    ("reference", torch.float32, None, False),
    ("reference", torch.bfloat16, None, False),
    ("kernels", torch.float32, "int8", False),
    ("kernels", torch.float32, "q4", False),
    ("kernels", torch.float32, None, True),
]


def prompts(seed: int = 1) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 211, (n,), generator=g).tolist() for n in LENS]


def prefill(model: Lfm2ForCausalLM, chunk: int | None, paged: bool = False):
    """The last-token logits of LENS's prompts and copies of every conv state and K/V cache after the prefill."""
    model.prefill_chunk = chunk
    model.setup_caches(len(LENS), 40, paged=paged, block_size=8)
    tokens = torch.tensor([t for p in prompts() for t in p])
    with torch.inference_mode():
        logits = model._prefill(tokens, LENS, torch.arange(len(LENS), dtype=torch.int32), last_only=True)
    c = model.caches
    return {"logits": logits.clone(), **{f"conv {i}": s.clone() for i, s in c.conv.items()},
            **{f"{n} cache {i}": t.clone() for i, kv in c.kv.items() for n, t in zip("kv", kv)}}


@pytest.mark.parametrize("backend, dtype, quantize, paged", CASES)
def test_chunked_prefill_equals_the_whole_prefill(tmp_path, backend, dtype, quantize, paged):
    _, path = make_checkpoint(tmp_path, "h160-g5-k4")   # attention first and last, conv width 4, GQA 5
    model = Lfm2ForCausalLM.from_pretrained(path, backend=backend, dtype=dtype, quantize=quantize)
    whole = prefill(model, None, paged)
    bound = BOUND["quantized" if quantize else dtype]
    for chunk in CHUNKS:
        chunked = prefill(model, chunk, paged)
        for name, t in whole.items():
            if chunk >= sum(LENS):   # one piece: the same calls as the whole prefill
                assert_equal(chunked[name], t, f"{name}, prefill_chunk={chunk}")
            else:
                assert rel_err(chunked[name], t) <= bound, f"{name}, prefill_chunk={chunk}"


@pytest.mark.parametrize("quantize", ["int8", "q4"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_prefill_of_a_conv_model_is_bit_exact(tmp_path, quantize, dtype):
    """Without attention, and with linear_q (a row's result never depends on the other rows), every kernel sees
    the rows it would see in one piece, and short_conv carries its state across pieces bit-exactly."""
    _, path = make_checkpoint(tmp_path, "h128-g2-k3", layer_types=["conv"] * 3, num_hidden_layers=3)
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=dtype, quantize=quantize)
    whole = prefill(model, None)
    for chunk in CHUNKS:
        chunked = prefill(model, chunk)
        for name, t in whole.items():
            assert_equal(chunked[name], t, f"{name}, prefill_chunk={chunk}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_forward_returns_every_position_in_pieces(tmp_path, dtype):
    _, path = make_checkpoint(tmp_path, "h128-g2-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=dtype, prefill_chunk=None)
    ids = torch.randint(0, 211, (2, 13), generator=torch.Generator().manual_seed(2))
    whole = model(ids)
    model.prefill_chunk = 5   # pieces of 5 tokens over the two prompts' 26
    chunked = model(ids)
    assert chunked.shape == whole.shape == (2, 13, 211)
    assert rel_err(chunked, whole) <= BOUND[dtype]


def test_prefill_chunk_is_checked(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, prefill_chunk=0)
    assert model.prefill_chunk is None
    for bad, exc in (("256", TypeError), ("AUTO", TypeError), (2.0, TypeError), (True, TypeError),
                     (-1, ValueError)):
        with pytest.raises(exc, match="prefill_chunk must be 'auto', None or an int"):
            model.prefill_chunk = bad
        with pytest.raises(exc, match="prefill_chunk must be 'auto', None or an int"):
            Lfm2ForCausalLM.from_pretrained(path, prefill_chunk=bad)
    assert model.prefill_chunk is None


def test_prefill_chunk_auto_holds_the_same_bytes_of_activations(tmp_path):
    """"auto", the default: 256 tokens under 16-bit activations, 128 under fp32 (quantized weights too)."""
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    for kw, chunk in ((dict(dtype=torch.bfloat16), 256), (dict(dtype=torch.float16), 256),
                      (dict(dtype=torch.float32), 128), (dict(dtype=torch.float32, quantize="int8"), 128)):
        model = Lfm2ForCausalLM.from_pretrained(path, **kw)
        assert model.prefill_chunk == chunk, kw
        model.prefill_chunk = 7
        model.prefill_chunk = "auto"
        assert model.prefill_chunk == chunk, kw
    assert Lfm2ForCausalLM.random(model.config, dtype=torch.bfloat16).prefill_chunk == 256


def test_generate_frees_the_old_caches_before_allocating_larger_ones(tmp_path, monkeypatch):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, prefill_chunk=4)
    model.generate([[3, 4, 5]], 2)
    old, allocated = weakref.ref(model.caches), []

    class Caches(model_module.Caches):
        def __init__(self, *args):
            allocated.append(old() is None)
            super().__init__(*args)

    monkeypatch.setattr(model_module, "Caches", Caches)
    model.generate([[3, 4, 5], [6, 7]], 2)   # a larger batch: new caches
    assert allocated == [True]


def test_each_prefill_piece_returns_its_freed_heap(tmp_path, monkeypatch):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    model = Lfm2ForCausalLM.from_pretrained(path, prefill_chunk=4)
    trims = []
    monkeypatch.setattr(model_module, "release_heap", lambda: trims.append(len(trims)))
    model.generate([[3, 4, 5, 6, 7], [6, 7, 8, 9]], 3)   # 9 prompt tokens: pieces of 4, 4 and 1; decode steps
    assert len(trims) == 3
