"""The thin LFM2 model: Hugging Face safetensors in, packed prefill and batched decode through
lfm25_kernels (backend="kernels") or lfm25_kernels.reference (backend="reference")."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lfm25_kernels.graph import CpuGraph, capture_context
from lfm25_kernels.ops import PackedWeight

from .config import Lfm2Config


# Up to this many rows (tokens in a step) the CPU projections run through lfm25_kernels.linear, see _linear.
# Measured against torch 2.13 (Xeon 4th gen, 2 threads, 4608x1024 weights): bf16 (AMX) on par or ahead up to
# 64 rows; fp32 (AVX-512 fma) ahead at 16 rows, 1.2x behind MKL from 32 on.
_OWN_LINEAR_MAX_ROWS = {torch.bfloat16: 64}
_OWN_LINEAR_MAX_ROWS_OTHER = 16
# Packed weights (see _pack) run our packed GEMM up to this many rows, and always for the fused w1/w3; past it
# the others are unpacked for torch's GEMM. Prefill of LFM2.5-350M, packed GEMM vs unpack + torch (alternated,
# one process): 0.89x the time at 128 tokens, 0.80x at 256, 0.97x at 512, 1.05x at 1024.
_PACKED_GEMM_MAX_ROWS = 512


def _ops(backend: str):
    if backend == "kernels":
        import lfm25_kernels as ops
    elif backend == "reference":
        from lfm25_kernels import reference as ops
    else:
        raise ValueError(f"backend must be 'kernels' or 'reference', got {backend!r}")
    return ops


class Caches:
    """Conv states [S, K-1, D] per conv layer and K/V caches [n_blocks, block_size, Hkv, d] per attention layer.
    Sequence slot s owns blocks block_table[s] (contiguous caches: one block of max_seq tokens per slot)."""

    def __init__(self, cfg: Lfm2Config, max_batch: int, max_seq: int, dtype, device, paged: bool, block_size: int):
        D, K, Hkv, d = cfg.hidden_size, cfg.conv_L_cache, cfg.num_key_value_heads, cfg.head_dim
        self.max_batch, self.max_seq, self.paged = max_batch, max_seq, paged
        self.block_size = block_size if paged else max_seq
        per_seq = -(-max_seq // self.block_size)
        n_blocks = max_batch * per_seq
        self.block_table = torch.arange(n_blocks, dtype=torch.int32, device=device).view(max_batch, per_seq)
        self.conv = {i: torch.zeros(max_batch, K - 1, D, dtype=dtype, device=device)
                     for i in range(cfg.num_hidden_layers) if not cfg.is_attention(i)}
        self.kv = {i: (torch.zeros(n_blocks, self.block_size, Hkv, d, dtype=dtype, device=device),
                       torch.zeros(n_blocks, self.block_size, Hkv, d, dtype=dtype, device=device))
                   for i in range(cfg.num_hidden_layers) if cfg.is_attention(i)}

    def slots(self, rows: Tensor, positions: Tensor) -> Tensor:
        """Flat cache slot of each (sequence slot, position)."""
        blocks = self.block_table[rows.long(), (positions // self.block_size).long()]
        return (blocks * self.block_size + positions % self.block_size).to(torch.int32)


class Lfm2ForCausalLM(nn.Module):
    def __init__(self, cfg: Lfm2Config, weights: dict[str, Tensor], backend: str = "kernels"):
        super().__init__()
        self.config, self.backend, self.ops = cfg, backend, _ops(backend)
        self.w = weights               # fused and converted tensors, see _fuse
        self.caches: Caches | None = None
        self._steps: dict[tuple, SimpleNamespace] = {}

    # ---- loading -----------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str, *, backend: str = "kernels", dtype: torch.dtype | None = None,
                        device: str | torch.device = "cpu", pack_weights: bool | None = None) -> "Lfm2ForCausalLM":
        """pack_weights: pack the projections for the amx CPU table (see _pack); None packs where that table
        is the one in effect and the model runs our kernels in bf16 on the CPU."""
        from . import loader

        cfg = Lfm2Config.from_pretrained(path)
        raw = loader.load_safetensors(path, cfg)
        dtype = dtype or raw["model.embedding_norm.weight"].dtype
        w = _fuse(cfg, raw, dtype, torch.device(device))
        if _packs(pack_weights, backend, dtype, torch.device(device)):
            _pack(cfg, w, release=loader.release_pages)   # the file's pages of each packed tensor let go
        return cls(cfg, w, backend)

    @classmethod
    def random(cls, cfg: Lfm2Config | None = None, *, backend: str = "kernels", dtype=torch.bfloat16,
               device="cpu", seed: int = 0, pack_weights: bool | None = None) -> "Lfm2ForCausalLM":
        """The LFM2.5-350M shapes (or cfg) with random weights, for timing without a download."""
        from . import loader

        cfg = cfg or Lfm2Config.lfm25_350m()
        w = _fuse(cfg, loader.random_weights(cfg, seed), dtype, torch.device(device))
        if _packs(pack_weights, backend, dtype, torch.device(device)):
            _pack(cfg, w)
        return cls(cfg, w, backend)

    @property
    def dtype(self):
        return self.w["final_norm"].dtype

    @property
    def device(self):
        return self.w["final_norm"].device

    @property
    def packed(self) -> bool:
        """True when the projections are packed for the amx CPU table (see _pack)."""
        return isinstance(self.w["lm_head"], PackedWeight)

    def _embed(self, tokens: Tensor) -> Tensor:
        e = self.w["embed"]
        return e.rows(tokens) if isinstance(e, PackedWeight) else F.embedding(tokens, e)

    def setup_caches(self, max_batch: int, max_seq: int, *, paged: bool = False, block_size: int = 64):
        """Allocate the conv states and KV caches once for up to max_batch sequences of max_seq tokens."""
        self.caches = Caches(self.config, max_batch, max_seq, self.dtype, self.device, paged, block_size)
        self._steps = {}   # captured decode steps (see _decode); they point into these caches

    # ---- the network -------------------------------------------------------------------------------------
    def _layers(self, h: Tensor, mixer: Callable[[int, Tensor], Tensor], lin) -> Tensor:
        """Pre-norm residual stack with the residual add fused into the next norm; returns the final norm.
        lin(x, w, gate=None) is the projection: F.linear, or our decode GEMV (see _linear)."""
        cfg, w, ops, eps = self.config, self.w, self.ops, self.config.norm_eps
        n, res = ops.rms_norm(h, w["norm.0"], eps), h
        for i in range(cfg.num_hidden_layers):
            n, res = ops.rms_norm(mixer(i, n), w[f"ffn_norm.{i}"], eps, residual=res)
            nxt = w[f"norm.{i + 1}"] if i + 1 < cfg.num_hidden_layers else w["final_norm"]
            n, res = ops.rms_norm(lin(lin(n, w[f"w3.{i}"], w[f"w1.{i}"]), w[f"w2.{i}"]), nxt, eps, residual=res)
        return n

    def _own_linear(self, rows: int) -> bool:
        """Our kernel for a step of `rows` tokens: on the CPU for a decode step (it streams each weight once;
        torch's GEMM is faster for a prefill's hundreds of rows, and cuBLAS on the GPU)."""
        limit = _OWN_LINEAR_MAX_ROWS.get(self.dtype, _OWN_LINEAR_MAX_ROWS_OTHER)
        return self.backend == "kernels" and self.device.type == "cpu" and rows <= limit

    def _linear(self, rows: int):
        """The projection for a step of `rows` tokens: lin(x, w, gate=None), see _own_linear."""
        if self._own_linear(rows):
            return lambda x, w, gate=None: self.ops.linear(x, w, gate_weight=gate)

        def lin(x, w, gate=None):
            if isinstance(w, PackedWeight):
                if w.gated or rows <= _PACKED_GEMM_MAX_ROWS:
                    return self.ops.linear(x, w)
                w = w.unpack()[0]
            if gate is None:
                return F.linear(x, w)
            # in place: no new [tokens, FFN width] tensors (fresh memory costs its page faults: 9 vs 18 ms per
            # layer for 1024 tokens in fp32); the same values as silu(g) * u
            return F.silu(F.linear(x, gate), inplace=True).mul_(F.linear(x, w))
        return lin

    def _qkv(self, i: int, n: Tensor, lin):
        cfg = self.config
        Hq, Hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        N = n.shape[0]
        return (lin(n, self.w[f"q.{i}"]).view(N, Hq, d), lin(n, self.w[f"k.{i}"]).view(N, Hkv, d),
                lin(n, self.w[f"v.{i}"]).view(N, Hkv, d))

    def _prefill(self, tokens: Tensor, lens: list[int], rows: Tensor, last_only: bool) -> Tensor:
        """Packed prefill of len(lens) new sequences (cache slots `rows`) from position 0. Returns the logits
        of each sequence's last token [n_seq, V], or of every token [N, V]."""
        cfg, w, ops, c = self.config, self.w, self.ops, self.caches
        dev = tokens.device
        cu = torch.tensor([0] + torch.tensor(lens).cumsum(0).tolist(), dtype=torch.int32, device=dev)
        seq_of = torch.repeat_interleave(torch.arange(len(lens), device=dev), torch.tensor(lens, device=dev))
        positions = (torch.arange(tokens.numel(), device=dev) - cu[:-1].long()[seq_of]).to(torch.int32)
        slots = c.slots(rows[seq_of], positions)
        fresh = torch.zeros(len(lens), dtype=torch.bool, device=dev)
        lin = self._linear(tokens.numel())

        def mixer(i: int, n: Tensor) -> Tensor:
            if not cfg.is_attention(i):
                bcx = lin(n, w[f"in_proj.{i}"])
                y = ops.short_conv(bcx, w[f"conv.{i}"], c.conv[i], cu_seqlens=cu, state_indices=rows,
                                   has_initial_state=fresh)
                return lin(y, w[f"out_proj.{i}"])
            q, k, v = self._qkv(i, n, lin)
            kc, vc = c.kv[i]
            q = ops.qk_norm_rope_append(q, k, v, w[f"q_norm.{i}"], w[f"k_norm.{i}"], positions, kc, vc, slots,
                                        eps=cfg.norm_eps, rope_theta=cfg.rope_theta)
            out = torch.empty(n.shape[0], cfg.num_attention_heads * cfg.head_dim, dtype=n.dtype, device=dev)
            start = 0
            for s, T in enumerate(lens):   # causal attention within each sequence, keys read back from the cache
                ks = kc.view(-1, *kc.shape[2:])[slots[start:start + T].long()].transpose(0, 1)[None]
                vs = vc.view(-1, *vc.shape[2:])[slots[start:start + T].long()].transpose(0, 1)[None]
                qs = q[start:start + T].transpose(0, 1)[None]
                o = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, enable_gqa=True)
                out[start:start + T] = o[0].transpose(0, 1).reshape(T, -1)
                start += T
            return lin(out, w[f"o_proj.{i}"])

        h = self._embed(tokens)
        n = self._layers(h, mixer, lin)
        if last_only:
            n = n[(cu[1:] - 1).long()]
        return self._linear(n.shape[0])(n, w["lm_head"])

    def _decode(self, tokens: Tensor, rows: Tensor, positions: Tensor, block_tables: Tensor) -> Tensor:
        """One token for each sequence in cache slots `rows` at `positions`. Returns logits [B, V].

        On the CPU kernels the step's launches are captured once per batch size in a CpuGraph and replayed:
        the inputs are copied into the graph's static tensors and the returned logits are its output buffer,
        rewritten by the next step of that batch size (graphs are keyed by batch size, CPU kernel table and
        thread count, and dropped with the caches they point into)."""
        B = tokens.numel()
        context = capture_context()   # a graph replays the kernel table and thread count of its capture
        if context is None or not self._own_linear(B):   # not only lfm25_kernels launches, or not ours to run
            return self._decode_layers(self._embed(tokens), rows, positions,
                                       self.caches.slots(rows, positions), positions + 1, block_tables)
        key = (B, *context)
        step = self._steps.get(key)
        if step is None:
            step = self._steps[key] = self._capture_step(B, block_tables.shape[1])
        step.h.copy_(self._embed(tokens))
        step.rows.copy_(rows)
        step.positions.copy_(positions)
        step.slots.copy_(self.caches.slots(rows, positions))
        torch.add(positions, 1, out=step.seq_lens)
        step.block_tables.copy_(block_tables)
        step.graph.replay()
        return step.logits

    def _capture_step(self, B: int, max_blocks: int) -> SimpleNamespace:
        """Static inputs of a decode step of B sequences and the CpuGraph of its layers."""
        i32 = dict(dtype=torch.int32, device=self.device)
        step = SimpleNamespace(rows=torch.zeros(B, **i32), positions=torch.zeros(B, **i32),
                               slots=torch.zeros(B, **i32), seq_lens=torch.zeros(B, **i32),
                               block_tables=torch.zeros(B, max_blocks, **i32),
                               h=torch.empty(B, self.config.hidden_size, dtype=self.dtype, device=self.device),
                               graph=CpuGraph())
        with step.graph.capture():
            step.logits = self._decode_layers(step.h, step.rows, step.positions, step.slots, step.seq_lens,
                                              step.block_tables)
        return step

    def _decode_layers(self, h: Tensor, rows: Tensor, positions: Tensor, slots: Tensor, seq_lens: Tensor,
                       block_tables: Tensor) -> Tensor:
        """The layers of a decode step from the embedded tokens h [B, D] to the logits [B, V]."""
        cfg, w, ops, c = self.config, self.w, self.ops, self.caches
        lin = self._linear(h.shape[0])

        def mixer(i: int, n: Tensor) -> Tensor:
            if not cfg.is_attention(i):
                y = ops.short_conv_update(lin(n, w[f"in_proj.{i}"]), w[f"conv.{i}"], c.conv[i], state_indices=rows)
                return lin(y, w[f"out_proj.{i}"])
            q, k, v = self._qkv(i, n, lin)
            kc, vc = c.kv[i]
            q = ops.qk_norm_rope_append(q, k, v, w[f"q_norm.{i}"], w[f"k_norm.{i}"], positions, kc, vc, slots,
                                        eps=cfg.norm_eps, rope_theta=cfg.rope_theta)
            o = ops.gqa_decode(q, kc, vc, seq_lens, block_table=block_tables)
            return lin(o.view(o.shape[0], -1), w[f"o_proj.{i}"])

        return lin(self._layers(h, mixer, lin), w["lm_head"])

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

    # ---- generation --------------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, *, temperature: float = 0.0,
                 top_k: int | None = None, top_p: float | None = None, eos_token_id: int | list | None = None,
                 seed: int | None = None, callback: Callable[[int, int], None] | None = None) -> list[list[int]]:
        """Generate up to max_new_tokens for each prompt (token-id lists of any lengths). Returns the new tokens
        of each prompt. Greedy when temperature == 0. callback(i, token) streams each new token of prompt i."""
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("generate: prompts must be a non-empty list of non-empty token lists")
        B, dev = len(prompts), self.device
        need = max(len(p) for p in prompts) + max_new_tokens
        c = self.caches
        if c is None or c.max_batch < B or c.max_seq < need:   # reallocated to fit this call, paging kept
            self.setup_caches(max(B, c.max_batch if c else 0), need,
                              paged=bool(c and c.paged), block_size=c.block_size if c and c.paged else 64)
        eos = set([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id or [])
        gen = torch.Generator(device=dev)
        if seed is not None:
            gen.manual_seed(seed)

        rows = torch.arange(B, dtype=torch.int32, device=dev)
        tokens = torch.tensor([t for p in prompts for t in p], dtype=torch.long, device=dev)
        logits = self._prefill(tokens, [len(p) for p in prompts], rows, last_only=True)
        out: list[list[int]] = [[] for _ in prompts]
        positions = torch.tensor([len(p) for p in prompts], dtype=torch.int32, device=dev)
        active = list(range(B))
        for step in range(max_new_tokens):
            nxt = _sample(logits, temperature, top_k, top_p, gen).tolist()   # the one host read per step
            keep = []
            for j, i in enumerate(active):
                out[i].append(nxt[j])
                if callback:
                    callback(i, nxt[j])
                if nxt[j] not in eos:
                    keep.append(j)
            if step + 1 == max_new_tokens or not keep:
                break
            if len(keep) < len(active):              # finished sequences stop consuming work
                idx = torch.tensor(keep, device=dev)
                rows, positions = rows[idx], positions[idx]
                active = [active[j] for j in keep]
                nxt = [nxt[j] for j in keep]
            tok = torch.tensor(nxt, dtype=torch.long, device=dev)
            logits = self._decode(tok, rows, positions, self.caches.block_table[rows.long()])
            positions = positions + 1
        return out


def _sample(logits: Tensor, temperature: float, top_k, top_p, gen) -> Tensor:
    if temperature <= 0:
        return logits.max(-1).indices   # (the first maximum, like argmax; 2.5x faster in bf16)
    probs = (logits.float() / temperature).softmax(-1)
    if top_k:
        kth = probs.topk(min(top_k, probs.shape[-1]), dim=-1).values[..., -1:]
        probs = probs.masked_fill(probs < kth, 0)
    if top_p:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0))
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen)[:, 0]


