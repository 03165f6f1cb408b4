"""Lfm2Config: the model's sizes, read from a Hugging Face config.json of LFM2 (full_attn_idxs, rope_theta,
block_ff_dim) or LFM2.5 (layer_types, rope_parameters) style."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field


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
            return cls.from_dict(json.load(f))

    @classmethod
    def from_dict(cls, d: dict) -> "Lfm2Config":
        def need(key):
            if key not in d:
                raise ValueError(f"config: missing key {key!r}")
            return d[key]

        hidden, layers = int(need("hidden_size")), int(need("num_hidden_layers"))
        heads = int(need("num_attention_heads"))
        kv_heads = int(d.get("num_key_value_heads", heads))
        # FFN width (transformers' Lfm2MLP): block_ff_dim overrides intermediate_size; with auto-adjust,
        # int(2f/3), times the multiplier, rounded up to block_multiple_of.
        ff = d.get("block_ff_dim", d.get("intermediate_size"))
        if ff is None:
            raise ValueError("config: missing key 'intermediate_size' (or 'block_ff_dim')")
        ff = int(ff)
        if d.get("block_auto_adjust_ff_dim", True):
            ff = int(2 * ff / 3)
            mult = d.get("block_ffn_dim_multiplier", 1.0)
            if mult is not None:
                multiple = int(d.get("block_multiple_of", 256))
                ff = multiple * ((int(mult * ff) + multiple - 1) // multiple)
        if d.get("layer_types") is not None:
            types = list(d["layer_types"])
        else:
            attn = d.get("full_attn_idxs")
            attn = list(range(layers)) if attn is None else attn
            types = ["full_attention" if i in attn else "conv" for i in range(layers)]
        if len(types) != layers:
            raise ValueError(f"config: 'layer_types' has {len(types)} entries for num_hidden_layers={layers}")
        unknown = sorted({t for t in types if t not in ("conv", "full_attention", "attention")})
        if unknown:
            raise ValueError(f"config: 'layer_types' holds unsupported types {unknown}")
        rope = d.get("rope_parameters") or {}
        theta = rope.get("rope_theta", d.get("rope_theta", d.get("theta", 1e6)))
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"config: 'rope_parameters' rope_type {rope['rope_type']!r} is not supported")
        if d.get("conv_bias", False):
            raise ValueError("config: 'conv_bias' = true is not supported (LFM2 checkpoints have no biases)")
        if hidden % heads or heads % kv_heads:
            raise ValueError(f"config: 'num_attention_heads'={heads} must divide hidden_size={hidden} and be a "
                             f"multiple of 'num_key_value_heads'={kv_heads}")
        width = int(d.get("conv_L_cache", 3))
        if not 2 <= width <= 4:
            raise ValueError(f"config: 'conv_L_cache'={width} is not supported (2..4)")
        return cls(vocab_size=int(need("vocab_size")), hidden_size=hidden, intermediate_size=ff,
                   num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
                   layer_types=types, conv_L_cache=width, norm_eps=float(d.get("norm_eps", 1e-5)),
                   rope_theta=float(theta), max_position_embeddings=int(d.get("max_position_embeddings", 128000)),
                   bos_token_id=d.get("bos_token_id"), eos_token_id=d.get("eos_token_id"),
                   pad_token_id=d.get("pad_token_id"))
