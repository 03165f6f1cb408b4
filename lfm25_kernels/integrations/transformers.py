"""Swap lfm25_kernels into one transformers Lfm2ForCausalLM instance: its gated short-conv layers then run
through the fused short_conv (prefill) and short_conv_update (decode) ops. Explicit, per model, reversible:

    from lfm25_kernels.integrations.transformers import swap_kernels
    with swap_kernels(model):            # or: swap = swap_kernels(model); ...; swap.restore()
        model.generate(...)

Only the instance's conv layers change; the class and every other model are untouched.
"""
from __future__ import annotations

import types

import torch

from .. import ops


def _fused_forward(self, hidden_states, past_key_values=None, attention_mask=None, cache=None, **kwargs):
    """transformers' Lfm2ShortConv.forward, with the gates, the conv and the state update in one op.
    transformers keeps the last K inputs per layer ([B, D, K], channels first); our ops read its K-1 newest.
    The cache argument is `cache` from transformers 5.24 on, `past_key_values` before."""
    from transformers.models.lfm2.modeling_lfm2 import apply_mask_to_padding_states

    past_key_values = cache if cache is not None else past_key_values
    seq_len = hidden_states.shape[1]
    hidden_states = apply_mask_to_padding_states(hidden_states, attention_mask)
    bcx = self.in_proj(hidden_states)                                  # [B, T, 3D]
    weight = self.conv.weight[:, 0, :]                                 # [D, K]
    D = weight.shape[0]
    conv_state = past_key_values.get_conv_state(self.layer_idx, state_idx=0) if past_key_values is not None else None
    if conv_state is not None and seq_len == 1 and not past_key_values.is_recording_past(self.layer_idx):
        state = conv_state[:, :, 1:].transpose(1, 2).contiguous()      # [B, K-1, D]
        y = ops.short_conv_update(bcx[:, 0], weight, state)[:, None]
        conv_state[:, :, 0] = conv_state[:, :, 1]
        conv_state[:, :, 1:] = state.transpose(1, 2)
    else:
        state = None
        if past_key_values is not None:
            if conv_state is not None:                                 # continue from the cached inputs
                state = conv_state[:, :, 1:].transpose(1, 2).contiguous()
            b, _, x = bcx.split(D, dim=-1)
            past_key_values.update_conv_state((b * x).transpose(1, 2), self.layer_idx,
                                              conv_kernel_size=self.conv_kernel_size)
        y = ops.short_conv(bcx, weight, state)
    return self.out_proj(y)


class KernelSwap:
    """The conv layers of one model running our kernels; restore() (or leaving the with-block) undoes it."""

    def __init__(self, model: torch.nn.Module):
        from transformers.models.lfm2.modeling_lfm2 import Lfm2ShortConv

        self.layers = [m for m in model.modules() if isinstance(m, Lfm2ShortConv)]
        if not self.layers:
            raise ValueError("swap_kernels: the model has no Lfm2ShortConv layers (is it an LFM2 model?)")
        for m in self.layers:
            if "forward" in m.__dict__:
                raise ValueError("swap_kernels: this model's conv layers are already swapped or patched")
            m.forward = types.MethodType(_fused_forward, m)

    def restore(self):
        for m in self.layers:
            m.__dict__.pop("forward", None)
        self.layers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.restore()


def swap_kernels(model: torch.nn.Module) -> KernelSwap:
    """Run the gated short-conv layers of this transformers LFM2 model through lfm25_kernels."""
    return KernelSwap(model)