def _fuse(cfg: Lfm2Config, raw: dict[str, Tensor], dtype, device) -> dict[str, Tensor]:
    """Checkpoint tensors -> the model's (conv weight [D, 1, K] -> [D, K])."""
    # NOTE: no copy when dtype and device already match: the weights stay views of the checkpoint's memory map,
    # so it is resident once. (Concatenating q/k/v or w1/w3 into one matmul each would copy them and keep the
    # file pages mapped as well: +140 MiB peak RSS for LFM2.5-350M, measured, for no measurable decode gain.)
    cv = lambda t: t.to(device=device, dtype=dtype).contiguous()
    p = "model.layers"
    w = {"embed": cv(raw["model.embed_tokens.weight"]), "final_norm": cv(raw["model.embedding_norm.weight"])}
    w["lm_head"] = cv(raw["lm_head.weight"]) if "lm_head.weight" in raw else w["embed"]
    for i in range(cfg.num_hidden_layers):
        w[f"norm.{i}"] = cv(raw[f"{p}.{i}.operator_norm.weight"])
        w[f"ffn_norm.{i}"] = cv(raw[f"{p}.{i}.ffn_norm.weight"])
        w[f"w1.{i}"] = cv(raw[f"{p}.{i}.feed_forward.w1.weight"])
        w[f"w3.{i}"] = cv(raw[f"{p}.{i}.feed_forward.w3.weight"])
        w[f"w2.{i}"] = cv(raw[f"{p}.{i}.feed_forward.w2.weight"])
        if cfg.is_attention(i):
            a = f"{p}.{i}.self_attn"
            for name in ("q", "k", "v"):
                w[f"{name}.{i}"] = cv(raw[f"{a}.{name}_proj.weight"])
            w[f"o_proj.{i}"] = cv(raw[f"{a}.out_proj.weight"])
            w[f"q_norm.{i}"] = cv(raw[f"{a}.q_layernorm.weight"])
            w[f"k_norm.{i}"] = cv(raw[f"{a}.k_layernorm.weight"])
        else:
            c = f"{p}.{i}.conv"
            w[f"in_proj.{i}"] = cv(raw[f"{c}.in_proj.weight"])
            w[f"out_proj.{i}"] = cv(raw[f"{c}.out_proj.weight"])
            w[f"conv.{i}"] = cv(raw[f"{c}.conv.weight"][:, 0, :])
    return w


