"""End-to-end timing of lfm25_model against transformers' Lfm2ForCausalLM on the same random LFM2.5-350M
weights. Each implementation runs in its own process (clean peak RSS):

  python -m lfm25_model.bench --impl lfm25 --dtype bf16          one implementation, JSON on stdout
  compare(device)                                                  both, as rows for python -m bench
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch


def _build(impl: str, dtype, device):
    from lfm25_model import Lfm2Config, Lfm2ForCausalLM
    from lfm25_model.loader import random_weights

    cfg = Lfm2Config.lfm25_350m()
    raw = random_weights(cfg, seed=0)
    if impl == "lfm25":
        from lfm25_model.model import _fuse

        model = Lfm2ForCausalLM(cfg, _fuse(cfg, raw, dtype, torch.device(device)), "kernels")
        del raw
        return model
    from transformers import Lfm2Config as HfConfig, Lfm2ForCausalLM as HfModel

    hf_cfg = HfConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, intermediate_size=6656,
                      num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                      num_key_value_heads=cfg.num_key_value_heads, layer_types=cfg.layer_types,
                      conv_L_cache=cfg.conv_L_cache, norm_eps=cfg.norm_eps, max_position_embeddings=128000,
                      rope_parameters={"rope_theta": cfg.rope_theta, "rope_type": "default"})
    model = HfModel(hf_cfg)
    missing, unexpected = model.load_state_dict(raw, strict=False)
    assert not unexpected and all(k == "lm_head.weight" for k in missing), (missing, unexpected)
    model.tie_weights()
    del raw
    return model.to(device=device, dtype=dtype).eval()


def _generate(impl, model, prompts, n):
    if impl == "lfm25":
        return model.generate(prompts, n)
    ids = torch.tensor(prompts, device=model.device)
    with torch.inference_mode():
        return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)


def measure(impl: str, dtype, device: str, quick: bool) -> list[dict]:
    model = _build(impl, dtype, device)
    g = torch.Generator().manual_seed(0)
    prompt = lambda T: torch.randint(10, 60000, (T,), generator=g).tolist()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def timed(fn, reps=1):
        fn()                                     # warm-up
        best = float("inf")
        for _ in range(reps):
            sync()
            t = time.perf_counter()
            fn()
            sync()
            best = min(best, time.perf_counter() - t)
        return best

    rows = []
    T = 256 if quick else 1024
    p = [prompt(T)]
    t = timed(lambda: _generate(impl, model, p, 1), reps=1 if quick else 2)
    rows.append(dict(metric=f"prefill {T} tokens", value=T / t, unit="tok/s"))
    p = [prompt(128)]
    t = timed(lambda: _generate(impl, model, p, 1), reps=2)
    rows.append(dict(metric="time to first token, 128-token prompt", value=1e3 * t, unit="ms"))
    steps = 8 if quick else 32
    for B in ((1, 8) if quick else (1, 8, 64)):
        ps = [prompt(16) for _ in range(B)]
        t1 = timed(lambda: _generate(impl, model, ps, 1))
        tn = timed(lambda: _generate(impl, model, ps, steps + 1))
        rows.append(dict(metric=f"decode batch {B}", value=B * steps / (tn - t1), unit="tok/s"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # MiB (Linux reports KiB)
    rows.append(dict(metric="peak RSS", value=peak, unit="MiB"))
    return rows


def compare(device: str = "cpu", quick: bool = False, dtype: str = "bf16") -> list[dict]:
    out = []
    for impl in ("lfm25", "transformers"):
        cmd = [sys.executable, "-m", "lfm25_model.bench", "--impl", impl, "--dtype", dtype, "--device", device,
               "--threads", str(torch.get_num_threads())] + (["--quick"] if quick else [])
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            print(f"end-to-end {impl} failed:\n{res.stderr[-2000:]}")
            continue
        name = "lfm25_model (kernels)" if impl == "lfm25" else f"transformers eager"
        for r in json.loads(res.stdout.strip().splitlines()[-1]):
            out.append(dict(r, impl=name, dtype=dtype))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m lfm25_model.bench")
    ap.add_argument("--impl", choices=("lfm25", "transformers"), required=True)
    ap.add_argument("--dtype", default="bf16", choices=("bf16", "fp32"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    print(json.dumps(measure(args.impl, dtype, args.device, args.quick)))


if __name__ == "__main__":
    main()
