"""Public ops: argument checks, output allocation, params structs and dispatch by device to the compiled
kernels (lfm25_kernels._C). Shapes and semantics: DESIGN.md section 2 and each docstring."""
from __future__ import annotations

import contextlib
import contextvars
import functools
from typing import Callable

import torch
from torch import Tensor

from . import _C
from ._checks import FLOAT_DTYPES, Checker
from .reference import rope_inv_freq

_DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}

# CPU kernel table for the calls in this context ("" = the best this CPU runs); see cpu_isa().
_isa: contextvars.ContextVar[str] = contextvars.ContextVar("lfm25_cpu_isa", default="")
# Replaces the local launch (used by the tests to run the aarch64 kernels under qemu); see launcher().
_launcher: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("lfm25_launcher", default=None)


@contextlib.contextmanager
def cpu_isa(name: str):
    """Run the CPU ops in this block with one kernel table: "portable", "avx2", "avx512", "avx512_bf16", "amx",
    "neon" or "neon_bf16" (lfm25_kernels.available_isas() lists those this CPU runs)."""
    if name not in _C.available_isas():
        raise ValueError(f"cpu_isa: name must be one of {_C.available_isas()}, got {name!r}")
    token = _isa.set(name)
    try:
        yield
    finally:
        _isa.reset(token)


@contextlib.contextmanager
def launcher(fn: Callable[[str, object, dict], None]):
    """Send every launch in this block to fn(op, params, tensors) instead of the local kernels; `tensors` maps
    each pointer field of params to the tensor it points into."""
    token = _launcher.set(fn)
    try:
        yield
    finally:
        _launcher.reset(token)


def _launch(op: str, params, tensors: dict[str, Tensor], device: torch.device) -> None:
    remote = _launcher.get()
    if remote is not None:
        remote(op, params, tensors)
        return
    params.num_threads = torch.get_num_threads()
    if device.type == "cpu":
        getattr(_C, op + "_cpu")(params, _isa.get())
    elif device.type == "cuda":
        if not _C.with_cuda:
            raise RuntimeError(f"{op}: lfm25_kernels was built without CUDA; reinstall with a CUDA compiler on PATH")
        stream = torch.cuda.current_stream(device).cuda_stream
        with torch.cuda.device(device):
            getattr(_C, op + "_cuda")(params, stream)
    else:
        raise ValueError(f"{op}: tensors must be on a cpu or cuda device, got {device}")


def _set_pointers(params, tensors: dict[str, Tensor | None]) -> dict[str, Tensor]:
    used = {}
    for name, t in tensors.items():
        setattr(params, name, 0 if t is None else t.data_ptr())
        if t is not None:
            used[name] = t
    return used


def _weight_dtype(c: Checker, weight: Tensor, dtype: torch.dtype, name: str = "weight") -> int:
    if weight.dtype not in (dtype, torch.float32):
        c.fail(name, f"of dtype {dtype} or torch.float32", weight.dtype, TypeError)
    return _DTYPE_CODE[weight.dtype]


def _conv_weight(c: Checker, weight, D: int, device) -> Tensor:
    c.tensor("weight", weight, ndim=(2, 3), device=device)
    if weight.dim() == 3:
        c.value("weight", weight.shape[1] == 1, "[D, K] or [D, 1, K]", f"shape {list(weight.shape)}")
        weight = weight[:, 0, :]
    c.value("weight", weight.shape[0] == D, f"of shape [{D}, K] (D = bcx.shape[-1] / 3)", f"{list(weight.shape)}")
    c.value("weight", 2 <= weight.shape[1] <= 4, "of width K in 2..4", weight.shape[1])
    return weight


def _conv_state(c: Checker, conv_state, K: int, D: int, bcx: Tensor) -> Tensor:
    return c.tensor("conv_state", conv_state, ndim=3, dtype=bcx.dtype, device=bcx.device, shape=(None, K - 1, D))


