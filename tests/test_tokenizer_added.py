"""Added tokens as HF `tokenizers` defines them: ids that collide with vocabulary tokens, contents the ByteLevel
decoder maps back to bytes, and (when supported) lstrip / rstrip / single_word / normalized."""
import json
import sys
from pathlib import Path

import pytest

import llmc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_tokenizer import ADV  # noqa: E402

tokenizers = pytest.importorskip("tokenizers")


@pytest.fixture(scope="module")
def trained(shared):
    text = (shared / "corpora" / "kjv.txt").read_text(encoding="utf-8")[:300_000]
    return llmc.Tokenizer.train(text, 1200, pattern="gpt4", special_tokens=["<|endoftext|>"], progress=False)


def _added(i, content, special=False, **kw):
    d = {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
         "special": special}
    d.update(kw)
    return d


def _both(doc):
    data = json.dumps(doc, ensure_ascii=False)
    return llmc.Tokenizer.from_json_bytes(data.encode()), tokenizers.Tokenizer.from_str(data)


def test_added_ids_colliding_with_vocab_decode_like_hf(trained):
    """Issue 19: an added token whose id is also a vocabulary token decodes to the added content (HF looks added
    tokens up first); ByteLevel maps contents made of byte-map characters back to bytes ("Ġx" -> " x")."""
    doc = json.loads(json.dumps(trained._saved["json"]))
    n = len(doc["model"]["vocab"])
    doc["added_tokens"] += [_added(300, "<collide>", True), _added(301, "plain collide"), _added(n + 1, "\u0120hello"),
                            _added(n + 2, "\u00e9"), _added(n + 3, " spaced out"), _added(n + 4, "\u4e2d\u6587")]
    ours, ref = _both(doc)
    ids_list = [[300], [301], [300, 301, 5, 300], [n + 1], [n + 2], [n + 3], [n + 4], list(range(250, 320)),
                [n + 1, 72, n + 2, 300, n + 4]]
    for ids in ids_list:
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), ids
    texts = ["a<collide>b plain collide x", "\u0120hello \u00e9 spaced out", "\u4e2d\u6587" * 3] + ADV[:300]
    assert ours.encode_batch(texts) == [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]


def test_added_collision_sentencepiece_decoder(shared):
    """The same on Llama 2's SentencePiece-style file: the Replace/ByteFallback/Fuse/Strip decoder runs on the
    added content."""
    doc = json.loads((shared / "tokenizers" / "hf" / "llama2" / "tokenizer.json").read_text(encoding="utf-8"))
    doc["added_tokens"] += [_added(1000, "<my\u2581tok>", True), _added(1001, "word")]
    ours, ref = _both(doc)
    for ids in [[1000], [1001], [400, 1000, 1001, 29871, 1000], [1000, 400]]:
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), ids


def _char_bpe(vocab, merges, added):
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": None, "post_processor": None, "decoder": None,
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": merges}}


def test_added_ids_assigned_like_hf():
    """HF ignores the ids written in added_tokens: a content in the vocabulary takes its id, others get ids from
    the vocabulary size up, in file order; a token whose id a later one takes disappears."""
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 5}
    added = [_added(50, "<n1>"), _added(40, "<s1>", True), _added(7, "<n2>"), _added(9, "ab", True),
             _added(3, "<s2>", True), _added(60, "<n1>")]
    ours, ref = _both(_char_bpe(vocab, [["a", "b"]], added))
    texts = ["<n1><s1><n2>ab<s2>c", "ab<n2>", "<s2><s2>a"]
    assert ours.encode_batch(texts) == [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    for ids in [[4], [5], [6], [7], [4, 5, 6, 7, 0, 1]]:
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), ids
    # a sparse vocabulary: the first added id (the vocabulary size, 3) is also the vocabulary token "c"
    ours, ref = _both(_char_bpe({"a": 0, "b": 1, "c": 3}, [], [_added(99, "<x>")]))
    for ids in [[3], [0, 3, 1]]:
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), ids
    assert ours.encode("c<x>a") == ref.encode("c<x>a", add_special_tokens=False).ids


OPTION_TEXTS = ["a <mask> b", "a   <mask>   b", "<mask>", "  <mask>", "<mask>  ", "x<mask>y", "x <mask>y", "x<mask> y",
                "word the word", "theword the", "the", " the ", "_the_", "1the2", "\u00e9the", "the\u00e9",
                "\u4e2dthe\u4e2d", "the\nthe", "\t\tthe\n\n", "<mask><mask>", "<mask> <mask>", "a\u3000<mask>\u3000b",
                "[X] the [X]the", "n\u200dthe", "the\u0301"] + ADV[:300]


