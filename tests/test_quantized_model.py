"""lfm25_model with quantized weights: from_pretrained(quantize=...) against the same model with every quantized
projection computed by reference.linear_q, save_quantized round trips, decode against prefill, and the
errors."""
from __future__ import annotations

import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from lfm25_model import Lfm2ForCausalLM  # noqa: E402
from test_model import make_checkpoint  # noqa: E402

import lfm25_kernels as L  # noqa: E402

FORMATS = ["int8", "q4"]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


class Recorded:
    """A projection that records each call's input and output."""

    def __init__(self, p: L.Projection, calls: list):
        self.p, self.calls = p, calls

    def __call__(self, x):
        y = self.p(x)
        self.calls.append((self.p, x.clone(), y.clone()))
        return y

    def rows(self, index, dtype):
        return self.p.rows(index, dtype)


PROJECTIONS = ("in_proj", "out_proj", "q_proj", "k_proj", "v_proj", "o_proj", "w13", "w2", "lm_head")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("tied", [True, False])
def test_quantized_model_matches_its_reference(tmp_path, fmt, tied):
    """Every projection, the lm_head and the embedding quantized; in a forward, each projection computes what
    reference.linear_q says on its codes (checked call by call: a model's logits amplify the rounding of x's
    codes too much to compare end to end), and the codes are close to transformers' weights."""
    hf, path = make_checkpoint(tmp_path, "h128-g2-k3", tie_word_embeddings=tied)
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, quantize=fmt)
    quantized = {n for n, p in ours.named_weights.items() if isinstance(p, L.Projection) and p.quantized}
    assert "model.embed_tokens.weight" in quantized and (tied or "lm_head.weight" in quantized)
    assert sum(".feed_forward." in n for n in quantized) == 2 * hf.config.num_hidden_layers   # w13 and w2
    calls = []
    for module in ours.modules():
        for name in PROJECTIONS:
            p = getattr(module, name, None)
            if isinstance(p, L.Projection):
                setattr(module, name, Recorded(p, calls))
    ids = torch.randint(0, 211, (2, 13), generator=torch.Generator().manual_seed(1))
    logits = ours(ids)
    assert len(calls) == 4 * 3 + 2 + 4 + 1 and calls[-1][2].shape == (26, 211)   # every projection ran
    for p, x, y in calls:
        gate = p.weight.codes(True) if p.gated else (None, None)
        want = L.reference.linear_q(x.reshape(-1, x.shape[-1]), *p.weight.codes(), gate_codes=gate[0],
                                    gate_scales=gate[1])
        torch.testing.assert_close(y.reshape(want.shape), want, atol=1e-5, rtol=1e-5)
    embed = ours.named_weights["model.embed_tokens.weight"].weight
    hf_weights = hf.state_dict()
    torch.testing.assert_close(ours._embed(ids.view(-1)), embed.dequantize()[0][ids.view(-1)])
    for name in quantized:
        w = ours.named_weights[name].weight.dequantize()[0]
        assert rel_err(w, hf_weights[name]) < (0.01 if fmt == "int8" else 0.15)
    with torch.no_grad():
        assert rel_err(logits, hf(ids).logits) < (0.1 if fmt == "int8" else 1.0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_save_quantized_round_trip(tmp_path, fmt):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16, quantize=fmt)
    out = tmp_path / "q"
    ours.save_quantized(str(out))
    back = Lfm2ForCausalLM.from_pretrained(str(out))
    assert back.quantized == fmt and back.dtype == torch.bfloat16
    for name, p in ours.named_weights.items():
        if isinstance(p, L.Projection) and p.quantized:
            q = back.named_weights[name].weight
            assert torch.equal(q.data, p.weight.data)
    ids = torch.randint(0, 211, (1, 9), generator=torch.Generator().manual_seed(2))
    assert torch.equal(back(ids), ours(ids))
    prompts = [[5, 17, 42], [8, 21, 3, 3]]
    assert back.generate(prompts, 6) == ours.generate(prompts, 6)
    with pytest.raises(ValueError, match="quantize must be None or"):
        Lfm2ForCausalLM.from_pretrained(str(out), quantize="q4" if fmt == "int8" else "int8")


def test_quantized_decode_matches_its_prefill(tmp_path):
    """A decode step's logits equal the whole-sequence forward's at the same position up to attention's order
    of sums: linear_q gives a row the same bits whatever the other rows of the call."""
    _, path = make_checkpoint(tmp_path, "h256-g4-k4")
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, quantize="q4")
    prompt = [5, 17, 42, 9, 100, 3, 77, 21]
    full = ours(torch.tensor([prompt]))[0, -1]
    ours.setup_caches(1, 32)
    rows = torch.zeros(1, dtype=torch.int32)
    ours._prefill(torch.tensor(prompt[:-1]), [len(prompt) - 1], rows, last_only=True)
    step = ours._decode(torch.tensor([prompt[-1]]), rows, torch.tensor([len(prompt) - 1], dtype=torch.int32),
                        ours.caches.block_table[rows.long()])
    torch.testing.assert_close(step[0], full, atol=2e-4, rtol=2e-4)


def test_quantize_errors(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    with pytest.raises(ValueError, match="format"):
        Lfm2ForCausalLM.from_pretrained(path, quantize="int4")
    with pytest.raises(ValueError, match="backend='kernels'"):
        Lfm2ForCausalLM.from_pretrained(path, backend="reference", quantize="int8")
    ours = Lfm2ForCausalLM.from_pretrained(path)
    with pytest.raises(ValueError, match="not quantized"):
        ours.save_quantized(str(tmp_path / "q"))
