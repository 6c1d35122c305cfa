"""The general pre-tokenizer (csrc/regex.c, csrc/pretok_split.c) against HF `tokenizers`: Split with any regex in
the supported subset (every behaviour, inverted or not), Split with a string, Digits, Punctuation, Whitespace,
WhitespaceSplit, BertPreTokenizer and ByteLevel inside a Sequence; pieces and token ids identical; constructs
outside the subset raise llmc.UnsupportedError naming them; matching is linear in the input."""
import json
import random
import sys
import time
from pathlib import Path

import pytest

import llmc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tokenizer import ADV  # noqa: E402
from test_tokenizer_exact import RUNS, SAMPLES  # noqa: E402

tokenizers = pytest.importorskip("tokenizers")

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
CL100K = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
          r"\s+(?!\S)|\s+")
O200K = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
         r"\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
# patterns real tokenizers use (or close variants), and ones that exercise each construct of the subset
PATTERNS = [
    "(?:" + GPT2 + ")",  # the known regexes, wrapped so that the regex engine (not the scanner) runs them
    "(?:" + CL100K + ")",
    "(?:" + O200K + ")",
    r"\p{N}{1,3}",
    r"[\p{P}\p{S}]+",
    r"\s+",
    r"[^\s]+",
    r"\w+|[^\w\s]+",
    r"\d+|\D",
    r"[A-Za-z]+|[0-9]",
    r"(?i:the|and)\b?" if False else r"(?i:the|and|ſ)",
    r" ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s",
    r"\p{Lu}?\p{Ll}+|\p{Lu}+(?!\p{Ll})|\p{Lt}|\p{Lm}|\p{Lo}+|\p{M}",
    r"[\u4e00-\u9fa5]+|[\u3040-\u309f\u30a0-\u30ff]+",
    r"^\s*|\s*$",
    r"\A.|.\z",
    r"x*",
    r"a{2,3}?|b{2}|c{1,}",
    r"[^\r\n\p{L}\p{N}]?+\p{L}+",
    r"\.\.\.|[.!?]",
    r"(?=\p{Lu})\p{L}|\S(?!\s)",
    r"\x{1F600}|\u00e9|\t",
]
BEHAVIORS = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]


def texts(n=400, seed=3):
    rng = random.Random(seed)
    pool = [chr(c) for c in SAMPLES if not 0xD800 <= c < 0xE000] + RUNS + list("aZ09'!/ .\u4e2d\u00e9xabc")
    out = ADV[:n] + ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 25))) for _ in range(n)]
    return out + ["", " ", "the THE The ſ", "...!?", "  \n\t x  ", "x" * 50, "aaabbbccc", "AbcDEFghI ǅ ʰ"]


def split(pattern, behavior="Isolated", invert=False, kind="Regex"):
    return {"type": "Split", "pattern": {kind: pattern}, "behavior": behavior, "invert": invert}


_trained = {}


def trained_doc(shared):
    if "doc" not in _trained:
        text = (shared / "corpora" / "kjv.txt").read_text(encoding="utf-8")[:200_000]
        tok = llmc.Tokenizer.train(text, 800, pattern="gpt4", special_tokens=["<|endoftext|>"], progress=False)
        _trained["doc"] = tok._saved["json"]
    return json.loads(json.dumps(_trained["doc"]))


def with_pre(doc, pre):
    doc = dict(doc)
    doc["pre_tokenizer"] = pre
    data = json.dumps(doc, ensure_ascii=False)
    return llmc.Tokenizer.from_json_bytes(data.encode()), tokenizers.Tokenizer.from_str(data)


def pieces_equal(shared, pre, ts):
    ours, ref = with_pre(trained_doc(shared), pre)
    for t in ts:
        want = [p for p, _ in ref.pre_tokenizer.pre_tokenize_str(t)]
        got = ours.pieces(t)
        assert got == want, f"{pre}: {t!r}: llmc {got} != HF {want}"
    return ours, ref


@pytest.mark.parametrize("pattern", PATTERNS)
def test_split_regex_pieces(shared, pattern):
    ts = texts(150)
    for behavior in BEHAVIORS:
        for invert in (False, True):
            pieces_equal(shared, split(pattern, behavior, invert), ts)


