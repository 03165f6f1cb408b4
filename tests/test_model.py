"""lfm25_model against transformers' Lfm2ForCausalLM (the external oracle): random small LFM2 configs saved
with save_pretrained and loaded by from_pretrained; logits, greedy generation, loader errors."""
from __future__ import annotations

import os

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import Lfm2Config as HfConfig, Lfm2ForCausalLM as HfModel  # noqa: E402

import lfm25_kernels  # noqa: E402
from lfm25_model import Lfm2Config, Lfm2ForCausalLM  # noqa: E402

# (hidden, heads, kv heads, layer pattern, conv width): hidden sizes off multiples of 64, GQA groups 1, 2, 4
CONFIGS = {
    "h96-g1-k3": (96, 3, 3, "CACA", 3),
    "h160-g5-k4": (160, 5, 1, "ACCA", 4),
    "h128-g2-k3": (128, 4, 2, "CCAC", 3),
    "h256-g4-k4": (256, 8, 2, "ACAC", 4),
}


def make_checkpoint(tmp_path, name, seed=0, **overrides):
    hidden, heads, kv, pattern, width = CONFIGS[name]
    torch.manual_seed(seed)
    layer_types = ["full_attention" if c == "A" else "conv" for c in pattern]
    cfg = HfConfig(**{**dict(vocab_size=211, hidden_size=hidden, intermediate_size=3 * hidden,
                             num_hidden_layers=len(pattern), num_attention_heads=heads, num_key_value_heads=kv,
                             conv_L_cache=width, layer_types=layer_types, max_position_embeddings=256,
                             initializer_range=0.15), **overrides})
    model = HfModel(cfg).eval()
    path = tmp_path / name
    model.save_pretrained(path)
    return model, str(path)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("backend", ["kernels", "reference"])
