"""End to end: the thin model (lfm25_model) against what people run LFM2 with on a CPU, on the same random
weights of the LFM2.5-350M shapes: transformers (eager) and llama.cpp (llama-cpp-python on a GGUF of the same
checkpoint, when installed: bench/llamacpp.py). Each engine runs in its own process (its own peak RSS),
alternated over rounds with the order rotated (a ratio is taken within a round). Per engine (bench/engine.py):
prefill tok/s, time to first token, decode tok/s at batch 1 and 8 after a 128-token prompt (the median gap
between the steps of 64 greedy tokens), peak RSS of the whole process; with accuracy, the relative RMS error of
its logits against the fp32 model on a 256-token greedy continuation of that model (docs/benchmark.md).

  python -m bench.e2e --side-by-side --threads 2 --rounds 3
                           lfm25_model bf16 / int8 / q4 against llama.cpp bf16 / Q8_0 / Q4_0, with accuracy
  python -m bench.e2e --engines "lfm25 bf16,transformers bf16" --rounds 3      any engines of ENGINES
  python -m bench.e2e --interleaved --rounds 8 --dtype bf16
                           lfm25_model and transformers in one process, prefill and decode timed in alternating
                           blocks a few seconds apart (ratios robust to the machine's drifting bandwidth; no RSS)
  python -m bench.e2e --profile-step --threads 2
                           each launch of the replayed CPU decode step timed, summed by op (batch 1 and 8)
Checkpoints and GGUFs are written once into the cache folder (bench/runs/cache) and reused. Run from the
repository root: the engines' processes run `python -m bench.e2e` / `python -m bench.llamacpp` there.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict

import numpy as np
import torch

from lfm25_model import Lfm2Config, Lfm2ForCausalLM

from . import engine, llamacpp
from .engine import Settings, Stamps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNS = os.path.join(ROOT, "bench", "runs")          # a user's runs: untracked (bench/.gitignore)
CACHE = os.path.join(RUNS, "cache")
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}
# engine -> (implementation, weights); lfm25 int8 / q4: from_pretrained(..., quantize=...)
ENGINES = {"lfm25 bf16": ("lfm25", "bf16"), "lfm25 int8": ("lfm25", "int8"), "lfm25 q4": ("lfm25", "q4"),
           "lfm25 fp32": ("lfm25", "fp32"), "transformers bf16": ("transformers", "bf16"),
           "transformers fp32": ("transformers", "fp32"), "llama.cpp bf16": ("llama.cpp", "bf16"),
           "llama.cpp Q8_0": ("llama.cpp", "Q8_0"), "llama.cpp Q4_0": ("llama.cpp", "Q4_0"),
           "llama.cpp fp32": ("llama.cpp", "fp32")}
GGUF_TYPES = {"bf16": "BF16", "fp32": "F32", "Q8_0": "Q8_0", "Q4_0": "Q4_0"}
LABELS = {"lfm25": "lfm25_model", "transformers": "transformers eager", "llama.cpp": "llama.cpp"}
OURS_FOR = {"bf16": "bf16", "Q8_0": "int8", "Q4_0": "q4", "fp32": "fp32"}
SIDE_BY_SIDE = ("lfm25 bf16", "llama.cpp bf16", "lfm25 int8", "llama.cpp Q8_0", "lfm25 q4", "llama.cpp Q4_0")
BETTER = {"tok/s": "higher", "ms": "lower", "MiB": "lower"}
ACCURACY_PROMPT, ACCURACY_TOKENS = 32, 256
EVEN = 0.03                                          # ratios within 3 % of 1 are called even


class Unavailable(Exception):
    """An engine this installation cannot run: a package not installed, a keyword not taken yet."""


def label(name: str) -> str:
    impl, weights = ENGINES[name]
    return f"{LABELS[impl]} {weights}"


# ---- the weights -----------------------------------------------------------------------------------------
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
    # NOTE: rounded to bf16 in every dtype: the fp32, bf16 and quantized engines all run the same weights, so
    # the logits error against the fp32 model is each engine's arithmetic and quantization, not bf16 rounding
    save_file({k: v.to(torch.bfloat16).to(dtype).contiguous() for k, v in random_weights(cfg, seed=0).items()},
              f"{path}/model.safetensors")
    return path


def checkpoint(cache: str, dtype: str, cfg: Lfm2Config | None = None) -> str:
    """The checkpoint of cfg's shapes in dtype under cache, written once (named by a hash of the config)."""
    key = hashlib.sha256(json.dumps(asdict(cfg or Lfm2Config.lfm25_350m()), sort_keys=True).encode()).hexdigest()
    path = os.path.join(cache, f"ckpt-{key[:16]}-{dtype}")
    if not os.path.exists(os.path.join(path, "model.safetensors")):
        part = path + ".part"
        shutil.rmtree(part, ignore_errors=True)
        os.makedirs(part)
        write_checkpoint(part, DTYPES[dtype], cfg)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(part, path)
    return path


