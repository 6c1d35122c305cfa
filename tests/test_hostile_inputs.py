"""Hostile files: absurd token ids must not allocate gigabytes, and every C error message that reaches Python is
valid UTF-8 (raw file bytes escaped as \\xNN, long messages cut at a character boundary) — checked over fuzzed file
contents and fuzzed file names."""
import json
import os
import struct

import numpy as np
import pytest

import llmc
from llmc import _core

ALLOWED = (ValueError, TypeError, MemoryError, OSError, llmc.UnsupportedError)


def clean_message(e):
    msg = str(e)
    msg.encode("utf-8")  # no lone surrogates: the C message was valid UTF-8
    assert "UnicodeDecodeError" not in msg
    return msg


def test_huge_tiktoken_rank_is_refused_without_allocating():
    lines = [f"{__import__('base64').b64encode(bytes([b])).decode()} {b}" for b in range(256)]
    lines.append("YWI= 100000000")  # one rank of 1e8 in a 3 KB file: the table would be 1.2 GB of holes
    before = _core.mem_stats()["current"]
    _core.mem_reset_peak()
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".tiktoken", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    try:
        with pytest.raises(ValueError, match="100000000 is absurd"):
            llmc.Tokenizer.from_tiktoken(f.name, pattern="gpt2")
    finally:
        os.unlink(f.name)
    assert _core.mem_stats()["peak"] - before < 64 << 20


def test_huge_tokenizer_json_id_is_refused():
    from llmc.tokenizer import _bytes_to_unicode

    b2u = _bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    vocab["ab"] = 100_000_000
    doc = {"model": {"type": "BPE", "vocab": vocab, "merges": []}, "pre_tokenizer": {"type": "ByteLevel"},
           "decoder": {"type": "ByteLevel"}}
    with pytest.raises(ValueError, match="100000000 is absurd"):
        llmc.Tokenizer.from_json_bytes(json.dumps(doc).encode())
    doc["model"]["vocab"]["ab"] = 256  # a normal id still loads
    llmc.Tokenizer.from_json_bytes(json.dumps(doc).encode())


def test_long_and_raw_byte_messages_are_valid_utf8(tmp_path):
    # a field value far longer than the message buffer, made of 2-byte characters: cut between characters
    d = tmp_path / "long"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"model_type": "é" * 3000}), encoding="utf-8")
    with pytest.raises(ALLOWED) as e:
        llmc.Model.load(d)
    clean_message(e.value)
    # raw invalid bytes inside a JSON string: the reader's message escapes them
    with pytest.raises(ValueError) as e:
        _core.json_parse(b'{"a\xff\xfe": 1}')
    clean_message(e.value)
    # a file name that is not UTF-8 (bytes through surrogateescape) in a C message
    bad = os.fsencode(str(tmp_path)) + b"/caf\xe9\xff"
    os.mkdir(bad)
    with pytest.raises(ALLOWED) as e:
        llmc.Model.load(os.fsdecode(bad))
    clean_message(e.value)
    with pytest.raises(ALLOWED) as e:
        _core.safetensors_info(os.fsdecode(bad + b"/x.safetensors"))
    clean_message(e.value)


def safetensors_bytes():
    header = json.dumps({"w\u00e9ight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}}).encode()
    return struct.pack("<Q", len(header)) + header + np.arange(6, dtype="<f4").tobytes()


def tokenizer_json_bytes():
    vocab = {chr(33 + i): i for i in range(90)}
    vocab.update({"ab": 90, "abé": 91})
    return json.dumps({"model": {"type": "BPE", "vocab": vocab, "merges": ["a b"]},
                       "pre_tokenizer": {"type": "ByteLevel"}, "decoder": {"type": "ByteLevel"},
                       "added_tokens": [{"id": 92, "content": "<|é|>", "special": True}]},
                      ensure_ascii=False).encode()


def config_bytes():
    return json.dumps(dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48,
                           num_hidden_layers=1, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=32), ensure_ascii=False).encode()


def mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.integers(1, 4)):
        op = rng.integers(0, 4)
        i = int(rng.integers(0, max(len(b), 1)))
        if op == 0 and b:
            b[i % len(b)] = int(rng.integers(0, 256))  # any byte, often invalid UTF-8
        elif op == 1:
            b[i:i] = bytes(rng.integers(0x80, 0x100, size=int(rng.integers(1, 4))).astype(np.uint8))
        elif op == 2:
            del b[i:i + int(rng.integers(1, 8))]
        else:
            b = b[:i]
    return bytes(b)


@pytest.mark.parametrize("kind", ["json", "safetensors", "tokenizer", "config"])
def test_fuzzed_files_give_clean_errors(tmp_path, kind):
    rng = np.random.default_rng({"json": 1, "safetensors": 2, "tokenizer": 3, "config": 4}[kind])
    base = {"json": config_bytes, "safetensors": safetensors_bytes, "tokenizer": tokenizer_json_bytes,
            "config": config_bytes}[kind]()
    errors = 0
    for i in range(250):
        data = mutate(base, rng)
        try:
            if kind == "json":
                _core.json_parse(data)
            elif kind == "safetensors":
                p = tmp_path / "f.safetensors"
                p.write_bytes(data)
                _core.safetensors_info(str(p))
            elif kind == "tokenizer":
                llmc.Tokenizer.from_json_bytes(data, name="fuzz\udce9.json")
            else:
                d = tmp_path / f"c{i}"
                d.mkdir()
                (d / "config.json").write_bytes(data)
                llmc.Model.load(d)
        except ALLOWED as e:
            errors += 1
            clean_message(e)
    assert errors > 100  # most mutations are errors; each one had a clean message


def test_fuzzed_file_names(tmp_path):
    rng = np.random.default_rng(7)
    for _ in range(100):
        raw = bytes(rng.integers(1, 256, size=int(rng.integers(1, 40))).astype(np.uint8)).replace(b"/", b"_")
        name = os.fsdecode(os.fsencode(str(tmp_path)) + b"/" + raw)
        for fn in (lambda: llmc.Model.load(name), lambda: llmc.Tokenizer.from_file(name),
                   lambda: _core.safetensors_info(name)):
            with pytest.raises(ALLOWED) as e:
                fn()
            clean_message(e.value)
