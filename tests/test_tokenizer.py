"""llmc.Tokenizer against the independent references: tiktoken (gpt2, cl100k_base, o200k_base) and Hugging Face
`tokenizers` (llama2, llama3, qwen3 tokenizer.json), on all of kjv.txt and on seeded adversarial strings."""
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import pytest

import llmc
import llmc.data
from llmc.encodings import ENCODINGS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tok_corpus import adversarial, long_inputs  # noqa: E402

os.environ.setdefault("TIKTOKEN_CACHE_DIR", tempfile.mkdtemp(prefix="tiktoken-cache-"))  # never download

TIKTOKEN = ["gpt2", "cl100k_base", "o200k_base"]
HF = ["llama2", "llama3", "qwen3"]
ADV = adversarial(1234, 2000)


TT = ENCODINGS_DIR  # the tiktoken rank files shipped in llmc (gpt2's is r50k_base.tiktoken)
STEM = {"gpt2": "r50k_base", "cl100k_base": "cl100k_base", "o200k_base": "o200k_base"}


@pytest.fixture(scope="session")
def kjv():
    return llmc.data.kjv_path().read_text(encoding="utf-8")  # the shipped KJV


_cache = {}


def tiktoken_pair(name):
    """(llmc tokenizer, tiktoken reference) for one encoding, loaded once."""
    if name not in _cache:
        tiktoken = pytest.importorskip("tiktoken")
        import tiktoken.load

        f = TT / f"{STEM[name]}.tiktoken"
        meta = json.loads(f.with_suffix(".json").read_text())
        ref = tiktoken.Encoding(name, pat_str=meta["pat_str"],
                                mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(f)),
                                special_tokens=meta["special_tokens"])
        tok = llmc.Tokenizer.from_tiktoken(f, pattern=meta["pat_str"],
                                           special_tokens=meta["special_tokens"])
        _cache[name] = (tok, ref)
    return _cache[name]


def hf_pair(shared, name):
    key = "hf:" + name
    if key not in _cache:
        tokenizers = pytest.importorskip("tokenizers")
        path = shared / "tokenizers" / "hf" / name / "tokenizer.json"
        _cache[key] = (llmc.Tokenizer.from_file(path), tokenizers.Tokenizer.from_file(str(path)))
    return _cache[key]


# ---------------------------------------------------------------- tiktoken
@pytest.mark.parametrize("name", TIKTOKEN)
def test_tiktoken_kjv_whole_and_lines(kjv, name):
    tok, ref = tiktoken_pair(name)
    assert tok.n_vocab == ref.n_vocab
    assert tok.encode_ordinary(kjv) == ref.encode_ordinary(kjv)
    lines = kjv.split("\n")
    assert tok.encode_batch(lines) == ref.encode_ordinary_batch(lines, num_threads=1)
    assert [tok.encode(s) for s in lines[:2000]] == [ref.encode(s) for s in lines[:2000]]


@pytest.mark.parametrize("name", TIKTOKEN)
def test_tiktoken_adversarial(name):
    tok, ref = tiktoken_pair(name)
    bad = [t for t in ADV if tok.encode_ordinary(t) != ref.encode_ordinary(t)]
    assert not bad, f"{len(bad)} of {len(ADV)} differ, e.g. {bad[0]!r}"


@pytest.mark.parametrize("name", TIKTOKEN)
def test_tiktoken_long_inputs(name):
    tok, ref = tiktoken_pair(name)
    for t in long_inputs():
        assert tok.encode_ordinary(t) == ref.encode_ordinary(t), repr(t[:20])


def test_adversarial_linear_time():
    """1 MB of one character or one long word: O(n log n) merging, not quadratic."""
    import time

    tok, _ = tiktoken_pair("cl100k_base")
    for s in ["a" * 1_000_000, "ab" * 500_000, "\U0001F600" * 250_000]:
        t = time.perf_counter()
        ids = tok.encode_ordinary(s)
        assert time.perf_counter() - t < 5.0
        assert tok.decode(ids) == s


def test_from_tiktoken_reads_sibling_json(tmp_path):
    tok, ref = tiktoken_pair("o200k_base")
    auto = llmc.Tokenizer.from_tiktoken(TT / "o200k_base.tiktoken")
    assert auto.special_tokens == tok.special_tokens
    assert auto.encode("Hello, World! 'S 123456") == ref.encode("Hello, World! 'S 123456")
    (tmp_path / "x.tiktoken").write_bytes((TT / "r50k_base.tiktoken").read_bytes())
    with pytest.raises(ValueError, match="no pattern"):
        llmc.Tokenizer.from_tiktoken(tmp_path / "x.tiktoken")


