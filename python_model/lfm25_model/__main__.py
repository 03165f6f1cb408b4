"""python -m lfm25_model generate --model DIR --prompt "..." [--chat] [--max-new-tokens N] [--backend ...]

Streams the generated text and ends with the prefill and decode speeds. --random-weights builds the
LFM2.5-350M shapes with random weights (no download, no tokenizer: token ids are printed)."""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from . import Lfm2ForCausalLM


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lfm25_model", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate text from a prompt")
    g.add_argument("--model", help="checkpoint directory (config.json, model.safetensors, tokenizer.json)")
    g.add_argument("--random-weights", action="store_true", help="LFM2.5-350M shapes, random weights")
    g.add_argument("--prompt", default="The capital of France is")
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template")
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--backend", choices=("kernels", "reference"), default="kernels")
    g.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    g.add_argument("--device", default="cpu")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    if bool(args.model) == args.random_weights:
        ap.error("give exactly one of --model DIR and --random-weights")
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

    if args.random_weights:
        model = Lfm2ForCausalLM.random(backend=args.backend, dtype=dtype, device=args.device)
        ids = torch.randint(10, model.config.vocab_size, (32,), generator=torch.Generator().manual_seed(0)).tolist()
        tok, eos = None, None
    else:
        from tokenizers import Tokenizer

        model = Lfm2ForCausalLM.from_pretrained(args.model, backend=args.backend, dtype=dtype, device=args.device)
        tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        text = args.prompt
        if args.chat:
            text = f"<|startoftext|><|im_start|>user\n{args.prompt}<|im_end|>\n<|im_start|>assistant\n"
        ids = tok.encode(text, add_special_tokens=not args.chat).ids
        eos = tok.token_to_id("<|im_end|>") if args.chat else model.config.eos_token_id

    out: list[int] = []
    printed = ""
    first: list[float] = []

    def stream(_, token):
        nonlocal printed
        first.append(time.perf_counter())
        out.append(token)
        if tok is None:
            print(token, end=" ", flush=True)
            return
        text = tok.decode(out)
        print(text[len(printed):], end="", flush=True)
        printed = text

    if tok is not None:
        print(args.prompt if not args.chat else "", end="", flush=True)
    t0 = time.perf_counter()
    model.generate([ids], args.max_new_tokens, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   eos_token_id=eos, seed=args.seed, callback=stream)
    t1 = time.perf_counter()
    prefill = first[0] - t0
    decode = (t1 - first[0]) / max(len(out) - 1, 1)
    print(f"\n\nprefill: {len(ids)} tokens in {prefill * 1e3:.0f} ms ({len(ids) / prefill:.0f} tok/s); decode: "
          f"{len(out)} tokens, {1 / decode:.1f} tok/s ({args.backend}, {args.dtype}, {torch.get_num_threads()} threads)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
