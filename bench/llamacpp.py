"""llama.cpp as a peer on the same weights: a GGUF of the benchmark's Hugging Face checkpoint written with the
`gguf` package (its writer and its reference quantizers), run through llama-cpp-python (docs/benchmark.md).

  gguf_for(checkpoint, "Q4_0", cache)    the GGUF of a checkpoint, written once per checkpoint and type
  Session(path, n_ctx, n_seq, threads)   one GGUF loaded in this process; decode() runs a llama_batch
  python -m bench.llamacpp --gguf PATH   one GGUF's timings (or --teacher: its logits), JSON on stdout; bench/e2e.py
                                         runs it, each engine in its own process
Torch-free (bench/engine.py): the process's peak RSS is llama.cpp's, not torch's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np

from .engine import Settings, measure

TYPES = ("F32", "BF16", "Q8_0", "Q4_0")
INSTALL = ("llama.cpp is not installed: pip install llama-cpp-python gguf (it builds llama.cpp from source, "
           "several minutes; CMAKE_ARGS=\"-DGGML_NATIVE=ON\" builds it for this CPU's instructions)")
SPECIAL_TOKENS = ["<|pad|>", "<|startoftext|>", "<|endoftext|>", "<|fim_pre|>", "<|fim_mid|>", "<|fim_suf|>",
                  "<|im_start|>", "<|im_end|>"]


def missing() -> str | None:
    """None when llama-cpp-python and gguf import, else what to do about it."""
    try:
        import gguf  # noqa: F401
        import llama_cpp  # noqa: F401
    except ImportError:
        return INSTALL
    return None


def version() -> str:
    import llama_cpp

    return llama_cpp.__version__


# ---- the GGUF --------------------------------------------------------------------------------------------
def gguf_for(checkpoint: str, qtype: str, cache: str) -> str:
    """The GGUF of `checkpoint` in `qtype`, under `cache`, named by a hash of the checkpoint's config and its
    weight file's identity (path, size, mtime) and the type: written once, reused by later runs."""
    if qtype not in TYPES:
        raise ValueError(f"gguf_for: qtype must be one of {TYPES}, got {qtype!r}")
    weights = os.path.join(checkpoint, "model.safetensors")
    st = os.stat(weights)
    with open(os.path.join(checkpoint, "config.json"), "rb") as f:
        key = hashlib.sha256(f.read() + f"{os.path.realpath(weights)}|{st.st_size}|{st.st_mtime_ns}".encode())
    path = os.path.join(cache, f"lfm2-{key.hexdigest()[:16]}-{qtype.lower()}.gguf")
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        write_gguf(checkpoint, qtype, path + ".part")
        os.replace(path + ".part", path)       # a killed run leaves no half-written file under the final name
    return path


