"""lfm25_model: a thin LFM2 / LFM2.5 model on lfm25_kernels (gpt-fast style).

    import torch
    from lfm25_model import Lfm2ForCausalLM

    model = Lfm2ForCausalLM.from_pretrained("LFM2.5-350M", backend="kernels", dtype=torch.bfloat16)
    new_tokens = model.generate([[1, 2, 3], [1, 5]], max_new_tokens=32)

A checkpoint directory: huggingface-cli download LiquidAI/LFM2.5-350M --local-dir LFM2.5-350M
"""
from .config import Lfm2Config
from .model import Lfm2ForCausalLM

__all__ = ["Lfm2Config", "Lfm2ForCausalLM"]
