"""Unigram tokenizers and SentencePiece .model files against their references: HF `tokenizers` on tokenizer.json
files (trained by tokenizers' UnigramTrainer, and converted from `sentencepiece` models with a Precompiled
normalizer in two layouts) and the `sentencepiece` package on its own .model files (Unigram and BPE, three
normalizations, with and without byte fallback, user-defined pieces), on KJV lines and adversarial strings.
Token ids must be identical; decoding must give the same text."""
import json
import os
import random
import re
import sys
from pathlib import Path

import pytest

import llmc
import llmc.data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import lazy_import  # noqa: E402
from tok_corpus import adversarial  # noqa: E402

tokenizers = lazy_import("tokenizers")
spm = lazy_import("sentencepiece")

# strings aimed at the normalizers: compatibility forms, combining sequences (graphemes of < 6 and >= 6 bytes),
# CRLF, space runs at either end, U+2581 itself, controls, user-defined pieces, invalid-looking text
EXTRA = ["  hello   world  ", "", " ", "\u2581", "\u2581\u2581x \u2581", "LORD<user>x", "x<user><user>LORDLORD y",
         "a\u3000b\uff21\u0301", "\r\n\r\n x", "\uff21\u0301\u0302", "\ufb01\u2460\u337f\uff48\u00bd\u2126\u212b",
         "e\u0301\u0323\u0304x", "\u1100\u1161\u11a8", "\U0001F468\u200d\U0001F469\u200d\U0001F467 \U0001F1FA\U0001F1F8",
         "\u0915\u094d\u0937", "\t\x0b\x0c\x1f\x7f\u00ad\u200b\ufeff", "\u00a0\u2003 \u3000 ", "\ufffd\ud7ff\U0010fffd",
         "<s></s><unk> <pad>", "<0x41><0xFF>", "A" * 300, "\u00e9" * 100 + " " * 20]


@pytest.fixture(scope="module")
def kjv_lines():
    return llmc.data.kjv_text().splitlines()


@pytest.fixture(scope="module")
def texts(kjv_lines):
    return kjv_lines[5000:5800] + adversarial(11, 1200) + EXTRA


def _same_ids(ours, ref_encode, texts):
    bad = [s for s in texts if ours.encode(s) != ref_encode(s)]
    assert not bad, f"{len(bad)} of {len(texts)} differ, e.g. {bad[0]!r}: {ours.encode(bad[0])} vs {ref_encode(bad[0])}"


# ---------------------------------------------------------------------------------------------- HF UnigramTrainer
@pytest.mark.parametrize("nfkc", [False, True])
@pytest.mark.parametrize("byte_fallback", [False, True])
def test_hf_unigram_trainer(kjv_lines, texts, nfkc, byte_fallback):
    from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.Unigram())
    if nfkc:
        tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first" if byte_fallback else "always")
    tok.decoder = decoders.Metaspace(prepend_scheme="first" if byte_fallback else "always")
    tok.train_from_iterator(kjv_lines[:1500], trainers.UnigramTrainer(
        vocab_size=600, unk_token="<unk>", special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    doc = json.loads(tok.to_str())
    if byte_fallback:  # add the 256 byte pieces: unknown text becomes bytes
        doc["model"]["vocab"] += [[f"<0x{b:02X}>", -20.0] for b in range(256)]
        doc["model"]["byte_fallback"] = True
        doc["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    data = json.dumps(doc, ensure_ascii=False)
    ref = tokenizers.Tokenizer.from_str(data)
    ours = llmc.Tokenizer.from_json_bytes(data.encode())
    _same_ids(ours, lambda s: ref.encode(s, add_special_tokens=False).ids, texts)
    for s in texts[::7]:
        ids = ref.encode(s, add_special_tokens=False).ids
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), s
    assert ours.encode_batch(texts[:50]) == [e.ids for e in ref.encode_batch(texts[:50], add_special_tokens=False)]


def test_hf_unigram_ties_and_unk_fusion():
    """Hand-made scores with exact ties (the first candidate must win), unknown runs fused into one unk, an unknown
    run that is itself a vocabulary piece, and byte fallback of a fused run."""
    vocab = [["<unk>", 0.0], ["a", -1.0], ["b", -1.0], ["ab", -2.0], ["abc", -3.0], ["c", -1.0], ["bc", -2.0],
             ["\u2581", -0.5], ["\u2581a", -1.5], ["xy", -30.0]]
    for bf in (False, True):
        v = vocab + ([[f"<0x{b:02X}>", -5.0] for b in range(256)] if bf else [])
        doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
               "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always",
                                 "split": True},
               "post_processor": None, "decoder": {"type": "Metaspace", "replacement": "\u2581",
                                                   "prepend_scheme": "always", "split": True},
               "model": {"type": "Unigram", "unk_id": 0, "vocab": v, "byte_fallback": bf}}
        data = json.dumps(doc)
        ref = tokenizers.Tokenizer.from_str(data)
        ours = llmc.Tokenizer.from_json_bytes(data.encode())
        ts = ["abc", "ab c", "zzz abc zz", "abcabcabc", "a\u00e9\u00e9b", "xy", "qxyq", "\u4e2d\u6587 ab", "", "   "]
        _same_ids(ours, lambda s: ref.encode(s, add_special_tokens=False).ids, ts)


