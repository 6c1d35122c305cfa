"""The `llmc` command line: each command on a small checkpoint, exit code 2 and a message on bad input."""
import json

import numpy as np
import pytest

import llmc
import llmc.data
from llmc.cli import main

from conftest import lazy_import

torch = lazy_import("torch")
transformers = lazy_import("transformers")
tokenizers = lazy_import("tokenizers")

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
    with pytest.raises(SystemExit) as e:  # argparse checks numbers' ranges: usage, message, exit code 2
        main(["generate", str(ckpt), "x", "--top-p", "2.0"])
    assert e.value.code == 2
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


# ---------------------------------------------------------------- no reference library needed below
def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"llmc {llmc.__version__}"
    with pytest.raises(SystemExit):
        main(["generate", "--help"])
    out = capsys.readouterr().out
    for flag in ("--no-repeat-ngram-size", "--repetition-penalty", "--overflow", "--keep-first"):
        assert flag in out
    assert "(default: stop)" in out and "(default: 64)" in out


@pytest.mark.parametrize("argv,message", [
    (["perplexity", "default", "f.txt", "--context", "0"], "--context must be >= 1, got 0"),
    (["perplexity", "default", "f.txt", "--stride", "-4"], "--stride must be >= 1"),
    (["generate", "default", "x", "--max-new-tokens", "-1"], "--max-new-tokens must be >= 0"),
    (["generate", "default", "x", "--temperature", "nan"], "--temperature must be finite"),
    (["generate", "default", "x", "--overflow", "wrap"], "invalid choice: 'wrap'"),
    (["train", "--text", "a", "--tokenizer", "b", "--config", "c", "--out", "d", "--lr", "0"], "--lr must be > 0"),
    (["train", "--text", "a", "--tokenizer", "b", "--config", "c", "--out", "d", "--steps", "x"],
     "--steps must be an integer"),
])
def test_bad_numbers_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_perplexity_zero_context_is_an_error():
    model = llmc.load_default()
    with pytest.raises(ValueError, match="context_length must be >= 2, got 0"):
        llmc.perplexity(model, "In the beginning God created", context_length=0, progress=False)
    with pytest.raises(ValueError, match="stride must be in"):
        llmc.perplexity(model, "In the beginning God created", context_length=8, stride=0, progress=False)


def test_generate_options_reach_the_model(capsys):
    model = llmc.load_default()
    want = model.generate("And God said", 12, temperature=0, no_repeat_ngram_size=2, repetition_penalty=1.3)
    assert main(["generate", "default", "And God said", "--max-new-tokens", "12", "--temperature", "0",
                 "--no-repeat-ngram-size", "2", "--repetition-penalty", "1.3"]) == 0
    assert capsys.readouterr().out == want + "\n"


def test_generate_overflow(capsys):
    tok = llmc.load_default().tokenizer
    lines, prompt = iter(llmc.data.kjv_lines("heldout")), ""
    while len(tok.encode(prompt)) < 230:
        prompt += next(lines) + "\n"
    n = len(tok.encode(prompt))
    assert n < 256
    args = ["generate", "default", prompt, "--max-new-tokens", "40", "--temperature", "0"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert f"note: generation stopped at the context window (256 tokens: {n} of prompt + {256 - n} generated)" in err
    assert main(args + ["--overflow", "slide"]) == 0
    assert "note" not in capsys.readouterr().err
    assert main(args + ["--overflow", "error"]) == 2
    assert "exceeds the context window of 256" in capsys.readouterr().err


def test_memory_error_is_one_line(monkeypatch, capsys):
    import llmc.cli as cli

    def boom(args):
        raise MemoryError("cannot allocate 1.2 GiB for the KV cache")

    monkeypatch.setattr(cli, "cmd_info", boom)
    assert main(["info"]) == 1
    assert capsys.readouterr().err == "llmc info: error: out of memory: cannot allocate 1.2 GiB for the KV cache\n"


def test_info_on_an_encoder_shows_no_kv_cache(tmp_path, capsys):
    bert = llmc.Model.init(dict(model_type="bert", vocab_size=100, hidden_size=32, num_hidden_layers=1,
                                num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                type_vocab_size=2), seed=0)
    bert.save(tmp_path)
    assert main(["info", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no KV cache" in out and "bytes/token" not in out
    assert main(["info", "default"]) == 0
    assert "KV cache 3,072 bytes/token" in capsys.readouterr().out  # 2 (K, V) * 6 layers * 2 heads * 32 dims * 4 B


def _default_tokenizer_json(path):
    from llmc.default import DEFAULT_DIR

    path.write_bytes((DEFAULT_DIR / "tokenizer.json").read_bytes())


def _train_files(tmp_path):
    _default_tokenizer_json(tmp_path / "tok.json")
    (tmp_path / "text.txt").write_text(llmc.data.kjv_text("train")[:20_000])
    cfg = dict(model_type="llama", hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
               num_key_value_heads=2, max_position_embeddings=64)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return ["--text", str(tmp_path / "text.txt"), "--tokenizer", str(tmp_path / "tok.json"), "--config",
            str(tmp_path / "config.json"), "--out", str(tmp_path / "out"), "--batch-size", "2", "--seq-len", "16"]


def test_train_errors_name_the_file(tmp_path, capsys):
    args = _train_files(tmp_path)
    (tmp_path / "bad.json").write_text("{not json")
    bad_cfg = [a if a != str(tmp_path / "config.json") else str(tmp_path / "bad.json") for a in args]
    assert main(["train", *bad_cfg, "--steps", "1"]) == 2
    assert f"--config {tmp_path / 'bad.json'}: not valid JSON" in capsys.readouterr().err
    (tmp_path / "text.txt").write_bytes(b"caf\xe9 latin-1")
    assert main(["train", *args, "--steps", "1"]) == 2
    assert f"--text {tmp_path / 'text.txt'}: not UTF-8 text" in capsys.readouterr().err
    (tmp_path / "tok.json").write_text("[]")
    assert main(["train", *args, "--steps", "1"]) == 2
    assert f"--tokenizer {tmp_path / 'tok.json'}:" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps(dict(model_type="llama", hidden_size=32)))
    _default_tokenizer_json(tmp_path / "tok.json")
    (tmp_path / "text.txt").write_text("In the beginning " * 200)
    assert main(["train", *args, "--steps", "1"]) == 2
    assert f"--config {tmp_path / 'config.json'}:" in capsys.readouterr().err


def test_train_divergence_saves_the_last_good_state(tmp_path, monkeypatch, capsys):
    from llmc.training import Trainer

    calls = {"n": 0}
    clip = Trainer.clip

    def flaky_clip(self, max_norm):  # the third step's gradient norm comes out NaN
        calls["n"] += 1
        return float("nan") if calls["n"] == 3 else clip(self, max_norm)

    monkeypatch.setattr(Trainer, "clip", flaky_clip)
    assert main(["train", *_train_files(tmp_path), "--steps", "5", "--log-every", "1"]) == 1
    out, err = capsys.readouterr()
    assert "step 2/5" in out and "step 3/5" not in out
    assert err.count("\n") == 1 and "gradient norm became nan at step 2" in err and "saved to" in err
    assert json.loads((tmp_path / "out" / "trainer_state.json").read_text())["step"] == 2
    saved = llmc.Model.load(tmp_path / "out")
    assert all(np.isfinite(v).all() for v in saved.state_dict().values())
