"""lfm25_model's config and loader refuse bad input by name (issue 15, item 8): config values of the wrong type
or out of range, a head size the kernels lack, integer tensors, shard files outside the model directory, and
tensors found elsewhere than where the index's weight_map puts them."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from lfm25_model import Lfm2ForCausalLM
from lfm25_model.config import Lfm2Config
from lfm25_model.loader import random_weights

CONFIG = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=2,
              num_key_value_heads=1, layer_types=["conv", "full_attention"], max_position_embeddings=64,
              block_multiple_of=32)


@pytest.mark.parametrize("key,value,exc,text", [
    ("num_attention_heads", 0, ValueError, "'num_attention_heads' must be > 0, got 0"),
    ("num_key_value_heads", 0, ValueError, "'num_key_value_heads' must be > 0, got 0"),
    ("rope_parameters", [1e6], TypeError, "'rope_parameters' must be an object, got list"),
    ("hidden_size", 64.7, TypeError, "'hidden_size' must be an integer, got float 64.7"),
    ("hidden_size", -64, ValueError, "'hidden_size' must be > 0, got -64"),
    ("vocab_size", 0, ValueError, "'vocab_size' must be > 0, got 0"),
    ("intermediate_size", -96, ValueError, "'intermediate_size' must be > 0"),
    ("num_hidden_layers", True, TypeError, "'num_hidden_layers' must be an integer, got bool"),
    ("max_position_embeddings", -1, ValueError, "'max_position_embeddings' must be > 0, got -1"),
    ("full_attn_idxs", [1, 2], ValueError, r"'full_attn_idxs' must list layer indices in \[0, 2\), got \[1, 2\]"),
    ("rope_theta", 0, ValueError, "'rope_theta' must be > 0, got 0"),
    ("norm_eps", -1e-5, ValueError, "'norm_eps' must be >= 0, got -1e-05"),
    ("norm_eps", "1e-5", TypeError, "'norm_eps' must be a finite number, got str"),
])
def test_config_refuses_bad_values_by_name(key, value, exc, text):
    d = dict(CONFIG, **{key: value})
    if key in ("full_attn_idxs", "rope_theta"):
        d.pop("layer_types")
    with pytest.raises(exc, match=text):
        Lfm2Config.from_dict(d)


def test_config_file_nested_too_deeply_is_a_value_error(tmp_path):
    (tmp_path / "config.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ValueError, match="nested too deeply"):
        Lfm2Config.from_pretrained(str(tmp_path))
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(TypeError, match="config: must be a JSON object, got list"):
        Lfm2Config.from_pretrained(str(tmp_path))


def checkpoint(tmp_path, tensors=None, shards=None, weight_map=None):
    """A model directory: config.json and model.safetensors, or shards {file: tensors} with an index."""
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps(CONFIG))
    if shards is None:
        save_file(tensors, str(tmp_path / "model.safetensors"))
    else:
        for file, part in shards.items():
            save_file(part, str(tmp_path / file))
        if weight_map is None:
            weight_map = {n: file for file, part in shards.items() for n in part}
        (tmp_path / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    return str(tmp_path)


def weights():
    return {n: t.contiguous() for n, t in random_weights(Lfm2Config.from_dict(CONFIG)).items()}


def test_a_valid_checkpoint_loads(tmp_path):
    w = weights()
    names = sorted(w)
    path = checkpoint(tmp_path, shards={"a.safetensors": {n: w[n] for n in names[:5]},
                                        "b.safetensors": {n: w[n] for n in names[5:]}})
    model = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 97)


@pytest.mark.parametrize("which", ["all", "norm"])
def test_integer_tensors_are_refused(tmp_path, which):
    w = weights()
    for n in w:
        if which == "all" or n == "model.embedding_norm.weight":
            w[n] = w[n].to(torch.int32)
    with pytest.raises(ValueError, match=r"tensors of a non-float dtype: \[.*'model.embedding_norm.weight: I32'"):
        Lfm2ForCausalLM.from_pretrained(checkpoint(tmp_path, w))


@pytest.mark.parametrize("shard", ["../outside.safetensors", "/tmp/outside.safetensors", "a/../../x.safetensors"])
def test_shards_outside_the_model_directory_are_refused(tmp_path, shard):
    w = weights()
    path = checkpoint(tmp_path / "model", shards={"a.safetensors": w}, weight_map={n: "a.safetensors" for n in w})
    index = tmp_path / "model" / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {**{n: "a.safetensors" for n in w}, "lm_head.weight": shard}}))
    with pytest.raises(ValueError, match="shard files must lie inside the model directory"):
        Lfm2ForCausalLM.from_pretrained(path)


def test_weight_map_is_honoured_and_duplicates_reported(tmp_path):
    w = weights()
    name = "model.embedding_norm.weight"
    rest = {n: t for n, t in w.items() if n != name}
    # the index puts the norm in b; a also holds one (another value): a duplicate, not silently the last one
    path = checkpoint(tmp_path / "dup", shards={"a.safetensors": {**rest, name: w[name] * 0},
                                                "b.safetensors": {name: w[name]}},
                      weight_map={**{n: "a.safetensors" for n in rest}, name: "b.safetensors"})
    with pytest.raises(ValueError, match=rf"tensors in more than one file: \['{name} \(a.safetensors, b.safetensors\)'\]"):
        Lfm2ForCausalLM.from_pretrained(path)
    # the index names b for the norm, but only a holds it
    path = checkpoint(tmp_path / "elsewhere", shards={"a.safetensors": w, "b.safetensors": {}},
                      weight_map={**{n: "a.safetensors" for n in rest}, name: "b.safetensors"})
    with pytest.raises(ValueError, match=rf"outside the file the index's weight_map names for them: \['{name}'\]"):
        Lfm2ForCausalLM.from_pretrained(path)
