"""The benchmark harness: the case registry, the backends and timers (their CUDA paths at least build here),
a quick run writing well-formed JSON lines, and the end-to-end harness on a tiny config."""
import inspect
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from lfm25_model import Lfm2Config, Lfm2ForCausalLM

from bench import __main__ as bench_main
from bench import cases as C
from bench import e2e, llamacpp, timing
from bench.backends import backends
from bench.engine import Settings


def test_registry_starts_with_the_lfm25_350m_shapes():
    first = C.cases(tier="lfm2")[0]
    assert first.shape["D"] == C.LFM25_350M["hidden"] == 1024 and first.shape["K"] == 3
    assert {c.op for c in C.cases(tier="quick")} == set(C.OPS)
    for c in C.cases(tier="sweep", dtypes=("bf16", "fp32")):
        assert C.bytes_moved(c) > 0


def small(case: C.Case) -> C.Case:
    """case in fp32 with its token, row and batch counts cut to 64 at most."""
    return C.Case(case.op, case.name, "fp32", {k: (min(v, 64) if isinstance(v, int) and k in ("T", "L", "N", "M", "B")
                                                   else v) for k, v in case.shape.items()})


@pytest.mark.parametrize("case", C.cases(tier="quick"), ids=lambda c: c.op)
def test_make_inputs_call_the_op(case):
    import lfm25_kernels as L

    getattr(L, case.op)(**C.make_inputs(small(case)))


def test_quick_run_writes_well_formed_results(tmp_path, capsys):
    assert bench_main.main(["--quick", "--ops", "short_conv_update,rms_norm", "--no-e2e",
                            "--results-dir", str(tmp_path)]) == 0
    files = list(tmp_path.glob("*.jsonl"))
    assert len(files) == 1
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert {r["op"] for r in rows} == {"short_conv_update", "rms_norm"}
    for r in rows:
        for key in ("run_id", "date", "commit", "device", "cpu", "torch", "backend", "median_us", "gbps",
                    "copy_fraction", "speedup_vs_reference", "copy_gbps"):
            assert key in r, key
        assert r["median_us"] > 0 and r["gbps"] > 0 and r["runs"] >= 3
    assert any(r["backend"] == "reference" for r in rows)
    assert all(r["speedup_vs_best_peer"] > 0 for r in rows if r["backend"].startswith("lfm25"))
    out = capsys.readouterr().out
    assert "results appended" in out and "Summary (higher is better unless said):" in out
    assert "lower is better" in out and "it can pass 100 %" in out
    assert (tmp_path / files[0].name.replace(".jsonl", ".png")).stat().st_size > 0


def test_a_users_run_stays_out_of_the_checkout():
    assert os.path.relpath(bench_main.parse([]).results_dir, e2e.ROOT) == os.path.join("bench", "runs")
    assert e2e.CACHE.startswith(bench_main.RUNS)
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/runs/cpu-x.jsonl"], cwd=e2e.ROOT)
    assert ignored.returncode == 0


def test_the_summary_warns_when_the_machine_is_busy(tmp_path):
    row = dict(op="rms_norm", case="c", dtype="bf16", backend="lfm25 (x)", median_us=10.0, p10_us=9.0, p90_us=11.0,
               copy_fraction=0.5, speedup_vs_best_peer=2.0, best_peer="reference")
    quiet = dict(device="cpu", cpu="test cpu", copy_gbps=40.0, copy_gbps_end=39.0, loadavg=0.1)
    assert bench_main.noisy([row], quiet, str(tmp_path)) == []
    summary = "\n".join(bench_main.conclusion([row], [], quiet))
    assert "faster than the best other implementation in 1 of 1" in summary and "WARNING" not in summary
    busy = dict(quiet, copy_gbps_end=20.0, loadavg=99.0)
    wide = dict(row, p10_us=1.0, p90_us=30.0)
    why = bench_main.noisy([wide], busy, str(tmp_path))
    assert len(why) == 3 and "copy bandwidth 40.0 GB/s at the start, 20.0 at the end" in why
    (tmp_path / "cpu-test-cpu.jsonl").write_text(json.dumps(dict(run_id="a", copy_gbps=100.0)) + "\n")
    assert any("against 100.0" in w for w in bench_main.noisy([row], quiet, str(tmp_path)))
    assert "WARNING: the machine was busy" in "\n".join(bench_main.conclusion([wide], [], busy))


