"""Compiled kernels (csrc/python/bindings.cpp). Raw pointers in, ValueError on a bad status. Use the
functions in lfm25_kernels, which check arguments and fill these structs."""
from typing import ClassVar

with_cuda: bool

class DType:
    f32: ClassVar[DType]
    f16: ClassVar[DType]
    bf16: ClassVar[DType]

class _Params:
    pointer_offsets: ClassVar[dict[str, int]]
    size: ClassVar[int]
    num_threads: int
    def __init__(self) -> None: ...
    def to_bytes(self) -> bytes: ...

class ShortConvParams(_Params):
    x: int; y: int; weight: int; state: int; cu_seqlens: int; state_indices: int; has_initial_state: int
    x_batch_stride: int; x_token_stride: int; y_batch_stride: int; y_token_stride: int; weight_stride: int
    state_slot_stride: int; state_row_stride: int
    batch: int; seqlen: int; dim: int; width: int; n_slots: int; dtype: int; weight_dtype: int

class ShortConvUpdateParams(_Params):
    x: int; y: int; weight: int; state: int; state_indices: int
    x_batch_stride: int; y_batch_stride: int; weight_stride: int; state_slot_stride: int; state_row_stride: int
    batch: int; dim: int; width: int; n_slots: int; dtype: int; weight_dtype: int

class QkNormRopeAppendParams(_Params):
    q: int; k: int; v: int; q_out: int; q_norm_weight: int; k_norm_weight: int; inv_freq: int
    positions: int; slot_mapping: int; k_cache: int; v_cache: int
    q_token_stride: int; q_head_stride: int; k_token_stride: int; k_head_stride: int
    v_token_stride: int; v_head_stride: int
    cache_block_stride: int; cache_token_stride: int; cache_head_stride: int
    n_tokens: int; n_q_heads: int; n_kv_heads: int; head_dim: int; n_blocks: int; block_size: int
    eps: float; dtype: int; weight_dtype: int

class GqaDecodeParams(_Params):
    q: int; out: int; k_cache: int; v_cache: int; seq_lens: int; block_table: int
    q_batch_stride: int; q_head_stride: int
    cache_block_stride: int; cache_token_stride: int; cache_head_stride: int; block_table_stride: int
    batch: int; n_q_heads: int; n_kv_heads: int; head_dim: int; n_blocks: int; block_size: int; max_blocks: int
    scale: float; dtype: int

class RmsNormParams(_Params):
    x: int; residual: int; y: int; residual_out: int; weight: int
    x_row_stride: int; residual_row_stride: int; rows: int; dim: int; eps: float; dtype: int; weight_dtype: int

class LinearParams(_Params):
    x: int; weight: int; gate_weight: int; y: int
    x_row_stride: int; weight_row_stride: int; gate_row_stride: int; y_row_stride: int
    rows: int; in_features: int; out_features: int; dtype: int
    weight_layout: int   # 0: [N, K] rows; 1: packed by pack_weight; 2: packed with its gate

def short_conv_cpu(params: ShortConvParams, isa: str = "") -> None: ...
def short_conv_update_cpu(params: ShortConvUpdateParams, isa: str = "") -> None: ...
def qk_norm_rope_append_cpu(params: QkNormRopeAppendParams, isa: str = "") -> None: ...
def gqa_decode_cpu(params: GqaDecodeParams, isa: str = "") -> None: ...
def rms_norm_cpu(params: RmsNormParams, isa: str = "") -> None: ...
def linear_cpu(params: LinearParams, isa: str = "") -> None: ...
def short_conv_cuda(params: ShortConvParams, stream: int) -> None: ...
def short_conv_update_cuda(params: ShortConvUpdateParams, stream: int) -> None: ...
def qk_norm_rope_append_cuda(params: QkNormRopeAppendParams, stream: int) -> None: ...
def gqa_decode_cuda(params: GqaDecodeParams, stream: int) -> None: ...
def rms_norm_cuda(params: RmsNormParams, stream: int) -> None: ...
def available_isas() -> list[str]: ...
def parallel_backend() -> str: ...
def default_isa() -> str: ...

class CpuGraph:
    def __init__(self) -> None: ...
    def add(self, params: _Params, isa: str = "") -> None: ...
    def replay(self) -> None: ...
    def replay_timed(self) -> list[float]: ...
    def __len__(self) -> int: ...
