"""The C JSON reader (csrc/json.c) against Python's json module, plus malformed-input and fuzz tests."""
import json
import random

import pytest

from llmc import _core

parse = _core.json_parse

CASES = [
    "null", "true", "false", "0", "-0", "12345678901234", "-9223372036854775808", "9223372036854775807",
    "1.5", "-2.5e-3", "1E10", "[]", "{}", '""', '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"', '"\\u00e9\\u4e2d\\ud83d\\ude00"',
    '{"a": {"b": [1, {"c": null}]}, "d": "e"}', ' \n\t [1 , 2 ,3 ] \r\n', '"\u00e9\u4e2d\U0001F600"',
    '{"dup": 1, "dup": 2}', '[' * 100 + ']' * 100,
]


@pytest.mark.parametrize("text", CASES)
def test_matches_python_json(text):
    assert parse(text.encode()) == json.loads(text)


def test_big_integer_keeps_a_float():
    assert parse(b"123456789012345678901234567890") == pytest.approx(1.2345678901234568e29)


def test_nul_in_string_and_lone_surrogate():
    assert parse(b'"a\\u0000b"') == "a\x00b"
    assert parse(b'"\\ud800x"') == "\ufffdx"  # a lone surrogate cannot be UTF-8


def test_real_tokenizer_json(shared):
    for name in ["llama2", "llama3", "qwen3"]:
        raw = (shared / "tokenizers" / "hf" / name / "tokenizer.json").read_bytes()
        assert parse(raw) == json.loads(raw)


def test_random_documents_round_trip():
    rnd = random.Random(7)

    def value(depth):
        k = rnd.randrange(7 if depth < 4 else 4)
        if k == 0:
            return rnd.choice([None, True, False])
        if k == 1:
            return rnd.randint(-(2**63), 2**63 - 1)
        if k == 2:
            return rnd.uniform(-1e6, 1e6)
        if k == 3:
            return "".join(chr(rnd.choice([rnd.randrange(32, 127), rnd.randrange(0x80, 0xD800),
                                           rnd.randrange(0x10000, 0x10FFFF), rnd.randrange(0, 32)]))
                           for _ in range(rnd.randrange(12)))
        if k in (4, 5):
            return [value(depth + 1) for _ in range(rnd.randrange(5))]
        return {str(value(depth + 1)) if rnd.random() < .5 else f"k{i}": value(depth + 1) for i in range(rnd.randrange(5))}

    for _ in range(300):
        doc = value(0)
        for ensure_ascii in (True, False):
            text = json.dumps(doc, ensure_ascii=ensure_ascii)
            assert parse(text.encode()) == json.loads(text)


BAD = [b"", b" ", b"[", b"]", b"{", b'{"a"}', b'{"a":}', b'{"a":1,}', b"[1,]", b"[1 2]", b"01", b"1.", b".5",
       b"1e", b"-", b'"abc', b'"\\x"', b'"\\u12"', b"tru", b"nul", b"[1]x", b'{1: 2}', b'"a\nb"', b"\x00",
       b"[" * 300 + b"]" * 300]


@pytest.mark.parametrize("text", BAD)
def test_malformed_is_value_error(text):
    with pytest.raises(ValueError, match="invalid JSON"):
        parse(text)


def test_error_names_line_and_column():
    with pytest.raises(ValueError, match="line 3 column 5"):
        parse(b'{\n"a": 1,\n"b" 2}')


def test_fuzz_truncations_and_flips(shared):
    """Random truncations and byte flips of a real file: a ValueError or a value, never a crash."""
    raw = (shared / "tokenizers" / "hf" / "llama2" / "tokenizer.json").read_bytes()[:20000]
    rnd = random.Random(11)
    for _ in range(400):
        b = bytearray(raw[: rnd.randrange(len(raw))])
        for _ in range(rnd.randrange(4)):
            if b:
                b[rnd.randrange(len(b))] = rnd.randrange(256)
        try:
            parse(bytes(b))
        except ValueError:
            pass