# ------------------------------------------------------------------------- sentencepiece models (trained once)
MODELS = [("unigram", "nmt_nfkc", True), ("unigram", "identity", False), ("unigram", "nfkc", False),
          ("bpe", "nmt_nfkc", False), ("bpe", "identity", True), ("bpe", "nfkc", True)]


@pytest.fixture(scope="module")
def spm_models(kjv_lines, tmp_path_factory):
    d = tmp_path_factory.mktemp("spm")
    out = {}
    for mt, norm, bf in MODELS:
        prefix = str(d / f"{mt}_{norm}_{int(bf)}")
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(kjv_lines[:1500]), model_prefix=prefix, vocab_size=600, model_type=mt,
            normalization_rule_name=norm, byte_fallback=bf, character_coverage=0.9995,
            user_defined_symbols=["<user>", "LORD"], num_threads=1, minloglevel=2)
        out[(mt, norm, bf)] = prefix + ".model"
    return out


@pytest.mark.parametrize("key", MODELS, ids=["-".join(map(str, m)) for m in MODELS])
def test_sentencepiece_model_files(spm_models, texts, key):
    path = spm_models[key]
    sp = spm.SentencePieceProcessor(model_file=path)
    ours = llmc.Tokenizer.from_sentencepiece(path)
    assert ours.kind == "sentencepiece" and ours.n_vocab == sp.get_piece_size()
    _same_ids(ours, sp.encode, texts)
    for s in texts:
        ids = sp.encode(s)
        assert ours.decode(ids) == sp.decode(ids), s
    rng = random.Random(5)  # arbitrary id sequences: control pieces, unk, stray bytes (invalid UTF-8) at any place
    for _ in range(300):
        ids = [rng.randrange(sp.get_piece_size()) for _ in range(rng.randrange(0, 12))]
        assert ours.decode(ids) == sp.decode(ids), ids
    assert ours.encode("hi", add_special_tokens=True) == sp.encode("hi", add_bos=True)
    assert llmc.Tokenizer.from_file(path).encode(texts[0]) == sp.encode(texts[0])


def test_sentencepiece_all_kjv_lines(spm_models, kjv_lines):
    """A Unigram and a BPE model on every KJV line at once (encode_batch), against sentencepiece's batch encode
    (the other models see 800 of the lines above)."""
    for key in [("unigram", "nmt_nfkc", True), ("bpe", "nmt_nfkc", False)]:
        sp = spm.SentencePieceProcessor(model_file=spm_models[key])
        ours = llmc.Tokenizer.from_sentencepiece(spm_models[key])
        got, want = ours.encode_batch(kjv_lines, num_threads=2), sp.encode(kjv_lines, num_threads=1)
        bad = [i for i in range(len(want)) if got[i] != want[i]]
        assert not bad, (key, kjv_lines[bad[0]], got[bad[0]], want[bad[0]])


