"""The shipped default model: loads with llmc.load_default() and with transformers, same logits (1e-4); its
held-out perplexity recomputed here equals the number recorded at training time and quoted in the README (1e-3)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import llmc
import llmc.data
from llmc.default import DEFAULT_DIR

ROOT = Path(__file__).resolve().parent.parent


def test_loads_and_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = llmc.load_default()
    assert model.tokenizer is not None and model.arch == "llama"
    size = sum(p.stat().st_size for p in DEFAULT_DIR.iterdir())
    assert size <= 25 * 2**20, f"default model is {size / 2**20:.1f} MiB"
    hf = transformers.AutoModelForCausalLM.from_pretrained(DEFAULT_DIR).eval()
    ids = model.tokenizer.encode("In the beginning God created the heaven and the earth.")
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0].numpy()
    np.testing.assert_allclose(model.logits(ids), ref, rtol=0, atol=1e-4)
    tk = pytest.importorskip("tokenizers").Tokenizer.from_file(str(DEFAULT_DIR / "tokenizer.json"))
    assert tk.encode("And God said, Let there be light: and there was light.").ids == \
        model.tokenizer.encode("And God said, Let there be light: and there was light.")


def test_heldout_perplexity_matches_record_and_readme():
    rec = json.loads((DEFAULT_DIR / "training.json").read_text())
    lines = llmc.data.kjv_path().read_text(encoding="utf-8").splitlines()  # the shipped KJV
    held = "\n".join(lines[int(len(lines) * 0.95):]) + "\n"  # the split rule, written out independently
    assert held == llmc.data.kjv_text("heldout")
    model = llmc.load_default()
    r = llmc.perplexity(model, held, context_length=rec["seq_len"], stride=rec["seq_len"] // 2, progress=False)
    assert r.ppl == pytest.approx(rec["heldout_ppl"], rel=1e-3)
    readme = (ROOT / "README.md").read_text()
    quoted = re.search(r"held-out perplexity \*\*([0-9.]+)\*\*", readme)
    assert quoted, "README must quote the held-out perplexity as 'held-out perplexity **N**'"
    assert float(quoted.group(1)) == pytest.approx(r.ppl, rel=1e-3)


def test_demo_runs(capsys):
    from llmc.cli import main

    assert main(["demo", "--max-new-tokens", "8"]) == 0
    out = capsys.readouterr().out
    assert "tokenize" in out and "beam search" in out and "perplexity" in out