def _model_path(name: str, cache: str, cfg, say) -> str:
    """What the engine loads: a checkpoint, or for llama.cpp the GGUF of the bf16 checkpoint (the same values)."""
    impl, weights = ENGINES[name]
    if impl != "llama.cpp":
        return checkpoint(cache, weights if weights in DTYPES else "bf16", cfg)
    ckpt = checkpoint(cache, "bf16", cfg)
    t0 = time.time()
    path = llamacpp.gguf_for(ckpt, GGUF_TYPES[weights], cache)
    if time.time() - t0 > 1:
        say(f"  wrote {os.path.relpath(path)} ({time.time() - t0:.0f} s, once: later runs reuse it)")
    return path


# ---- one engine in this process ------------------------------------------------------------------------
def _build(impl: str, weights: str, path: str, device):
    if impl in ("lfm25", "reference"):
        backend = "reference" if impl == "reference" else "kernels"
        if weights in DTYPES:
            return Lfm2ForCausalLM.from_pretrained(path, backend=backend, dtype=DTYPES[weights], device=device)
        try:   # activations in fp32 around the quantized projections, as llama.cpp keeps them
            return Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, device=device, quantize=weights)
        except TypeError as e:
            raise Unavailable(f"from_pretrained(quantize={weights!r}) refused: {e}") from e
    from transformers import Lfm2ForCausalLM as HfModel

    return HfModel.from_pretrained(path, dtype=DTYPES[weights]).to(device).eval()


def _generate(impl, model, prompts, n, on_step=None):
    """Greedy generation of n tokens per prompt; on_step() is called as each step's tokens come out."""
    if impl != "transformers":
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
        return model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n,
                              do_sample=False, pad_token_id=0, streamer=Steps() if on_step else None)


@torch.inference_mode()
def _logits(impl, model, tokens: list[int], first: int) -> np.ndarray:
    """Teacher-forced logits [len(tokens) - first, V] of positions first-1 .. len-2, in fp32."""
    out = model(torch.tensor([tokens], device=model.device))
    out = out.logits if impl == "transformers" else out
    return out[0, first - 1:-1].float().cpu().numpy()


def reference(path: str, device: str, out: str) -> None:
    """The fp32 model (the PyTorch reference backend on the fp32 checkpoint): a greedy continuation of
    ACCURACY_TOKENS tokens after a random prompt, and its logits over the continuation, into out/."""
    model = _build("reference", "fp32", path, device)
    prompt = engine.prompts(model.config.vocab_size, seed=1)(ACCURACY_PROMPT)
    tokens = prompt + model.generate([prompt], ACCURACY_TOKENS)[0]
    np.save(os.path.join(out, "logits.npy"), _logits("reference", model, tokens, len(prompt)))
    with open(os.path.join(out, "teacher.json"), "w") as f:
        json.dump(dict(tokens=tokens, first=len(prompt)), f)