def test_fp32_logits_match_transformers(tmp_path, name, backend):
    hf, path = make_checkpoint(tmp_path, name)
    ids = torch.randint(0, 211, (2, 13), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = hf(ids).logits
    ours = Lfm2ForCausalLM.from_pretrained(path, backend=backend, dtype=torch.float32)
    got = ours(ids)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", ["h96-g1-k3", "h128-g2-k3", "h256-g4-k4"])
@pytest.mark.parametrize("paged", [False, True])
def test_greedy_generation_matches_transformers(tmp_path, name, paged):
    hf, path = make_checkpoint(tmp_path, name, seed=3)
    prompts = [[5, 17, 42, 9, 100, 3, 77], [8, 21], [150, 4, 4, 60, 2]]
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    ours.setup_caches(4, 64, paged=paged, block_size=8)
    got = ours.generate(prompts, 32)
    for p, g in zip(prompts, got):
        want = hf.generate(torch.tensor([p]), max_new_tokens=32, do_sample=False, eos_token_id=None, pad_token_id=0)
        assert g == want[0, len(p):].tolist()
    assert len({t for g in got for t in g}) > 5, "degenerate test: the random model repeats one token"


def test_generation_stops_finished_sequences_and_streams(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3", seed=3)
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    prompts = [[5, 17, 42], [8, 21, 9, 9]]
    free = ours.generate(prompts, 12)
    eos = free[0][3]                                       # make sequence 0 stop after 4 tokens
    streamed = []
    got = ours.generate(prompts, 12, eos_token_id=eos, callback=lambda i, t: streamed.append((i, t)))
    assert got[0] == free[0][:free[0].index(eos) + 1]
    assert got[1][:len(got[1])] == free[1][:len(got[1])]
    assert sorted(streamed) == sorted((i, t) for i, g in enumerate(got) for t in g)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_replayed_decode_steps_equal_eager_steps(tmp_path, monkeypatch, dtype):
    """On the CPU, decode steps run as CpuGraph replays (one capture per batch size) of the one decode step
    function; they must give the logits, cache state and tokens of that function run eagerly, bit for bit, also
    when finished sequences leave the batch."""
    _, path = make_checkpoint(tmp_path, "h128-g2-k3", seed=5)
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=dtype)
    ours.setup_caches(4, 64, paged=True, block_size=8)
    prompts = [[5, 17, 42, 9], [8, 21, 3], [150, 4, 4, 60, 2]]
    free = ours.generate(prompts, 16)
    assert sorted(ours.decode_graphs()) == [3]
    eos = free[1][4]                                       # sequence 1 stops early: batches of 3, then 2, ...
    replayed = ours.generate(prompts, 16, eos_token_id=eos)
    assert {2, 3} <= set(ours.decode_graphs())             # a capture per batch size
    rows, positions = torch.arange(3, dtype=torch.int32), torch.tensor([4, 3, 5], dtype=torch.int32)
    tokens, tables = torch.tensor([7, 8, 9]), ours.caches.block_table[:3]
    state = lambda c: [t.clone() for t in c.conv.values()] + [t.clone() for kv in c.kv.values() for t in kv]
    with torch.inference_mode():
        ours.generate(prompts, 1)                            # the prompts' state back in the caches
        logits_replayed = ours._decode(tokens, rows, positions, tables).clone()
        state_replayed = state(ours.caches)
        monkeypatch.setattr(ours, "_decode_step", ours._decode_step.fn)   # the same step function, eager from here
        ours.generate(prompts, 1)
        logits_eager = ours._decode(tokens, rows, positions, tables)
    assert torch.equal(logits_replayed, logits_eager)
    assert all(torch.equal(a, b) for a, b in zip(state_replayed, state(ours.caches)))
    assert ours.generate(prompts, 16) == free
    assert ours.generate(prompts, 16, eos_token_id=eos) == replayed


@pytest.mark.skipif("amx" not in lfm25_kernels.available_isas(), reason="packed weights run on the amx table")
@pytest.mark.parametrize("name", ["h160-g5-k4", "h256-g4-k4"])
def test_packed_bf16_model_equals_the_model_on_rows(tmp_path, name):
    """bf16 on the amx table packs the projections by default (pack_weight). Up to 64 tokens per call every
    projection runs our kernel on both sides, which sums in the same order packed or not: equal bit for bit.
    Past 64 (a prefill), the model on rows runs torch's GEMM and the packed one its packed GEMM: close."""
    _, path = make_checkpoint(tmp_path, name, seed=2)
    packed = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
    rows = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16, pack_weights=False)
    assert packed.packed and not rows.packed
    ids = torch.randint(0, 211, (2, 30), generator=torch.Generator().manual_seed(1))
    assert torch.equal(packed(ids), rows(ids))
    prompts = [[5, 17, 42, 9, 100, 3, 77], [8, 21, 7], [150, 4, 4, 60, 2]]
    assert packed.generate(prompts, 24) == rows.generate(prompts, 24)
    ids = torch.randint(0, 211, (3, 90), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(packed(ids), rows(ids), atol=0.05, rtol=0.02)
    long = [list(range(1, 80)), list(range(3, 50))]
    assert packed.generate(long, 10) == rows.generate(long, 10)


@pytest.mark.skipif(not {"avx512_bf16", "avx512", "avx2"} & set(lfm25_kernels.available_isas()),
                    reason="the pairs layout runs on the x86 tables")
@pytest.mark.parametrize("name", ["h160-g5-k4", "h256-g4-k4"])
def test_bf16_model_packed_in_pairs_is_close_to_the_model_on_rows(tmp_path, name):
    """bf16 on the x86 tables without AMX packs the projections in pairs by default: our kernel at any tokens per
    call, summing in another order than on rows (our kernel up to 64 tokens, torch's GEMM past that). Against
    the fp32 model, the packed model's logits are as accurate as the model's on rows."""
    _, path = make_checkpoint(tmp_path, name, seed=2)
    fp32 = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, backend="reference")
    isa = next(t for t in ("avx512_bf16", "avx512", "avx2") if t in lfm25_kernels.available_isas())
    with lfm25_kernels.cpu_isa(isa):
        packed = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
        rows = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16, pack_weights=False)
        assert packed.packed and not rows.packed and packed.lm_head.weight.layout == "pairs"
        for T in (30, 90):
            ids = torch.randint(0, 211, (2, T), generator=torch.Generator().manual_seed(T))
            want = fp32(ids)
            err = {n: float((m(ids).float() - want).norm() / want.norm()) for n, m in (("packed", packed),
                                                                                      ("rows", rows))}
            assert err["packed"] <= 1.1 * err["rows"], (T, err)
        prompts = [[5, 17, 42, 9, 100, 3, 77], [8, 21, 7], [150, 4, 4, 60, 2]]
        one = [packed.generate([p], 12)[0] for p in prompts]
        assert packed.generate(prompts, 12) == one   # a sequence's tokens do not depend on the batch