def _cjk_text(seed, n_chars):
    """Seeded Chinese/Japanese-like text: Zipf-weighted common Han characters, kana, CJK punctuation, a few Latin
    words and digits, newlines."""
    rng = random.Random(seed)
    han = [chr(0x4E00 + (i * 7919) % 0x5000) for i in range(800)]
    pool = han + [chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x30A1, 0x30FB)]
    weights = [1.0 / (i + 1) for i in range(len(pool))]
    out = []
    while len(out) < n_chars:
        out += rng.choices(pool, weights, k=rng.randint(4, 30))
        out.append(rng.choice(["\u3001", "\u3002", "\uff01", "\uff0c", " ", "\n", "LORD", "2024", "\u3000", "\uff21"]))
    return "".join(out)


@pytest.mark.parametrize("mt", ["unigram", "bpe"])
def test_sentencepiece_cjk(tmp_path, mt):
    """Models trained on CJK text (no spaces: long Viterbi lattices, rare characters left to unk or bytes)."""
    lines = _cjk_text(1, 30000).split("\n")
    for bf in (False, True):
        prefix = str(tmp_path / f"cjk_{mt}_{int(bf)}")
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=1500,
                                       model_type=mt, character_coverage=0.995, byte_fallback=bf, num_threads=1,
                                       minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
        ours = llmc.Tokenizer.from_sentencepiece(prefix + ".model")
        test = _cjk_text(2, 30000).split("\n") + [_cjk_text(3, 5000)]
        assert ours.encode_batch(test) == sp.encode(test)


@pytest.mark.parametrize("mt", ["unigram", "bpe"])
def test_sentencepiece_pieces_across_words(kjv_lines, texts, tmp_path, mt):
    """split_by_whitespace=False: pieces hold U+2581 inside (BPE merges across words, so words are not encoded
    apart; the Unigram lattice has pieces that span words)."""
    prefix = str(tmp_path / f"nosplit_{mt}")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(kjv_lines[:700]), model_prefix=prefix, vocab_size=500,
                                   model_type=mt, split_by_whitespace=False, user_defined_symbols=["<user>"],
                                   num_threads=1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    assert any("\u2581" in sp.id_to_piece(i)[1:] for i in range(sp.get_piece_size()))
    ours = llmc.Tokenizer.from_sentencepiece(prefix + ".model")
    _same_ids(ours, sp.encode, texts)
    assert ours.encode_batch(kjv_lines[:3000]) == sp.encode(kjv_lines[:3000])


def test_unigram_random_vocabularies():
    """The piece trie on arbitrary vocabularies (shared prefixes, multi-byte characters, pieces up to 40 bytes,
    10 to 3000 pieces) against HF tokenizers' Unigram on the same tokenizer.json, whole texts as one lattice."""
    rng = random.Random(11)
    alphabet = list("abcab ") + ["\u00e9", "\u4e2d", "\U0001F600", "\u2581", "\x01", "\x7f", "\u0301"]
    for trial in range(24):
        n = rng.choice([10, 50, 300, 3000])
        pieces = {"".join(rng.choices(alphabet, k=rng.choice([1, 1, 2, 3, 5, 8, 13]))) for _ in range(n)}
        pieces |= set(rng.sample(alphabet, k=rng.randrange(len(alphabet))))  # some characters as pieces
        vocab = [["<unk>", 0.0]] + [[p, -rng.uniform(1, 15)] for p in sorted(pieces)]
        doc = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
               "pre_tokenizer": None, "post_processor": None, "decoder": None,
               "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": False}}
        data = json.dumps(doc)
        ref = tokenizers.Tokenizer.from_str(data)
        ours = llmc.Tokenizer.from_json_bytes(data.encode())
        ts = ["".join(rng.choices(alphabet + ["z", "\u00e8"], k=rng.randrange(0, 200))) for _ in range(40)]
        _same_ids(ours, lambda s: ref.encode(s, add_special_tokens=False).ids, ts)


