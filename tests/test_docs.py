"""The python snippets of README.md and docs/USAGE.md run as written, each in a fresh interpreter, in a folder
where a small random LFM2 checkpoint stands in for the downloaded LFM2.5-350M/ (same vocabulary size, so the
snippets' token ids are valid)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/USAGE.md"]


def snippets():
    for doc in DOCS:
        for i, code in enumerate(re.findall(r"```python\n(.*?)```", (ROOT / doc).read_text(), re.S)):
            yield pytest.param(code, id=f"{doc}-{i}")


@pytest.fixture(scope="module")
def checkpoint_folder(tmp_path_factory):
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("docs")
    torch.manual_seed(0)
    cfg = transformers.Lfm2Config(vocab_size=65536, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                                  num_attention_heads=2, num_key_value_heads=1, layer_types=["conv", "full_attention"],
                                  max_position_embeddings=256)
    transformers.Lfm2ForCausalLM(cfg).save_pretrained(folder / "LFM2.5-350M")
    return folder


def test_the_docs_have_snippets():
    assert len(list(snippets())) >= 4


@pytest.mark.parametrize("code", snippets())
def test_snippet_runs_as_written(code, checkpoint_folder):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    run = subprocess.run([sys.executable, "-c", code], cwd=checkpoint_folder, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"the snippet failed:\n{code}\n{run.stderr[-3000:]}"
