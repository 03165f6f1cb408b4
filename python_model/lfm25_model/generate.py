"""generate: prefill the prompts, then one batched decode step per token, sampling on the host."""
from __future__ import annotations

import numbers
from typing import Callable

import torch
from torch import Tensor


@torch.inference_mode()
def generate(model, prompts: list[list[int]] | list[int] | Tensor, max_new_tokens: int, *,
             temperature: float = 0.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | list[int] | None = None, seed: int | None = None,
             callback: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """model.generate: up to max_new_tokens (>= 1) new tokens for each prompt. prompts: token-id lists of any
    lengths, or one prompt as a flat list or a 1-D tensor, or a 2-D tensor [B, T] of B prompts of T tokens each
    (no padding: every id is read as a token). Returns the new tokens of each prompt, a list of lists.
    Greedy when temperature == 0; else sampled at that temperature, from the top_k most likely tokens (None or
    0: all) and the smallest set of them whose probabilities add up to top_p (None or 1: all), reproducibly
    with a seed. Stops a prompt at any of eos_token_id. callback(i, token) streams each new token of prompt i."""
    prompts = _token_lists(prompts, model.config.vocab_size)
    _check_options(max_new_tokens, temperature, top_k, top_p, eos_token_id, seed)
    B, dev = len(prompts), model.device
    need = max(len(p) for p in prompts) + max_new_tokens
    c = model.caches
    if c is None or c.max_batch < B or c.max_seq < need:   # reallocated to fit this call, paging kept
        batch, paged = max(B, c.max_batch if c else 0), bool(c and c.paged)
        block_size = c.block_size if paged else 64
        del c   # the old caches are freed before the new ones are allocated
        model.setup_caches(batch, need, paged=paged, block_size=block_size)
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


def _fail(name: str, expected: str, got, exc=ValueError):
    raise exc(f"generate: {name} must be {expected}, got {got}")


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _token_lists(prompts, vocab_size: int) -> list[list[int]]:
    """prompts as a list of token-id lists, each id checked against the vocabulary."""
    what = "a list of token-id lists, a flat list of token ids, or a 1-D or 2-D integer tensor"
    if isinstance(prompts, Tensor):
        if prompts.dtype.is_floating_point or prompts.dtype.is_complex or prompts.dtype == torch.bool:
            _fail("prompts", "an integer tensor of token ids", f"dtype {prompts.dtype}", TypeError)
        if prompts.dim() not in (1, 2):
            _fail("prompts", what, f"a tensor of shape {list(prompts.shape)}")
        prompts = prompts.tolist()
    if not isinstance(prompts, (list, tuple)):
        _fail("prompts", what, type(prompts).__name__, TypeError)
    if prompts and all(_is_int(t) for t in prompts):
        prompts = [prompts]   # one prompt
    if not prompts:
        _fail("prompts", "at least one prompt", "an empty list")
    for i, p in enumerate(prompts):
        if not isinstance(p, (list, tuple)) or not all(_is_int(t) for t in p):
            bad = p if not isinstance(p, (list, tuple)) else next(t for t in p if not _is_int(t))
            _fail(f"prompts[{i}]", "a list of int token ids", f"{type(bad).__name__} {bad!r}", TypeError)
        if not p:
            _fail(f"prompts[{i}]", "a non-empty list of token ids", "an empty one")
        bad = [t for t in p if not 0 <= t < vocab_size]
        if bad:
            _fail(f"prompts[{i}]", f"token ids in [0, {vocab_size}) (the vocabulary)", f"{bad[:5]}")
    return [list(p) for p in prompts]


def _check_options(max_new_tokens, temperature, top_k, top_p, eos_token_id, seed) -> None:
    if not _is_int(max_new_tokens) or max_new_tokens < 1:
        _fail("max_new_tokens", "an int >= 1", repr(max_new_tokens), ValueError if _is_int(max_new_tokens)
              else TypeError)
    if not _is_number(temperature):
        _fail("temperature", "a number >= 0 (0: greedy)", type(temperature).__name__, TypeError)
    if not temperature >= 0 or temperature == float("inf"):
        _fail("temperature", "a finite number >= 0 (0: greedy)", temperature)
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        _fail("top_k", "None or an int >= 0 (0: no limit)", repr(top_k), ValueError if _is_int(top_k) else TypeError)
    if top_p is not None:
        if not _is_number(top_p):
            _fail("top_p", "None or a number in (0, 1]", type(top_p).__name__, TypeError)
        if not 0 < top_p <= 1:
            _fail("top_p", "None or a number in (0, 1]", top_p)
    eos = [eos_token_id] if _is_int(eos_token_id) else eos_token_id
    if eos is not None and (not isinstance(eos, (list, tuple, set)) or not all(_is_int(t) for t in eos)):
        _fail("eos_token_id", "None, an int or a list of ints", repr(eos_token_id), TypeError)
    if seed is not None and not _is_int(seed):
        _fail("seed", "None or an int", repr(seed), TypeError)


def _sample(logits: Tensor, temperature: float, top_k, top_p, gen) -> Tensor:
    if temperature <= 0:   # the first maximum (a NaN counts as one)
        # on the CPU numpy's argmax: torch's max with indices over a vocabulary's row takes a visible share of a
        # decode step; a bf16 row is widened, exactly, for numpy
        if logits.device.type == "cpu":
            return torch.from_numpy(logits.float().numpy().argmax(-1))
        return logits.max(-1).indices
    probs = (logits.float() / temperature).softmax(-1)
    if top_k:
        kth = probs.topk(min(top_k, probs.shape[-1]), dim=-1).values[..., -1:]
        probs = probs.masked_fill(probs < kth, 0)
    if top_p:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p
        probs = probs.scatter(-1, order, sorted_p.masked_fill(drop, 0))
    return torch.multinomial(probs / probs.sum(-1, keepdim=True), 1, generator=gen)[:, 0]