@pytest.mark.parametrize("pattern", PATTERNS[:3])
def test_regex_engine_runs_known_patterns_like_hf(shared, pattern):
    """The three big regexes through the engine: ids identical to HF on adversarial text and the class walk."""
    pre = {"type": "Sequence", "pretokenizers": [split(pattern),
                                                 {"type": "ByteLevel", "add_prefix_space": False,
                                                  "trim_offsets": True, "use_regex": False}]}
    ours, ref = with_pre(trained_doc(shared), pre)
    ts = texts(1000) + [chr(c) + "x" for c in SAMPLES if not 0xD800 <= c < 0xE000]
    assert ours.encode_batch(ts) == [e.ids for e in ref.encode_batch(ts, add_special_tokens=False)]


@pytest.mark.parametrize("behavior", BEHAVIORS)
@pytest.mark.parametrize("invert", [False, True])
def test_split_string(shared, behavior, invert):
    ts = texts(100) + ["a--b----c-", "--", "-a-", "x -- y"]
    pieces_equal(shared, split("-", behavior, invert, kind="String"), ts)
    pieces_equal(shared, split(" ", behavior, invert, kind="String"), ts)


@pytest.mark.parametrize("pre", [
    {"type": "Digits", "individual_digits": True},
    {"type": "Digits", "individual_digits": False},
    {"type": "Punctuation", "behavior": "Isolated"},
    {"type": "Punctuation", "behavior": "MergedWithPrevious"},
    {"type": "Punctuation", "behavior": "Contiguous"},
    {"type": "Whitespace"},
    {"type": "WhitespaceSplit"},
    {"type": "BertPreTokenizer"},
    {"type": "Sequence", "pretokenizers": [{"type": "WhitespaceSplit"}, {"type": "Punctuation"},
                                           {"type": "Digits", "individual_digits": True}]},
    {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                           {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                            "use_regex": True}]},
    {"type": "Sequence", "pretokenizers": [split(r"\p{N}{1,3}", "Isolated"), split(CL100K, "Isolated"),
                                           {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                                            "use_regex": False}]},
], ids=lambda p: json.dumps(p)[:60])
def test_hf_pre_tokenizers(shared, pre):
    ts = texts(300) + ["12345 6789x 1.5", "hello,world!! (x) [y]", "\u00bd \u2160 \u0663\u0664", "a\u3000b\u00a0c"]
    if "ByteLevel" not in json.dumps(pre):
        pieces_equal(shared, pre, ts)
        # ids: the byte-level vocabulary needs ByteLevel's byte mapping after the splits
        pre = {"type": "Sequence", "pretokenizers": [pre, {"type": "ByteLevel", "add_prefix_space": False,
                                                          "trim_offsets": True, "use_regex": False}]}
    ours, ref = with_pre(trained_doc(shared), pre)
    assert ours.encode_batch(ts) == [e.ids for e in ref.encode_batch(ts, add_special_tokens=False)]


@pytest.mark.parametrize("pattern,construct", [
    (r"(?<=a)b", "lookbehind"),
    (r"(a)\1", "\\1"),
    (r"(?>ab)", "atomic"),
    (r"\p{Han}+", "\\p{Han}"),
    (r"\bword", "\\b"),
    (r"(?:ab)++", "possessive"),
    (r"a(?!bc)", "lookahead over more than one character"),
    (r"[[:alpha:]]", "POSIX"),
    (r"(?x) a", "inline flags"),
])
def test_unsupported_constructs_are_named(shared, pattern, construct):
    doc = trained_doc(shared)
    doc["pre_tokenizer"] = split(pattern)
    with pytest.raises(llmc.UnsupportedError, match=construct.replace("\\", "\\\\").replace("(", r"\(")):
        llmc.Tokenizer.from_json_bytes(json.dumps(doc).encode())


def test_invalid_regex_is_valueerror(shared):
    doc = trained_doc(shared)
    for bad in ["(ab", "[a-", "a{3,1}", "*a", "\\"]:
        doc["pre_tokenizer"] = split(bad)
        with pytest.raises(ValueError):
            llmc.Tokenizer.from_json_bytes(json.dumps(doc).encode())


def test_regex_linear_time(shared):
    """Patterns that make backtracking engines exponential or quadratic run in linear time."""
    for pattern, text in [(r"(?:a|aa)*b", "a" * 200_000), (r"(?:\s+)+x", " " * 200_000),
                          (r"(?:\p{L}+\p{L}+)+!", "ab" * 100_000), (r"a+b", "a" * 200_000)]:
        doc = trained_doc(shared)
        doc["pre_tokenizer"] = split(pattern)
        tok = llmc.Tokenizer.from_json_bytes(json.dumps(doc).encode())
        t0 = time.perf_counter()
        tok.pieces(text)
        assert time.perf_counter() - t0 < 5.0, pattern
