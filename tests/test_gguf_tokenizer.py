"""Tokenizers from GGUF metadata encode exactly like Hugging Face `tokenizers` with the tokenizer.json the GGUF was
converted from (by llama.cpp's convert_hf_to_gguf.py, from the real Llama 2-style, Llama 3 and Qwen 3 tokenizers)."""
import shutil

import numpy as np
import pytest

import llmc
from llmc.gguf_tokenizer import load_tokenizer

from gguf_fixtures import fixture, shared_tokenizer
from tok_corpus import adversarial

tokenizers = pytest.importorskip("tokenizers")

TINY = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            max_position_embeddings=64)
FIXED = ["Hello world", "a  b", "  leading and trailing  ", "naïve café 世界 🙂 \n\n tabs\t\tx", "I'm 12345 ok",
         "<s>hi</s> there", "<|begin_of_text|>x<|eot_id|>", "<|im_start|>user\nhi<|im_end|>", "<think>\n</think>",
         "", " ", "\n", "ﬁ ＡＢＣ e\u0301 Å", "don't WON'T"]


def _texts(n=400):
    return FIXED + adversarial(seed=11, n=n)


def _llama2_with_scores(tmp_path_factory):
    """The Llama 2-style fixture with SentencePiece-equivalent scores.

    The converter fills `tokenizer.ggml.scores` with a placeholder (-1000 for every token) when the model folder
    has a tokenizer.json but no tokenizer.model; files converted from a tokenizer.model carry the real scores.
    Real SentencePiece scores are reproduced from the tokenizer.json's own merge ranks (a token's score is minus the
    rank of the first merge that makes it), written into a copy with gguf-py."""
    gguf = pytest.importorskip("gguf")
    import json

    _, path = fixture("tok-llama2", "llama", "llama2", **TINY)
    out = tmp_path_factory.mktemp("llama2") / "scored.gguf"
    shutil.copy(path, out)
    tj = json.loads((shared_tokenizer("llama2") / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tj["model"]["vocab"]
    rank = {}
    for r, m in enumerate(tj["model"]["merges"]):
        a, b = m.split(" ") if isinstance(m, str) else m
        rank.setdefault(vocab[a + b], r)
    r = gguf.GGUFReader(str(out), "r+")
    field = r.fields["tokenizer.ggml.scores"]
    for i, part in enumerate(field.data):  # one part (a 1-element view of the mapped file) per array element
        field.parts[part][0] = -float(rank[i]) if i in rank else 0.0
    r.data.flush()
    del r
    return out


@pytest.fixture(scope="module")
def llama2_scored(tmp_path_factory):
    return _llama2_with_scores(tmp_path_factory)


def _compare(tok, hf, texts, add_bos=None):
    bad = []
    for t in texts:
        a = tok.encode(t, add_special_tokens=False)
        b = hf.encode(t, add_special_tokens=False).ids
        if a != b:
            bad.append((t, a, b))
    assert not bad, f"{len(bad)} of {len(texts)} differ; first: {bad[0]!r}"


def test_llama2_spm(llama2_scored):
    tok = load_tokenizer(llama2_scored)
    hf = tokenizers.Tokenizer.from_file(str(shared_tokenizer("llama2") / "tokenizer.json"))
    _compare(tok, hf, _texts())
    # add_bos from the metadata: <s> first, like HF's TemplateProcessing
    for t in FIXED[:6]:
        assert tok.encode(t, add_special_tokens=True) == hf.encode(t).ids
    ids = hf.encode("héllo wörld 🙂\n  x").ids
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False)


def test_llama2_placeholder_scores_loads():
    """Placeholder scores: ranks fall back to vocabulary order, right except for SentencePiece's late whitespace
    pieces (▁▁): text without double spaces still encodes like HF."""
    _, path = fixture("tok-llama2", "llama", "llama2", **TINY)
    tok = load_tokenizer(path)
    hf = tokenizers.Tokenizer.from_file(str(shared_tokenizer("llama2") / "tokenizer.json"))
    for t in ["Hello world", "The quick brown fox jumps over the lazy dog.", "naïve café 世界 🙂"]:
        assert tok.encode(t, add_special_tokens=False) == hf.encode(t, add_special_tokens=False).ids


@pytest.mark.parametrize("name", ["llama3", "qwen3"])
def test_byte_level_bpe(name):
    arch = "llama" if name == "llama3" else "qwen3"
    cfg = dict(TINY, head_dim=8) if arch == "qwen3" else TINY
    _, path = fixture(f"tok-{name}", arch, name, **cfg)
    f = llmc.gguf.GGUFFile(path)
    assert f.get("tokenizer.ggml.model") == "gpt2"
    pre = f.get("tokenizer.ggml.pre")
    tok = load_tokenizer(f)
    hf = tokenizers.Tokenizer.from_file(str(shared_tokenizer(name) / "tokenizer.json"))
    if name == "llama3":
        # The converter names the pre-tokenizer by hashing transformers' encoding of a probe text; with
        # transformers 5 the real Llama 3 tokenizer hashes as "smaug-bpe" (Llama 3's regex, merges always applied:
        # llama.cpp's reading), otherwise "llama-bpe" (ignore_merges, as in the tokenizer.json).
        assert pre in ("llama-bpe", "smaug-bpe")
        if pre == "smaug-bpe":
            import json

            tj = json.loads((shared_tokenizer(name) / "tokenizer.json").read_text(encoding="utf-8"))
            tj["model"]["ignore_merges"] = False
            hf = tokenizers.Tokenizer.from_str(json.dumps(tj))
    else:
        assert pre == "qwen2"
    _compare(tok, hf, _texts())
    # special tokens in text become their ids, as in HF
    for t in FIXED[5:9]:
        assert tok.encode(t, add_special_tokens=False) == hf.encode(t, add_special_tokens=False).ids
    bos = f.get("tokenizer.ggml.bos_token_id")
    if f.get("tokenizer.ggml.add_bos_token", False):
        assert tok.encode("hi", add_special_tokens=True) == [bos] + hf.encode("hi", add_special_tokens=False).ids
    else:
        assert tok.encode("hi", add_special_tokens=True) == hf.encode("hi", add_special_tokens=False).ids
    ids = hf.encode("héllo wörld 🙂\n  x<|endoftext|>").ids
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False)


def test_unknown_pre_tokenizer(tmp_path):
    llmc.gguf.write(tmp_path / "t.gguf", {"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "made-up",
                                          "tokenizer.ggml.tokens": ["a", "b"], "tokenizer.ggml.merges": ["a b"]}, {})
    with pytest.raises(llmc.UnsupportedError, match="'made-up'"):
        load_tokenizer(tmp_path / "t.gguf")
    llmc.gguf.write(tmp_path / "u.gguf", {"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": ["a"]}, {})
    with pytest.raises(llmc.UnsupportedError, match="'bert'"):
        load_tokenizer(tmp_path / "u.gguf")
    llmc.gguf.write(tmp_path / "v.gguf", {"general.architecture": "llama"}, {})
    with pytest.raises(ValueError, match="no tokenizer"):
        load_tokenizer(tmp_path / "v.gguf")