def test_tiktoken_special_tokens():
    tok, ref = tiktoken_pair("cl100k_base")
    s = "hi <|endoftext|> there<|fim_prefix|>x"
    with pytest.raises(ValueError, match="endoftext"):
        tok.encode(s)
    with pytest.raises(ValueError):
        ref.encode(s)
    for allowed in ["all", {"<|endoftext|>", "<|fim_prefix|>"}]:
        assert tok.encode(s, allowed_special=allowed) == ref.encode(s, allowed_special=allowed)
    assert tok.encode(s, disallowed_special=()) == ref.encode(s, disallowed_special=())
    assert tok.encode_ordinary(s) == ref.encode_ordinary(s)
    with pytest.raises(ValueError):  # allowed one, but the other is still disallowed
        tok.encode(s, allowed_special={"<|endoftext|>"})
    assert tok.encode(s, allowed_special={"<|endoftext|>"}, disallowed_special=()) == \
        ref.encode(s, allowed_special={"<|endoftext|>"}, disallowed_special=())
    assert tok.special_tokens["<|endoftext|>"] == 100257
    assert tok.decode([100257]) == "<|endoftext|>"
    assert tok.token_bytes(100257) == b"<|endoftext|>"
    with pytest.raises(ValueError):
        tok.encode("x", allowed_special={"<|nope|>"})


@pytest.mark.parametrize("name", TIKTOKEN)
def test_tiktoken_decode_and_token_bytes(name):
    tok, ref = tiktoken_pair(name)
    rng = random.Random(5)
    ids = [rng.randrange(0, ref.max_token_value) for _ in range(3000)]
    ids = [i for i in ids if i not in ref._special_tokens.values()]
    assert tok.decode_bytes(ids) == ref.decode_bytes(ids)
    assert tok.decode(ids) == ref.decode(ids)  # partial UTF-8 -> U+FFFD, the same way
    for i in ids[:300]:
        assert tok.token_bytes(i) == ref.decode_single_token_bytes(i)
    assert tok.count("hello world, hello") == len(ref.encode("hello world, hello"))


# ---------------------------------------------------------------- Hugging Face tokenizer.json
@pytest.mark.parametrize("name", HF)
def test_hf_kjv_whole_and_lines(shared, kjv, name):
    tok, ref = hf_pair(shared, name)
    assert tok.n_vocab == ref.get_vocab_size()
    text = kjv if name != "llama2" else kjv[:400_000]  # HF's SentencePiece BPE on one 4 MB word is slow
    assert tok.encode(text) == ref.encode(text, add_special_tokens=False).ids
    lines = kjv.split("\n")
    assert tok.encode_batch(lines) == [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]


@pytest.mark.parametrize("name", HF)
def test_hf_adversarial(shared, name):
    tok, ref = hf_pair(shared, name)
    got = tok.encode_batch(ADV)
    want = [e.ids for e in ref.encode_batch(ADV, add_special_tokens=False)]
    bad = [t for t, a, b in zip(ADV, got, want) if a != b]
    assert not bad, f"{len(bad)} of {len(ADV)} differ, e.g. {bad[0]!r}"
    longs = long_inputs()
    assert tok.encode_batch(longs) == [e.ids for e in ref.encode_batch(longs, add_special_tokens=False)]


@pytest.mark.parametrize("name", HF)
def test_hf_special_and_post_processor(shared, name):
    tok, ref = hf_pair(shared, name)
    texts = ["Hello world", "<s>hi</s>", "<|begin_of_text|>x<|eot_id|>", "<|im_start|>user\nhi<|im_end|>",
             "<think>x</think>", "a<unk>b", ""]
    for t in texts:
        assert tok.encode(t) == ref.encode(t, add_special_tokens=False).ids, t
        assert tok.encode(t, add_special_tokens=True) == ref.encode(t, add_special_tokens=True).ids, t


@pytest.mark.parametrize("name", HF)
def test_hf_decode(shared, name):
    tok, ref = hf_pair(shared, name)
    for t in ADV[:500]:
        ids = ref.encode(t, add_special_tokens=False).ids
        assert tok.decode(ids) == ref.decode(ids), repr(t)


# ---------------------------------------------------------------- round trips
def _random_unicode(rng, n):
    out = []
    for _ in range(n):
        cp = rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0x800), rng.randrange(0x800, 0xD800),
                         rng.randrange(0xE000, 0x110000)])
        out.append(chr(cp))
    return "".join(out)


