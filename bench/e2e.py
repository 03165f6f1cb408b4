"""End to end: the thin model (lfm25_model) against transformers' Lfm2ForCausalLM on the same random weights of
the LFM2.5-350M shapes, saved once as a Hugging Face checkpoint and loaded by each in its own process (clean peak
RSS). Prefill tokens/s, time to first token, decode tokens/s at batch 1, 8 (and 64) as the median gap between
streamed steps, peak RSS; timed by bench/timing.py (docs/DESIGN.md section 8).

  compare(device)          both, as rows for python -m bench (print_table prints them)
  python -m bench.e2e --impl lfm25 --checkpoint DIR       one implementation, JSON on stdout
  python -m bench.e2e --compare --rounds 3 --dtypes bf16,fp32 --quick --prefill-tokens 1024
                           both, alternated for several rounds; medians and per-round ratios as a table
  python -m bench.e2e --compare --interleaved --rounds 8 --dtypes bf16,fp32
                           both models in one process, prefill and decode timed in alternating blocks a few
                           seconds apart (ratios robust to the machine's drifting bandwidth; no peak RSS)
  python -m bench.e2e --profile-step --threads 2
                           each launch of the replayed CPU decode step timed, summed by op (batch 1 and 8)
Run from the repository root: the side processes run `python -m bench.e2e --impl ...` there.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

import torch

from lfm25_model import Lfm2Config, Lfm2ForCausalLM

from . import timing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
IMPLS = {"lfm25": "lfm25_model (kernels)", "transformers": "transformers eager"}


def write_checkpoint(path: str, dtype, cfg: Lfm2Config | None = None) -> str:
    """Random weights of the LFM2.5-350M shapes (or cfg) saved as a Hugging Face checkpoint (config.json +
    model.safetensors)."""
    from safetensors.torch import save_file

    from lfm25_model.loader import random_weights

    cfg = cfg or Lfm2Config.lfm25_350m()
    config = dict(model_type="lfm2", architectures=["Lfm2ForCausalLM"], vocab_size=cfg.vocab_size,
                  hidden_size=cfg.hidden_size, intermediate_size=cfg.intermediate_size,
                  block_auto_adjust_ff_dim=False,           # the FFN width as it is, not through the adjustment
                  num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                  num_key_value_heads=cfg.num_key_value_heads, layer_types=cfg.layer_types,
                  conv_L_cache=cfg.conv_L_cache, norm_eps=cfg.norm_eps,
                  max_position_embeddings=cfg.max_position_embeddings,
                  rope_parameters={"rope_theta": cfg.rope_theta, "rope_type": "default"},
                  tie_word_embeddings=True, bos_token_id=1, eos_token_id=7, pad_token_id=0,
                  dtype="bfloat16" if dtype == torch.bfloat16 else "float32")
    with open(f"{path}/config.json", "w") as f:
        json.dump(config, f)
    save_file({k: v.to(dtype).contiguous() for k, v in random_weights(cfg, seed=0).items()}, f"{path}/model.safetensors")
    return path


def _build(impl: str, checkpoint: str, dtype, device):
    if impl == "lfm25":
        return Lfm2ForCausalLM.from_pretrained(checkpoint, dtype=dtype, device=device)
    from transformers import Lfm2ForCausalLM as HfModel

    return HfModel.from_pretrained(checkpoint, dtype=dtype).to(device).eval()


def _prompts(model):
    """A maker of random prompts of T tokens, the same sequence for each model."""
    g = torch.Generator().manual_seed(0)
    high = min(60000, model.config.vocab_size)
    return lambda T: torch.randint(10, high, (T,), generator=g).tolist()


def _generate(impl, model, prompts, n, on_step=None):
    """Greedy generation of n tokens per prompt; on_step() is called as each step's tokens come out."""
    if impl == "lfm25":
        cb = (lambda i, tok: on_step() if i == 0 else None) if on_step else None
        return model.generate(prompts, n, callback=cb)
    from transformers.generation.streamers import BaseStreamer

    class Steps(BaseStreamer):     # put() receives the prompt once, then each step's tokens
        def put(self, value):
            on_step()

        def end(self):
            pass

    ids = torch.tensor(prompts, device=model.device)
    with torch.inference_mode():
        return model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                              streamer=Steps() if on_step else None)


