"""Caches: the state a step reads and writes, allocated once by Lfm2ForCausalLM.setup_caches."""
from __future__ import annotations

import torch
from torch import Tensor

from .config import Lfm2Config


class Caches:
    """Conv states [S, K-1, D] per conv layer (dtype) and K/V caches [n_blocks, block_size, Hkv, d] per attention
    layer (kv_dtype). Sequence slot s owns blocks block_table[s] (contiguous caches: one block of max_seq tokens
    per slot)."""

    def __init__(self, cfg: Lfm2Config, max_batch: int, max_seq: int, dtype, kv_dtype, device, paged: bool,
                 block_size: int):
        D, K, Hkv, d = cfg.hidden_size, cfg.conv_L_cache, cfg.num_key_value_heads, cfg.head_dim
        self.max_batch, self.max_seq, self.paged = max_batch, max_seq, paged
        self.block_size = block_size if paged else max_seq
        per_seq = -(-max_seq // self.block_size)
        n_blocks = max_batch * per_seq
        self.block_table = torch.arange(n_blocks, dtype=torch.int32, device=device).view(max_batch, per_seq)
        self.conv = {i: torch.zeros(max_batch, K - 1, D, dtype=dtype, device=device)
                     for i in range(cfg.num_hidden_layers) if not cfg.is_attention(i)}
        self.kv = {i: (torch.zeros(n_blocks, self.block_size, Hkv, d, dtype=kv_dtype, device=device),
                       torch.zeros(n_blocks, self.block_size, Hkv, d, dtype=kv_dtype, device=device))
                   for i in range(cfg.num_hidden_layers) if cfg.is_attention(i)}

    def slots(self, rows: Tensor, positions: Tensor) -> Tensor:
        """Flat cache slot of each (sequence slot, position)."""
        blocks = self.block_table[rows.long(), (positions // self.block_size).long()]
        return (blocks * self.block_size + positions % self.block_size).to(torch.int32)