@pytest.mark.parametrize("name", TIKTOKEN + ["llama3", "qwen3"])
def test_roundtrip_random_unicode(request, name):
    tok = tiktoken_pair(name)[0] if name in TIKTOKEN else hf_pair(request.getfixturevalue("shared"), name)[0]
    rng = random.Random(7)
    for _ in range(300):
        s = _random_unicode(rng, rng.randrange(0, 60))
        if name == "qwen3":  # Qwen normalises to NFC first
            import unicodedata

            s = unicodedata.normalize("NFC", s)
        assert tok.decode(tok.encode(s, disallowed_special=())) == s


@pytest.mark.parametrize("name", TIKTOKEN)
def test_roundtrip_random_bytes(name):
    tok = tiktoken_pair(name)[0]
    rng = random.Random(8)
    for _ in range(300):
        b = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 80)))
        assert tok.decode_bytes(tok.encode_bytes(b)) == b


def test_llama2_roundtrip(shared):
    tok, ref = hf_pair(shared, "llama2")
    rng = random.Random(9)
    for _ in range(200):
        s = _random_unicode(rng, rng.randrange(1, 40)).replace("\x00", "")
        ids = tok.encode(s)
        assert ids == ref.encode(s, add_special_tokens=False).ids
        assert tok.decode(ids) == ref.decode(ids)


def test_lone_surrogates_like_tiktoken():
    tok, ref = tiktoken_pair("cl100k_base")
    s = "a\ud800b"
    assert tok.encode(s) == ref.encode(s)


# ---------------------------------------------------------------- errors and fuzz
def test_errors(tmp_path):
    tok, _ = tiktoken_pair("gpt2")
    with pytest.raises(ValueError, match="out of range"):
        tok.decode([0, 50257])
    with pytest.raises(ValueError, match="-1"):
        tok.decode([-1])
    with pytest.raises(ValueError):
        tok.token_bytes(10**6)
    with pytest.raises(TypeError):
        tok.encode(b"bytes")
    with pytest.raises(TypeError):
        tok.encode(None)
    with pytest.raises(TypeError):
        tok.decode("abc")
    with pytest.raises(TypeError):
        tok.decode([1.5])
    with pytest.raises(TypeError):
        tok.encode_batch("abc")
    with pytest.raises(ValueError):
        tok.encode_batch(["a"], num_threads=0)
    assert tok.encode("") == [] and tok.decode([]) == "" and tok.encode_batch([]) == []
    path = TT / "r50k_base.tiktoken"
    with pytest.raises(llmc.UnsupportedError, match="lookbehind"):  # other regexes run on the general engine
        llmc.Tokenizer.from_tiktoken(path, pattern=r"(?<=a)\w+|\s+")
    assert issubclass(llmc.UnsupportedError, ValueError)
    with pytest.raises(FileNotFoundError):
        llmc.Tokenizer.from_tiktoken(tmp_path / "missing.tiktoken", pattern="gpt2")
    with pytest.raises(FileNotFoundError):
        llmc.Tokenizer.from_file(tmp_path / "missing.json")
    with pytest.raises(ValueError, match="collides"):
        llmc.Tokenizer.from_tiktoken(path, pattern="gpt2", special_tokens={"<x>": 5})
    (tmp_path / "empty.tiktoken").write_bytes(b"")
    with pytest.raises(ValueError, match="no tokens"):
        llmc.Tokenizer.from_tiktoken(tmp_path / "empty.tiktoken", pattern="gpt2")


def test_unsupported_parts_are_named(shared, tmp_path):
    j = json.loads((shared / "tokenizers" / "hf" / "llama3" / "tokenizer.json").read_text())
    j["normalizer"] = {"type": "Nmt"}  # NFKC is supported since the Unigram work; HF's Nmt is not
    (tmp_path / "t.json").write_text(json.dumps(j))
    with pytest.raises(llmc.UnsupportedError, match="Nmt"):
        llmc.Tokenizer.from_file(tmp_path / "t.json")
    j["normalizer"] = None
    j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"(?<=x)\w+"  # a lookbehind: outside the subset
    (tmp_path / "t.json").write_text(json.dumps(j))
    with pytest.raises(llmc.UnsupportedError, match=r"lookbehind"):
        llmc.Tokenizer.from_file(tmp_path / "t.json")