@pytest.mark.parametrize("flags", [
    {"lstrip": True}, {"rstrip": True}, {"lstrip": True, "rstrip": True}, {"single_word": True},
    {"single_word": True, "lstrip": True, "rstrip": True}, {"normalized": True}, {"normalized": True, "rstrip": True},
], ids=lambda f: ",".join(sorted(f)))
def test_added_token_options_like_hf(trained, flags):
    """lstrip / rstrip / single_word / normalized as HF applies them (normalized tokens are matched in a second
    pass, in the text between the other added tokens)."""
    doc = json.loads(json.dumps(trained._saved["json"]))
    n = len(doc["model"]["vocab"])
    doc["added_tokens"] += [_added(n + 1, "<mask>", True, **flags), _added(n + 2, "the", False, **flags),
                            _added(n + 3, "[X]", False), _added(n + 4, "the ", False, normalized=True)]
    ours, ref = _both(doc)
    got = ours.encode_batch(OPTION_TEXTS)
    want = [e.ids for e in ref.encode_batch(OPTION_TEXTS, add_special_tokens=False)]
    for t, g, w in zip(OPTION_TEXTS, got, want):
        assert g == w, (t, g, w)


@pytest.mark.parametrize("name", ["gpt2", "cl100k_base", "llama3", "qwen3", "llama2"])
def test_save_any_loaded_tokenizer_hf_loads_it(shared, tmp_path, name):
    """save("tokenizer.json") works for every loaded tokenizer; HF loads the file and encodes like llmc."""
    from test_tokenizer import hf_pair, tiktoken_pair

    tok = tiktoken_pair(name)[0] if name in ("gpt2", "cl100k_base") else hf_pair(shared, name)[0]
    tok.save(tmp_path / "tokenizer.json")
    ref = tokenizers.Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    kjv = (shared / "corpora" / "kjv.txt").read_text(encoding="utf-8")[:100_000].split("\n")
    texts = kjv + ADV[:500]
    assert tok.encode_batch(texts, disallowed_special=()) == \
        [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]


NORMALIZERS = [
    {"type": "NFKC"},
    {"type": "Lowercase"},
    {"type": "Sequence", "normalizers": [{"type": "NFKC"}, {"type": "Lowercase"},
                                         {"type": "Replace", "pattern": {"String": "x"}, "content": "yy"}]},
    {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                         {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
    {"type": "Sequence", "normalizers": [{"type": "Strip", "strip_left": True, "strip_right": True},
                                         {"type": "NFC"}]},
]


@pytest.mark.parametrize("nz", NORMALIZERS, ids=["nfkc", "lower", "seq", "llama2", "strip"])
def test_normalized_added_tokens_under_a_normalizer(nz):
    """normalized=true under a normalizer, as HF does it: the pieces between the other added tokens are normalized,
    then the normalized tokens (their contents normalized too) are found in the normalized text; what is left is
    pre-tokenized and tokenized without normalizing again."""
    vocab = [["<unk>", 0.0]] + [[c, -3.0] for c in "abcdefghijklmnopqrstuvwxyz XYZ"] + \
        [["\u2581", -2.0], ["\u2581the", -4.0], ["he", -3.5], ["ﬁ", -3.0]] + [[f"<0x{b:02X}>", -9.0] for b in range(256)]
    doc = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [_added(len(vocab) + 0, "<Mask>", True),
                            _added(len(vocab) + 1, "THE", False, normalized=True),
                            _added(len(vocab) + 2, "ﬁx", False, normalized=True),
                            _added(len(vocab) + 3, " Sp ace", False, normalized=True, rstrip=True),
                            _added(len(vocab) + 4, "[RAW]", False, normalized=False)],
           "normalizer": nz, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                                               "prepend_scheme": "first", "split": True},
           "post_processor": None, "decoder": {"type": "Metaspace", "replacement": "\u2581",
                                               "prepend_scheme": "first", "split": True},
           "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": True}}
    ours, ref = _both(doc)
    texts = ["THE the The tHe", "<Mask>THE<Mask>", "ﬁx fix FIX ﬁX", "  Sp ace  sp ace Sp  ace", "[RAW]the[RAW] THE ",
             "x THE x", "ＴＨＥ ｔｈｅ", "  THE  ", "", "THE", "a<Mask> the [RAW]\u00c5\u212b"] + ADV[:200]
    got = ours.encode_batch(texts)
    want = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
    for t, g, w in zip(texts, got, want):
        assert g == w, (t, g, w)