# ---- every engine, each in its own process ---------------------------------------------------------------
def _child(name: str, path: str, device: str, s: Settings, extra=()) -> dict:
    """One engine in a fresh process: its JSON ({"rows": ...} or {"unavailable": why}), or {"failed": ...}."""
    impl, weights = ENGINES[name]
    if impl == "llama.cpp":
        cmd = [sys.executable, "-m", "bench.llamacpp", "--gguf", path]
    else:
        cmd = [sys.executable, "-m", "bench.e2e", "--impl", impl, "--weights", weights, "--model", path,
               "--device", device]
    env = dict(os.environ, OMP_NUM_THREADS=str(s.threads))
    res = subprocess.run(cmd + ["--settings", json.dumps(s.to_dict()), *extra], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    if res.returncode != 0:
        return dict(failed=res.stderr.strip()[-2000:] or f"exit status {res.returncode}")
    lines = res.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def compare(engines, device: str = "cpu", settings: Settings | None = None, rounds: int = 1,
            accuracy: bool = False, cfg: Lfm2Config | None = None, cache: str = CACHE, say=print) -> list[dict]:
    """Each engine (names of ENGINES) in its own process, every round in a rotated order; with accuracy, the
    logits error of each against the fp32 model. Rows carry engine, label, round and better ("higher" or
    "lower"); an engine that cannot run gives one row with "unavailable" (why, and what to do)."""
    s = settings or Settings()
    rows, skip = [], {}
    if any(ENGINES[e][0] == "llama.cpp" for e in engines) and llamacpp.missing():
        skip.update({e: llamacpp.missing() for e in engines if ENGINES[e][0] == "llama.cpp"})
    paths = {e: _model_path(e, cache, cfg, say) for e in engines if e not in skip}
    runs = [(r, engines[(i + r) % len(engines)]) for r in range(rounds) for i in range(len(engines))]
    todo = [(r, e) for r, e in runs if e not in skip] + [(None, e) for e in engines if accuracy and e not in skip]
    t_start, done = time.time(), 0
    for r, e in todo:
        if e in skip:
            continue
        t0 = time.time()
        if r is None:
            new = _accuracy(e, paths[e], device, s, cfg, cache, say)
        else:
            out = _child(e, paths[e], device, s)
            new = [dict(x, engine=e, label=label(e), round=r, better=BETTER[x["unit"]]) for x in out.get("rows", [])]
            if not new:
                skip[e] = out.get("unavailable") or "failed:\n" + out.get("failed", "")
        rows += new
        done += 1
        left = (time.time() - t_start) / done * (len(todo) - done)
        what = "logits error" if r is None else f"round {r + 1}/{rounds}"
        got = ", ".join(f"{x['metric']} {_num(x['value'])} {x['unit']}" for x in new) or skip[e].splitlines()[0]
        say(f"  [{done}/{len(todo)}] {what}, {label(e)} ({time.time() - t0:.0f} s): {got}"
            + (f"; about {_minutes(left)} left" if done < len(todo) else ""))
    rows += [dict(engine=e, label=label(e), unavailable=why) for e, why in skip.items()]
    return rows


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def _accuracy(name: str, path: str, device: str, s: Settings, cfg, cache: str, say) -> list[dict]:
    """The engine's logits error against the fp32 model, its teacher-forced logits in a process of its own."""
    ref = os.path.join(cache, f"reference-{os.path.basename(checkpoint(cache, 'fp32', cfg))}-"
                              f"{ACCURACY_PROMPT}+{ACCURACY_TOKENS}")
    if not os.path.exists(os.path.join(ref, "teacher.json")):
        say(f"  the fp32 reference: {ACCURACY_TOKENS} greedy tokens and their logits (once: later runs reuse it)")
        os.makedirs(ref + ".part", exist_ok=True)
        out = _child("lfm25 fp32", checkpoint(cache, "fp32", cfg), device, s,
                     ["--reference-into", ref + ".part"])
        if "failed" in out:
            raise RuntimeError(f"the fp32 reference failed:\n{out['failed']}")
        shutil.rmtree(ref, ignore_errors=True)
        os.replace(ref + ".part", ref)
    with tempfile.TemporaryDirectory() as d:
        got = os.path.join(d, "logits.npy")
        out = _child(name, path, device, s, ["--teacher", os.path.join(ref, "teacher.json"), "--out", got])
        if "failed" in out:
            say(f"  the logits of {label(name)} failed:\n{out['failed']}")
        if not os.path.exists(got):
            return []
        l, r = np.load(got), np.load(os.path.join(ref, "logits.npy"))
    err = np.sqrt(np.square(l - r, dtype=np.float64).sum() / np.square(r, dtype=np.float64).sum())
    agree = float((l.argmax(-1) == r.argmax(-1)).mean())
    base = dict(engine=name, label=label(name), round=0)
    return [dict(base, metric="logits error vs fp32", value=100 * err, unit="%", better="lower"),
            dict(base, metric="top-1 token as fp32", value=100 * agree, unit="%", better="higher")]


# ---- the tables ------------------------------------------------------------------------------------------
def pairs_for(engines) -> list[tuple[str, str]]:
    """(ours, peer) for each peer engine: lfm25_model at the same bits (bf16 with bf16, int8 with Q8_0, q4
    with Q4_0)."""
    return [(f"lfm25 {OURS_FOR[w]}", e) for e in engines for impl, w in [ENGINES[e]] if impl != "lfm25"]


def verdict(ratio: float, better: str, ours: str, peer: str) -> str:
    """Who is ahead, given ours / peer and which way is better."""
    if abs(ratio - 1) <= EVEN:
        return "even"
    return f"{ours if (ratio > 1) == (better == 'higher') else peer} ahead"


def comparison(rows: list[dict], pairs) -> list[dict]:
    """Per pair and metric: both medians over rounds, ours / peer as the median of the per-round ratios (a
    plain ratio in every row: above 1 means ours is larger, whether larger is better or not), the verdict."""
    by = {}
    for r in rows:
        if "metric" in r:
            by.setdefault((r["engine"], r["metric"]), {})[r["round"]] = r
    metrics = list(dict.fromkeys(r["metric"] for r in rows if "metric" in r))
    out = []
    for ours, peer in pairs:
        for m in metrics:
            a, b = by.get((ours, m), {}), by.get((peer, m), {})
            if not a and not b:
                continue
            any_row = next(iter((a or b).values()))
            ratios = [a[k]["value"] / b[k]["value"] for k in sorted(a) if k in b and b[k]["value"]]
            ratio = statistics.median(ratios) if ratios else None
            out.append(dict(ours=ours, peer=peer, metric=m, unit=any_row["unit"], better=any_row["better"],
                            ours_value=statistics.median(x["value"] for x in a.values()) if a else None,
                            peer_value=statistics.median(x["value"] for x in b.values()) if b else None,
                            ratio=ratio, ratios=ratios,
                            verdict=verdict(ratio, any_row["better"], LABELS[ENGINES[ours][0]],
                                            LABELS[ENGINES[peer][0]]) if ratio else "-"))
    return out


def _num(v) -> str:
    return "-" if v is None else f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 1 else f"{v:.2g}"


def print_table(rows: list[dict], pairs=None, markdown: bool = False) -> str:
    """The end-to-end table: a block per (ours, peer) pair, each metric's unit and which way is better, both
    medians, ours / peer and who is ahead; then the engines that could not run, and why."""
    pairs = pairs or pairs_for(list(dict.fromkeys(r["engine"] for r in rows)))
    comp = comparison(rows, pairs)
    rounds = len({r["round"] for r in rows if "metric" in r and r["unit"] != "%"})
    head = ["metric", "unit", "better", "ours", "peer", "ours/peer", "per round", "verdict"]
    lines = [f"End to end: each engine in its own process, median of {rounds} round(s); ours/peer is the median of "
             "the per-round ratios, a plain ratio in every row (above 1: ours is larger; 'better' says which "
             "way wins)."]
    for ours, peer in pairs:
        body = [[c["metric"], c["unit"], f"{c['better']} is better", _num(c["ours_value"]), _num(c["peer_value"]),
                 f"{c['ratio']:.2f}x" if c["ratio"] else "-", " ".join(f"{x:.2f}" for x in c["ratios"]) or "-",
                 c["verdict"]] for c in comp if (c["ours"], c["peer"]) == (ours, peer)]
        if not body:
            continue
        title = f"{label(ours)} (ours) vs {label(peer)} (peer)"
        lines += ["", title] + (_markdown([head] + body) if markdown else _aligned([head] + body))
    for r in rows:
        if "unavailable" in r:
            lines += ["", f"{r['label']}: not available: {r['unavailable']}"]
    text = "\n".join(lines)
    print(text)
    return text


def _aligned(table: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    left = {0, 1, 2, 7}
    return ["  " + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in table]


def _markdown(table: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(table[0]) + " |", "|---|---|---|---:|---:|---:|---|---|"]
            + ["| " + " | ".join(row) + " |" for row in table[1:]])


def interleaved(checkpoint: str, dtype: str, device: str, rounds: int, steps: int = 16, batches=(1, 8),
                prefill_tokens: int = 1024) -> list[dict]:
    """lfm25_model and transformers loaded in this process; each round times one prefill and `steps` decode
    steps of every batch size on one side, then on the other. Adjacent blocks are seconds apart, so a round's
    ratio sees the same machine (a shared machine's memory bandwidth drifts over minutes)."""
    models = {impl: _build(impl, dtype, checkpoint, device) for impl in ("lfm25", "transformers")}
    make = engine.prompts(models["lfm25"].config.vocab_size)
    long_prompt, batch_prompts = [make(prefill_tokens)], {B: [make(16) for _ in range(B)] for B in batches}
    for impl, model in models.items():             # warm-up
        _generate(impl, model, [make(32)], 1)
        for ps in batch_prompts.values():
            _generate(impl, model, ps, 2)
    rows = []
    for r in range(rounds):
        for impl, model in models.items():
            name = f"{impl} {dtype}"
            t0 = time.perf_counter()
            _generate(impl, model, long_prompt, 1)
            rows.append(dict(engine=name, label=label(name), metric=f"prefill {prefill_tokens} tokens",
                             value=prefill_tokens / (time.perf_counter() - t0), unit="tok/s", better="higher",
                             round=r))
            for B, ps in batch_prompts.items():
                stamps = Stamps()
                _generate(impl, model, ps, steps + 1, stamps)
                rows.append(dict(engine=name, label=label(name), metric=f"decode batch {B}",
                                 value=B / stamps.gaps(steps).median_s, unit="tok/s", better="higher", round=r))
    return rows


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
    ap.add_argument("--side-by-side", action="store_true",
                    help="lfm25_model bf16/int8/q4 against llama.cpp bf16/Q8_0/Q4_0, with the logits error")
    ap.add_argument("--engines", default=None, help=f"comma-separated, of: {', '.join(ENGINES)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--accuracy", action="store_true", help="also the logits error against the fp32 model")
    ap.add_argument("--quick", action="store_true", help="shorter timings (prefill 256 tokens, 16 new tokens)")
    ap.add_argument("--prefill-tokens", type=int, default=None, help="prompt length of the prefill timing")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--results-dir", default=RUNS, help="where the JSON lines and the Markdown table go")
    ap.add_argument("--cache", default=CACHE, help="checkpoints, GGUFs and the fp32 reference, written once")
    ap.add_argument("--interleaved", action="store_true",
                    help="lfm25_model and transformers in one process, timed in alternating blocks (--dtype)")
    ap.add_argument("--profile-step", action="store_true",
                    help="time each launch of the replayed CPU decode step (batch 1 and 8, --dtype)")
    ap.add_argument("--dtype", default="bf16", choices=tuple(DTYPES))
    # one engine in this process (how compare() runs each engine)
    ap.add_argument("--impl", choices=("lfm25", "transformers"), help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--teacher", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--reference-into", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.impl:
        return _one_engine(args)
    if args.profile_step:
        print(profile_step(DTYPES[args.dtype]))
        return 0
    if args.interleaved:
        ckpt = checkpoint(args.cache, args.dtype)
        rows = interleaved(ckpt, args.dtype, args.device, args.rounds, prefill_tokens=args.prefill_tokens or 1024)
        print_table(rows, markdown=True)
        return 0
    engines = SIDE_BY_SIDE if args.side_by_side else [e.strip() for e in (args.engines or "").split(",") if e.strip()]
    bad = [e for e in engines if e not in ENGINES]
    if not engines or bad:
        ap.error(f"give --side-by-side or --engines, of: {', '.join(ENGINES)} (got {bad or 'none'})")
    s = Settings.quick(args.threads) if args.quick else Settings(threads=args.threads)
    if args.prefill_tokens:
        s.prefill = args.prefill_tokens
    print(f"end to end: {len(engines)} engines x {args.rounds} rounds"
          + (", then the logits error of each" if args.side_by_side or args.accuracy else "")
          + "; each engine loads in its own process (about half a minute each)", flush=True)
    t0 = time.time()
    rows = compare(list(engines), args.device, s, args.rounds, args.side_by_side or args.accuracy,
                   cache=args.cache, say=lambda m: print(m, flush=True))
    print()
    text = print_table(rows, markdown=True)
    record(rows, args.results_dir, "e2e", dict(command="python -m bench.e2e " + " ".join(argv or sys.argv[1:]),
                                                settings=s.to_dict(), seconds=round(time.time() - t0)), text)
    return 0


def record(rows: list[dict], results_dir: str, kind: str, extra: dict, table: str | None = None) -> str:
    """Append rows as JSON lines (with the machine, commit and run id) to results_dir/<kind>-<cpu>.jsonl, and the
    Markdown table, if any, to the .md next to it."""
    from . import env

    header = dict(env.describe("cpu"), run_id=os.urandom(6).hex(), **extra)
    try:
        header["llama_cpp_python"] = llamacpp.version()
    except ImportError:
        pass
    os.makedirs(results_dir, exist_ok=True)
    path = os.path.join(results_dir, f"{kind}-{env.slug(header['cpu'])}.jsonl")
    with open(path, "a") as f:
        for r in rows:
            f.write(json.dumps(dict(header, **r)) + "\n")
    if table:
        with open(path[:-len(".jsonl")] + ".md", "a") as f:
            f.write(f"\n## {header['date']}, commit {header['commit']}, run {header['run_id']}\n\n"
                    f"`{header['command']}` on {header['cpu']}, {header['threads']} threads\n\n{table}\n")
    print(f"\nresults appended to {os.path.relpath(path)}")
    return path


def _one_engine(args) -> int:
    """An engine's own process: its timing rows, or its teacher-forced logits (--teacher), or the fp32
    reference (--reference-into), as JSON on stdout."""
    s = Settings(**json.loads(args.settings))
    try:
        if args.reference_into:
            reference(args.model, args.device, args.reference_into)
            print(json.dumps({}))
            return 0
        model = _build(args.impl, args.weights, args.model, args.device)
    except Unavailable as e:
        print(json.dumps(dict(unavailable=str(e))))
        return 0
    if args.teacher:
        with open(args.teacher) as f:
            t = json.load(f)
        np.save(args.out, _logits(args.impl, model, t["tokens"], t["first"]))
        print(json.dumps({}))
        return 0
    gen = lambda prompts, n, on_step: _generate(args.impl, model, prompts, n, on_step)
    print(json.dumps(dict(rows=engine.measure(gen, model.config.vocab_size, s))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