def test_pack_weights_needs_bf16_kernels_on_the_cpu(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    with pytest.raises(ValueError, match="pack_weights=True needs"):
        Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32, pack_weights=True)
    with pytest.raises(ValueError, match="pack_weights=True needs"):
        Lfm2ForCausalLM.from_pretrained(path, backend="reference", dtype=torch.bfloat16, pack_weights=True)
    assert not Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32).packed


def test_release_pages_lets_go_of_a_mapped_tensor_and_keeps_its_values(tmp_path):
    """The loader drops the resident pages of each checkpoint tensor it replaced by a packed copy (else the
    model would hold both until the file's map closes); the file's values come back if read again."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from lfm25_model.loader import release_pages

    def rss_mib():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    big = torch.randn(64 << 20 >> 2, generator=torch.Generator().manual_seed(0))    # 64 MiB of fp32
    small = torch.arange(1000, dtype=torch.float32)
    save_file({"big": big, "small": small}, str(tmp_path / "t.safetensors"))
    f = safe_open(str(tmp_path / "t.safetensors"), framework="pt")
    mapped, neighbour = f.get_tensor("big"), f.get_tensor("small")
    total = mapped.sum()                                   # every page of it resident now
    before = rss_mib()
    release_pages(mapped)
    assert before - rss_mib() > 48
    assert torch.equal(mapped.sum(), total) and torch.equal(neighbour, small)


def test_generate_reallocates_the_caches_and_keeps_paging(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    ours.setup_caches(1, 8, paged=True, block_size=4)
    ours.generate([[1, 2, 3], [4, 5]], 10)
    c = ours.caches
    assert (c.paged, c.block_size, c.max_batch, c.max_seq) == (True, 4, 2, 13)
    ours.generate([[6, 7]], 2)                             # fits: the caches stay as they are
    assert ours.caches is c


def test_sampling_is_seeded(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    a = ours.generate([[1, 2, 3]], 10, temperature=0.8, top_k=20, top_p=0.9, seed=7)
    b = ours.generate([[1, 2, 3]], 10, temperature=0.8, top_k=20, top_p=0.9, seed=7)
    assert a == b


def test_config_key_styles(tmp_path):
    lfm2 = dict(vocab_size=65536, hidden_size=1024, num_hidden_layers=16, num_attention_heads=16,
                num_key_value_heads=8, block_ff_dim=6656, intermediate_size=9999, full_attn_idxs=[2, 5, 8, 10, 12, 14],
                rope_theta=1e6, conv_L_cache=3, block_multiple_of=256, block_ffn_dim_multiplier=1.0,
                block_auto_adjust_ff_dim=True, bos_token_id=1, eos_token_id=7, pad_token_id=0)
    lfm25 = {k: v for k, v in lfm2.items() if k not in ("full_attn_idxs", "rope_theta")}
    lfm25.update(layer_types=["full_attention" if i in (2, 5, 8, 10, 12, 14) else "conv" for i in range(16)],
                 rope_parameters={"rope_theta": 1e6, "rope_type": "default"})
    a, b = Lfm2Config.from_dict(lfm2), Lfm2Config.from_dict(lfm25)
    assert a == b == Lfm2Config.lfm25_350m()
    assert a.intermediate_size == 4608
    with pytest.raises(ValueError, match="missing key 'hidden_size'"):
        Lfm2Config.from_dict({k: v for k, v in lfm2.items() if k != "hidden_size"})
    with pytest.raises(ValueError, match="'layer_types' has 3 entries"):
        Lfm2Config.from_dict(dict(lfm25, layer_types=["conv"] * 3))
    with pytest.raises(ValueError, match="'conv_bias'"):
        Lfm2Config.from_dict(dict(lfm2, conv_bias=True))


def _weights_file(path):
    return os.path.join(path, "model.safetensors")


def test_loader_rejects_a_truncated_file(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    data = open(_weights_file(path), "rb").read()
    open(_weights_file(path), "wb").write(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read"):
        Lfm2ForCausalLM.from_pretrained(path)


def test_loader_names_missing_and_misshaped_tensors(tmp_path):
    from safetensors.torch import load_file, save_file

    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    tensors = load_file(_weights_file(path))
    del tensors["model.layers.0.conv.in_proj.weight"]
    tensors["model.layers.1.self_attn.q_layernorm.weight"] = torch.ones(31)
    tensors["model.layers.9.extra.weight"] = torch.ones(2)
    save_file(tensors, _weights_file(path))
    with pytest.raises(ValueError) as e:
        Lfm2ForCausalLM.from_pretrained(path)
    msg = str(e.value)
    assert "missing tensors: ['model.layers.0.conv.in_proj.weight']" in msg
    assert "model.layers.1.self_attn.q_layernorm.weight: expected [32], got [31]" in msg
    assert "unexpected tensors: ['model.layers.9.extra.weight']" in msg


def test_sharded_checkpoint_loads(tmp_path):
    hf, path = make_checkpoint(tmp_path, "h128-g2-k3")
    sharded = tmp_path / "sharded"
    hf.save_pretrained(sharded, max_shard_size="100KB")
    assert os.path.exists(sharded / "model.safetensors.index.json")
    ids = torch.randint(0, 211, (1, 9))
    a = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)(ids)
    b = Lfm2ForCausalLM.from_pretrained(str(sharded), dtype=torch.float32)(ids)
    assert torch.equal(a, b)


def test_transformers_swap_gives_the_same_tokens_and_is_reversible(tmp_path):
    from lfm25_kernels.integrations.transformers import swap_kernels
    from transformers.models.lfm2.modeling_lfm2 import Lfm2ShortConv

    hf, _ = make_checkpoint(tmp_path, "h128-g2-k3", seed=3)
    ids = torch.tensor([[5, 17, 42, 9, 100, 3, 77]])
    kw = dict(max_new_tokens=24, do_sample=False, eos_token_id=None, pad_token_id=0)
    plain = hf.generate(ids, **kw)
    calls = []
    with swap_kernels(hf) as swap:
        assert len(swap.layers) == 3
        hook = hf.model.layers[0].conv.register_forward_hook(lambda m, i, o: calls.append(1))
        swapped = hf.generate(ids, **kw)
        hook.remove()
    assert torch.equal(plain, swapped)
    assert len(calls) == 24                                 # prefill + 23 decode steps ran the swapped layer
    assert all("forward" not in m.__dict__ for m in hf.modules() if isinstance(m, Lfm2ShortConv))
    assert torch.equal(hf.generate(ids, **kw), plain)


def test_pack_weights_true_works_on_every_table(tmp_path):
    """A model packed on request runs on every CPU table (others than amx unpack each packed weight per call):
    the same tokens as the model in rows."""
    _, path = make_checkpoint(tmp_path, "h128-g2-k3", seed=2)
    packed = Lfm2ForCausalLM.from_pretrained(path, dtype="bf16", pack_weights=True)
    rows = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.bfloat16, pack_weights=False)
    assert packed.packed and not rows.packed
    prompts = [[5, 17, 42, 9], [8, 21, 7]]
    for isa in lfm25_kernels.available_isas():
        with lfm25_kernels.cpu_isa(isa):
            assert packed.generate(prompts, 6) == rows.generate(prompts, 6), isa


def test_from_pretrained_errors_are_plain(tmp_path):
    with pytest.raises(FileNotFoundError, match="'LiquidAI/LFM2.5-350M', which is a hub id, not a directory; "
                                                "download one first: huggingface-cli download LiquidAI/LFM2.5-350M "
                                                "--local-dir LFM2.5-350M"):
        Lfm2ForCausalLM.from_pretrained("LiquidAI/LFM2.5-350M")
    with pytest.raises(FileNotFoundError, match="which is not a directory; download one first: huggingface-cli"):
        Lfm2ForCausalLM.from_pretrained(str(tmp_path / "missing"))
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    with pytest.raises(ValueError, match=r"dtype must be one of \['bf16', .*got 'int8'"):
        Lfm2ForCausalLM.from_pretrained(path, dtype="int8")
    with pytest.raises(TypeError, match="dtype must be torch.float32, torch.float16, torch.bfloat16 or None, got "
                                        "torch.int32"):
        Lfm2ForCausalLM.from_pretrained(path, dtype=torch.int32)
    assert Lfm2ForCausalLM.from_pretrained(path, dtype="fp16").dtype == torch.float16


def test_a_head_dim_the_kernels_lack_is_refused_at_load(tmp_path):
    _, path = make_checkpoint(tmp_path, "h160-g5-k4", hidden_size=200)   # 200 / 5 heads = 40
    with pytest.raises(ValueError, match=r"head_dim .* must be one of \(32, 64, 96, 128\) for backend='kernels'.*"
                                         "got 40"):
        Lfm2ForCausalLM.from_pretrained(path)
    assert Lfm2ForCausalLM.from_pretrained(path, backend="reference").config.head_dim == 40


def test_generate_takes_what_a_transformers_user_passes(tmp_path):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3", seed=3)
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    want = ours.generate([[5, 17, 42], [8, 21, 9]], 5)
    assert ours.generate([5, 17, 42], 5) == want[:1]                              # a flat list: one prompt
    assert ours.generate(torch.tensor([5, 17, 42]), 5) == want[:1]                # a 1-D tensor
    assert ours.generate(torch.tensor([[5, 17, 42], [8, 21, 9]]), 5) == want      # [B, T]
    assert ours.generate(((5, 17, 42),), 5, top_k=0, top_p=1.0, eos_token_id=[3, 4]) == want[:1]


@pytest.mark.parametrize("prompts, kwargs, exc, match", [
    ([[5, -1]], {}, ValueError, r"prompts\[0\] must be token ids in \[0, 211\) \(the vocabulary\), got \[-1\]"),
    ([[5], [211, 300]], {}, ValueError, r"prompts\[1\] must be token ids in \[0, 211\).*got \[211, 300\]"),
    ([[5, 1.0]], {}, TypeError, r"prompts\[0\] must be a list of int token ids, got float 1.0"),
    (torch.tensor([[5.0]]), {}, TypeError, "prompts must be an integer tensor of token ids, got dtype torch.float32"),
    (torch.zeros(1, 1, 2, dtype=torch.long), {}, ValueError,
     r"prompts must be .*1-D or 2-D integer tensor, got a tensor of shape \[1, 1, 2\]"),
    ("hello", {}, TypeError, "prompts must be a list of token-id lists.*got str"),
    ([], {}, ValueError, "prompts must be at least one prompt, got an empty list"),
    ([[5], []], {}, ValueError, r"prompts\[1\] must be a non-empty list"),
    ([5], dict(max_new_tokens=0), ValueError, "max_new_tokens must be an int >= 1, got 0"),
    ([5], dict(max_new_tokens=-2), ValueError, "max_new_tokens must be an int >= 1, got -2"),
    ([5], dict(max_new_tokens=2.0), TypeError, "max_new_tokens must be an int >= 1, got 2.0"),
    ([5], dict(top_k=-3), ValueError, r"top_k must be None or an int >= 0 \(0: no limit\), got -3"),
    ([5], dict(temperature=-0.5), ValueError, "temperature must be a finite number >= 0"),
    ([5], dict(temperature=float("nan")), ValueError, "temperature must be a finite number >= 0"),
    ([5], dict(top_p=1.5), ValueError, r"top_p must be None or a number in \(0, 1\], got 1.5"),
    ([5], dict(top_p=0), ValueError, r"top_p must be None or a number in \(0, 1\], got 0"),
    ([5], dict(eos_token_id="x"), TypeError, "eos_token_id must be None, an int or a list of ints"),
    ([5], dict(seed=1.5), TypeError, "seed must be None or an int, got 1.5"),
])
def test_generate_refuses_bad_arguments_in_words(tmp_path, prompts, kwargs, exc, match):
    _, path = make_checkpoint(tmp_path, "h96-g1-k3")
    ours = Lfm2ForCausalLM.from_pretrained(path, dtype=torch.float32)
    caches = ours.caches
    kwargs = {"max_new_tokens": 3, **kwargs}
    with pytest.raises(exc, match="generate: " + match):
        ours.generate(prompts, kwargs.pop("max_new_tokens"), **kwargs)
    assert ours.caches is caches                                # nothing allocated before the checks


def _cli_checkpoint(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    _, path = make_checkpoint(tmp_path, "h96-g1-k3", seed=3)
    vocab = {w: i for i, w in enumerate(["<|pad|>", "<|startoftext|>", "<|im_end|>", "<|im_start|>", "user",
                                         "assistant", "\n", "hello", "world"] + [f"w{i}" for i in range(202)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<|pad|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|startoftext|>", "<|im_start|>", "<|im_end|>"])
    tok.save(os.path.join(path, "tokenizer.json"))
    return path


def test_cli_generates_from_a_checkpoint_with_its_tokenizer(tmp_path, capsys):
    from lfm25_model.__main__ import main

    path = _cli_checkpoint(tmp_path)
    for dtype in ("fp32", "fp16"):
        assert main(["generate", "--model", path, "--prompt", "hello world", "--chat", "--max-new-tokens", "6",
                     "--dtype", dtype, "--threads", "1"]) == 0
        out = capsys.readouterr()
        assert "w" in out.out and "decode:" in out.err and "tok/s" in out.err and "after a warm-up" in out.err
        assert f"{dtype}, 1 threads" in out.err
    assert main(["generate", "--model", path, "--prompt", "hello", "--max-new-tokens", "1"]) == 0
    assert "no decode step" in capsys.readouterr().err


@pytest.mark.parametrize("args, match", [
    (["--random-weights", "--prompt", "hi"], "--prompt needs --model DIR"),
    (["--random-weights", "--chat", "--prompt", "hi"], "--prompt and --chat need --model DIR"),
    (["--random-weights", "--max-new-tokens", "0"], "--max-new-tokens: must be an int >= 1, got '0'"),
    (["--random-weights", "--threads", "0"], "--threads: must be an int >= 1, got '0'"),
    (["--model", "{path}", "--prompt", ""], '--prompt "" has no tokens to continue'),
    (["--model", "{empty}"], "no tokenizer.json in .*huggingface-cli download LiquidAI/LFM2.5-350M"),
    (["--model", "{missing}"], "no tokenizer.json in"),
    (["--model", "{path}", "--dtype", "int8"], "argument --dtype: invalid choice"),
])
def test_cli_refuses_in_words(tmp_path, capsys, args, match):
    import re

    from lfm25_model.__main__ import main

    names = dict(path=_cli_checkpoint(tmp_path), empty=str(tmp_path), missing=str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as e:
        main(["generate", *(a.format(**names) for a in args)])
    assert e.value.code == 2
    assert re.search(match, capsys.readouterr().err)
