"""The thin LFM2 model (gpt-fast style): Hugging Face safetensors in, a small module tree over lfm25_kernels
(backend="kernels") or lfm25_kernels.reference (backend="reference"). One forward through the blocks serves a
packed prefill and a batched decode step; the decode step is captured once per batch size and replayed
(lfm25_kernels.Graphed). Which kernel a projection runs is lfm25_kernels.Projection's choice (docs/DESIGN.md
section 2)."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lfm25_kernels import CpuGraph, Graphed
from lfm25_kernels._checks import CACHE_DTYPES, FLOAT_DTYPES, HEAD_DIMS
from lfm25_kernels.memory import weight_memory

from .caches import Caches
from .config import Lfm2Config
from .generate import generate
from .loader import release_heap


# Prompt tokens a prefill runs through all the blocks at a time (Lfm2ForCausalLM.prefill_chunk): a layer's
# activations are then those of this many tokens, not of the whole prompt batch, and the projections still
# get enough rows to run at their full rate (llama.cpp's n_ubatch bounds its batches the same way). This many
# under 16-bit activations; "auto" takes half under fp32 (quantized weights run fp32 activations): the same
# bytes of activations, a smaller peak where memory is what the weights were quantized to save.
PREFILL_CHUNK = 256

_DTYPE_NAMES = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


def _dtype(dtype) -> torch.dtype | None:
    """A model dtype from a torch.dtype, one of _DTYPE_NAMES, or None."""
    if isinstance(dtype, str):
        if dtype.removeprefix("torch.") not in _DTYPE_NAMES:
            raise ValueError(f"Lfm2ForCausalLM: dtype must be one of {sorted(_DTYPE_NAMES)} as a string, got {dtype!r}")
        dtype = _DTYPE_NAMES[dtype.removeprefix("torch.")]
    if dtype is not None and dtype not in FLOAT_DTYPES:
        raise TypeError(f"Lfm2ForCausalLM: dtype must be torch.float32, torch.float16, torch.bfloat16 or None, got "
                        f"{dtype!r}")
    return dtype


def _kv_dtype(kv_dtype, dtype: torch.dtype, quantized: bool) -> torch.dtype:
    """The KV caches' dtype from a kv_dtype option (None: fp16 for quantized weights under fp32 activations, as
    llama.cpp's default f16 cache, else the model's dtype), checked against what the attention kernels take."""
    if kv_dtype is None:
        return torch.float16 if quantized and dtype == torch.float32 else dtype
    kv_dtype = _dtype(kv_dtype)
    if kv_dtype not in CACHE_DTYPES[dtype]:
        raise ValueError(f"Lfm2ForCausalLM: kv_dtype must be {' or '.join(map(str, CACHE_DTYPES[dtype]))} for "
                         f"{dtype} activations (a 16-bit cache under fp32 only), got {kv_dtype}")
    return kv_dtype


def _prefill_chunk(value, dtype: torch.dtype) -> int | None:
    """A prefill_chunk checked: "auto" read as the default under activations of dtype, 0 as None."""
    if isinstance(value, str) and value == "auto":
        return PREFILL_CHUNK * 2 // dtype.itemsize
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise TypeError(f"Lfm2ForCausalLM: prefill_chunk must be 'auto', None or an int, got {value!r}")
    if value is not None and value < 0:
        raise ValueError(f"Lfm2ForCausalLM: prefill_chunk must be 'auto', None or an int >= 0 (0 or None: no "
                         f"chunking), got {value}")
    return value or None


def _check_checkpoint_dir(path) -> None:
    """A plain error, with the download command, where path is no directory (e.g. a hub id)."""
    if os.path.isdir(path):
        return
    hub_id = re.fullmatch(r"[\w.-]+/[\w.-]+", str(path)) is not None and not os.path.exists(path)
    repo = str(path) if hub_id else "LiquidAI/LFM2.5-350M"
    raise FileNotFoundError(
        f"from_pretrained: path must be a local checkpoint directory (config.json, model.safetensors), got "
        f"{str(path)!r}, which is {'a hub id, not a directory' if hub_id else 'not a directory'}; download one "
        f"first: huggingface-cli download {repo} --local-dir {repo.split('/')[-1]}")


def _ops(backend: str):
    if backend == "kernels":
        import lfm25_kernels as ops
    elif backend == "reference":
        from lfm25_kernels import reference as ops
    else:
        raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")
    return ops


@dataclass
class Step:
    """What the mixers of one forward read: N tokens of S sequences. A piece of a prefill packs consecutive
    tokens of each sequence (cu_seqlens, lens), with the keys each attends to (keys); a decode step has one
    token per sequence (cu_seqlens None)."""
    caches: Caches
    rows: Tensor                        # [S] int32: each sequence's conv state and block-table row
    positions: Tensor                   # [N] int32
    slots: Tensor                       # [N] int32: the flat KV-cache slot of each token
    seq_lens: Tensor | None = None      # [S] int32: cached tokens after a decode step
    block_tables: Tensor | None = None  # [S, max_blocks] int32 (decode)
    cu_seqlens: Tensor | None = None    # [S + 1] int32 (prefill)
    lens: list[int] | None = None       # tokens of each sequence in this piece (prefill)
    # (prefill) per sequence: the cache slots of its keys, positions 0 to the piece's last (int64), and None
    # where the piece starts the sequence (causal), else the [T, keys] mask of the piece's T queries
    keys: list[tuple[Tensor, Tensor | None]] | None = None
    continued: Tensor | None = None     # [S] bool: the conv state carries over from a piece before


class FeedForward(nn.Module):
    def __init__(self, w13, w2):
        super().__init__()
        self.w13, self.w2 = w13, w2     # w13: w3 with w1 as its gate, silu(x w1^T) * (x w3^T)

    def forward(self, x: Tensor) -> Tensor:
        return self.w2(self.w13(x))


class ShortConv(nn.Module):
    def __init__(self, ops, layer: int, in_proj, weight: Tensor, out_proj):
        super().__init__()
        self.ops, self.layer = ops, layer
        self.in_proj, self.weight, self.out_proj = in_proj, weight, out_proj   # weight [D, K]

    def forward(self, x: Tensor, step: Step) -> Tensor:
        bcx, state = self.in_proj(x), step.caches.conv[self.layer]
        if step.cu_seqlens is None:
            y = self.ops.short_conv_update(bcx, self.weight, state, state_indices=step.rows)
        else:
            y = self.ops.short_conv(bcx, self.weight, state, cu_seqlens=step.cu_seqlens, state_indices=step.rows,
                                    has_initial_state=step.continued)
        return self.out_proj(y)


class Attention(nn.Module):
    def __init__(self, ops, cfg: Lfm2Config, layer: int, q_proj, k_proj, v_proj, o_proj, q_norm: Tensor,
                 k_norm: Tensor):
        super().__init__()
        self.ops, self.layer, self.eps, self.rope_theta = ops, layer, cfg.norm_eps, cfg.rope_theta
        self.heads = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = q_proj, k_proj, v_proj, o_proj
        self.q_norm, self.k_norm = q_norm, k_norm   # [d]

    def forward(self, x: Tensor, step: Step) -> Tensor:
        (Hq, Hkv, d), N = self.heads, x.shape[0]
        q, k, v = self.q_proj(x).view(N, Hq, d), self.k_proj(x).view(N, Hkv, d), self.v_proj(x).view(N, Hkv, d)
        kc, vc = step.caches.kv[self.layer]
        q = self.ops.qk_norm_rope_append(q, k, v, self.q_norm, self.k_norm, step.positions, kc, vc, step.slots,
                                         eps=self.eps, rope_theta=self.rope_theta)
        if step.cu_seqlens is None:
            o = self.ops.gqa_decode(q, kc, vc, step.seq_lens, block_table=step.block_tables)
        else:
            o = _causal_attention(q, kc, vc, step)
        return self.o_proj(o.view(N, -1))


def _causal_attention(q: Tensor, k_cache: Tensor, v_cache: Tensor, step: Step) -> Tensor:
    """Causal attention within each sequence of a prefill piece, its keys (those of the earlier pieces too) read
    back from the cache (in q's dtype when the cache is 16-bit under fp32): [N, Hq * d]."""
    out = torch.empty(q.shape[0], q.shape[1] * q.shape[2], dtype=q.dtype, device=q.device)
    keys, values = k_cache.view(-1, *k_cache.shape[2:]), v_cache.view(-1, *v_cache.shape[2:])
    start = 0
    for T, (slots, mask) in zip(step.lens, step.keys):
        k, v = keys[slots].to(q.dtype), values[slots].to(q.dtype)
        o = F.scaled_dot_product_attention(q[start:start + T].transpose(0, 1)[None], k.transpose(0, 1)[None],
                                           v.transpose(0, 1)[None], attn_mask=mask, is_causal=mask is None,
                                           enable_gqa=True)
        out[start:start + T] = o[0].transpose(0, 1).reshape(T, -1)
        start += T
    return out


class Block(nn.Module):
    def __init__(self, ops, eps: float, operator_norm: Tensor, mixer: nn.Module, ffn_norm: Tensor,
                 feed_forward: FeedForward):
        super().__init__()
        self.ops, self.eps = ops, eps
        self.operator_norm, self.mixer, self.ffn_norm, self.feed_forward = operator_norm, mixer, ffn_norm, feed_forward

    def forward(self, stream: list[Tensor | None], step: Step) -> list[Tensor]:
        """stream: [x, residual], the previous block's output, added to the residual stream (None before the first
        block) inside this block's first norm. Returns [this block's output, not yet added, the residual stream].
        NOTE: a list that this block empties, so that the caller holds no reference to the old x and residual
        while the mixer and the feed-forward run (a prefill piece's largest activations)."""
        x, residual = stream
        stream.clear()
        if residual is None:
            n, residual = self.ops.rms_norm(x, self.operator_norm, self.eps), x
        else:
            n, residual = self.ops.rms_norm(x, self.operator_norm, self.eps, residual=residual)
        del x
        n, residual = self.ops.rms_norm(self.mixer(n, step), self.ffn_norm, self.eps, residual=residual)
        return [self.feed_forward(n), residual]


class Lfm2ForCausalLM(nn.Module):
    def __init__(self, cfg: Lfm2Config, backend: str, tok_embeddings: Tensor | None, layers: list[Block],
                 norm: Tensor, lm_head):
        super().__init__()
        self.config, self.backend, self.ops = cfg, backend, _ops(backend)
        self.tok_embeddings = tok_embeddings   # [V, D] (a Projection when quantized); None when tied to lm_head
        self.layers = nn.ModuleList(layers)
        self.norm, self.lm_head = norm, lm_head
        self.caches: Caches | None = None
        self._decode_step = Graphed(self._decode_layers)
        self.quantized: str | None = None   # the weights' format, set by _build
        self.named_weights: dict = {}       # checkpoint name -> projection or tensor, set by _build
        self.source: str | None = None      # the checkpoint's directory
        self.prefill_chunk = "auto"
        self._kv_dtype = norm.dtype

    @property
    def prefill_chunk(self) -> int | None:
        """The most tokens a prefill runs through the blocks at a time (None: the whole prompt batch at once)."""
        return self._prefill_chunk

    @prefill_chunk.setter
    def prefill_chunk(self, value: int | str | None) -> None:
        """An int, None or 0 (all at once), or "auto": PREFILL_CHUNK tokens under 16-bit activations, half under
        fp32."""
        self._prefill_chunk = _prefill_chunk(value, self.dtype)

    @property
    def kv_dtype(self) -> torch.dtype:
        """The KV caches' dtype: the model's, or fp16 or bf16 under fp32 activations (half the cache memory)."""
        return self._kv_dtype

    @kv_dtype.setter
    def kv_dtype(self, value) -> None:
        """A new dtype (None: the default for this model) drops the caches; the next generate allocates them."""
        value = _kv_dtype(value, self.dtype, self.quantized is not None)
        if value != self._kv_dtype:
            self._decode_step.reset()
            self.caches = None
        self._kv_dtype = value

    # ---- loading -----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str, *, backend: str = "kernels", dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu", pack_weights: bool | None = None,
                        quantize: str | None = None, prefill_chunk: int | str | None = "auto",
                        kv_dtype: torch.dtype | str | None = None) -> "Lfm2ForCausalLM":
        """path: a local checkpoint directory (config.json and model.safetensors, as Hugging Face saves them).
        dtype: torch.float32, torch.float16 or torch.bfloat16 (or "fp32", "fp16", "bf16"); None keeps the
        checkpoint's. pack_weights: pack the bf16 projections for the x86 CPU tables (lfm25_kernels.Projection:
        AMX tiles on amx, pairs on the others); None packs where that pays, True everywhere (tables that do not
        read the layout unpack it at each call: slower), False never.
        quantize: "int8" or "q4" quantizes every projection, the lm_head and the embedding at load, a tensor at a
        time, letting go of the checkpoint's pages as it goes (lfm25_kernels.quantize_weight; docs/DESIGN.md
        section 4 has the formats). A checkpoint written by save_quantized() loads as it was saved, without the
        original (quantize: None or its format). prefill_chunk: the most prompt tokens a prefill runs through
        the blocks at a time, which bounds its activations' memory (None or 0: all at once; "auto": 256 under
        16-bit activations, 128 under fp32, the same bytes); the logits are the same either way, up to rounding
        (attention's sums, and torch's GEMM for unquantized weights).
        kv_dtype: the KV caches' dtype, dtype's or (under fp32 activations) torch.float16 or torch.bfloat16; None
        takes fp16 for quantized weights under fp32 activations, as llama.cpp's default f16 cache, else dtype."""
        from . import loader

        _check_checkpoint_dir(path)
        dtype = _dtype(dtype)
        _prefill_chunk(prefill_chunk, torch.float32)   # checked before the load
        kv_dtype = None if kv_dtype is None else _dtype(kv_dtype)
        cfg = Lfm2Config.from_pretrained(path)
        saved = loader.quantized_format(path)
        if saved is not None:
            if quantize not in (None, saved):
                raise ValueError(f"from_pretrained: quantize must be None or {saved!r} for {path} (saved quantized "
                                 f"as {saved!r}), got {quantize!r}")
            raw, saved_dtype = loader.load_quantized(path, cfg)
            model = cls._build(cfg, raw, backend, dtype or saved_dtype, torch.device(device), pack_weights, saved)
        else:
            raw = loader.load_safetensors(path, cfg)
            dtype = dtype or raw["model.embedding_norm.weight"].dtype
            model = cls._build(cfg, raw, backend, dtype, torch.device(device), pack_weights, quantize,
                               loader.release_pages)
        loader.release_heap()
        model.source, model.prefill_chunk, model.kv_dtype = path, prefill_chunk, kv_dtype
        return model

    @classmethod
    def random(cls, cfg: Lfm2Config | None = None, *, backend: str = "kernels", dtype=torch.bfloat16,
               device="cpu", seed: int = 0, pack_weights: bool | None = None, quantize: str | None = None,
               prefill_chunk: int | str | None = "auto",
               kv_dtype: torch.dtype | str | None = None) -> "Lfm2ForCausalLM":
        """The LFM2.5-350M shapes (or cfg) with random weights, for timing without a download; the keywords as
        from_pretrained's."""
        from . import loader

        cfg = cfg or Lfm2Config.lfm25_350m()
        _prefill_chunk(prefill_chunk, torch.float32)   # checked before the build
        model = cls._build(cfg, loader.random_weights(cfg, seed), backend, _dtype(dtype), torch.device(device),
                           pack_weights, quantize)
        model.prefill_chunk, model.kv_dtype = prefill_chunk, kv_dtype
        return model

    @classmethod
    @weight_memory()
    def _build(cls, cfg: Lfm2Config, raw, backend: str, dtype, device: torch.device, pack_weights: bool | None,
               quantize: str | None = None, release: Callable[[Tensor], None] | None = None) -> "Lfm2ForCausalLM":
        """The module tree from checkpoint tensors (a quantized checkpoint's projections are QuantizedWeights);
        release(t) lets go of each tensor a packed or quantized copy replaced. The packed and quantized weights
        are packed densely on huge pages (lfm25_kernels.memory)."""
        ops = _ops(backend)
        if backend == "kernels" and cfg.head_dim not in HEAD_DIMS:
            raise ValueError(f"Lfm2ForCausalLM: head_dim (hidden_size / num_attention_heads) must be one of "
                             f"{HEAD_DIMS} for backend='kernels' (the attention kernels are built for those), got "
                             f"{cfg.head_dim}; backend='reference' runs any")
        if pack_weights and not (backend == "kernels" and device.type == "cpu" and dtype == torch.bfloat16):
            raise ValueError("pack_weights=True needs backend='kernels', dtype=torch.bfloat16 and device='cpu' "
                             f"(got {backend!r}, {dtype}, {device})")
        if quantize is not None and not (backend == "kernels" and device.type == "cpu"):
            raise ValueError(f"quantize={quantize!r} needs backend='kernels' and device='cpu' (got {backend!r}, "
                             f"{device})")
        # NOTE: no copy when dtype and device already match: the weights stay views of the checkpoint's memory
        # map, so it is resident once (concatenating q/k/v or w1/w3 would copy them and keep the file pages
        # mapped as well, for no decode gain).
        cv = lambda t: t.to(device=device, dtype=dtype).contiguous()
        w = lambda name: cv(raw[name])
        named = {}   # checkpoint name -> projection or tensor, for save_quantized

        def proj(name: str, gate: str | None = None):
            if quantize is not None:   # quantized from the checkpoint's own tensors, or as saved
                g = raw[gate] if gate is not None and gate in raw else None
                p = ops.Projection(raw[name], g, quantize=quantize, release=release)
            elif backend == "kernels":
                p = ops.Projection(w(name), w(gate) if gate else None, pack=pack_weights, release=release)
            else:
                p = ops.Projection(w(name), w(gate) if gate else None)
            named[name] = p
            return p

        def tensor(name: str, t: Tensor | None = None):
            named[name] = cv(raw[name]) if t is None else t
            return named[name]

        tied = "lm_head.weight" not in raw
        layers = []
        for i in range(cfg.num_hidden_layers):
            p = f"model.layers.{i}"
            if cfg.is_attention(i):
                a = f"{p}.self_attn"
                mixer = Attention(ops, cfg, i, *(proj(f"{a}.{n}_proj.weight") for n in ("q", "k", "v", "out")),
                                  tensor(f"{a}.q_layernorm.weight"), tensor(f"{a}.k_layernorm.weight"))
            else:
                c = f"{p}.conv"
                mixer = ShortConv(ops, i, proj(f"{c}.in_proj.weight"),
                                  tensor(f"{c}.conv.weight", cv(raw[f"{c}.conv.weight"].reshape(cfg.hidden_size, -1))),
                                  proj(f"{c}.out_proj.weight"))
            f = f"{p}.feed_forward"
            ffn = FeedForward(proj(f"{f}.w3.weight", f"{f}.w1.weight"), proj(f"{f}.w2.weight"))
            layers.append(Block(ops, cfg.norm_eps, tensor(f"{p}.operator_norm.weight"), mixer,
                                tensor(f"{p}.ffn_norm.weight"), ffn))
        if tied:
            lm_head, embed = proj("model.embed_tokens.weight"), None
        else:
            lm_head = proj("lm_head.weight")
            embed = proj("model.embed_tokens.weight") if quantize is not None else tensor("model.embed_tokens.weight")
        model = cls(cfg, backend, embed, layers, tensor("model.embedding_norm.weight"), lm_head)
        model.quantized, model.named_weights = quantize, named
        return model

    def save_quantized(self, directory: str) -> None:
        """Write this quantized model as a safetensors checkpoint in directory (the format in its metadata) with
        its config, and the tokenizer files of the checkpoint it came from; from_pretrained(directory) loads it
        back without the original."""
        from . import loader

        if self.quantized is None:
            raise ValueError("save_quantized: the model is not quantized (from_pretrained(..., quantize='int8' "
                             "or 'q4'))")
        loader.save_quantized(self, directory)

    @property
    def dtype(self):
        return self.norm.dtype

    @property
    def device(self):
        return self.norm.device

    @property
    def packed(self) -> bool:
        """True when the projections are packed for an x86 CPU table (lfm25_kernels.pack_weight)."""
        return self.lm_head.packed

    def setup_caches(self, max_batch: int, max_seq: int, *, paged: bool = False, block_size: int = 64):
        """Allocate the conv states and KV caches once for up to max_batch sequences of max_seq tokens."""
        self._decode_step.reset()   # the captured steps point into the old caches
        self.caches = None          # freed before the new ones are allocated: never both in memory
        self.caches = Caches(self.config, max_batch, max_seq, self.dtype, self.kv_dtype, self.device, paged,
                             block_size)

    def decode_graphs(self) -> dict[int, CpuGraph]:
        """Batch size -> the captured graph of the decode step (CpuGraph.profile times each launch)."""
        return {shapes[0][0]: graph for shapes, graph in self._decode_step.graphs.items()}

    # ---- the network -------------------------------------------------------------------------------------
    def _embed(self, tokens: Tensor) -> Tensor:
        if self.tok_embeddings is None:
            return self.lm_head.rows(tokens, self.dtype)
        if not isinstance(self.tok_embeddings, Tensor):   # quantized
            return self.tok_embeddings.rows(tokens, self.dtype)
        return F.embedding(tokens, self.tok_embeddings)

    def _blocks(self, h: Tensor, step: Step) -> Tensor:
        """The blocks and the final norm: h [N, D] -> [N, D]."""
        stream = [h, None]
        del h
        for block in self.layers:
            stream = block(stream, step)
        x, residual = stream
        return self.ops.rms_norm(x, self.norm, self.config.norm_eps, residual=residual)[0]

    def _prefill(self, tokens: Tensor, lens: list[int], rows: Tensor, last_only: bool) -> Tensor:
        """Packed prefill of len(lens) new sequences (cache rows `rows`) from position 0, through all the blocks
        a piece of at most prefill_chunk tokens at a time (a piece may end inside a sequence and begin the
        next). Returns the logits of each sequence's last token [S, V], or of every token [N, V]."""
        dev, N = tokens.device, tokens.numel()
        firsts = [0, *accumulate(lens)][:-1]   # each sequence's first token in the packed stream
        seq_of = torch.repeat_interleave(torch.arange(len(lens), device=dev), torch.tensor(lens, device=dev))
        positions = (torch.arange(N, device=dev) - torch.tensor(firsts, device=dev)[seq_of]).to(torch.int32)
        slots = self.caches.slots(rows[seq_of], positions)
        chunk = self.prefill_chunk or N
        last, logits = [], None
        for a in range(0, N, chunk):
            b = min(a + chunk, N)
            seqs = [i for i, f in enumerate(firsts) if f < b and f + lens[i] > a]   # those with tokens in [a, b)
            starts = [max(a - firsts[i], 0) for i in seqs]
            counts = [min(b, firsts[i] + lens[i]) - firsts[i] - s for i, s in zip(seqs, starts)]
            # keys once per piece for every attention layer; a piece's queries are the last T of their keys:
            # causal aligned bottom-right
            keys = [(slots[firsts[i]:firsts[i] + s + T].long(),
                     None if s == 0 else torch.ones(T, s + T, dtype=torch.bool, device=dev).tril(s))
                    for i, s, T in zip(seqs, starts, counts)]
            step = Step(self.caches, rows[seqs[0]:seqs[-1] + 1], positions[a:b], slots[a:b],
                        cu_seqlens=torch.tensor([0, *accumulate(counts)], dtype=torch.int32, device=dev),
                        lens=counts, keys=keys,
                        continued=torch.tensor([s > 0 for s in starts], dtype=torch.bool, device=dev))
            n = self._blocks(self._embed(tokens[a:b]), step)
            # NOTE: the piece's activations are freed by now, but glibc keeps their pages, and the next piece's
            # buffers land on them only in part: over a prefill the heap's resident pages would grow to about
            # twice what a piece has live at once. Trimmed, the next piece touches fresh pages where it needs them.
            release_heap()
            if last_only:   # the hidden rows of the sequences that end in this piece
                last.append(n[[firsts[i] + lens[i] - 1 - a for i in seqs if firsts[i] + lens[i] <= b]])
                continue
            piece = self.lm_head(n)
            if logits is None:
                logits = piece.new_empty(N, piece.shape[1])
            logits[a:b] = piece
        return self.lm_head(torch.cat(last)) if last_only else logits

    def _decode(self, tokens: Tensor, rows: Tensor, positions: Tensor, block_tables: Tensor) -> Tensor:
        """One token for each sequence in cache rows `rows` at `positions`: logits [B, V]. Where the step is
        replayed, they are the graph's output buffer, rewritten by the next step of that batch size."""
        return self._decode_step(self._embed(tokens), rows, positions, self.caches.slots(rows, positions),
                                 positions + 1, block_tables)

    def _decode_layers(self, h: Tensor, rows: Tensor, positions: Tensor, slots: Tensor, seq_lens: Tensor,
                       block_tables: Tensor) -> Tensor:
        """The decode step from the embedded tokens h [B, D] to the logits [B, V]."""
        return self.lm_head(self._blocks(h, Step(self.caches, rows, positions, slots, seq_lens, block_tables)))

    @torch.inference_mode()
    def forward(self, input_ids: Tensor) -> Tensor:
        """Whole-sequence forward: input_ids [B, T] -> logits [B, T, V] (temporary caches, all positions)."""
        B, T = input_ids.shape
        saved = self.caches
        try:
            self.setup_caches(B, T)
            rows = torch.arange(B, dtype=torch.int32, device=self.device)
            logits = self._prefill(input_ids.reshape(-1).to(self.device), [T] * B, rows, last_only=False)
        finally:
            self.caches = saved
        return logits.view(B, T, -1)

    generate = generate   # prefill, then one decode step per token (generate.py)