def short_conv(bcx: Tensor, weight: Tensor, conv_state: Tensor | None = None, *,
               cu_seqlens: Tensor | None = None, state_indices: Tensor | None = None,
               has_initial_state: Tensor | None = None) -> Tensor:
    """Gated short convolution, prefill: y = C * causal_conv_K(B * X).

    bcx: [B, T, 3D] (dense) or [N, 3D] with cu_seqlens [n_seq+1] int32 (packed); columns B | C | X.
    weight: [D, K] or [D, 1, K], K in 2..4, in bcx's dtype or fp32.
    conv_state: [S, K-1, D] in bcx's dtype, read and written in place: sequence i uses slot state_indices[i]
    (int32 [n_seq], default i; -1 = padding: zero output, no state), starting from zeros where
    has_initial_state[i] (bool [n_seq], default all true) is false.
    Returns y: [B, T, D] or [N, D] in bcx's dtype.
    """
    c = Checker("short_conv")
    c.tensor("bcx", bcx, ndim=2 if cu_seqlens is not None else 3, dtype=FLOAT_DTYPES)
    c.value("bcx", bcx.shape[-1] % 3 == 0 and bcx.shape[-1] > 0, "of width 3*D", bcx.shape[-1])
    D = bcx.shape[-1] // 3
    weight = _conv_weight(c, weight, D, bcx.device)
    K = weight.shape[1]
    if cu_seqlens is not None:
        c.index("cu_seqlens", cu_seqlens, None, bcx.device)
        c.value("cu_seqlens", cu_seqlens.numel() >= 1, "of length n_seq + 1 >= 1", cu_seqlens.numel())
        n_seq, total = cu_seqlens.numel() - 1, bcx.shape[0]
    else:
        n_seq, total = bcx.shape[0], bcx.shape[1]
    if conv_state is None:
        for name, t in (("state_indices", state_indices), ("has_initial_state", has_initial_state)):
            c.value(name, t is None, "None when conv_state is None", "a tensor")
    else:
        _conv_state(c, conv_state, K, D, bcx)
        if state_indices is not None:
            c.index("state_indices", state_indices, n_seq, bcx.device)
        else:
            c.value("conv_state", conv_state.shape[0] >= n_seq,
                    f"of at least {n_seq} slots when state_indices is None", conv_state.shape[0])
        if has_initial_state is not None:
            c.index("has_initial_state", has_initial_state, n_seq, bcx.device, dtype=torch.bool)

    y = torch.empty(*bcx.shape[:-1], D, dtype=bcx.dtype, device=bcx.device)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.short_conv(bcx, weight, conv_state, cu_seqlens, state_indices,
                                          has_initial_state)
    if y.numel() == 0 and (conv_state is None or n_seq == 0):
        return y
    p = _C.ShortConvParams()
    tensors = _set_pointers(p, dict(x=bcx, y=y, weight=weight, state=conv_state, cu_seqlens=cu_seqlens,
                                    state_indices=state_indices, has_initial_state=has_initial_state))
    if cu_seqlens is None:
        p.x_batch_stride, p.x_token_stride = bcx.stride(0), bcx.stride(1)
        p.y_batch_stride, p.y_token_stride = y.stride(0), y.stride(1)
    else:
        p.x_batch_stride, p.x_token_stride = 0, bcx.stride(0)
        p.y_batch_stride, p.y_token_stride = 0, y.stride(0)
    p.weight_stride = weight.stride(0)
    if conv_state is not None:
        p.state_slot_stride, p.state_row_stride = conv_state.stride(0), conv_state.stride(1)
        p.n_slots = conv_state.shape[0]
    p.batch, p.seqlen, p.dim, p.width = n_seq, total, D, K
    p.dtype, p.weight_dtype = _DTYPE_CODE[bcx.dtype], _weight_dtype(c, weight, bcx.dtype)
    _launch("short_conv", p, tensors, bcx.device)
    return y


