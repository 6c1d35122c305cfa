"""GGUF test fixtures made by llama.cpp's own converter (convert_hf_to_gguf.py) from small random transformers
models, cached outside the repository (they take ~30 s each to make: the converter imports torch and transformers).

Where the converter comes from: $LLMC_LLAMA_CPP (a llama.cpp source tree), else the source distribution of
llama-cpp-python unpacked somewhere this module looks (see _llama_cpp_dir); get one with
    pip download --no-binary :all: --no-deps llama-cpp-python && tar xzf llama_cpp_python-*.tar.gz
Tests that need a fixture skip with the reason when the converter, torch or transformers are missing.
Cache: $LLMC_GGUF_CACHE, else ~/.cache/llmc/gguf-fixtures.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _llama_cpp_dir() -> Path | None:
    cands = []
    if os.environ.get("LLMC_LLAMA_CPP"):
        cands.append(os.environ["LLMC_LLAMA_CPP"])
    home = os.path.expanduser("~/.cache/llmc")
    for base in (home, "/work/cache/llama-build"):
        cands += sorted(glob.glob(os.path.join(base, "llama_cpp_python-*", "vendor", "llama.cpp")), reverse=True)
    for c in cands:
        if os.path.isfile(os.path.join(c, "convert_hf_to_gguf.py")):
            return Path(c)
    return None


def cache_dir() -> Path:
    d = Path(os.environ.get("LLMC_GGUF_CACHE") or os.path.expanduser("~/.cache/llmc/gguf-fixtures"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def shared_tokenizer(name: str) -> Path:
    from conftest import shared_dir  # tests/conftest.py

    s = shared_dir()
    if s is None:
        pytest.skip("../shared (real tokenizers) is absent; set LLMC_SHARED to its path")
    d = Path(s) / "tokenizers" / "hf" / name
    if not (d / "tokenizer.json").is_file():
        pytest.skip(f"{d}/tokenizer.json not found (set LLMC_SHARED)")
    return d


def _need_converter() -> Path:
    lc = _llama_cpp_dir()
    if lc is None:
        pytest.skip("llama.cpp's convert_hf_to_gguf.py not found: set LLMC_LLAMA_CPP to a llama.cpp source tree "
                    "(e.g. vendor/llama.cpp of the llama-cpp-python sdist)")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    return lc


def _vocab_size(tok_dir: Path) -> int:
    tj = json.loads((tok_dir / "tokenizer.json").read_text(encoding="utf-8"))
    ids = list(tj["model"]["vocab"].values()) + [t["id"] for t in tj.get("added_tokens", [])]
    return max(ids) + 1


def make_hf_model(out: Path, arch: str, tok_dir: Path | None, seed: int = 0, **cfg) -> Path:
    """A small random transformers model of `arch` saved to out (float32 safetensors), with tok_dir's tokenizer."""
    import torch
    import transformers

    torch.manual_seed(seed)
    vocab = _vocab_size(tok_dir) if tok_dir else cfg.pop("vocab_size")
    base = dict(vocab_size=vocab, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=256)
    if arch == "gpt2":
        base = dict(vocab_size=vocab, n_embd=64, n_layer=2, n_head=4, n_positions=256)
        base.update(cfg)
        c = transformers.GPT2Config(**base)
        m = transformers.GPT2LMHeadModel(c)
    else:
        base.update(cfg)
        cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
               "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
               "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
               "qwen3": (transformers.Qwen3Config, transformers.Qwen3ForCausalLM),
               "mixtral": (transformers.MixtralConfig, transformers.MixtralForCausalLM)}[arch]
        c = cls[0](**base)
        m = cls[1](c)
    with torch.no_grad():  # random norms and biases too, so a transposed or skipped one shows
        for name, p in m.named_parameters():
            if p.ndim == 1:
                p.copy_(torch.randn_like(p) * 0.1 + (1.0 if "norm" in name or "ln" in name else 0.0))
    m = m.float().eval()
    m.save_pretrained(out, safe_serialization=True)
    if arch == "gpt2":  # llama.cpp's converter reads the context from n_ctx, which transformers 5 no longer writes
        cj = json.loads((out / "config.json").read_text())
        cj.setdefault("n_ctx", cj["n_positions"])
        (out / "config.json").write_text(json.dumps(cj, indent=2))
    if tok_dir:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if (tok_dir / f).is_file():
                shutil.copy(tok_dir / f, out / f)
    return out


def convert(hf_dir: Path, out: Path, outtype: str = "f32") -> Path:
    lc = _need_converter()
    cmd = [sys.executable, str(lc / "convert_hf_to_gguf.py"), str(hf_dir), "--outfile", str(out), "--outtype",
           outtype]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"convert_hf_to_gguf.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}")
    return out


def fixture(name: str, arch: str, tokenizer: str | None, outtype: str = "f32", **cfg) -> tuple[Path, Path]:
    """(HF folder, converted .gguf) for a small random model, made once and cached."""
    _need_converter()
    tok_dir = shared_tokenizer(tokenizer) if tokenizer else None
    key = hashlib.sha256(json.dumps([name, arch, tokenizer, outtype, cfg, 3], sort_keys=True).encode()).hexdigest()[:12]
    d = cache_dir() / f"{name}-{key}"
    gguf_path = d / f"{name}.{outtype}.gguf"
    if gguf_path.is_file():
        return d / "hf", gguf_path
    tmp = cache_dir() / f".{name}-{key}.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "hf").mkdir(parents=True)
    make_hf_model(tmp / "hf", arch, tok_dir, **cfg)
    convert(tmp / "hf", tmp / gguf_path.name, outtype)
    try:
        os.rename(tmp, d)
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return d / "hf", gguf_path
