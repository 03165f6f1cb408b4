"""The ops, one module each (docs/DESIGN.md section 2): its argument checks, the one implementation (checks ->
output -> params struct -> launch), its torch.library custom op lfm25::<op> with a fake that runs the same
checks, and the public function. The compiled op list is lfm25_kernels._C.ops. cpu_isa and launcher choose
where the launches go (_launch.py).

A public function calls torch.ops.lfm25.<op> while torch.compile traces, and the implementation directly
otherwise: the dispatcher would run the same function, but measured it costs as much again per call as the
checks and the launch together, and a CPU decode step makes about a hundred op calls. The custom op never
calls the public function, so the checks run once per call."""
from .._launch import cpu_isa, launcher
from .gqa_decode import gqa_decode
from .linear import PackedWeight, linear, pack_weight
from .linear_q import QuantizedWeight, linear_q, quantize_weight
from .qk_norm_rope_append import qk_norm_rope_append
from .rms_norm import rms_norm
from .short_conv import short_conv
from .short_conv_update import short_conv_update

__all__ = ["short_conv", "short_conv_update", "qk_norm_rope_append", "gqa_decode", "rms_norm", "linear",
           "pack_weight", "PackedWeight", "linear_q", "quantize_weight", "QuantizedWeight", "cpu_isa", "launcher"]