def short_conv_update(bcx: Tensor, weight: Tensor, conv_state: Tensor, *,
                      state_indices: Tensor | None = None) -> Tensor:
    """Gated short convolution, one decode step for a batch.

    bcx: [B, 3D]; weight: [D, K] or [D, 1, K]; conv_state: [S, K-1, D], shifted by one row in place at slot
    state_indices[b] (int32 [B], default b; -1 = padding: zero output, state untouched).
    Returns y: [B, D]. Equals short_conv with T=1 and an initial state, bit for bit.
    """
    c = Checker("short_conv_update")
    c.tensor("bcx", bcx, ndim=2, dtype=FLOAT_DTYPES)
    c.value("bcx", bcx.shape[-1] % 3 == 0 and bcx.shape[-1] > 0, "of width 3*D", bcx.shape[-1])
    D, B = bcx.shape[-1] // 3, bcx.shape[0]
    weight = _conv_weight(c, weight, D, bcx.device)
    K = weight.shape[1]
    _conv_state(c, conv_state, K, D, bcx)
    if state_indices is not None:
        c.index("state_indices", state_indices, B, bcx.device)
    else:
        c.value("conv_state", conv_state.shape[0] >= B, f"of at least {B} slots when state_indices is None",
                conv_state.shape[0])
    y = torch.empty(B, D, dtype=bcx.dtype, device=bcx.device)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.short_conv_update(bcx, weight, conv_state, state_indices)
    if B == 0:
        return y
    p = _C.ShortConvUpdateParams()
    tensors = _set_pointers(p, dict(x=bcx, y=y, weight=weight, state=conv_state, state_indices=state_indices))
    p.x_batch_stride, p.y_batch_stride, p.weight_stride = bcx.stride(0), y.stride(0), weight.stride(0)
    p.state_slot_stride, p.state_row_stride = conv_state.stride(0), conv_state.stride(1)
    p.batch, p.dim, p.width, p.n_slots = B, D, K, conv_state.shape[0]
    p.dtype, p.weight_dtype = _DTYPE_CODE[bcx.dtype], _weight_dtype(c, weight, bcx.dtype)
    _launch("short_conv_update", p, tensors, bcx.device)
    return y


# True while computing a cached constant (RoPE frequencies): torch ops that a CpuGraph capture may run once.
_constant: contextvars.ContextVar[bool] = contextvars.ContextVar("lfm25_constant", default=False)


@functools.lru_cache(maxsize=32)
def _inv_freq(head_dim: int, rope_theta: float, device: torch.device) -> Tensor:
    token = _constant.set(True)
    try:
        return rope_inv_freq(head_dim, rope_theta, device).contiguous()
    finally:
        _constant.reset(token)


_HEAD_DIMS = (32, 64, 96, 128)


