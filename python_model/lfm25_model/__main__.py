"""python -m lfm25_model generate --model DIR --prompt "..." [--chat] [--max-new-tokens N] [--backend ...]

Streams the generated text and ends with the prefill and decode speeds, measured after a warm-up (one prefill
and one decode step: the decode step's CpuGraph is captured then, once). --random-weights builds the
LFM2.5-350M shapes with random weights (no download, no tokenizer: the prompt is 32 random token ids, and
token ids are printed)."""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from . import Lfm2ForCausalLM

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
DOWNLOAD = "huggingface-cli download LiquidAI/LFM2.5-350M --local-dir LFM2.5-350M"


def _positive(text: str) -> int:
    if not text.lstrip("-").isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an int >= 1, got {text!r}")
    return int(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lfm25_model", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate", help="generate text from a prompt",
                       epilog=f"A checkpoint directory: {DOWNLOAD}")
    g.add_argument("--model", help="checkpoint directory (config.json, model.safetensors, tokenizer.json)")
    g.add_argument("--random-weights", action="store_true", help="LFM2.5-350M shapes, random weights")
    g.add_argument("--prompt", help='the text to continue (default "The capital of France is"; needs --model)')
    g.add_argument("--chat", action="store_true", help="wrap the prompt in the chat template (needs --model)")
    g.add_argument("--max-new-tokens", type=_positive, default=64)
    g.add_argument("--backend", choices=("kernels", "reference"), default="kernels")
    g.add_argument("--dtype", choices=tuple(DTYPES), default="bf16")
    g.add_argument("--quantize", choices=("int8", "q4"), help="quantize the weights at load (docs/DESIGN.md section 4)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--threads", type=_positive, help="CPU threads (default: torch's, one per core)")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--seed", type=int, default=None)
    args = ap.parse_args(argv)
    if bool(args.model) == args.random_weights:
        ap.error("give exactly one of --model DIR and --random-weights")
    if args.random_weights:
        given = [f"--{name}" for name in ("prompt", "chat") if getattr(args, name) not in (None, False)]
        if given:
            verb = "needs" if len(given) == 1 else "need"
            ap.error(f"{' and '.join(given)} {verb} --model DIR (a checkpoint with its tokenizer); --random-weights "
                     f"generates from random token ids. A checkpoint: {DOWNLOAD}")
    else:
        if args.prompt is None:
            args.prompt = "The capital of France is"
        if not args.prompt and not args.chat:
            ap.error('--prompt "" has no tokens to continue: give some text, or add --chat')
        if not os.path.isfile(os.path.join(args.model, "tokenizer.json")):
            ap.error(f"no tokenizer.json in {args.model!r}: the CLI needs the checkpoint's tokenizer (download the "
                     f"whole checkpoint: {DOWNLOAD})")
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]

    if args.random_weights:
        model = Lfm2ForCausalLM.random(backend=args.backend, dtype=dtype, device=args.device, quantize=args.quantize)
        ids = torch.randint(10, model.config.vocab_size, (32,), generator=torch.Generator().manual_seed(0)).tolist()
        tok, eos = None, None
    else:
        from tokenizers import Tokenizer

        extra = {"quantize": args.quantize} if args.quantize else {}
        try:
            model = Lfm2ForCausalLM.from_pretrained(args.model, backend=args.backend, dtype=dtype,
                                                    device=args.device, **extra)
        except (FileNotFoundError, ValueError) as e:
            ap.error(str(e))
        tok = Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))
        text = args.prompt
        if args.chat:
            text = f"<|startoftext|><|im_start|>user\n{args.prompt}<|im_end|>\n<|im_start|>assistant\n"
        ids = tok.encode(text, add_special_tokens=not args.chat).ids
        if not ids:
            ap.error(f"--prompt {args.prompt!r} has no tokens")
        eos = tok.token_to_id("<|im_end|>") if args.chat else model.config.eos_token_id

    sampling = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, eos_token_id=eos,
                    seed=args.seed)
    model.setup_caches(1, len(ids) + args.max_new_tokens)      # the caches (and the captured step) kept for the run
    model.generate([ids], 2, **sampling)                         # warm-up: first touches, the decode step's capture

    out: list[int] = []
    printed = ""
    times: list[float] = []

    def stream(_, token):
        nonlocal printed
        times.append(time.perf_counter())
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
    model.generate([ids], args.max_new_tokens, callback=stream, **sampling)
    prefill = times[0] - t0
    decode = f"{len(out) - 1} tokens, {(len(out) - 1) / (times[-1] - times[0]):.1f} tok/s" if len(out) > 1 else \
        "no decode step (the first token ended the generation)"
    print(f"\n\nprefill: {len(ids)} tokens in {prefill * 1e3:.0f} ms ({len(ids) / prefill:.0f} tok/s); decode: "
          f"{decode} ({args.backend}, {args.dtype}, {torch.get_num_threads()} threads, after a warm-up)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