def test_fuzz_tiktoken_loader(tmp_path):
    data = (TT / "r50k_base.tiktoken").read_bytes()[:20000]
    rng = random.Random(3)
    p = tmp_path / "f.tiktoken"
    for k in range(150):
        d = bytearray(data[: rng.randrange(0, len(data))])
        for _ in range(rng.randrange(0, 4)):
            if d:
                d[rng.randrange(len(d))] = rng.randrange(256)
        p.write_bytes(bytes(d))
        try:
            tok = llmc.Tokenizer.from_tiktoken(p, pattern="gpt2")
        except ValueError:
            continue  # corrupt: a precise error, not a crash
        tok.decode_bytes(tok.encode_bytes(bytes(d[:200])))


def test_fuzz_hf_loader(shared, tmp_path):
    j = json.loads((shared / "tokenizers" / "hf" / "llama3" / "tokenizer.json").read_text())
    j["model"]["vocab"] = dict(list(j["model"]["vocab"].items())[:3000])
    vocab = j["model"]["vocab"]
    j["model"]["merges"] = [m for m in j["model"]["merges"][:5000]
                            if all(p in vocab for p in m.split(" ")) and m.replace(" ", "") in vocab]
    data = json.dumps(j).encode()
    rng = random.Random(4)
    p = tmp_path / "f.json"
    for k in range(120):
        d = bytearray(data[: rng.randrange(len(data) // 2, len(data) + 1)] if rng.random() < 0.5 else data)
        for _ in range(rng.randrange(0, 4)):
            d[rng.randrange(len(d))] = rng.randrange(32, 127)
        p.write_bytes(bytes(d))
        try:
            tok = llmc.Tokenizer.from_file(p)
        except ValueError:
            continue
        tok.encode("hello world 123")


def test_unicode_tables_header():
    src = (Path(__file__).resolve().parent.parent / "csrc" / "unicode_tables.c").read_text()
    assert "GENERATED by scripts/gen_unicode_tables.py" in src.splitlines()[0]
    assert "Unicode version" in src.splitlines()[1]


# ---------------------------------------------------------------- training
def test_train_classic_example():
    tok = llmc.Tokenizer.train("aaabdaaabac", 256 + 3, progress=False)
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.token_bytes(258) == b"aaab"
    assert tok.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


def test_train_kjv_roundtrip_through_hf(kjv, tmp_path):
    tokenizers = pytest.importorskip("tokenizers")
    lines = kjv.split("\n")
    tok = llmc.Tokenizer.train(lines, 4096, pattern="gpt4", special_tokens=["<|endoftext|>"], progress=False)
    assert tok.n_vocab == 4096 and tok.special_tokens == {"<|endoftext|>": 4095}
    tok.save(tmp_path / "kjv.json")
    ref = tokenizers.Tokenizer.from_file(str(tmp_path / "kjv.json"))
    assert tok.encode(kjv) == ref.encode(kjv, add_special_tokens=False).ids
    assert tok.encode_batch(ADV) == [e.ids for e in ref.encode_batch(ADV, add_special_tokens=False)]
    s = "In the beginning<|endoftext|>God"
    assert tok.encode(s) == ref.encode(s, add_special_tokens=False).ids
    assert llmc.Tokenizer.from_file(tmp_path / "kjv.json").encode(kjv[:100000]) == tok.encode(kjv[:100000])
    # .tiktoken export: every token's bytes at its rank; llmc and tiktoken load it
    tok.save(tmp_path / "kjv.tiktoken")
    tt = llmc.Tokenizer.from_tiktoken(tmp_path / "kjv.tiktoken", pattern="gpt4")
    assert all(tt.token_bytes(i) == tok.token_bytes(i) for i in range(4095))
    assert tt.decode(tt.encode(kjv[:20000])) == kjv[:20000]


@pytest.mark.parametrize("pattern", ["gpt2", "o200k", "llama3", "qwen2"])
def test_train_patterns_hf_identical(kjv, tmp_path, pattern):
    tokenizers = pytest.importorskip("tokenizers")
    tok = llmc.Tokenizer.train(kjv[:300_000], 1000, pattern=pattern, progress=False)
    tok.save(tmp_path / "t.json")
    ref = tokenizers.Tokenizer.from_file(str(tmp_path / "t.json"))
    assert tok.encode_batch(ADV[:500]) == [e.ids for e in ref.encode_batch(ADV[:500], add_special_tokens=False)]


def test_train_min_frequency_and_errors():
    tok = llmc.Tokenizer.train(["ab ab ab cd"], 300, min_frequency=3, progress=False)
    assert tok.n_vocab < 300  # only pairs seen >= 3 times merge
    with pytest.raises(ValueError):
        llmc.Tokenizer.train("abc", 100, progress=False)
    with pytest.raises(llmc.UnsupportedError):
        llmc.Tokenizer.train("abc", 300, pattern="nope", progress=False)
    o200k = llmc.Tokenizer.train("abc abc", 258, pattern="o200k", progress=False)
    by_regex = llmc.Tokenizer.train("abc abc", 258, pattern=o200k._saved["json"]["pre_tokenizer"]["pretokenizers"][0]
                                    ["pattern"]["Regex"], progress=False)
    assert by_regex.encode("abcabc abc") == o200k.encode("abcabc abc")
    with pytest.raises(TypeError):
        llmc.Tokenizer.train([b"abc"], 300, progress=False)
    empty = llmc.Tokenizer.train([], 300, progress=False)
    assert empty.n_vocab == 256 and empty.encode("hi") == [104, 105]


# ---------------------------------------------------------------- WordPiece (BERT)
def _old_chars(t: str) -> str:
    """Keep characters whose category is the same in Unicode 3.2 and 14: HF's BertNormalizer/BertPreTokenizer
    classify with Unicode 8.0 tables (the unicode_categories crate) and llmc with Unicode 14, so characters assigned
    after 8.0 (or re-categorised, like U+1886 Lo -> Mn in 9.0) may differ."""
    import unicodedata

    old = unicodedata.ucd_3_2_0
    return "".join(c for c in t if old.category(c) != "Cn" and old.category(c) == unicodedata.category(c))


@pytest.mark.parametrize("lowercase", [True, False])
def test_wordpiece_bert_identical(kjv, tmp_path, lowercase):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers.implementations import BertWordPieceTokenizer

    lines = kjv.split("\n")
    texts = [_old_chars(t) for t in ADV] + [
        "Héllo Wörld ÀÉÎ naïve café", "İstanbul ΣΑΣ", "中文字符 and 日本語", "don't stop!", "a\x00b\ufffdc",
        "[CLS] hi [SEP] [MASK]", "x" * 150, "supercalifragilisticexpialidocious " * 3, ""]
    trainer = BertWordPieceTokenizer(lowercase=lowercase)
    trainer.train_from_iterator(lines[:20000] + texts[:300], vocab_size=3000, show_progress=False)
    bert = BertWordPieceTokenizer(vocab=trainer.get_vocab(), lowercase=lowercase)  # with BertProcessing
    bert.save(str(tmp_path / "bert.json"))
    ref = tokenizers.Tokenizer.from_file(str(tmp_path / "bert.json"))
    tok = llmc.Tokenizer.from_file(tmp_path / "bert.json")
    assert tok.n_vocab == ref.get_vocab_size()
    for batch in (texts, lines[:5000]):
        assert tok.encode_batch(batch) == [e.ids for e in ref.encode_batch(batch, add_special_tokens=False)]
        assert tok.encode_batch(batch[:300], add_special_tokens=True) == \
            [e.ids for e in ref.encode_batch(batch[:300], add_special_tokens=True)]
    for t in texts[:500]:
        ids = ref.encode(t, add_special_tokens=False).ids
        assert tok.decode(ids) == ref.decode(ids, skip_special_tokens=False), repr(t)


def test_wordpiece_unsupported_pretokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    t = Tokenizer(models.WordPiece({"[UNK]": 0, "a": 1}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.save(str(tmp_path / "wp.json"))
    with pytest.raises(llmc.UnsupportedError, match="Whitespace|BertPreTokenizer"):
        llmc.Tokenizer.from_file(tmp_path / "wp.json")


@pytest.mark.parametrize("name", TIKTOKEN)
def test_long_text_chunked_across_threads(name):
    """Texts over 512 KB are cut after newlines and encoded on several threads: same ids as one pass."""
    tok, ref = tiktoken_pair(name)
    text = "\n".join(ADV) * 2
    assert len(text.encode()) > 600_000
    llmc.set_num_threads(2)
    try:
        many = tok.encode_ordinary(text)
        llmc.set_num_threads(1)
        assert many == tok.encode_ordinary(text) == ref.encode_ordinary(text)
    finally:
        llmc.set_num_threads(os.cpu_count() or 1)


@pytest.mark.parametrize("scheme", ["first", "always", "never"])
@pytest.mark.parametrize("split", [False, True])
def test_metaspace_pretokenizer(shared, scheme, split):
    """Llama 2's vocabulary behind HF's Metaspace pre-tokenizer and decoder (the newer SentencePiece layout)."""
    tokenizers = pytest.importorskip("tokenizers")
    j = json.loads((shared / "tokenizers" / "hf" / "llama2" / "tokenizer.json").read_text())
    j["normalizer"] = None
    j["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    j["decoder"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}
    data = json.dumps(j)
    ref = tokenizers.Tokenizer.from_str(data)
    tok = llmc.Tokenizer.from_json_bytes(data.encode())
    texts = ADV[:600] + ["Hello<s>world", " a  b", "<s> x", "  lead", "\u2581already", "x</s> y"]
    assert tok.encode_batch(texts) == [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    for t in texts:
        ids = ref.encode(t, add_special_tokens=False).ids
        assert tok.decode(ids) == ref.decode(ids, skip_special_tokens=False), repr(t)


@pytest.mark.parametrize("prefix", [False, True])
def test_bytelevel_regex_pretokenizer(kjv, prefix):
    """GPT-2-style files: ByteLevel(use_regex=True, add_prefix_space) as the only pre-tokenizer."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = llmc.Tokenizer.train(kjv[:500_000], 2000, pattern="gpt2", special_tokens=["<|endoftext|>"], progress=False)
    j = dict(tok._saved["json"])
    j["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": prefix, "trim_offsets": True, "use_regex": True}
    data = json.dumps(j)
    ref = tokenizers.Tokenizer.from_str(data)
    ours = llmc.Tokenizer.from_json_bytes(data.encode())
    texts = ADV[:800] + ["hello", " hello", "a<|endoftext|>b", "<|endoftext|> x"]
    assert ours.encode_batch(texts) == [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]


# ---------------------------------------------------------------- decode inputs (read in C: lists, tuples, arrays)
@pytest.mark.parametrize("name", ["gpt2", "cl100k_base"])
def test_decode_every_input_kind_matches_tiktoken(name):
    """decode / decode_bytes take lists, tuples and NumPy arrays of any integer dtype and layout (read in C, never
    turned into Python objects), and give tiktoken's bytes and text; the C fast path copies 16 bytes per short token,
    so long tokens, the last token of the vocabulary and split UTF-8 characters are in the input."""
    import numpy as np

    tok, ref = tiktoken_pair(name)
    text = "Hello, wörld! 中文字符 " + "x" * 40 + " \U0001F600 end" + llmc.data.kjv_text("all")[:3000]
    ids = ref.encode_ordinary(text) + [max(ref._mergeable_ranks.values()), 0, 255]
    want_b, want_s = ref.decode_bytes(ids), ref.decode(ids)
    arr = np.array(ids, dtype=np.int64)
    inputs = [ids, tuple(ids), arr, arr.astype(np.int32), arr.astype(np.uint32), arr.astype(np.uint64),
              np.repeat(arr, 2)[::2], [np.int64(i) for i in ids], iter(ids), range(0)]
    for x in inputs:
        if isinstance(x, range):
            assert tok.decode(x) == "" and tok.decode_bytes(x) == b""
            continue
        assert tok.decode_bytes(x) == want_b
        assert tok.decode(iter(ids) if type(x).__name__ == "list_iterator" else x) == want_s
    # a token cut inside a UTF-8 character: U+FFFD with errors="replace" (tiktoken's), an error with "strict"
    cut = ref.encode_ordinary("😀")
    assert len(cut) > 1 and tok.decode(cut[:1]) == ref.decode(cut[:1]) and "\ufffd" in tok.decode(cut[:1])
    with pytest.raises(UnicodeDecodeError):
        tok.decode(cut[:1], errors="strict")


def test_decode_bad_inputs():
    import numpy as np

    tok, _ = tiktoken_pair("gpt2")
    for bad, exc in [([1, True], TypeError), ([1, 2.0], TypeError), ([1, "a"], TypeError), ((None,), TypeError),
                     ([2**70], ValueError), ([-2**70], ValueError), ([50257], ValueError), ([0, -1], ValueError),
                     (np.array([1.0]), TypeError), (np.array([[1, 2]]), ValueError),
                     (np.array([2**63], dtype=np.uint64), ValueError), (np.array([50257], np.int32), ValueError)]:
        with pytest.raises(exc):
            tok.decode_bytes(bad)
        with pytest.raises(exc):
            tok.decode(bad)
    with pytest.raises(TypeError):
        tok.decode([1], errors=None)
    assert tok.decode(np.array([], dtype=np.int64)) == ""