def qk_norm_rope_append(q: Tensor, k: Tensor, v: Tensor, q_norm_weight: Tensor, k_norm_weight: Tensor,
                        positions: Tensor, k_cache: Tensor, v_cache: Tensor, slot_mapping: Tensor, *,
                        eps: float = 1e-5, rope_theta: float = 1e6) -> Tensor:
    """Attention state update: per-head RMSNorm of q and k, rotate-half RoPE at positions, k and v appended.

    q: [N, Hq, d], k and v: [N, Hkv, d] (views into one qkv projection are fine); q_norm_weight and
    k_norm_weight: [d]; positions, slot_mapping: int32 [N]. k_cache, v_cache: [n_blocks, block_size, Hkv, d]
    (a contiguous cache is [B, L_max, Hkv, d]); token n goes to flat slot slot_mapping[n] = block * block_size
    + offset, -1 = not written. d in {32, 64, 96, 128}. Returns q_out: [N, Hq, d].
    """
    c = Checker("qk_norm_rope_append")
    c.tensor("q", q, ndim=3, dtype=FLOAT_DTYPES)
    N, Hq, d = q.shape
    dev, dt = q.device, q.dtype
    c.value("q", d in _HEAD_DIMS, f"of head_dim in {_HEAD_DIMS}", d)
    c.tensor("k", k, ndim=3, dtype=dt, device=dev)
    Hkv = k.shape[1]
    c.tensor("k", k, shape=(N, Hkv, d))
    c.value("q", Hkv > 0 and Hq % Hkv == 0, f"of a head count that is a multiple of the {Hkv} KV heads", Hq)
    c.tensor("v", v, ndim=3, dtype=dt, device=dev, shape=(N, Hkv, d))
    for name, w in (("q_norm_weight", q_norm_weight), ("k_norm_weight", k_norm_weight)):
        c.tensor(name, w, ndim=1, device=dev, shape=(d,))
        _weight_dtype(c, w, dt, name)
    c.value("k_norm_weight", k_norm_weight.dtype == q_norm_weight.dtype, f"of dtype {q_norm_weight.dtype}",
            k_norm_weight.dtype)
    c.index("positions", positions, N, dev)
    c.index("slot_mapping", slot_mapping, N, dev)
    c.tensor("k_cache", k_cache, ndim=4, dtype=dt, device=dev, shape=(None, None, Hkv, d))
    c.tensor("v_cache", v_cache, ndim=4, dtype=dt, device=dev, shape=tuple(k_cache.shape))
    c.value("v_cache", v_cache.stride() == k_cache.stride(), f"strided like k_cache {k_cache.stride()}",
            v_cache.stride())
    q_out = torch.empty(N, Hq, d, dtype=dt, device=dev)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.qk_norm_rope_append(q, k, v, q_norm_weight, k_norm_weight, positions, k_cache,
                                                   v_cache, slot_mapping, eps, rope_theta)
    if N == 0:
        return q_out
    p = _C.QkNormRopeAppendParams()
    tensors = _set_pointers(p, dict(q=q, k=k, v=v, q_out=q_out, q_norm_weight=q_norm_weight,
                                    k_norm_weight=k_norm_weight, inv_freq=_inv_freq(d, float(rope_theta), dev),
                                    positions=positions, slot_mapping=slot_mapping, k_cache=k_cache,
                                    v_cache=v_cache))
    p.q_token_stride, p.q_head_stride = q.stride(0), q.stride(1)
    p.k_token_stride, p.k_head_stride = k.stride(0), k.stride(1)
    p.v_token_stride, p.v_head_stride = v.stride(0), v.stride(1)
    p.cache_block_stride, p.cache_token_stride, p.cache_head_stride = k_cache.stride()[:3]
    p.n_tokens, p.n_q_heads, p.n_kv_heads, p.head_dim = N, Hq, Hkv, d
    p.n_blocks, p.block_size = k_cache.shape[0], k_cache.shape[1]
    p.eps = float(eps)
    p.dtype, p.weight_dtype = _DTYPE_CODE[dt], _DTYPE_CODE[q_norm_weight.dtype]
    _launch("qk_norm_rope_append", p, tensors, dev)
    return q_out


def gqa_decode(q: Tensor, k_cache: Tensor, v_cache: Tensor, seq_lens: Tensor, *,
               block_table: Tensor | None = None, scale: float | None = None) -> Tensor:
    """Single-query grouped attention per sequence against its KV cache.

    q: [B, Hq, d]; k_cache, v_cache: [B, L_max, Hkv, d] (contiguous: sequence b owns row b) or
    [n_blocks, block_size, Hkv, d] with block_table int32 [B, max_blocks] (paged); seq_lens: int32 [B], the
    number of valid cached tokens (0 gives zeros). Query head h reads KV head h // (Hq/Hkv).
    scale defaults to d**-0.5. d in {32, 64, 96, 128}. Returns out: [B, Hq, d].
    """
    c = Checker("gqa_decode")
    c.tensor("q", q, ndim=3, dtype=FLOAT_DTYPES)
    B, Hq, d = q.shape
    dev, dt = q.device, q.dtype
    c.value("q", d in _HEAD_DIMS, f"of head_dim in {_HEAD_DIMS}", d)
    c.tensor("k_cache", k_cache, ndim=4, dtype=dt, device=dev)
    Hkv = k_cache.shape[2]
    c.tensor("k_cache", k_cache, shape=(None, None, Hkv, d))
    c.value("q", Hkv > 0 and Hq % Hkv == 0, f"of a head count that is a multiple of the {Hkv} KV heads", Hq)
    c.tensor("v_cache", v_cache, ndim=4, dtype=dt, device=dev, shape=tuple(k_cache.shape))
    c.value("v_cache", v_cache.stride() == k_cache.stride(), f"strided like k_cache {k_cache.stride()}",
            v_cache.stride())
    c.index("seq_lens", seq_lens, B, dev)
    if block_table is not None:
        c.tensor("block_table", block_table, ndim=2, dtype=torch.int32, device=dev, shape=(B, None))
    else:
        c.value("k_cache", k_cache.shape[0] >= B, f"of at least {B} rows (one per sequence) without block_table",
                k_cache.shape[0])
    out = torch.empty(B, Hq, d, dtype=dt, device=dev)
    scale = d ** -0.5 if scale is None else float(scale)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.gqa_decode(q, k_cache, v_cache, seq_lens, block_table, scale)
    if B == 0:
        return out
    p = _C.GqaDecodeParams()
    tensors = _set_pointers(p, dict(q=q, out=out, k_cache=k_cache, v_cache=v_cache, seq_lens=seq_lens,
                                    block_table=block_table))
    p.q_batch_stride, p.q_head_stride = q.stride(0), q.stride(1)
    p.cache_block_stride, p.cache_token_stride, p.cache_head_stride = k_cache.stride()[:3]
    p.block_table_stride = block_table.stride(0) if block_table is not None else 0
    p.batch, p.n_q_heads, p.n_kv_heads, p.head_dim = B, Hq, Hkv, d
    p.n_blocks, p.block_size = k_cache.shape[0], k_cache.shape[1]
    p.max_blocks = block_table.shape[1] if block_table is not None else 1
    p.scale = scale
    p.dtype = _DTYPE_CODE[dt]
    _launch("gqa_decode", p, tensors, dev)
    return out


