"""Checkpoint loading: model.safetensors or sharded safetensors with an index, memory-mapped, checked against
the shapes the config implies (missing, unexpected and mis-shaped tensors reported by name). Never unpickles."""
from __future__ import annotations

import dataclasses
import json
import os

import torch

from .config import Lfm2Config


_FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")   # safetensors dtype names the model converts from


def expected_shapes(cfg: Lfm2Config) -> dict[str, tuple]:
    D, F, V, K = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size, cfg.conv_L_cache
    Hq, Hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    s = {"model.embed_tokens.weight": (V, D), "model.embedding_norm.weight": (D,)}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}"
        s.update({f"{p}.operator_norm.weight": (D,), f"{p}.ffn_norm.weight": (D,),
                  f"{p}.feed_forward.w1.weight": (F, D), f"{p}.feed_forward.w3.weight": (F, D),
                  f"{p}.feed_forward.w2.weight": (D, F)})
        if cfg.is_attention(i):
            a = f"{p}.self_attn"
            s.update({f"{a}.q_proj.weight": (Hq * d, D), f"{a}.k_proj.weight": (Hkv * d, D),
                      f"{a}.v_proj.weight": (Hkv * d, D), f"{a}.out_proj.weight": (D, Hq * d),
                      f"{a}.q_layernorm.weight": (d,), f"{a}.k_layernorm.weight": (d,)})
        else:
            c = f"{p}.conv"
            s.update({f"{c}.in_proj.weight": (3 * D, D), f"{c}.out_proj.weight": (D, D), f"{c}.conv.weight": (D, 1, K)})
    return s


def _files(path: str) -> tuple[list[str], dict[str, str] | None]:
    """The checkpoint's files and, when sharded, the index's weight_map (tensor name -> its file)."""
    index = os.path.join(path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f).get("weight_map")
        if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
            raise ValueError(f"{index}: 'weight_map' must map tensor names to file names")
        outside = sorted({n for n in weight_map.values()
                          if os.path.isabs(n) or os.path.normpath(n).split(os.sep)[0] == ".."})
        if outside:
            raise ValueError(f"{index}: shard files must lie inside the model directory, got {outside}")
        weight_map = {name: os.path.join(path, n) for name, n in weight_map.items()}
        return sorted(set(weight_map.values())), weight_map
    single = os.path.join(path, "model.safetensors")
    if os.path.exists(single):
        return [single], None
    raise FileNotFoundError(f"no model.safetensors or model.safetensors.index.json in {path}")


class LazyTensors:
    """name -> tensor over the checkpoint's files, read from the memory map when first asked for, so the model
    can convert and pack one tensor at a time (peak memory ~ the model, not the model twice)."""

    def __init__(self, handles: dict):
        self._where = handles   # name -> open safe_open handle

    def keys(self):
        return self._where.keys()

    def __contains__(self, name):
        return name in self._where

    def __getitem__(self, name) -> torch.Tensor:
        return self._where[name].get_tensor(name)

    def values(self):
        return (self[n] for n in self._where)

    def shape(self, name) -> tuple:
        return tuple(self._where[name].get_slice(name).get_shape())


def load_safetensors(path: str, cfg: Lfm2Config) -> LazyTensors:
    from safetensors import safe_open

    files, weight_map = _files(path)
    where, found = {}, {}   # name -> the handle it is read from; name -> every file that holds it
    for file in files:
        try:
            f = safe_open(file, framework="pt")             # memory-mapped; tensors are read on access
            for name in f.keys():
                found.setdefault(name, []).append(os.path.basename(file))
                if weight_map is None or weight_map.get(name) == file:
                    where[name] = f
                f.get_slice(name).get_shape()
        except Exception as e:                              # a truncated or corrupt file
            raise ValueError(f"cannot read {file}: {e}") from e
    tensors = LazyTensors(where)
    want = expected_shapes(cfg)
    missing = sorted(set(want) - set(found))
    unexpected = sorted(set(found) - set(want) - {"lm_head.weight"})
    wrong = sorted(f"{n}: expected {list(want[n])}, got {list(tensors.shape(n))}"
                   for n in set(want) & set(tensors.keys()) if tensors.shape(n) != want[n])
    not_float = sorted(f"{n}: {where[n].get_slice(n).get_dtype()}" for n in tensors.keys()
                       if where[n].get_slice(n).get_dtype() not in _FLOAT_DTYPES)
    problems = []
    if missing:
        problems.append(f"missing tensors: {missing}")
    misplaced = sorted(n for n in found if n not in where)   # sharded: a file the weight_map does not name
    if misplaced:
        problems.append(f"tensors outside the file the index's weight_map names for them: {misplaced}")
    duplicated = sorted(f"{n} ({', '.join(holders)})" for n, holders in found.items() if len(holders) > 1)
    if duplicated:
        problems.append(f"tensors in more than one file: {duplicated}")
    if unexpected:
        problems.append(f"unexpected tensors: {unexpected}")
    if wrong:
        problems.append(f"mis-shaped tensors: {wrong}")
    if not_float:
        problems.append(f"tensors of a non-float dtype: {not_float}")
    if problems:
        raise ValueError(f"checkpoint {path} does not match its config: " + "; ".join(problems))
    return tensors


def release_pages(t: torch.Tensor) -> None:
    """Let the kernel drop the resident pages of a tensor read from the checkpoint's memory map, once a copy
    replaced it (e.g. packed): otherwise they stay mapped and counted in the process's memory until the map
    closes. Only whole pages inside the tensor; the file is read again if they are touched later. No-op
    where madvise is unavailable."""
    import ctypes
    import mmap

    if not hasattr(mmap, "MADV_DONTNEED") or t.device.type != "cpu":
        return
    page = mmap.PAGESIZE
    start = -(-t.data_ptr() // page) * page
    end = (t.data_ptr() + t.numel() * t.element_size()) // page * page
    if end > start:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), mmap.MADV_DONTNEED)