def _best_s(fn, device: str, reps: int) -> float:
    """The fastest of reps wall-clock runs after one warm-up."""
    return timing.time_fn([fn], device, min_runs=reps, max_runs=reps, warmup=1, wall=True).min_s


def _decode_rate(impl, model, prompts, steps: int) -> float:
    """Tokens/s of decode steps at batch len(prompts): from the median time between two steps' tokens (a step
    slowed by another process on the machine moves it little, and prefill and generate's set-up are not in it)."""
    stamps = timing.Stamps()
    _generate(impl, model, prompts, steps + 1, on_step=stamps)
    return len(prompts) / stamps.gaps(steps).median_s


def _peak_rss_mib() -> float:
    # NOTE: VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child starts with its parent's peak
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(impl: str, checkpoint: str, dtype, device: str, quick: bool,
            prefill_tokens: int | None = None) -> list[dict]:
    """One implementation in this process. Peak RSS covers the whole process: loading the checkpoint and every
    run."""
    model = _build(impl, checkpoint, dtype, device)
    prompt = _prompts(model)
    T = prefill_tokens or (256 if quick else 1024)
    long_prompt, short_prompt = [prompt(T)], [prompt(128)]
    t = _best_s(lambda: _generate(impl, model, long_prompt, 1), device, reps=2 if quick else 3)
    rows = [dict(metric=f"prefill {T} tokens", value=T / t, unit="tok/s")]
    t = _best_s(lambda: _generate(impl, model, short_prompt, 1), device, reps=3)
    rows.append(dict(metric="time to first token, 128-token prompt", value=1e3 * t, unit="ms"))
    steps = 16 if quick else 48
    for B in ((1, 8) if quick else (1, 8, 64)):
        ps = [prompt(16) for _ in range(B)]
        _generate(impl, model, ps, 2)             # warm-up
        rows.append(dict(metric=f"decode batch {B}", value=_decode_rate(impl, model, ps, steps), unit="tok/s"))
    rows.append(dict(metric="peak RSS", value=_peak_rss_mib(), unit="MiB"))
    return rows


def interleaved(checkpoint: str, dtype, device: str, rounds: int, steps: int = 16, batches=(1, 8),
                prefill_tokens: int = 1024) -> list[dict]:
    """Both models loaded in this process; each round times one prefill and `steps` decode steps of every
    batch size on one side, then on the other. Adjacent blocks are seconds apart, so a round's ratio sees the
    same machine (a shared machine's memory bandwidth drifts over minutes)."""
    models = {impl: _build(impl, checkpoint, dtype, device) for impl in IMPLS}
    prompt = _prompts(models["lfm25"])
    long_prompt, batch_prompts = [prompt(prefill_tokens)], {B: [prompt(16) for _ in range(B)] for B in batches}
    for impl, model in models.items():             # warm-up
        _generate(impl, model, [prompt(32)], 1)
        for ps in batch_prompts.values():
            _generate(impl, model, ps, 2)
    rows = []
    for r in range(rounds):
        for impl, model in models.items():
            t = timing.time_fn([lambda: _generate(impl, model, long_prompt, 1)], device, min_runs=1, max_runs=1,
                               warmup=0, wall=True)
            rows.append(dict(metric=f"prefill {prefill_tokens} tokens", value=prefill_tokens / t.median_s,
                             unit="tok/s", impl=IMPLS[impl], round=r))
            for B, ps in batch_prompts.items():
                rows.append(dict(metric=f"decode batch {B}", value=_decode_rate(impl, model, ps, steps), unit="tok/s",
                                 impl=IMPLS[impl], round=r))
    return rows


