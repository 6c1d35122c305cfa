"""llmc.get_encoding / encoding_for_model against tiktoken's own registry, offline.

The oracle is `tiktoken.get_encoding(name)` itself: tiktoken's cache directory is filled with llmc's shipped (or,
for p50k, derived) rank files under the names tiktoken would download them to, and tiktoken's own download function
is replaced by one that fails, so tiktoken accepts a file only if its SHA-256 equals the hash tiktoken pins. Its
pat_str, special tokens and vocabulary size come from tiktoken's own constructors, not from llmc. The shipped KJV
text is checked here too (llmc.data).
"""
import hashlib
import os

import pytest

import llmc
import llmc.data
from llmc.encodings import encoding_rank_bytes

URLS = {
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}
# every encoding tiktoken can build from those four files (its "gpt2" needs GPT-2's original vocab.bpe files
# instead: it is compared through r50k_base, which has the same ranks, regex and special token)
REFERENCE = {"gpt2": "r50k_base", "r50k_base": "r50k_base", "p50k_base": "p50k_base", "p50k_edit": "p50k_edit",
             "cl100k_base": "cl100k_base", "o200k_base": "o200k_base", "o200k_harmony": "o200k_harmony"}
TEXTS = ["hello world", "def f(x):\n        return x  # eight spaces\n\n\t\tdone", "I'm don't WE'LL 12345678",
         "Привет, мир! 你好，世界 🤖🤖 こんにちは", "In the beginning God created the heaven and the earth.\n" * 3,
         "   leading and trailing   ", "a\r\nb\r\n\r\n  \n", "x" * 3000]


@pytest.fixture(scope="module")
def tiktoken_offline(tmp_path_factory):
    tiktoken = pytest.importorskip("tiktoken")
    import tiktoken.load
    import tiktoken.registry

    cache = tmp_path_factory.mktemp("tiktoken-cache")
    for name, url in URLS.items():
        (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(encoding_rank_bytes(name))

    def no_download(blobpath):
        raise AssertionError(f"tiktoken tried to download {blobpath}: the cached file's hash did not match")

    old = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    mp = pytest.MonkeyPatch()
    mp.setattr(tiktoken.load, "read_file", no_download)
    yield tiktoken
    mp.undo()
    if old is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = old


def test_list_and_errors():
    assert llmc.list_encoding_names() == list(REFERENCE)
    with pytest.raises(ValueError, match="unknown encoding 'cl200k'.*cl100k_base"):
        llmc.get_encoding("cl200k")
    with pytest.raises(TypeError):
        llmc.get_encoding(100)
    with pytest.raises(KeyError, match="no-such-model"):
        llmc.encoding_for_model("no-such-model")


def test_cached_per_process():
    a = llmc.get_encoding("cl100k_base")
    assert llmc.get_encoding("cl100k_base") is a and a.name == "cl100k_base"
    assert llmc.encoding_for_model("gpt-4") is a
    assert llmc.encoding_for_model("gpt-4o").name == "o200k_base"


@pytest.mark.parametrize("name", list(REFERENCE))
def test_identical_to_tiktoken(tiktoken_offline, name):
    ref = tiktoken_offline.get_encoding(REFERENCE[name])  # fails unless our rank bytes carry tiktoken's hash
    tok = llmc.get_encoding(name)
    assert tok.n_vocab == ref.n_vocab
    assert tok.special_tokens == ref._special_tokens
    for text in TEXTS:
        assert tok.encode(text) == ref.encode(text), text
    specials = "".join(sorted(ref.special_tokens_set))[:2000] + " tail"
    assert tok.encode(specials, allowed_special="all") == ref.encode(specials, allowed_special="all")
    for i in [0, 1, 255, 256, 1000, 50255, ref.n_vocab - 1, ref.eot_token, 200018]:
        try:
            want = ref.decode_single_token_bytes(i)
        except KeyError:
            continue
        assert tok.decode_bytes([i]) == want, i
    if name.startswith("p50k"):  # the 24 whitespace tokens Codex added
        assert tok.encode(" " * 25 + "x") == ref.encode(" " * 25 + "x") and len(tok.encode(" " * 24)) == 1


def test_encoding_for_model_matches_tiktoken():
    pytest.importorskip("tiktoken")
    import tiktoken.model as tm

    names = list(tm.MODEL_TO_ENCODING) + [p + "2099-01-01" for p in tm.MODEL_PREFIX_TO_ENCODING]
    for m in names:
        assert llmc.encoding_name_for_model(m) == tm.encoding_name_for_model(m), m


def test_shipped_files_are_the_published_ones():
    # tiktoken's pinned hashes (tiktoken_ext/openai_public.py), also checked through tiktoken above when installed
    pinned = {"r50k_base": "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
              "p50k_base": "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069",
              "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
              "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"}
    for name, h in pinned.items():
        assert hashlib.sha256(encoding_rank_bytes(name)).hexdigest() == h, name
    lic = (llmc.encodings.ENCODINGS_DIR / "LICENSE-tiktoken").read_text()
    assert "MIT License" in lic and "OpenAI" in lic


def test_kjv_accessor():
    path = llmc.data.kjv_path()
    assert path.is_file() and path.stat().st_size == 4_137_850
    lines = llmc.data.kjv_lines()
    assert len(lines) == 31_102 and lines[0] == "In the beginning God created the heaven and the earth."
    train, held = llmc.data.kjv_lines("train"), llmc.data.kjv_lines("heldout")
    assert train + held == lines and len(held) == 31_102 - int(31_102 * 0.95) == 1556
    assert held[-1] == "The grace of our Lord Jesus Christ be with you all. Amen."
    assert llmc.data.kjv_text("heldout") == "\n".join(held) + "\n"
    with pytest.raises(ValueError, match="split"):
        llmc.data.kjv_lines("test")