def test_registry_holds_the_shapes_the_cuda_kernels_are_timed_at():
    """The LFM2.5-350M decode and prefill shapes of the CUDA kernels' timing (formerly bench/cuda_quick.py)."""
    lfm2 = C.cases(tier="lfm2")
    for op, shape in [("short_conv", dict(B=8, T=4096)), ("short_conv_update", dict(B=256, indexed=True)),
                      ("qk_norm_rope_append", dict(N=256)), ("gqa_decode", dict(B=64, L=4096)),
                      ("gqa_decode", dict(B=1, L=32768)), ("gqa_decode", dict(B=1, L=4096)),
                      ("gqa_decode", dict(B=256, L=512)), ("rms_norm", dict(M=256, residual=True))]:
        assert any(c.op == op and shape.items() <= c.shape.items() for c in lfm2), (op, shape)


@pytest.mark.parametrize("case", C.cases(tier="quick"), ids=lambda c: c.op)
def test_cuda_backends_build_without_a_gpu(case):
    """The CUDA selection of backends imports and builds here (our kernels only where they can run); each runs
    on CPU inputs."""
    import lfm25_kernels as L

    made = backends(case.op, "cuda")
    assert "reference" in made and ("lfm25 (cuda)" in made) == L.cuda_available()
    for make in made.values():
        make(C.make_inputs(small(case)))()


def test_graph_timing_is_cuda_only():
    with pytest.raises(ValueError, match="graph_calls"):
        timing.time_fn([lambda: None], "cpu", graph_calls=2)


@pytest.mark.parametrize("indexed", [False, True])
def test_torch_unfused_conv_baselines_equal_the_reference(indexed):
    from lfm25_kernels import reference as R

    from conftest import assert_close

    case = C.Case("short_conv_update", "small", "fp32", dict(B=5, D=64, K=3, indexed=indexed))
    kw = C.make_inputs(case)
    ref = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in kw.items()}
    assert_close(backends("short_conv_update", "cpu")["torch unfused"](kw)(), R.short_conv_update(**ref))
    assert_close(kw["conv_state"], ref["conv_state"], "conv_state")
    case = C.Case("short_conv", "small", "fp32", dict(B=2, T=19, D=64, K=3))
    kw = C.make_inputs(case)
    kw["conv_state"].zero_()                  # the torch baseline starts from zeros and keeps no state
    assert_close(backends("short_conv", "cpu")["torch unfused"](kw)(), R.short_conv(**kw))


def test_timing_summary_and_stamps():
    t = timing.summarize([3.0, 1.0, 2.0])
    assert (t.median_s, t.min_s, t.runs) == (2.0, 1.0, 3)
    stamps = timing.Stamps()
    for _ in range(4):
        stamps()
    assert stamps.gaps(2).runs == 2 and stamps.gaps(2).min_s >= 0


TINY = Lfm2Config.from_dict(dict(vocab_size=300, hidden_size=128, intermediate_size=384, num_hidden_layers=4,
                                 num_attention_heads=4, num_key_value_heads=2, conv_L_cache=3, norm_eps=1e-5,
                                 layer_types=["conv", "full_attention", "conv", "full_attention"],
                                 max_position_embeddings=512, rope_theta=1e6))


SMALL_RUN = Settings(prefill=32, prompt=16, new=6, reps=1, threads=2)