def write_gguf(checkpoint: str, qtype: str, path: str) -> None:
    """An LFM2 GGUF as llama.cpp's convert_hf_to_gguf.py writes it: the same metadata and tensor names; the
    2-D projections and the (tied) embedding in `qtype`, the norms and the conv taps in F32."""
    import gguf
    from safetensors import safe_open

    with open(os.path.join(checkpoint, "config.json")) as f:
        cfg = json.load(f)
    n_layers, layer_types = cfg["num_hidden_layers"], cfg["layer_types"]
    ftype = {"F32": gguf.LlamaFileType.ALL_F32, "BF16": gguf.LlamaFileType.MOSTLY_BF16,
             "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qtype]
    w = gguf.GGUFWriter(path, "lfm2")
    w.add_block_count(n_layers)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])     # written with block_auto_adjust_ff_dim off
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv([cfg["num_key_value_heads"] if t != "conv" else 0 for t in layer_types])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_shortconv_l_cache(cfg["conv_L_cache"])
    w.add_file_type(ftype)
    _add_vocab(w, cfg)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LFM2, n_layers)
    with safe_open(os.path.join(checkpoint, "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name).float()
            new = names.get_name(name, try_suffixes=(".weight",))
            if new is None:
                raise ValueError(f"write_gguf: no GGUF name for checkpoint tensor {name!r}")
            if name.endswith("conv.conv.weight"):
                t = t.squeeze(1)                               # [D, 1, K] -> [D, K], as the converter does
            keep_f32 = t.ndim == 1 or new.endswith("_norm.weight") or ".shortconv.conv." in new
            qt = gguf.GGMLQuantizationType.F32 if keep_f32 else gguf.GGMLQuantizationType[qtype]
            w.add_tensor(new, gguf.quants.quantize(t.numpy(), qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _byte_symbols() -> list[str]:
    """GPT-2 byte-level BPE's printable stand-ins for the 256 bytes."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in bs]
    return sorted(chr(c) for c in bs + [256 + i for i in range(len(extra))])


def _add_vocab(w, cfg: dict) -> None:
    """A synthetic byte-level BPE vocabulary of vocab_size entries (special tokens, the 256 bytes, then
    two-byte merges), the one /work/shared/peer/make_model.py gives its tokenizer: llama.cpp needs a vocabulary
    to load a model, and the benchmark feeds it token ids."""
    import gguf

    n, syms = cfg["vocab_size"], _byte_symbols()
    if n < len(SPECIAL_TOKENS) + len(syms):
        raise ValueError(f"write_gguf: vocab_size must be at least {len(SPECIAL_TOKENS) + len(syms)}, got {n}")
    tokens, merges = SPECIAL_TOKENS + syms, []
    pairs = ((a, b) for a in syms for b in syms)
    while len(tokens) < n:
        a, b = next(pairs)
        tokens.append(a + b)
        merges.append(f"{a} {b}")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("lfm2")
    w.add_token_list(tokens)
    w.add_token_types([gguf.TokenType.CONTROL] * len(SPECIAL_TOKENS) + [gguf.TokenType.NORMAL] * (n - len(SPECIAL_TOKENS)))
    w.add_token_merges(merges)
    w.add_bos_token_id(cfg.get("bos_token_id", 1))
    w.add_eos_token_id(cfg.get("eos_token_id", 7))
    w.add_pad_token_id(cfg.get("pad_token_id", 0))


# ---- running it ------------------------------------------------------------------------------------------
class Session:
    """A GGUF loaded through llama-cpp-python's low-level API: one context of n_ctx tokens shared by up to n_seq
    sequences (unified KV cache), the CPU threads given."""

    def __init__(self, path: str, n_ctx: int, n_seq: int, threads: int):
        import llama_cpp as C

        self.C = C
        C.llama_backend_init()
        self.model = C.llama_model_load_from_file(path.encode(), C.llama_model_default_params())
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {path}")
        p = C.llama_context_default_params()
        p.n_ctx, p.n_batch, p.n_seq_max = n_ctx, n_ctx, n_seq
        p.n_threads = p.n_threads_batch = threads
        p.kv_unified = True
        self.ctx = C.llama_init_from_model(self.model, p)
        self.n_vocab = C.llama_vocab_n_tokens(C.llama_model_get_vocab(self.model))
        self.batch = C.llama_batch_init(n_ctx, 0, n_seq)

    def clear(self):
        self.C.llama_memory_clear(self.C.llama_get_memory(self.ctx), True)

    def decode(self, seqs: list[list[int]], start: list[int], all_logits: bool = False) -> np.ndarray:
        """The tokens of each sequence (sequence ids 0..S-1) at positions start[s].. in one llama_batch. Returns
        the logits [S, V] of each sequence's last token, or [tokens, V] of every token with all_logits."""
        b, n = self.batch, 0
        for s, toks in enumerate(seqs):
            for i, t in enumerate(toks):
                b.token[n], b.pos[n], b.n_seq_id[n], b.seq_id[n][0] = t, start[s] + i, 1, s
                b.logits[n] = all_logits or i == len(toks) - 1
                n += 1
        b.n_tokens = n
        rc = self.C.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        if all_logits:
            return np.ctypeslib.as_array(self.C.llama_get_logits(self.ctx), shape=(n, self.n_vocab)).copy()
        rows, last = [], -1
        for toks in seqs:
            last += len(toks)
            rows.append(np.ctypeslib.as_array(self.C.llama_get_logits_ith(self.ctx, last), shape=(self.n_vocab,)))
        return np.stack(rows)

    def generate(self, prompts: list[list[int]], n: int, on_step=None) -> list[list[int]]:
        """Greedy: the prompts in one batch, then one batch of len(prompts) tokens per step."""
        self.clear()
        nxt = self.decode(prompts, [0] * len(prompts)).argmax(-1)
        out, pos = [[int(t)] for t in nxt], [len(p) for p in prompts]
        if on_step:
            on_step()
        for _ in range(n - 1):
            nxt = self.decode([[o[-1]] for o in out], pos).argmax(-1)
            pos = [p + 1 for p in pos]
            for o, t in zip(out, nxt):
                o.append(int(t))
            if on_step:
                on_step()
        return out


def logits(path: str, tokens: list[int], first: int, threads: int) -> np.ndarray:
    """Teacher-forced logits [len(tokens) - first, V] of positions first-1 .. len-2 (each predicting the next
    token): all tokens in one batch, logits for every one (what llama-cpp-python's logits_all asks for)."""
    s = Session(path, -(-len(tokens) // 256) * 256, 1, threads)
    return s.decode([tokens], [0], all_logits=True)[first - 1:-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.llamacpp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--gguf", required=True)
    ap.add_argument("--settings", default="{}", help="bench.engine.Settings as JSON")
    ap.add_argument("--teacher", help='JSON file {"tokens": [...], "first": P}: write the logits to --out (.npy)')
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    s = Settings(**json.loads(args.settings))
    if args.teacher:
        with open(args.teacher) as f:
            t = json.load(f)
        np.save(args.out, logits(args.gguf, t["tokens"], t["first"], s.threads))
        return 0
    # NOTE: one context for every timing, sized for the largest of them, with a KV cache shared by all
    # sequences (kv_unified), as a server holds it; the memory it takes counts in the peak RSS
    need = max(s.prefill + 1, max(s.batches) * (s.prompt + s.new))
    session = Session(args.gguf, -(-need // 256) * 256, max(s.batches), s.threads)
    print(json.dumps(dict(rows=measure(session.generate, session.n_vocab, s), version=version())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
