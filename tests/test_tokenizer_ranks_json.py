"""tiktoken-style ranks in other JSON layouts (Mistral's tekken.json, a plain {pattern, ranks, special_tokens}) and
.tiktoken files with a regex outside the built-in ones, against tiktoken built from the same ranks and pattern."""
import base64
import json
import sys
from pathlib import Path

import pytest

import llmc
import llmc.data
from llmc.encodings import ENCODINGS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import lazy_import  # noqa: E402
from tok_corpus import adversarial  # noqa: E402

tiktoken = lazy_import("tiktoken")

# Mistral's tekken pre-tokenizer (o200k-like letter classes, single digits, no contractions)
TEKKEN_PAT = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
              r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@pytest.fixture(scope="module")
def ranks():
    import tiktoken.load

    r = tiktoken.load.load_tiktoken_bpe(str(ENCODINGS_DIR / "r50k_base.tiktoken"))
    return sorted(r.items(), key=lambda kv: kv[1])[:20000]  # the first ranks: still a closed BPE vocabulary


@pytest.fixture(scope="module")
def texts():
    return llmc.data.kjv_text().splitlines()[:1500] + adversarial(21, 800) + ["<s>[INST]</s> x", "12345 67", ""]


def _tekken(ranks, n_special, listed):
    return {"config": {"pattern": TEKKEN_PAT, "num_vocab_tokens": len(ranks), "default_vocab_size":
                       n_special + len(ranks) - 100, "default_num_special_tokens": n_special, "version": "v7"},
            "vocab": [{"rank": r, "token_bytes": base64.b64encode(b).decode(), "token_str": None} for b, r in ranks],
            "special_tokens": [{"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(listed)]}


def test_tekken_layout(ranks, texts, tmp_path):
    listed = ["<unk>", "<s>", "</s>", "[INST]"]
    p = tmp_path / "tekken.json"
    p.write_text(json.dumps(_tekken(ranks, 20, listed)))
    tok = llmc.Tokenizer.from_ranks_json(p)
    inner = dict(ranks[:len(ranks) - 100])  # default_vocab_size cuts the last 100 ranks
    ref = tiktoken.Encoding("tekken-test", pat_str=TEKKEN_PAT, mergeable_ranks=inner, special_tokens={})
    want = [[i + 20 for i in ref.encode_ordinary(s)] for s in texts]
    assert [tok.encode(s) for s in texts] == want  # specials are plain text by default, as in mistral_common
    assert tok.encode_batch(texts) == want
    assert tok.n_vocab == 20 + len(inner)
    assert tok.special_tokens["[INST]"] == 3 and tok.special_tokens["<SPECIAL_19>"] == 19
    assert tok.encode("<s>hi", allowed_special={"<s>"}) == [1] + [i + 20 for i in ref.encode_ordinary("hi")]
    for s in texts[:300]:
        assert tok.decode(tok.encode(s)) == s


def test_plain_ranks_layout(ranks, texts, tmp_path):
    for pattern, vocab in [(TEKKEN_PAT, [[r, base64.b64encode(b).decode()] for b, r in ranks]),
                           (llmc.Tokenizer.from_tiktoken(ENCODINGS_DIR / "r50k_base.tiktoken")._regex,
                            [{"rank": r, "token_bytes": base64.b64encode(b).decode()} for b, r in ranks])]:
        p = tmp_path / "ranks.json"
        p.write_text(json.dumps({"pat_str": pattern, "mergeable_ranks": vocab,
                                 "special_tokens": {"<|endoftext|>": 20000}}))
        tok = llmc.Tokenizer.from_ranks_json(p)
        ref = tiktoken.Encoding("plain", pat_str=pattern, mergeable_ranks=dict(ranks),
                                special_tokens={"<|endoftext|>": 20000})
        assert [tok.encode(s) for s in texts] == [ref.encode(s) for s in texts]
        assert tok.encode("a<|endoftext|>", allowed_special="all") == ref.encode("a<|endoftext|>",
                                                                                  allowed_special="all")
        with pytest.raises(ValueError, match="disallowed"):
            tok.encode("a<|endoftext|>")


def test_tiktoken_file_with_any_regex(texts):
    """from_tiktoken takes a regex outside the built-in ones (the general engine), like tiktoken does."""
    import tiktoken.load

    path = ENCODINGS_DIR / "r50k_base.tiktoken"
    tok = llmc.Tokenizer.from_tiktoken(path, pattern=TEKKEN_PAT)
    ref = tiktoken.Encoding("x", pat_str=TEKKEN_PAT, mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
                            special_tokens={})
    assert [tok.encode(s) for s in texts] == [ref.encode(s) for s in texts]
    gappy = r"\p{L}+"  # text between matches is dropped, as tiktoken drops it
    tok = llmc.Tokenizer.from_tiktoken(path, pattern=gappy)
    ref = tiktoken.Encoding("y", pat_str=gappy, mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
                            special_tokens={})
    assert [tok.encode(s) for s in texts[:500]] == [ref.encode(s) for s in texts[:500]]


@pytest.mark.parametrize("doc, match", [
    ({"model": {"type": "BPE"}}, "not a tiktoken-style ranks layout"),
    ({"pattern": "x", "ranks": []}, "non-empty list"),
    ({"pattern": "x", "ranks": [[0, "!!"]]}, "not base64"),
    ({"pattern": "x", "ranks": [["a", "YQ=="]]}, "int rank"),
    ({"pattern": "x", "ranks": [[0, "YQ=="]], "special_tokens": 5}, "special_tokens"),
    ({"config": {"pattern": "x", "default_vocab_size": 5}, "vocab": [{"rank": 0, "token_bytes": "YQ=="}]},
     "default_num_special_tokens"),
    ({"config": {"pattern": "x", "default_vocab_size": 100, "default_num_special_tokens": 1},
      "vocab": [{"rank": 0, "token_bytes": "YQ=="}]}, "does not fit"),
    ([1, 2], "top level"),
])
def test_ranks_json_errors(tmp_path, doc, match):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        llmc.Tokenizer.from_ranks_json(p)