def test_e2e_compare_runs_each_side_in_its_own_process(tmp_path, capsys):
    rows = e2e.compare(["lfm25 fp32", "transformers fp32"], settings=SMALL_RUN, cfg=TINY, cache=str(tmp_path),
                       say=lambda m: None)
    assert {r["engine"] for r in rows} == {"lfm25 fp32", "transformers fp32"}
    assert {r["metric"] for r in rows} == {"prefill 32 tokens", "time to first token, 16-token prompt",
                                           "decode batch 1", "decode batch 8", "peak RSS"}
    assert all(r["value"] > 0 and r["round"] == 0 for r in rows)
    assert {r["better"] for r in rows if r["unit"] in ("ms", "MiB")} == {"lower"}
    e2e.print_table(rows)
    out = capsys.readouterr().out
    assert "lfm25_model fp32 (ours) vs transformers eager fp32 (peer)" in out and "decode batch 8" in out
    assert "| decode batch 1 | tok/s | higher is better |" in e2e.print_table(rows, markdown=True)
    assert os.listdir(tmp_path) == [os.path.basename(e2e.checkpoint(str(tmp_path), "fp32", TINY))]  # cached


def test_e2e_ratio_is_never_inverted_and_says_who_is_ahead():
    row = lambda e, m, v, unit, better: dict(engine=e, label=e2e.label(e), metric=m, value=v, unit=unit,
                                             better=better, round=0)
    rows = [row("lfm25 bf16", "peak RSS", 500, "MiB", "lower"), row("llama.cpp bf16", "peak RSS", 1000, "MiB", "lower"),
            row("lfm25 bf16", "decode batch 1", 50, "tok/s", "higher"),
            row("llama.cpp bf16", "decode batch 1", 100, "tok/s", "higher"),
            row("lfm25 bf16", "prefill 1024 tokens", 101, "tok/s", "higher"),
            row("llama.cpp bf16", "prefill 1024 tokens", 100, "tok/s", "higher")]
    got = {c["metric"]: (c["ratio"], c["verdict"]) for c in e2e.comparison(rows, [("lfm25 bf16", "llama.cpp bf16")])}
    assert got == {"peak RSS": (0.5, "lfm25_model ahead"), "decode batch 1": (0.5, "llama.cpp ahead"),
                   "prefill 1024 tokens": (1.01, "even")}


def test_e2e_accuracy_and_engines_that_cannot_run(tmp_path):
    """The logits error of each engine against the fp32 reference; an engine this installation cannot run (int8
    before from_pretrained takes quantize=, llama.cpp without llama-cpp-python) gives one row saying why."""
    rows = e2e.compare(["lfm25 bf16", "lfm25 int8", "llama.cpp Q8_0"], settings=SMALL_RUN, accuracy=True, cfg=TINY,
                       cache=str(tmp_path), say=lambda m: None)
    err = {r["engine"]: r["value"] for r in rows if r.get("metric") == "logits error vs fp32"}
    assert 0 < err["lfm25 bf16"] < 5                  # bf16 arithmetic on bf16-exact weights: about 1 %
    unavailable = {r["engine"]: r["unavailable"] for r in rows if "unavailable" in r}
    if "quantize" in inspect.signature(Lfm2ForCausalLM.from_pretrained).parameters:
        assert 0 < err["lfm25 int8"] < 10
    else:
        assert "quantize='int8'" in unavailable["lfm25 int8"]
    if llamacpp.missing():
        assert unavailable["llama.cpp Q8_0"] == llamacpp.INSTALL and "builds llama.cpp from source" in llamacpp.INSTALL
    else:
        assert 0 < err["llama.cpp Q8_0"] < 10
        assert any(r.get("metric") == "decode batch 8" and r["engine"] == "llama.cpp Q8_0" for r in rows)