def rms_norm(x: Tensor, weight: Tensor, eps: float, residual: Tensor | None = None):
    """RMSNorm over the last dimension: y = weight * x / sqrt(mean(x^2) + eps).

    x: [..., D]; weight: [D] in x's dtype or fp32. With residual ([..., D], x's dtype): h = x + residual is
    rounded to x's dtype and the op returns (rms_norm(h), h).
    """
    c = Checker("rms_norm")
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=FLOAT_DTYPES)
    D = x.shape[-1]
    c.tensor("weight", weight, ndim=1, device=x.device, shape=(D,))
    wdt = _weight_dtype(c, weight, x.dtype)
    if residual is not None:
        c.tensor("residual", residual, dtype=x.dtype, device=x.device, shape=tuple(x.shape))
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    h = torch.empty_like(y) if residual is not None else None
    if torch.compiler.is_compiling():
        if residual is None:
            return torch.ops.lfm25.rms_norm(x, weight, float(eps))
        return torch.ops.lfm25.add_rms_norm(x, weight, float(eps), residual)
    if x.numel() == 0:
        return y if residual is None else (y, h)
    x2 = x.reshape(-1, D)
    r2 = residual.reshape(-1, D) if residual is not None else None
    p = _C.RmsNormParams()
    tensors = _set_pointers(p, dict(x=x2, residual=r2, y=y, residual_out=h, weight=weight))
    p.x_row_stride = x2.stride(0)
    p.residual_row_stride = r2.stride(0) if r2 is not None else 0
    p.rows, p.dim, p.eps = x2.shape[0], D, float(eps)
    p.dtype, p.weight_dtype = _DTYPE_CODE[x.dtype], wdt
    _launch("rms_norm", p, tensors, x.device)
    return y if residual is None else (y, h)


_TILE_ROWS, _TILE_K = 16, 32   # an AMX bf16 tile: 16 rows of 32 columns


