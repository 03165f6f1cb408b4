"""lfm25_model: a thin LFM2 / LFM2.5 model on lfm25_kernels (gpt-fast style).

    from lfm25_model import Lfm2ForCausalLM
    model = Lfm2ForCausalLM.from_pretrained("path/to/LFM2.5-350M", backend="kernels", dtype=torch.bfloat16)
    new_tokens = model.generate([[1, 2, 3], [1, 5]], max_new_tokens=32)
"""
from .config import Lfm2Config
from .model import Lfm2ForCausalLM

__all__ = ["Lfm2Config", "Lfm2ForCausalLM"]