@pytest.mark.parametrize("key", [MODELS[0], MODELS[3], MODELS[5]], ids=["unigram-nmt-bf", "bpe-nmt", "bpe-nfkc-bf"])
def test_sentencepiece_hypothesis(spm_models, key):
    """Parity with sentencepiece on arbitrary strings (any code point, space runs, U+2581, user pieces, letters
    followed by combining marks that the charsmap composes)."""
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings, strategies as st

    sp = spm.SentencePieceProcessor(model_file=spm_models[key])
    ours = llmc.Tokenizer.from_sentencepiece(spm_models[key])
    parts = st.one_of(st.characters(codec="utf-8"), st.sampled_from(
        [" ", "  ", "\u2581", "<user>", "LORD", "A\u0301", "e\u0301\u0323", "\uff21", "\u3000", "\t", "\r\n", "the",
         "\u4e2d\u6587", "\U0001F600", "\x00", "\x7f", "\u00e9"]))

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(st.lists(parts, max_size=30).map("".join))
    def check(s):
        assert ours.encode(s) == sp.encode(s)

    check()


def _charsmap(path):
    import sentencepiece.sentencepiece_model_pb2 as pb

    m = pb.ModelProto()
    m.ParseFromString(Path(path).read_bytes())
    return m


def _t5_layout(m):
    """The tokenizer.json transformers' SpmConverter writes for T5-style models."""
    from tokenizers import AddedToken, Regex, decoders, models, normalizers, pre_tokenizers

    tok = tokenizers.Tokenizer(models.Unigram([(p.piece, p.score) for p in m.pieces], unk_id=m.trainer_spec.unk_id,
                                              byte_fallback=m.trainer_spec.byte_fallback))
    nz = [normalizers.Strip(left=False, right=True), normalizers.Replace(Regex(" {2,}"), "\u2581")]
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap)] + nz)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.add_tokens([AddedToken(p.piece, normalized=False, special=p.type == 3) for p in m.pieces if p.type in (3, 4)])
    return tok