class PackedWeight:
    """linear's weight [N, K] (and its SwiGLU gate), bf16, packed once by pack_weight() for the "amx" CPU kernel
    table: `data` holds blocks of 4 tiles of 16 rows x 32 columns, a block's tiles of each group of 32 columns
    contiguous (csrc/cpu/linear_amx.cpp has the layout). Each block is then read as one stream, and a row's
    sums run over K in the same order for any number of rows. Pass it to linear() as the weight."""

    __slots__ = ("data", "out_features", "in_features", "gated")

    def __init__(self, data: Tensor, out_features: int, in_features: int, gated: bool):
        self.data, self.out_features, self.in_features, self.gated = data, out_features, in_features, gated

    @property
    def dtype(self) -> torch.dtype:
        return self.data.dtype

    @property
    def device(self) -> torch.device:
        return self.data.device

    @property
    def shape(self) -> torch.Size:
        """[N, K] of the weight (the gate has the same)."""
        return torch.Size((self.out_features, self.in_features))

    def _tiles(self) -> Tensor:
        """data as [blocks, row tiles, 16, chunks of K, 32] (a view)."""
        return self.data.permute(0, 2, 3, 1, 4)

    def unpack(self) -> tuple[Tensor, Tensor | None]:
        """(weight, gate_weight or None) as [N, K] tensors (copies)."""
        t = self._tiles()
        B, _, _, C, _ = t.shape
        N, K = self.out_features, self.in_features
        if not self.gated:
            return t.reshape(B * 4 * _TILE_ROWS, C * _TILE_K)[:N, :K].clone(), None
        halves = [t[:, h:h + 2].reshape(B * 2 * _TILE_ROWS, C * _TILE_K)[:N, :K].clone() for h in (0, 2)]
        return halves[0], halves[1]

    def rows(self, index: Tensor) -> Tensor:
        """weight[index] (the weight's rows, not the gate's): [len(index), K], e.g. the embedding lookup of a
        tied lm_head."""
        per_block = 2 * _TILE_ROWS if self.gated else 4 * _TILE_ROWS
        index = index.reshape(-1).long()
        if index.numel() and not (0 <= int(index.min()) and int(index.max()) < self.out_features):
            raise IndexError(f"PackedWeight.rows: index must be in [0, {self.out_features}), got values from "
                             f"{int(index.min())} to {int(index.max())}")
        t = self._tiles()
        out = t[index // per_block, (index % per_block) // _TILE_ROWS, index % _TILE_ROWS]   # [n, chunks, 32]
        return out.reshape(index.numel(), -1)[:, :self.in_features]

    def __repr__(self) -> str:
        gate = ", gated" if self.gated else ""
        return f"PackedWeight(out_features={self.out_features}, in_features={self.in_features}{gate})"


def pack_weight(weight: Tensor, gate_weight: Tensor | None = None) -> PackedWeight:
    """Pack a bf16 CPU weight [N, K] (with gate_weight [N, K]: both, for linear(x, packed) to compute
    silu(x . gate_weight^T) * (x . weight^T)) for the "amx" kernel table. linear() with a PackedWeight runs
    only on that table (Xeon 4th gen and later). Measured on the LFM2.5-350M shapes with K = 1024: 1.14-1.37x
    faster than with [N, K] rows at 1 and 8 rows; at 1024 rows about twice the row layout's speed, the fused
    gate as fast as torch's two oneDNN GEMMs, a plain weight 0.6-0.9x of oneDNN's (csrc/cpu/linear_amx.cpp).
    Memory: one copy, zero-padded to 64 rows (32 gated) and 32 columns."""
    c = Checker("pack_weight")
    c.tensor("weight", weight, ndim=2, dtype=torch.bfloat16, last_contiguous=False)
    c.value("weight", weight.device.type == "cpu", "on the CPU (packed weights are for the amx CPU table)",
            weight.device)
    N, K = weight.shape
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=torch.bfloat16, device=weight.device, shape=(N, K),
                 last_contiguous=False)
    per_block = 2 * _TILE_ROWS if gate_weight is not None else 4 * _TILE_ROWS
    blocks, chunks = -(-N // per_block), -(-K // _TILE_K)
    data = torch.empty(blocks, chunks, 4, _TILE_ROWS, _TILE_K, dtype=torch.bfloat16)
    tiles = data.permute(0, 2, 3, 1, 4)   # [blocks, 4, 16, chunks, 32]: row tiles x rows by chunks x columns
    parts = [weight] if gate_weight is None else [weight, gate_weight]
    for i, w in enumerate(parts):   # each weight fills 4 / len(parts) row tiles of every block
        if (blocks * per_block, chunks * _TILE_K) != (N, K):   # zero-padded to whole tiles first
            w = torch.nn.functional.pad(w, (0, chunks * _TILE_K - K, 0, blocks * per_block - N))
        n = 4 // len(parts)
        tiles[:, i * n:(i + 1) * n].copy_(w.reshape(blocks, n, _TILE_ROWS, chunks, _TILE_K))
    return PackedWeight(data, N, K, gate_weight is not None)


def linear(x: Tensor, weight: Tensor | PackedWeight, *, gate_weight: Tensor | None = None) -> Tensor:
    """y = x . weight^T (torch.nn.functional.linear without bias), fp32 accumulation, rounded once.

    x: [..., K]; weight: [N, K] in x's dtype. With gate_weight ([N, K]): y = silu(x . gate_weight^T) *
    (x . weight^T), LFM2's SwiGLU (gate_weight = w1, weight = w3) in one pass over both weights, each product
    rounded to x's dtype before silu and the multiply, as torch's eager ops round it. Returns [..., N].
    On the CPU a row's result does not depend on the other rows of the call, bit for bit. The CPU kernel is
    built for the few rows of a decode step (it streams the weights once and is bound by memory bandwidth);
    for hundreds of rows torch's GEMM is faster. On CUDA this is cuBLAS through torch.
    weight may be a PackedWeight (pack_weight(): bf16, the "amx" table only; its gate is packed with it), which
    streams faster at a decode step's rows and makes the kernel usable for a prefill's (see pack_weight).
    """
    if isinstance(weight, PackedWeight):
        return _linear_packed(x, weight, gate_weight)
    c = Checker("linear")
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=FLOAT_DTYPES)
    K = x.shape[-1]
    c.tensor("weight", weight, ndim=2, dtype=x.dtype, device=x.device, shape=(None, K))
    N = weight.shape[0]
    if gate_weight is not None:
        c.tensor("gate_weight", gate_weight, ndim=2, dtype=x.dtype, device=x.device, shape=(N, K))
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.linear(x, weight, gate_weight)
    if x.device.type == "cuda":
        up = torch.nn.functional.linear(x, weight)
        if gate_weight is None:
            return up
        return torch.nn.functional.silu(torch.nn.functional.linear(x, gate_weight)) * up
    y = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    if K == 0:
        return y.zero_()   # empty sums are 0, and silu(0) * 0 = 0
    x2 = x.reshape(-1, K)
    p = _C.LinearParams()
    tensors = _set_pointers(p, dict(x=x2, weight=weight, gate_weight=gate_weight, y=y))
    p.x_row_stride, p.weight_row_stride, p.y_row_stride = x2.stride(0), weight.stride(0), N
    p.gate_row_stride = gate_weight.stride(0) if gate_weight is not None else 0
    p.rows, p.in_features, p.out_features = x2.shape[0], K, N
    p.dtype = _DTYPE_CODE[x.dtype]
    _launch("linear", p, tensors, x.device)
    return y