def compare(device: str = "cpu", quick: bool = False, dtype: str = "bf16", rounds: int = 1,
            prefill_tokens: int | None = None, cfg: Lfm2Config | None = None) -> list[dict]:
    """Both implementations, each in its own process, alternated `rounds` times (the machine's speed drifts: a
    ratio is taken within a round); each row carries its round. cfg: other shapes than LFM2.5-350M's."""
    out = []
    with tempfile.TemporaryDirectory() as ckpt:
        write_checkpoint(ckpt, DTYPES[dtype], cfg)
        for r in range(rounds):
            for impl in IMPLS:
                out += [dict(row, round=r) for row in _run_one(impl, ckpt, device, quick, dtype, prefill_tokens)]
    return out


def _run_one(impl, ckpt, device, quick, dtype, prefill_tokens=None) -> list[dict]:
    cmd = [sys.executable, "-m", "bench.e2e", "--impl", impl, "--checkpoint", ckpt, "--dtype", dtype,
           "--device", device, "--threads", str(torch.get_num_threads())] + (["--quick"] if quick else [])
    if prefill_tokens:
        cmd += ["--prefill-tokens", str(prefill_tokens)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        print(f"end-to-end {impl} failed:\n{res.stderr[-2000:]}")
        return []
    return [dict(r, impl=IMPLS[impl], dtype=dtype) for r in json.loads(res.stdout.strip().splitlines()[-1])]


def print_table(rows: list[dict]):
    """python -m bench's end-to-end table: both sides of each metric and their ratio (>1: lfm25_model better)."""
    if not rows:
        return
    fmt = "{:<40} {:>14} {:>14} {:>7} {:>9}"
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    print("\n" + fmt.format("end to end (" + rows[0]["dtype"] + ")", impls[0][:14], impls[-1][:14], "unit", "ratio"))
    for metric in dict.fromkeys(r["metric"] for r in rows):
        vals = {r["impl"]: r for r in rows if r["metric"] == metric}
        a, b = vals.get(impls[0]), vals.get(impls[-1])
        ratio = a["value"] / b["value"] if a and b else float("nan")
        if a and a["unit"] != "tok/s":
            ratio = 1 / ratio                      # lower is better: time, memory
        print(fmt.format(metric, f"{a['value']:.1f}" if a else "-", f"{b['value']:.1f}" if b else "-",
                         (a or b)["unit"], f"{ratio:.2f}x"))


def ratio_table(rows: list[dict]) -> str:
    """Markdown: per dtype and metric, the medians of both sides, each round's ratio and the median ratio."""
    by = {}
    for r in rows:
        by.setdefault((r["dtype"], r["metric"], r["unit"]), {}).setdefault(r["impl"], {})[r["round"]] = r["value"]
    lines = ["| dtype | metric | lfm25_model | transformers | per-round ratios | median ratio |",
             "|---|---|---:|---:|---|---:|"]
    for (dt, metric, unit), d in by.items():
        ours, theirs = d.get(IMPLS["lfm25"], {}), d.get(IMPLS["transformers"], {})
        ratios = [ours[k] / theirs[k] for k in sorted(ours) if k in theirs]
        if not ratios:
            continue
        lines.append(f"| {dt} | {metric} ({unit}) | {statistics.median(ours.values()):.1f} | "
                     f"{statistics.median(theirs.values()):.1f} | {', '.join(f'{x:.2f}' for x in ratios)} | "
                     f"{statistics.median(ratios):.2f}x |")
    return "\n".join(lines)


def profile_step(dtype, batches=(1, 8), reps: int = 10, cfg: Lfm2Config | None = None) -> str:
    """Where a replayed CPU decode step's time goes: each launch of its CpuGraph timed (CpuGraph.profile) over
    `reps` replays, summed by op (linear split by the projection it computes), medians, random weights of the
    LFM2.5-350M shapes (or cfg). A markdown table."""
    model = Lfm2ForCausalLM.random(cfg, dtype=dtype)
    prompts = lambda B: [[1 + i + j for i in range(16)] for j in range(B)]
    model.generate(prompts(max(batches)), 2)          # caches for the largest batch, kept for the others
    for B in batches:
        model.generate(prompts(B), 2)
    graphs = model.decode_graphs()
    if not graphs:
        raise SystemExit("no captured decode step: the CPU kernels' decode step is captured only on the CPU")
    times = {B: {} for B in batches}
    for _ in range(reps):
        for B in batches:
            launches = graphs[B].profile()
            ops = [op for op, _ in launches]
            per = {}
            for i, (_, t) in enumerate(launches):
                name = _launch_name(ops, i)
                per[name] = per.get(name, 0.0) + t
            per["step"] = sum(per.values())
            for name, t in per.items():
                times[B].setdefault(name, []).append(t)
    lines = ["| launches | " + " | ".join(f"batch {B} (ms)" for B in batches) + " |",
             "|---|" + "---:|" * len(batches)]
    for name in times[batches[0]]:
        lines.append(f"| {name} | " + " | ".join(f"{1e3 * statistics.median(times[B][name]):.2f}" for B in batches)
                     + " |")
    return "\n".join(lines)


def _launch_name(ops: list[str], i: int) -> str:
    """Launch i of a decode step's ops: the op, and for linear the weight it reads (from its neighbours)."""
    op = ops[i]
    if op != "linear":
        return op
    before, after = ops[i - 1] if i else None, ops[i + 1] if i + 1 < len(ops) else None
    if after is None:
        return "linear lm_head"
    if before == "short_conv_update":
        return "linear out_proj"
    if after == "short_conv_update":
        return "linear in_proj"
    if before == "gqa_decode":
        return "linear o_proj"
    if before == "linear" and after == "rms_norm":
        return "linear w2"
    if after == "linear" and ops[i + 2] == "rms_norm":
        return "linear w1/w3"
    return "linear q/k/v"


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__.split("\n\n")[0])
    ap.add_argument("--impl", choices=tuple(IMPLS), help="run one side on --checkpoint")
    ap.add_argument("--checkpoint", help="directory written by write_checkpoint")
    ap.add_argument("--compare", action="store_true", help="both sides, alternated, on a fresh checkpoint")
    ap.add_argument("--rounds", type=int, default=3, help="with --compare")
    ap.add_argument("--interleaved", action="store_true",
                    help="with --compare: both models in one process, timed in alternating blocks")
    ap.add_argument("--dtypes", default="bf16,fp32", help="with --compare")
    ap.add_argument("--dtype", default="bf16", choices=tuple(DTYPES))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--prefill-tokens", type=int, default=None, help="prompt length of the prefill timing")
    ap.add_argument("--profile-step", action="store_true",
                    help="time each launch of the replayed CPU decode step (batch 1 and 8, --dtype)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtypes = args.dtypes.split(",")
    if any(dt not in DTYPES for dt in dtypes):
        ap.error(f"--dtypes: choose from {list(DTYPES)}, got {args.dtypes!r}")
    if args.profile_step:
        print(profile_step(DTYPES[args.dtype]))
        return 0
    if args.compare:
        rows = []
        for dt in dtypes:
            if not args.interleaved:
                rows += compare(args.device, args.quick, dt, args.rounds, args.prefill_tokens)
                continue
            with tempfile.TemporaryDirectory() as ckpt:
                write_checkpoint(ckpt, DTYPES[dt])
                rows += [dict(r, dtype=dt) for r in interleaved(ckpt, DTYPES[dt], args.device, args.rounds,
                                                                prefill_tokens=args.prefill_tokens or 1024)]
        print(ratio_table(rows))
        return 0
    if not (args.impl and args.checkpoint):
        ap.error("give --impl and --checkpoint, or --compare")
    print(json.dumps(measure(args.impl, args.checkpoint, DTYPES[args.dtype], args.device, args.quick,
                             args.prefill_tokens)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
