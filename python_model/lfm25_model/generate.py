"""generate: prefill the prompts, then one batched decode step per token, sampling on the host."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


@torch.inference_mode()
def generate(model, prompts: list[list[int]], max_new_tokens: int, *, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, eos_token_id: int | list | None = None,
             seed: int | None = None, callback: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """model.generate: up to max_new_tokens for each prompt (token-id lists of any lengths). Returns the new
    tokens of each prompt. Greedy when temperature == 0. callback(i, token) streams each new token of prompt i."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("generate: prompts must be a non-empty list of non-empty token lists")
    B, dev = len(prompts), model.device
    need = max(len(p) for p in prompts) + max_new_tokens
    c = model.caches
    if c is None or c.max_batch < B or c.max_seq < need:   # reallocated to fit this call, paging kept
        model.setup_caches(max(B, c.max_batch if c else 0), need,
                           paged=bool(c and c.paged), block_size=c.block_size if c and c.paged else 64)
    eos = set([eos_token_id] if isinstance(eos_token_id, int) else eos_token_id or [])
    gen = torch.Generator(device=dev)
    if seed is not None:
        gen.manual_seed(seed)

    rows = torch.arange(B, dtype=torch.int32, device=dev)
    tokens = torch.tensor([t for p in prompts for t in p], dtype=torch.long, device=dev)
    logits = model._prefill(tokens, [len(p) for p in prompts], rows, last_only=True)
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
        logits = model._decode(tok, rows, positions, model.caches.block_table[rows.long()])
        positions = positions + 1
    return out


def _sample(logits: Tensor, temperature: float, top_k, top_p, gen) -> Tensor:
    if temperature <= 0:
        return logits.max(-1).indices   # the first maximum, like argmax, and faster in bf16
    probs = (logits.float() / temperature).softmax(-1)
    if top_k:
        kth = probs.topk(min(top_k, probs.shape[-1]), dim=-1).values[..., -1:]
        probs = probs.masked_fill(probs < kth, 0)
    if top_p:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0))
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen)[:, 0]