def _linear_packed(x: Tensor, w: PackedWeight, gate_weight) -> Tensor:
    c = Checker("linear")
    c.value("gate_weight", gate_weight is None, "None with a PackedWeight (pack the gate with the weight)",
            type(gate_weight).__name__)
    c.tensor("x", x, ndim=tuple(range(1, 9)), dtype=torch.bfloat16, device=w.device, shape=None)
    K, N = w.in_features, w.out_features
    c.value("x", x.shape[-1] == K, f"of shape [..., {K}] (the packed weight's in_features)", list(x.shape))
    table = _isa.get() or _C.default_isa()
    c.value("weight", table == "amx", "run on the amx CPU table (it is packed for it); the table in effect is",
            table)
    if torch.compiler.is_compiling():
        return torch.ops.lfm25.linear_packed(x, w.data, N, K, w.gated)
    y = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device)
    if y.numel() == 0:
        return y
    if K == 0:
        return y.zero_()
    x2 = x.reshape(-1, K)
    p = _C.LinearParams()
    tensors = _set_pointers(p, dict(x=x2, weight=w.data, y=y))
    p.x_row_stride, p.y_row_stride = x2.stride(0), N
    p.rows, p.in_features, p.out_features = x2.shape[0], K, N
    p.dtype = _DTYPE_CODE[x.dtype]
    p.weight_layout = 2 if w.gated else 1
    _launch("linear", p, tensors, x.device)
    return y
