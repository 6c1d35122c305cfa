"""The byte-level BPE search encoder (csrc/bpe_backtrack.c) against the merge loop's own references.

llmc encodes a byte-level BPE piece either with the merge loop (short single texts) or by search (long texts and
batches: longest vocabulary token, kept when compatible with the token before it, backtracking otherwise). Both
must give exactly the reference's ids:

- random small vocabularies with arbitrary rank orders (tokens whose parts come later, tokens BPE can never reach,
  tiktoken's "every split is a merge" rule) against tiktoken's byte_pair_merge, on texts chosen to force deep
  backtracking;
- random Hugging Face merge lists (a pair's rank is its place in the list, not the merged token's) against
  `tokenizers`;
- hypothesis on CJK-heavy and mixed text, and long Chinese text, against tiktoken for gpt2, cl100k_base, o200k_base.
"""
import base64
import json
import random
import sys
from pathlib import Path

import pytest

import llmc
from llmc.encodings import ENCODINGS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tokenizer import tiktoken_pair  # noqa: E402

tiktoken = pytest.importorskip("tiktoken")

PATTERN = r"[a-c]+|[^a-c]+"  # runs of the small alphabet are the pieces: long pieces, many merges


def _random_vocab(rng, alphabet="abc", n=60, max_len=6):
    """256 byte tokens (ranks 0..255) plus n random strings over `alphabet` at random ranks after them."""
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(alphabet) for _ in range(rng.randint(2, max_len))).encode())
    ranks = {bytes([b]): b for b in range(256)}
    for r, w in enumerate(rng.sample(sorted(words), len(words))):
        ranks[w] = 256 + r
    return ranks


def _write_tiktoken(path, ranks):
    path.write_text("".join(f"{base64.b64encode(b).decode()} {r}\n" for b, r in sorted(ranks.items(),
                                                                                        key=lambda kv: kv[1])))


def _texts(rng, alphabet="abc", n=300, max_len=80):
    return [" ".join("".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_len)))
                     for _ in range(rng.randint(1, 3))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(12))