def release_heap() -> None:
    """Return the C heap's free pages to the system (glibc's malloc_trim) once a load's or a prefill piece's
    temporaries are freed: glibc keeps freed blocks of a few MB for reuse, which would stay in the process's
    memory for nothing."""
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):   # not glibc
        pass


def random_weights(cfg: Lfm2Config, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors of the checkpoint's names and shapes (norm weights near 1, matrices ~ N(0, 1/fan_in))."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in expected_shapes(cfg).items():
        if len(shape) == 1:
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            out[name] = torch.randn(shape, generator=g) / shape[-1] ** 0.5
    return out


# ---- quantized checkpoints (Lfm2ForCausalLM.save_quantized) -------------------------------------------------
# One model.safetensors: each quantized projection as <name>.qdata (uint8, its codes and scales), packed as
# linear_q reads it, so loading copies it as it is (onto huge pages); the other tensors (norms, conv weights)
# under their checkpoint names in the model's dtype. Metadata: the format, the layout version, the dtype, and per
# projection its sizes and whether its gate is packed with it (w3 holds w1).
_QUANT_LAYOUT = "2"   # 2: a tile's codes and scales in one stream
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                    "chat_template.jinja")


def quantized_format(path: str) -> str | None:
    """The format of a checkpoint written by save_quantized ("int8", "q4"), or None for any other."""
    from safetensors import safe_open

    file = os.path.join(path, "model.safetensors")
    if not os.path.exists(file):
        return None
    try:
        with safe_open(file, framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as e:
        raise ValueError(f"cannot read {file}: {e}") from e
    return meta.get("lfm25_quantized")


def load_quantized(path: str, cfg: Lfm2Config) -> tuple[dict, torch.dtype]:
    """name -> tensor or QuantizedWeight of a checkpoint written by save_quantized, and the model's dtype it was
    saved with. The other tensors stay memory-mapped; the quantized weights are copied onto huge pages
    (lfm25_kernels.memory: a decode step streams them faster there), a weight at a time, each letting go of its
    file pages once copied."""
    from safetensors import safe_open

    from lfm25_kernels import QuantizedWeight, memory

    file = os.path.join(path, "model.safetensors")
    f = safe_open(file, framework="pt")
    meta = f.metadata()
    if meta.get("lfm25_layout") != _QUANT_LAYOUT:
        raise ValueError(f"{file}: quantized layout {meta.get('lfm25_layout')!r}, this version reads "
                         f"{_QUANT_LAYOUT!r} (quantize the original checkpoint again)")
    fmt, dtype = meta["lfm25_quantized"], getattr(torch, meta["lfm25_dtype"])
    projections = json.loads(meta["lfm25_projections"])
    raw = {}

    def copied(t: torch.Tensor) -> torch.Tensor:
        data = memory.zeros(t.shape, t.dtype).copy_(t)
        release_pages(t)
        return data

    try:
        with memory.weight_memory():
            for name, (n, k, gated) in projections.items():
                raw[name] = QuantizedWeight(copied(f.get_tensor(f"{name}.qdata")), fmt, n, k, gated)
        for name in f.keys():
            if not name.endswith(".qdata"):
                raw[name] = f.get_tensor(name)
    except (KeyError, ValueError, TypeError) as e:
        raise ValueError(f"{file} is not a valid quantized checkpoint: {e}") from e
    want = expected_shapes(cfg)
    gates = {n.replace(".w3.", ".w1.") for n, (_, _, gated) in projections.items() if gated}
    missing = sorted(set(want) - set(raw) - gates)
    if missing:
        raise ValueError(f"checkpoint {path} does not match its config: missing tensors: {missing}")
    return raw, dtype


def save_quantized(model, directory: str) -> None:
    """Write a quantized model (see the section's comment) with its config.json and the tokenizer files of the
    checkpoint it came from."""
    import shutil

    from safetensors.torch import save_file

    from lfm25_kernels import Projection

    os.makedirs(directory, exist_ok=True)
    tensors, projections = {}, {}
    for name, obj in model.named_weights.items():
        if isinstance(obj, Projection) and obj.quantized:
            q = obj.weight
            tensors[f"{name}.qdata"] = q.data
            projections[name] = [q.out_features, q.in_features, q.gated]
        else:
            tensors[name] = obj.contiguous()
    meta = {"lfm25_quantized": model.quantized, "lfm25_layout": _QUANT_LAYOUT,
            "lfm25_dtype": str(model.dtype).removeprefix("torch."), "lfm25_projections": json.dumps(projections)}
    save_file(tensors, os.path.join(directory, "model.safetensors"), metadata=meta)
    config = os.path.join(model.source, "config.json") if model.source else None
    if config is None or not os.path.exists(config):   # a random model: its sizes, FFN width as used
        with open(os.path.join(directory, "config.json"), "w") as f:
            json.dump({**dataclasses.asdict(model.config), "model_type": "lfm2", "block_auto_adjust_ff_dim": False},
                      f, indent=2)
    for name in ("config.json", *_TOKENIZER_FILES) if model.source else ():
        src = os.path.join(model.source, name)
        if os.path.exists(src) and os.path.abspath(src) != os.path.abspath(os.path.join(directory, name)):
            shutil.copyfile(src, os.path.join(directory, name))
