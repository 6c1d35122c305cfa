"""The `llmc` command line: each command on a small checkpoint, exit code 2 and a message on bad input."""
import json

import numpy as np
import pytest

import llmc
from llmc.cli import main

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TEXT = "In the beginning God created the heaven and the earth. And the earth was without form, and void.\n" * 30


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_model")
    tk = tokenizers.Tokenizer(tokenizers.models.BPE())
    tk.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = tokenizers.decoders.ByteLevel()
    tk.train_from_iterator([TEXT], tokenizers.trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet()))
    tk.save(str(d / "tokenizer.json"))
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=tk.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=128, eos_token_id=0)
    transformers.LlamaForCausalLM(cfg).save_pretrained(d)
    (d / "text.txt").write_text(TEXT)
    return d


def test_tokenize_json(ckpt, capsys):
    assert main(["tokenize", str(ckpt), "the earth", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    tk = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    assert out["ids"] == tk.encode("the earth").ids
    assert "".join(out["pieces"]) == "the earth"


def test_tokenize_tiktoken(capsys):
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load
    path = llmc.encodings.ENCODINGS_DIR / "cl100k_base.tiktoken"  # shipped in llmc
    assert main(["tokenize", "cl100k_base", "Hello world, 1234!", "--json"]) == 0
    by_name = json.loads(capsys.readouterr().out)["ids"]
    assert main(["tokenize", str(path), "Hello world, 1234!", "--json"]) == 0
    meta = json.loads(path.with_suffix(".json").read_text())
    enc = tiktoken.Encoding("cl100k", pat_str=meta["pat_str"], mergeable_ranks=tiktoken.load.load_tiktoken_bpe(
        str(path)), special_tokens=meta.get("special_tokens", {}))
    assert json.loads(capsys.readouterr().out)["ids"] == enc.encode("Hello world, 1234!") == by_name


def test_generate_info_perplexity(ckpt, capsys):
    assert main(["generate", str(ckpt), "In the", "--max-new-tokens", "5", "--seed", "1", "--temperature", "0.9"]) == 0
    assert capsys.readouterr().out.strip() != ""
    assert main(["generate", str(ckpt), "In the", "--max-new-tokens", "5", "--beams", "2"]) == 0
    assert main(["generate", str(ckpt), "In the", "--max-new-tokens", "5", "--stream"]) == 0
    assert main(["info", str(ckpt)]) == 0
    assert "architecture: llama" in capsys.readouterr().out
    assert main(["perplexity", str(ckpt), str(ckpt / "text.txt"), "--context", "64", "--quiet"]) == 0
    out = capsys.readouterr().out
    ppl = float(out.split()[1])
    assert 1.0 < ppl < 1e4


def test_bad_arguments_exit_2(ckpt, capsys):
    assert main(["generate", str(ckpt / "nope"), "x"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["perplexity", str(ckpt), str(ckpt / "missing.txt")]) == 2
    assert main(["generate", str(ckpt), "x", "--top-p", "2.0"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["generate"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["perplexity", str(ckpt), "f", "--method", "bogus"])
    assert e.value.code == 2


def test_train_and_resume(ckpt, tmp_path, capsys):
    cfg = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    common = ["--text", str(ckpt / "text.txt"), "--tokenizer", str(ckpt / "tokenizer.json"), "--config",
              str(tmp_path / "config.json"), "--batch-size", "2", "--seq-len", "16", "--eval-every", "2",
              "--log-every", "1"]
    assert main(["train", *common, "--out", str(tmp_path / "a"), "--steps", "4"]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "b"), "--steps", "6", "--resume", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "step 6/6" in out and "step 1/6" not in out  # resumed at step 4
    m = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "b")  # the saved folder loads in transformers
    assert m.config.num_hidden_layers == 1


def _run(args, cwd):
    """`python -m llmc ...` in a subprocess that imports the same llmc as this test."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import llmc

    env = dict(os.environ, PYTHONPATH=str(Path(llmc.__file__).resolve().parent.parent))
    return subprocess.run([sys.executable, "-m", "llmc", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_subcommands_in_a_subprocess(ckpt, tmp_path):
    r = _run(["tokenize", str(ckpt), "the earth", "--json"], tmp_path)
    assert r.returncode == 0, r.stderr
    tk = tokenizers.Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    assert json.loads(r.stdout)["ids"] == tk.encode("the earth").ids
    r = _run(["generate", str(ckpt), "In the", "--max-new-tokens", "4", "--temperature", "0"], tmp_path)
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    r = _run(["info", str(ckpt)], tmp_path)
    assert r.returncode == 0 and "parameters:" in r.stdout
    r = _run(["perplexity", str(ckpt), str(ckpt / "text.txt"), "--context", "64", "--method", "chunks"], tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("perplexity "), r.stderr
    r = _run(["generate", str(ckpt)], tmp_path)
    assert r.returncode == 2 and "required" in r.stderr
    r = _run(["perplexity", str(ckpt), "/nonexistent.txt"], tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