@pytest.mark.parametrize("qtype", ["F32", "BF16", "Q8_0", "Q4_0"])
def test_gguf_holds_the_checkpoint_in_llama_cpp_names_and_types(tmp_path, qtype):
    """Every checkpoint tensor under its llama.cpp name: the projections and the tied embedding in qtype (within
    its rounding of the checkpoint), norms and conv taps in F32; written once per checkpoint and type."""
    gguf = pytest.importorskip("gguf", reason="pip install gguf (the bench extra)")
    from safetensors.torch import load_file

    ckpt = e2e.checkpoint(str(tmp_path), "fp32", TINY)
    path = llamacpp.gguf_for(ckpt, qtype, str(tmp_path))
    mtime = os.stat(path).st_mtime_ns
    assert llamacpp.gguf_for(ckpt, qtype, str(tmp_path)) == path and os.stat(path).st_mtime_ns == mtime
    weights = load_file(os.path.join(ckpt, "model.safetensors"))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LFM2, TINY.num_hidden_layers)
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    assert set(tensors) == {names.get_name(n, try_suffixes=(".weight",)) for n in weights}
    tol = {"F32": 0, "BF16": 0, "Q8_0": 0.01, "Q4_0": 0.15}[qtype]     # rms error relative to rms, per tensor
    for n, w in weights.items():
        t = tensors[names.get_name(n, try_suffixes=(".weight",))]
        w = w.squeeze(1) if n.endswith("conv.conv.weight") else w
        small = w.ndim == 1 or "norm" in n or n.endswith("conv.conv.weight")
        assert t.tensor_type.name == ("F32" if small else qtype), n
        got = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).reshape(w.shape).copy())
        assert ((got - w).square().mean().sqrt() <= tol * w.square().mean().sqrt()).item(), n


def test_llamacpp_process_carries_no_torch():
    """llama.cpp's process imports none of torch (its peak RSS is llama.cpp's own)."""
    code = "import sys, bench.llamacpp; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=e2e.ROOT)


def test_llamacpp_f32_gguf_computes_our_fp32_logits(tmp_path):
    """The GGUF is the same model: llama.cpp on the F32 GGUF gives the logits of our fp32 reference."""
    if llamacpp.missing():
        pytest.skip("pip install llama-cpp-python gguf (builds llama.cpp from source, several minutes)")
    ckpt = e2e.checkpoint(str(tmp_path), "fp32", TINY)
    model = Lfm2ForCausalLM.from_pretrained(ckpt, backend="reference", dtype=torch.float32)
    tokens = list(range(10, 60))
    ref = e2e._logits("reference", model, tokens, 10)
    got = llamacpp.logits(llamacpp.gguf_for(ckpt, "F32", str(tmp_path)), tokens, 10, threads=2)
    assert got.shape == ref.shape
    assert np.sqrt(np.square(got - ref).sum() / np.square(ref).sum()) < 2e-3     # f16 KV cache


def test_e2e_interleaved_times_both_models_in_one_process(tmp_path):
    e2e.write_checkpoint(str(tmp_path), torch.float32, TINY)
    rows = e2e.interleaved(str(tmp_path), "fp32", "cpu", rounds=2, steps=4, prefill_tokens=32)
    assert len(rows) == 2 * 2 * 3 and all(r["value"] > 0 for r in rows)
    assert {(r["engine"], r["round"]) for r in rows} == {(e, r) for e in ("lfm25 fp32", "transformers fp32")
                                                         for r in (0, 1)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_e2e_profiles_each_launch_of_the_replayed_step(dtype):
    table = e2e.profile_step(dtype, batches=(1, 3), reps=2, cfg=TINY)
    rows = {line.split(" | ")[0].strip("| ") for line in table.splitlines()[2:]}
    assert rows == {"rms_norm", "linear in_proj", "short_conv_update", "linear out_proj", "linear w1/w3", "linear w2",
                    "linear q/k/v", "qk_norm_rope_append", "gqa_decode", "linear o_proj", "linear lm_head", "step"}
    step = [line for line in table.splitlines() if line.startswith("| step |")][0]
    assert all(float(v) > 0 for v in step.strip("| ").split(" | ")[1:])