def _packs(pack_weights: bool | None, backend: str, dtype, device: torch.device) -> bool:
    import lfm25_kernels

    possible = backend == "kernels" and device.type == "cpu" and dtype == torch.bfloat16
    if pack_weights is None:
        return possible and lfm25_kernels.default_isa() == "amx"
    if pack_weights and not possible:
        raise ValueError("pack_weights=True needs backend='kernels', dtype=torch.bfloat16 and device='cpu' "
                         f"(got {backend!r}, {dtype}, {device})")
    return pack_weights


def _pack(cfg: Lfm2Config, w: dict, release: Callable[[Tensor], None] = lambda t: None) -> None:
    """The projections whose input is the hidden state (in_proj, out_proj, q/k/v/o, w1 with w3, lm_head) packed
    in place by lfm25_kernels.pack_weight; w1 goes into w3's PackedWeight as its gate (w["w1.i"] = None). A tied
    embedding is looked up in the packed lm_head. w2 (input: the FFN width) stays in rows: there the rows
    stream as fast (w2 in rows vs packed, 8 rows: 1.1x; the others packed vs rows: 1.14-1.37x, alternated
    calls over 300 MB of weights, Xeon 4th gen, 2 threads). A prefill runs them as _linear says.
    release(t) is called on each tensor replaced."""
    from lfm25_kernels import pack_weight

    def pack(name: str, gate: str | None = None) -> PackedWeight:
        t, g = w[name], w[gate] if gate else None
        w[name] = pack_weight(t, g)
        for old in (t, g):
            if old is not None:
                release(old)
        if gate:
            w[gate] = None
        return w[name]

    for i in range(cfg.num_hidden_layers):
        names = ("q", "k", "v", "o_proj") if cfg.is_attention(i) else ("in_proj", "out_proj")
        for n in names:
            pack(f"{n}.{i}")
        pack(f"w3.{i}", f"w1.{i}")
    tied = w["lm_head"] is w["embed"]
    pack("lm_head")
    if tied:
        w["embed"] = w["lm_head"]