def test_random_rank_orders_like_tiktoken(tmp_path, seed):
    rng = random.Random(seed)
    ranks = _random_vocab(rng, n=rng.choice([20, 60, 150]))
    f = tmp_path / "v.tiktoken"
    _write_tiktoken(f, ranks)
    ref = tiktoken.Encoding(f"v{seed}", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
    texts = _texts(rng)
    want = [ref.encode_ordinary(t) for t in texts]
    tok = llmc.Tokenizer.from_tiktoken(f, pattern=PATTERN, special_tokens={})
    assert [tok.encode(t) for t in texts] == want  # short single texts: the merge loop
    tok = llmc.Tokenizer.from_tiktoken(f, pattern=PATTERN, special_tokens={})  # its memo of short pieces empty
    assert tok.encode_batch(texts, num_threads=1) == want  # batches: the search encoder
    long = "\n".join(texts * 8)  # over 16 KB: the search encoder on one text
    assert tok.encode(long) == ref.encode_ordinary(long)


def test_backtracking_example_like_tiktoken(tmp_path):
    """The rust-gems bpe README's example: 'abab' is 'ab ab' but 'ababc' would be 'ab a bc' (tiktoken takes the
    whole piece first, so it is one token here; longer words like 'cababc' still need the search to back up)."""
    ranks = {bytes([b]): b for b in range(256)}
    for w in ["ab", "ba", "bc", "abc", "babc", "ababc"]:
        ranks[w.encode()] = len(ranks)
    f = tmp_path / "ex.tiktoken"
    _write_tiktoken(f, ranks)
    ref = tiktoken.Encoding("ex", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
    words = ["abab", "ababc", "abababc", "babababc", "aabc", "cababcab", "ababcababc"] + \
            ["".join(random.Random(k).choice("abc") for _ in range(k % 40 + 1)) for k in range(400)]
    want = [ref.encode_ordinary(w) for w in words]
    assert llmc.Tokenizer.from_tiktoken(f, pattern=PATTERN, special_tokens={}).encode_batch(words) == want
    tok = llmc.Tokenizer.from_tiktoken(f, pattern=PATTERN, special_tokens={})
    assert [tok.encode(w) for w in words] == want


def _bytes_to_unicode():
    """GPT-2's byte -> printable character map (the ByteLevel alphabet of tokenizer.json files)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, extra = {}, 0
    for b in range(256):
        if b in keep:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


@pytest.mark.parametrize("seed", range(6))
def test_random_merge_lists_like_hf(tmp_path, seed):
    tokenizers = pytest.importorskip("tokenizers")
    rng = random.Random(100 + seed)
    b2u = _bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    merges, tokens = [], [b2u[ord(c)] for c in "abc"]
    while len(merges) < rng.choice([30, 90]):  # random pairs of existing tokens, in random order
        a, b = rng.choice(tokens), rng.choice(tokens)
        if len(a) + len(b) > 7 or [a, b] in merges:
            continue
        merges.append([a, b])
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
            tokens.append(a + b)
    doc = {"version": "1.0", "added_tokens": [], "normalizer": None,
           "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
               {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False},
               {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
           "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                                               "use_regex": False},
           "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                     "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                     "vocab": vocab, "merges": merges}}
    f = tmp_path / "tokenizer.json"
    f.write_text(json.dumps(doc))
    ref = tokenizers.Tokenizer.from_file(str(f))
    texts = _texts(rng, n=200)
    want = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    assert llmc.Tokenizer.from_file(f).encode_batch(texts) == want
    single = llmc.Tokenizer.from_file(f)  # a second copy: its memo of short pieces is empty
    assert [single.encode(t) for t in texts] == want


# ---------------------------------------------------------------- real encodings on CJK and mixed text
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

NAMES = ["gpt2", "cl100k_base", "o200k_base"]
STEMS = {n: ENCODINGS_DIR / f"{s}.tiktoken" for n, s in [("gpt2", "r50k_base"), ("cl100k_base", "cl100k_base"),
                                                          ("o200k_base", "o200k_base")]}
_common_han = [chr(c) for c in range(0x4E00, 0x4E00 + 400)] + list("的一是不了人我在有他这为之大来以个中上们到说国和地")
_cjk = st.one_of(st.sampled_from(_common_han), st.characters(min_codepoint=0x3000, max_codepoint=0x9FFF),
                 st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),  # Hangul
                 st.sampled_from(list("，。、；：？！「」（）…—") + [" ", "\n", "1", "23", "A", "iPhone", "😀"]),
                 st.characters(codec="utf-8"))
_cjk_text = st.lists(_cjk, max_size=120).map("".join)


@pytest.mark.parametrize("name", NAMES)
def test_hypothesis_cjk_like_tiktoken(name):
    tok, ref = tiktoken_pair(name)
    single = llmc.Tokenizer.from_tiktoken(STEMS[name])  # its own memo of short pieces, filled by the merge loop

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.lists(_cjk_text, min_size=1, max_size=6))
    def check(texts):
        want = [ref.encode_ordinary(t) for t in texts]
        assert tok.encode_batch(texts, allowed_special=set(), disallowed_special=()) == want
        assert [single.encode(t, disallowed_special=()) for t in texts] == want

    check()


@pytest.mark.parametrize("name", NAMES)
def test_long_chinese_like_tiktoken(name):
    """~150 KB of Chinese-like prose (the benchmark's generator) and the same with rarer characters, 1 and 2
    threads, through the long-text path."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import corpora

    tok, ref = tiktoken_pair(name)
    rng = random.Random(5)
    rare = "".join(chr(rng.randrange(0x4E00, 0x9FA5)) + ("，" if rng.random() < 0.1 else "") for _ in range(20000))
    before = llmc.get_num_threads()
    try:
        for text in (corpora.chinese(150_000, seed=3), rare):
            want = ref.encode_ordinary(text)
            for nt in (1, 2):
                llmc.set_num_threads(nt)
                assert tok.encode(text, disallowed_special=()) == want, nt
    finally:
        llmc.set_num_threads(before)
