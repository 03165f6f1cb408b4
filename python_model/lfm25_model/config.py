"""Lfm2Config: the model's sizes, read from a Hugging Face config.json of LFM2 (full_attn_idxs, rope_theta,
block_ff_dim) or LFM2.5 (layer_types, rope_parameters) style."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field


_SIZES = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
          "num_key_value_heads", "max_position_embeddings")
_LAYER_TYPES = ("conv", "full_attention", "attention")


def _integer(key: str, v) -> int:
    """v as a config integer: an int (not a bool, nor a float such as 64.7 that int() would truncate)."""
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"config: {key!r} must be an integer, got {type(v).__name__} {v!r}")
    return v


def _number(key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise TypeError(f"config: {key!r} must be a finite number, got {type(v).__name__} {v!r}")
    return float(v)


@dataclass
class Lfm2Config:
    vocab_size: int = 65536
    hidden_size: int = 1024
    intermediate_size: int = 4608          # the FFN width actually used (after the adjustment rule)
    num_hidden_layers: int = 16
    num_attention_heads: int = 16
    num_key_value_heads: int = 8
    layer_types: list = field(default_factory=lambda: ["full_attention" if i in (2, 5, 8, 10, 12, 14) else "conv"
                                                       for i in range(16)])
    conv_L_cache: int = 3
    norm_eps: float = 1e-5
    rope_theta: float = 1e6
    max_position_embeddings: int = 128000
    bos_token_id: int | None = 1
    eos_token_id: int | list | None = 7
    pad_token_id: int | None = 0

    def __post_init__(self):
        """Every field checked, however the config was made: TypeError / ValueError naming the field."""
        for key in _SIZES:
            if _integer(key, getattr(self, key)) <= 0:
                raise ValueError(f"config: {key!r} must be > 0, got {getattr(self, key)}")
        if not 2 <= _integer("conv_L_cache", self.conv_L_cache) <= 4:
            raise ValueError(f"config: 'conv_L_cache'={self.conv_L_cache} is not supported (2..4)")
        if _number("norm_eps", self.norm_eps) < 0:
            raise ValueError(f"config: 'norm_eps' must be >= 0, got {self.norm_eps}")
        if _number("rope_theta", self.rope_theta) <= 0:
            raise ValueError(f"config: 'rope_theta' must be > 0, got {self.rope_theta}")
        if not isinstance(self.layer_types, list) or not all(isinstance(t, str) for t in self.layer_types):
            raise TypeError(f"config: 'layer_types' must be a list of strings, got {self.layer_types!r}")
        if len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(f"config: 'layer_types' has {len(self.layer_types)} entries for "
                             f"num_hidden_layers={self.num_hidden_layers}")
        unknown = sorted({t for t in self.layer_types if t not in _LAYER_TYPES})
        if unknown:
            raise ValueError(f"config: 'layer_types' holds unsupported types {unknown}")
        heads, kv_heads = self.num_attention_heads, self.num_key_value_heads
        if self.hidden_size % heads or heads % kv_heads:
            raise ValueError(f"config: 'num_attention_heads'={heads} must divide hidden_size={self.hidden_size} "
                             f"and be a multiple of 'num_key_value_heads'={kv_heads}")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def is_attention(self, i: int) -> bool:
        return self.layer_types[i] != "conv"

    @classmethod
    def lfm25_350m(cls) -> "Lfm2Config":
        """LFM2.5-350M (docs/DESIGN.md section 1)."""
        return cls()

    @classmethod
    def from_pretrained(cls, path: str) -> "Lfm2Config":
        file = os.path.join(path, "config.json") if os.path.isdir(path) else path
        with open(file) as f:
            try:
                d = json.load(f)
            except RecursionError:
                raise ValueError(f"config: {file} is nested too deeply to be a config") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict) -> "Lfm2Config":
        if not isinstance(d, dict):
            raise TypeError(f"config: must be a JSON object, got {type(d).__name__}")

        def need(key):
            if key not in d:
                raise ValueError(f"config: missing key {key!r}")
            return d[key]

        layers, heads = _integer("num_hidden_layers", need("num_hidden_layers")), need("num_attention_heads")
        # FFN width (transformers' Lfm2MLP): block_ff_dim overrides intermediate_size; with auto-adjust,
        # int(2f/3), times the multiplier, rounded up to block_multiple_of.
        key = "block_ff_dim" if d.get("block_ff_dim") is not None else "intermediate_size"
        if d.get(key) is None:
            raise ValueError("config: missing key 'intermediate_size' (or 'block_ff_dim')")
        ff = _integer(key, d[key])
        if d.get("block_auto_adjust_ff_dim", True):
            ff = int(2 * ff / 3)
            mult = d.get("block_ffn_dim_multiplier", 1.0)
            if mult is not None:
                multiple = _integer("block_multiple_of", d.get("block_multiple_of", 256))
                if multiple <= 0:
                    raise ValueError(f"config: 'block_multiple_of' must be > 0, got {multiple}")
                ff = multiple * ((int(_number("block_ffn_dim_multiplier", mult) * ff) + multiple - 1) // multiple)
        if d.get("layer_types") is not None:
            types = d["layer_types"]
        else:
            attn = d.get("full_attn_idxs")
            attn = list(range(layers)) if attn is None else attn
            if not isinstance(attn, list) or not all(0 <= _integer("full_attn_idxs", i) < layers for i in attn):
                raise ValueError(f"config: 'full_attn_idxs' must list layer indices in [0, {layers}), got {attn!r}")
            types = ["full_attention" if i in attn else "conv" for i in range(layers)]
        rope = d.get("rope_parameters") or {}
        if not isinstance(rope, dict):
            raise TypeError(f"config: 'rope_parameters' must be an object, got {type(rope).__name__}")
        theta = rope.get("rope_theta", d.get("rope_theta", d.get("theta", 1e6)))
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"config: 'rope_parameters' rope_type {rope['rope_type']!r} is not supported")
        if d.get("conv_bias", False):
            raise ValueError("config: 'conv_bias' = true is not supported (LFM2 checkpoints have no biases)")
        return cls(vocab_size=need("vocab_size"), hidden_size=need("hidden_size"), intermediate_size=ff,
                   num_hidden_layers=layers, num_attention_heads=heads,
                   num_key_value_heads=d.get("num_key_value_heads", heads), layer_types=types,
                   conv_L_cache=d.get("conv_L_cache", 3), norm_eps=d.get("norm_eps", 1e-5), rope_theta=theta,
                   max_position_embeddings=d.get("max_position_embeddings", 128000),
                   bos_token_id=d.get("bos_token_id"), eos_token_id=d.get("eos_token_id"),
                   pad_token_id=d.get("pad_token_id"))
