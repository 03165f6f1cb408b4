"""The one registry of benchmark (and test) cases: op, dtype, shapes, name. The real LFM2.5-350M shapes
first, then sweeps. `make_inputs` builds fresh random inputs (never zeros) ready to call the op, and
`bytes_moved` counts the bytes an ideal kernel must move (each input read once, each output written once)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lfm25_kernels import _C

# LFM2.5-350M (docs/DESIGN.md section 1)
LFM25_350M = dict(hidden=1024, conv_width=3, n_q_heads=16, n_kv_heads=8, head_dim=64, layers=16,
                  attention_layers=(2, 5, 8, 10, 12, 14), ffn=4608, vocab=65536, rope_theta=1e6, eps=1e-5)

OPS = tuple(_C.ops)   # the op list (csrc/include/lfm25/ops.h)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass(frozen=True)
class Case:
    op: str
    name: str
    dtype: str                       # key of DTYPES
    shape: dict = field(hash=False)  # op-specific sizes
    tier: str = "lfm2"               # "quick" (also in lfm2), "lfm2" or "sweep"

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    @property
    def id(self) -> str:
        return f"{self.op}/{self.name}/{self.dtype}"


def _lfm2_cases(dtype: str) -> list[Case]:
    D, K = LFM25_350M["hidden"], LFM25_350M["conv_width"]
    Hq, Hkv, d = LFM25_350M["n_q_heads"], LFM25_350M["n_kv_heads"], LFM25_350M["head_dim"]
    out = []
    for B, T in ((1, 128), (1, 1024), (1, 4096), (8, 4096), (1, 8192)):
        tier = "quick" if (B, T) == (1, 4096) else "lfm2"
        out.append(Case("short_conv", f"prefill {B}x{T}", dtype, dict(B=B, T=T, D=D, K=K), tier))
    for B in (1, 8, 64, 256, 512):
        out.append(Case("short_conv_update", f"decode batch {B}", dtype, dict(B=B, D=D, K=K),
                        "quick" if B == 64 else "lfm2"))
    out.append(Case("short_conv_update", "decode batch 256, state indices", dtype,
                    dict(B=256, D=D, K=K, indexed=True)))
    for N in (1, 64, 256, 4096):
        out.append(Case("qk_norm_rope_append", f"{N} tokens", dtype, dict(N=N, Hq=Hq, Hkv=Hkv, d=d, L=8192),
                        "quick" if N == 64 else "lfm2"))
    for B, L in ((1, 128), (1, 4096), (8, 4096), (64, 4096), (1, 32768), (64, 1024), (256, 512), (512, 128)):
        out.append(Case("gqa_decode", f"batch {B} x {L} cached", dtype, dict(B=B, L=L, Hq=Hq, Hkv=Hkv, d=d),
                        "quick" if (B, L) == (8, 4096) else "lfm2"))
    for M in (1, 64, 256, 4096):
        out.append(Case("rms_norm", f"{M} rows + residual", dtype, dict(M=M, D=D, residual=True),
                        "quick" if M == 4096 else "lfm2"))
    F, V = LFM25_350M["ffn"], LFM25_350M["vocab"]
    for M in (1, 8):                                 # the projections of a decode step of M sequences
        out.append(Case("linear", f"w1+w3 SwiGLU, {M} rows", dtype, dict(M=M, K=D, N=F, gated=True),
                        "quick" if M == 1 else "lfm2"))
        out.append(Case("linear", f"w2, {M} rows", dtype, dict(M=M, K=F, N=D)))
        out.append(Case("linear", f"in_proj, {M} rows", dtype, dict(M=M, K=D, N=3 * D)))
        out.append(Case("linear", f"lm_head, {M} rows", dtype, dict(M=M, K=D, N=V)))
    for fmt in ("int8", "q4"):                       # the same with quantized weights
        for M in (1, 8):
            out.append(Case("linear_q", f"{fmt} w1+w3 SwiGLU, {M} rows", dtype,
                            dict(M=M, K=D, N=F, gated=True, format=fmt), "quick" if (fmt, M) == ("q4", 1) else "lfm2"))
            out.append(Case("linear_q", f"{fmt} w2, {M} rows", dtype, dict(M=M, K=F, N=D, format=fmt)))
            out.append(Case("linear_q", f"{fmt} lm_head, {M} rows", dtype, dict(M=M, K=D, N=V, format=fmt)))
        out.append(Case("linear_q", f"{fmt} w1+w3 SwiGLU, 1024 rows (prefill)", dtype,
                        dict(M=1024, K=D, N=F, gated=True, format=fmt)))
    return out


def _sweep_cases(dtype: str) -> list[Case]:
    out = []
    for D in (256, 2048, 4096):                      # other LFM2 widths and beyond
        out.append(Case("short_conv", f"prefill 1x4096 D={D}", dtype, dict(B=1, T=4096, D=D, K=3), "sweep"))
    for K in (2, 4):
        out.append(Case("short_conv", f"prefill 1x4096 K={K}", dtype, dict(B=1, T=4096, D=1024, K=K), "sweep"))
    for G in (1, 4):                                 # GQA groups of other LFM2 sizes
        out.append(Case("gqa_decode", f"batch 8 x 4096 group {G}", dtype,
                        dict(B=8, L=4096, Hq=8 * G, Hkv=8, d=64), "sweep"))
    out.append(Case("gqa_decode", "batch 8 x 4096 head_dim 128", dtype, dict(B=8, L=4096, Hq=16, Hkv=8, d=128), "sweep"))
    return out


def cases(ops=None, dtypes=("bf16",), tier: str = "lfm2") -> list[Case]:
    """Cases of `tier`: "quick" (one LFM2.5-350M case per op), "lfm2" (all LFM2.5-350M shapes) or "sweep"
    (lfm2 plus other widths, kernel widths, group sizes), filtered by op and dtype."""
    allowed = {"quick": ("quick",), "lfm2": ("quick", "lfm2"), "sweep": ("quick", "lfm2", "sweep")}[tier]
    out = []
    for dt in dtypes:
        out += [c for c in _lfm2_cases(dt) + _sweep_cases(dt) if c.tier in allowed]
    return [c for c in out if ops is None or c.op in ops]


def make_inputs(case: Case, device="cpu", seed: int = 0) -> dict:
    """Keyword arguments for lfm25_kernels.<op> / reference.<op>, random (never zeros), on `device`."""
    g = torch.Generator().manual_seed(seed)
    dt, s = case.torch_dtype, case.shape
    rnd = lambda *shape, scale=1.0: (torch.randn(*shape, generator=g) * scale).to(dt).to(device)
    i32 = lambda t: t.to(torch.int32).to(device)
    if case.op == "short_conv":
        return dict(bcx=rnd(s["B"], s["T"], 3 * s["D"]), weight=rnd(s["D"], s["K"], scale=0.5),
                    conv_state=rnd(s["B"], s["K"] - 1, s["D"]))
    if case.op == "short_conv_update":     # indexed: the state rows in a random order, as a server's batch
        return dict(bcx=rnd(s["B"], 3 * s["D"]), weight=rnd(s["D"], s["K"], scale=0.5),
                    conv_state=rnd(s["B"], s["K"] - 1, s["D"]),
                    state_indices=i32(torch.randperm(s["B"], generator=g)) if s.get("indexed") else None)
    if case.op == "qk_norm_rope_append":
        N, L = s["N"], s["L"]
        qkv = rnd(N, (s["Hq"] + 2 * s["Hkv"]) * s["d"])
        q, k, v = qkv.split([s["Hq"] * s["d"], s["Hkv"] * s["d"], s["Hkv"] * s["d"]], dim=-1)
        n_seq = max(1, N // 64)
        positions = torch.arange(N) % L
        slots = torch.arange(N) % (n_seq * L)
        return dict(q=q.view(N, s["Hq"], s["d"]), k=k.view(N, s["Hkv"], s["d"]), v=v.view(N, s["Hkv"], s["d"]),
                    q_norm_weight=rnd(s["d"]), k_norm_weight=rnd(s["d"]), positions=i32(positions),
                    k_cache=rnd(n_seq, L, s["Hkv"], s["d"]), v_cache=rnd(n_seq, L, s["Hkv"], s["d"]),
                    slot_mapping=i32(slots))
    if case.op == "gqa_decode":
        B, L = s["B"], s["L"]
        return dict(q=rnd(B, s["Hq"], s["d"]), k_cache=rnd(B, L, s["Hkv"], s["d"]),
                    v_cache=rnd(B, L, s["Hkv"], s["d"]), seq_lens=i32(torch.full((B,), L)))
    if case.op == "rms_norm":
        return dict(x=rnd(s["M"], s["D"]), weight=rnd(s["D"]), eps=1e-5,
                    residual=rnd(s["M"], s["D"]) if s.get("residual") else None)
    if case.op == "linear":
        M, K, N = s["M"], s["K"], s["N"]
        return dict(x=rnd(M, K), weight=rnd(N, K, scale=K ** -0.5),
                    gate_weight=rnd(N, K, scale=K ** -0.5) if s.get("gated") else None)
    if case.op == "linear_q":
        import lfm25_kernels

        M, K, N = s["M"], s["K"], s["N"]
        w = torch.randn(N, K, generator=g) * K ** -0.5
        gate = torch.randn(N, K, generator=g) * K ** -0.5 if s.get("gated") else None
        return dict(x=rnd(M, K), weight=lfm25_kernels.quantize_weight(w, gate, format=s["format"]))
    raise ValueError(f"unknown op {case.op}")


def bytes_moved(case: Case) -> int:
    """Bytes an ideal kernel reads and writes once each (weights included; index tensors ignored)."""
    e = torch.tensor([], dtype=case.torch_dtype).element_size()
    s = case.shape
    if case.op == "short_conv":
        tokens = s["B"] * s["T"]
        state = 2 * s["B"] * (s["K"] - 1) * s["D"]                    # read initial, write final
        return e * (tokens * 4 * s["D"] + state + s["D"] * s["K"])    # bcx in (3D), y out (D)
    if case.op == "short_conv_update":
        return e * (s["B"] * (4 * s["D"] + 2 * (s["K"] - 1) * s["D"]) + s["D"] * s["K"])
    if case.op == "qk_norm_rope_append":
        q, kv = s["N"] * s["Hq"] * s["d"], s["N"] * s["Hkv"] * s["d"]
        return e * (2 * q + 4 * kv)                                   # q in/out, k and v in and to the cache
    if case.op == "gqa_decode":
        return e * (2 * s["B"] * s["L"] * s["Hkv"] * s["d"] + 2 * s["B"] * s["Hq"] * s["d"])
    if case.op == "rms_norm":
        rows = s["M"] * s["D"]
        return e * (rows * (4 if s.get("residual") else 2) + s["D"])
    if case.op == "linear":
        return e * (s["N"] * s["K"] * (2 if s.get("gated") else 1) + s["M"] * (s["K"] + s["N"]))
    if case.op == "linear_q":   # codes and fp16 scales: 8.5 or 4.5 bits per weight
        weight_bits = (8.5 if s["format"] == "int8" else 4.5) * s["N"] * s["K"] * (2 if s.get("gated") else 1)
        return int(weight_bits / 8) + e * s["M"] * (s["K"] + s["N"])
    raise ValueError(case.op)