def _proto_layout(m):
    """The tokenizer.json of transformers' build_tokenizer_from_spm_proto (SentencePiece's normalizer spelled as
    Replace steps, Metaspace(split=False) then the user pieces isolated, a Replace/ByteFallback/Fuse/Strip
    decoder)."""
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers

    ns = m.normalizer_spec
    tok = tokenizers.Tokenizer(models.Unigram([(p.piece, p.score) for p in m.pieces], unk_id=m.trainer_spec.unk_id,
                                              byte_fallback=m.trainer_spec.byte_fallback))
    nz = [normalizers.Precompiled(ns.precompiled_charsmap)] if ns.precompiled_charsmap else []
    nz += [normalizers.Replace(Regex(r"\A +| +\z"), ""), normalizers.Replace(Regex(" {2,}"), " "),
           normalizers.Replace(" ", "\u2581"), normalizers.Replace(Regex("\\A\u2581"), "\u2581\u2581")]
    tok.normalizer = normalizers.Sequence(nz)
    user = sorted((p.piece for p in m.pieces if p.type == 4), key=len, reverse=True)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False),
        pre_tokenizers.Split(Regex("|".join(re.escape(u) for u in user)), behavior="isolated")])
    dec = [decoders.Replace("\u2581", " ")] + ([decoders.ByteFallback()] if m.trainer_spec.byte_fallback else [])
    tok.decoder = decoders.Sequence(dec + [decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    return tok


@pytest.mark.parametrize("layout", [_t5_layout, _proto_layout], ids=["t5", "proto"])
@pytest.mark.parametrize("key", MODELS[:3], ids=["-".join(map(str, m)) for m in MODELS[:3]])
def test_converted_sentencepiece_tokenizer_json(spm_models, texts, key, layout):
    """sentencepiece Unigram models converted to tokenizer.json (Precompiled charsmap, NFKC in it or not), against
    HF tokenizers on the same file."""
    m = _charsmap(spm_models[key])
    if not m.normalizer_spec.precompiled_charsmap and layout is _t5_layout:
        pytest.skip("the identity normalization has no charsmap")
    ref = layout(m)
    data = ref.to_str()
    ours = llmc.Tokenizer.from_json_bytes(data.encode())
    _same_ids(ours, lambda s: ref.encode(s, add_special_tokens=False).ids, texts)
    for s in texts[::5]:
        ids = ref.encode(s, add_special_tokens=False).ids
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=False), s


def test_nfkc_nfkd_normalizers_match_hf():
    """NFKC and NFKD as HF applies them, on every code point whose compatibility decomposition exists (in runs)."""
    import unicodedata

    from tokenizers import normalizers

    cps = [c for c in range(0xA0, 0x30000) if not 0xD800 <= c < 0xE000 and
           unicodedata.normalize("NFKD", chr(c)) != chr(c)]
    text = "".join(chr(c) + ("a" if i % 3 else " \u0301") for i, c in enumerate(cps))
    for name in ("NFKC", "NFKD", "NFC", "NFD"):
        ref = tokenizers.Tokenizer.from_str(json.dumps({
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
            "normalizer": {"type": name}, "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581",
                                                            "prepend_scheme": "always", "split": True},
            "post_processor": None, "decoder": None,
            "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]], "byte_fallback": False}}))
        want = getattr(normalizers, name)().normalize_str(text)
        assert ref.normalizer.normalize_str(text) == want
        from llmc import _core  # the C normalizer through a tokenizer whose pieces show the text
        ours = llmc.Tokenizer.from_json_bytes(ref.to_str().encode())
        assert ours.encode(text) == ref.encode(text, add_special_tokens=False).ids, name


# ------------------------------------------------------------------------------------------ corrupt inputs
def test_corrupt_sentencepiece_files(spm_models, tmp_path):
    data = Path(spm_models[("unigram", "nmt_nfkc", True)]).read_bytes()
    rng = random.Random(3)
    for k in range(300):
        b = bytearray(data)
        kind = k % 3
        if kind == 0:
            b = b[:rng.randrange(len(b))]
        elif kind == 1:
            for _ in range(rng.randrange(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        else:
            i = rng.randrange(len(b))
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        p = tmp_path / "bad.model"
        p.write_bytes(bytes(b))
        try:
            tok = llmc.Tokenizer.from_sentencepiece(p)
        except (ValueError, llmc.UnsupportedError):
            continue
        tok.encode("In the beginning \u00e9\u4e2d <user> \uff21")  # a file that still loads must still encode
        tok.decode(list(range(min(tok.n_vocab, 50))))
    for blob in [b"", b"\x0a", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x00", b"\x0b", b"\x0a\x02\x0a\x00",
                 b"\x1a\x05\x12\x03abc", b"\x08" + b"\xff" * 11]:
        p = tmp_path / "tiny.model"
        p.write_bytes(blob)
        with pytest.raises(ValueError):
            llmc.Tokenizer.from_sentencepiece(p)
    with pytest.raises(FileNotFoundError):
        llmc.Tokenizer.from_sentencepiece(tmp_path / "missing.model")


def test_bad_unigram_json():
    base = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
            "pre_tokenizer": None, "post_processor": None, "decoder": None,
            "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0], ["a", -1.0]]}}
    for model in [{"type": "Unigram", "unk_id": 5, "vocab": [["<unk>", 0.0]]},
                  {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", "x"]]},
                  {"type": "Unigram", "unk_id": 0, "vocab": []},
                  {"type": "Unigram", "unk_id": 0, "vocab": [["", 0.0]]}]:
        with pytest.raises(ValueError):
            llmc.Tokenizer.from_json_bytes(json.dumps(dict(base, model=model)).encode())
    bad_cm = dict(base, normalizer={"type": "Precompiled", "precompiled_charsmap": "AAAA//8="})
    with pytest.raises(ValueError):
        llmc.Tokenizer.from_json_bytes(json.dumps(bad_cm).encode())
    no_unk = dict(base, model={"type": "Unigram", "unk_id": None, "vocab": [["a", -1.0]]})
    tok = llmc.Tokenizer.from_json_bytes(json.dumps(no_unk).encode())
    assert tok.encode("aaa") == [0, 0, 0] or tok.encode("aaa") == [0]
    with pytest.raises(ValueError, match="unk"):
        tok.encode("ab")
