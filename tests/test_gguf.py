"""GGUF reader/writer: against the `gguf` package (llama.cpp's own Python reader/writer), and corrupt files.

Corrupt files are built byte by byte here (struct), independent of both llmc and gguf-py, so each lie is exact.
"""
import os
import random
import struct

import numpy as np
import pytest

import llmc
from llmc import gguf as lg

gguf = pytest.importorskip("gguf")


# ---------------------------------------------------------------------------------------------- gguf-py oracle
def _gguf_py_file(path):
    """A file with every scalar type, arrays of each, unicode strings and f32/f16/q8_0/q4_k tensors."""
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.1)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ▁ 世界")
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**62))
    w.add_float64("t.f64", 1e300)
    w.add_array("t.arr_i", [1, -2, 3])
    w.add_array("t.arr_f", [0.5, -1.25])
    w.add_array("t.arr_s", ["a", "", "▁the", "<0x0A>"])
    w.add_array("t.arr_empty", [])
    rng = np.random.default_rng(0)
    w.add_tensor("f32.weight", rng.standard_normal((3, 64)).astype(np.float32))
    w.add_tensor("f16.weight", rng.standard_normal((2, 5, 32)).astype(np.float16))
    q8 = rng.integers(0, 256, (4, 2 * 34), dtype=np.uint8)
    w.add_tensor("q8.weight", q8, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    q4k = rng.integers(0, 256, (2, 144), dtype=np.uint8)
    w.add_tensor("q4k.weight", q4k, raw_dtype=gguf.GGMLQuantizationType.Q4_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_type_table_matches_gguf_py():
    for t, (bs, bb) in gguf.GGML_QUANT_SIZES.items():
        if t.name == "Q8_1":
            continue  # PyPI gguf 0.19.0 says 40 bytes; ggml's block_q8_1 (and the vendored gguf-py) is 36
        assert lg.GGML_TYPES[t.name.lower()] == (int(t), bs, bb), t.name


def test_type_table_matches_llmc_quant():
    for name, (bs, bb) in llmc.quant_types().items():
        assert lg.GGML_TYPES[name][1:] == (bs, bb), name


def test_read_matches_gguf_reader(tmp_path):
    p = tmp_path / "a.gguf"
    _gguf_py_file(p)
    r = gguf.GGUFReader(str(p))
    f = lg.GGUFFile(p)
    assert f.version == 3 and f.alignment == 32
    md = f.metadata
    fields = {k: v for k, v in r.fields.items() if not k.startswith("GGUF.")}
    assert list(md) == list(fields)
    types = f.value_types()
    for k, field in fields.items():
        want = field.contents()
        got = md[k]
        assert types[k][0] == field.types[0].name.lower(), k
        if isinstance(got, np.ndarray):
            assert types[k][1] == field.types[1].name.lower()
            np.testing.assert_array_equal(got, np.asarray(want, dtype=got.dtype), err_msg=k)
        elif isinstance(want, float):
            assert got == pytest.approx(want, rel=1e-7), k
        else:
            assert got == want, k
    assert f.get("t.str", raw=True) == "héllo ▁ 世界".encode()
    assert f.get("t.arr_s", raw=True) == [b"a", b"", "▁the".encode(), b"<0x0A>"]
    assert f.get("missing", 7) == 7
    assert [t["name"] for t in f.tensors] == [t.name for t in r.tensors]
    for t, rt in zip(f.tensors, r.tensors):
        assert t["type_id"] == int(rt.tensor_type)
        assert t["ne"] == tuple(int(x) for x in rt.shape)
        assert t["bytes"] == rt.n_bytes
        assert f.data_offset + t["offset"] == rt.data_offset
        np.testing.assert_array_equal(f.tensor_bytes(t["name"]), np.asarray(rt.data).view(np.uint8).reshape(-1))
    np.testing.assert_array_equal(f.tensor("f32.weight"), r.tensors[0].data)
    np.testing.assert_array_equal(f.tensor("f16.weight"), r.tensors[1].data)
    assert f.tensor("q4k.weight").shape == (2, 144)
    view = f.tensor("f32.weight")
    assert not view.flags.writeable
    del f
    assert float(view.sum()) == pytest.approx(float(r.tensors[0].data.sum()), rel=1e-6)  # view keeps the map alive


def test_gguf_info_dict(tmp_path):
    p = tmp_path / "a.gguf"
    _gguf_py_file(p)
    info = llmc.gguf_info(p)
    assert info["metadata"]["general.architecture"] == "llama"
    t = {x["name"]: x for x in info["tensors"]}
    assert t["f16.weight"] == {"name": "f16.weight", "type": "f16", "shape": (2, 5, 32), "ne": (32, 5, 2),
                               "bytes": 2 * 5 * 32 * 2, "offset": t["f16.weight"]["offset"]}
    assert t["q4k.weight"]["type"] == "q4_k" and t["q4k.weight"]["shape"] == (2, 256)


def test_write_read_back_by_gguf_reader(tmp_path):
    p = tmp_path / "w.gguf"
    rng = np.random.default_rng(1)
    a = rng.standard_normal((3, 32)).astype(np.float32)
    h = rng.standard_normal((4,)).astype(np.float16)
    q = rng.integers(0, 256, 2 * 2 * 34, dtype=np.uint8)
    md = {"general.architecture": "llama", "llama.block_count": 2, "neg": -3, "big": 2**40, "eps": 1e-5,
          "flag": False, "name": "ü", "toks": ["<s>", "▁a", ""], "scores": np.array([0.0, -1.5], np.float32),
          "types": np.array([1, 3], np.int32), "i64": lg.Value(5, "int64"), "u8s": lg.Value([1, 2], "array", "uint8")}
    lg.write(p, md, {"a": a, "h": h, "q": ("q8_0", (2, 64), q)}, alignment=64)
    r = gguf.GGUFReader(str(p))
    f = r.fields
    assert f["GGUF.version"].contents() == 3
    assert f["general.alignment"].contents() == 64 and f["general.alignment"].types == [gguf.GGUFValueType.UINT32]
    assert f["llama.block_count"].types == [gguf.GGUFValueType.UINT32] and f["llama.block_count"].contents() == 2
    assert f["neg"].types == [gguf.GGUFValueType.INT32] and f["neg"].contents() == -3
    assert f["big"].types == [gguf.GGUFValueType.INT64] and f["big"].contents() == 2**40
    assert f["eps"].types == [gguf.GGUFValueType.FLOAT32] and f["eps"].contents() == pytest.approx(1e-5)
    assert f["flag"].contents() is False and f["name"].contents() == "ü"
    assert f["toks"].contents() == ["<s>", "▁a", ""]
    assert f["scores"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.FLOAT32]
    assert f["types"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.INT32]
    assert f["i64"].types == [gguf.GGUFValueType.INT64]
    assert f["u8s"].types == [gguf.GGUFValueType.ARRAY, gguf.GGUFValueType.UINT8] and f["u8s"].contents() == [1, 2]
    ts = {t.name: t for t in r.tensors}
    np.testing.assert_array_equal(ts["a"].data, a)
    np.testing.assert_array_equal(ts["h"].data, h)
    assert ts["q"].tensor_type == gguf.GGMLQuantizationType.Q8_0 and list(ts["q"].shape) == [64, 2]
    np.testing.assert_array_equal(np.asarray(ts["q"].data).reshape(-1), q)
    for t in r.tensors:
        assert t.data_offset % 64 == 0
    assert not [x for x in os.listdir(tmp_path) if ".tmp." in x]  # the temporary file was renamed away


def test_write_errors(tmp_path):
    p = tmp_path / "e.gguf"
    with pytest.raises(ValueError, match="duplicate tensor name 'a'"):
        lg._core.gguf_write(str(p), [], [("a", 0, (4,), np.zeros(4, np.float32)), ("a", 0, (4,), np.zeros(4, np.float32))], 0)
    with pytest.raises(ValueError, match="'q'.*block of 32"):
        lg.write(p, {}, {"q": ("q8_0", (2, 30), b"\0" * 68)})
    with pytest.raises(ValueError, match="tensor 'q'.*bytes given"):
        lg.write(p, {}, {"q": ("q8_0", (2, 32), b"\0" * 67)})
    with pytest.raises(ValueError, match="llama.cpp allows at most 63"):
        lg.write(p, {}, {"x" * 64: np.zeros(2, np.float32)})
    with pytest.raises(ValueError, match="does not fit in uint8"):
        lg.write(p, {"k": lg.Value(300, "uint8")}, {})
    with pytest.raises(TypeError, match="cannot store a dict"):
        lg.write(p, {"k": {}}, {})
    with pytest.raises(ValueError, match="unknown ggml type"):
        lg.write(p, {}, {"q": ("q9_9", (2, 32), b"")})
    with pytest.raises(FileNotFoundError):
        lg.write(tmp_path / "no" / "such" / "dir.gguf", {}, {})
    assert not p.exists()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        llmc.gguf_info(tmp_path / "nope.gguf")
    with pytest.raises(OSError):
        llmc.gguf_info(tmp_path)


# ---------------------------------------------------------------------------------------------- corrupt files
def _s(b):
    b = b.encode() if isinstance(b, str) else b
    return struct.pack("<Q", len(b)) + b


def _kv(key, vtype, payload):
    return _s(key) + struct.pack("<I", vtype) + payload


def _ti(name, ne, gtype, offset):
    return _s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne) + struct.pack(
        "<IQ", gtype, offset)


def _file(kvs, tis, data=b"", n_kv=None, n_t=None, version=3, align=32, magic=b"GGUF"):
    head = magic + struct.pack("<IQQ", version, len(tis) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
    body = head + b"".join(kvs) + b"".join(tis)
    body += b"\0" * (-len(body) % align)
    return body + data


GOOD_KVS = [
    _kv("general.architecture", 8, _s("llama")),
    _kv("n", 4, struct.pack("<I", 7)),
    _kv("toks", 9, struct.pack("<IQ", 8, 3) + _s("a") + _s("bc") + _s("")),
    _kv("scores", 9, struct.pack("<IQ", 6, 2) + struct.pack("<2f", 1, 2)),
]
GOOD_TIS = [_ti("a", [8], 0, 0), _ti("b", [32, 1], 8, 32)]
GOOD_DATA = struct.pack("<8f", *range(8)) + bytes(range(34)) + b"\0" * 30


def _open(tmp_path, blob, name="x.gguf"):
    p = tmp_path / name
    p.write_bytes(blob)
    return lg.GGUFFile(p)


def test_handmade_good_file(tmp_path):
    f = _open(tmp_path, _file(GOOD_KVS, GOOD_TIS, GOOD_DATA))
    assert f.metadata["toks"] == ["a", "bc", ""] and f.metadata["n"] == 7
    np.testing.assert_array_equal(f.tensor("a"), np.arange(8, dtype=np.float32))
    assert bytes(f.tensor_bytes("b")) == bytes(range(34))
    r = gguf.GGUFReader(str(tmp_path / "x.gguf"))  # the oracle agrees the hand-made file is valid
    assert [t.name for t in r.tensors] == ["a", "b"]


def test_truncated_at_every_byte(tmp_path):
    blob = _file(GOOD_KVS, GOOD_TIS, GOOD_DATA)
    end_of_data = len(blob) - 30  # the last 30 bytes are padding after tensor b
    p = tmp_path / "t.gguf"
    for cut in range(end_of_data):
        p.write_bytes(blob[:cut])
        with pytest.raises(ValueError, match="t.gguf"):
            lg.GGUFFile(p)


CORRUPT = [
    # (what, kvs, tis, data, extra file() args, expected message)
    ("bad magic", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"magic": b"GGUG"}, "not a GGUF file"),
    ("version 1", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"version": 1}, "version 1"),
    ("version 4", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"version": 4}, "unknown GGUF version 4"),
    ("big endian", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"version": 0x03000000}, "big-endian"),
    ("huge n_kv", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"n_kv": 2**62}, "claims 4611686018427387904 metadata keys"),
    ("huge n_tensors", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"n_t": 2**63}, "claims 9223372036854775808 tensors"),
    ("one kv too many", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"n_kv": 5}, "."),
    ("one tensor too many", GOOD_KVS, GOOD_TIS, GOOD_DATA, {"n_t": 3}, "."),
    ("key length lies", [struct.pack("<Q", 2**40) + b"general"], [], b"", {"n_kv": 1}, "string length 1099511627776"),
    ("string value lies", [_kv("s", 8, struct.pack("<Q", 2**63) + b"x")], [], b"", {}, "key 's': string length"),
    ("unknown value type", [_kv("k", 13, b"\0" * 8)], [], b"", {}, "key 'k' has unknown value type 13"),
    ("unknown array type", [_kv("k", 9, struct.pack("<IQ", 99, 1) + b"\0" * 8)], [], b"", {},
     "key 'k': array has unknown element type 99"),
    ("nested array", [_kv("k", 9, struct.pack("<IQ", 9, 1) + b"\0" * 12)], [], b"", {}, "key 'k' is an array of arrays"),
    ("array count lies", [_kv("k", 9, struct.pack("<IQ", 6, 2**61) + b"\0" * 8)], [], b"", {},
     "key 'k': array of 2305843009213693952 float32"),
    ("string array count lies", [_kv("k", 9, struct.pack("<IQ", 8, 2**60) + _s("a"))], [], b"", {},
     "key 'k': array of 1152921504606846976 strings"),
    ("string array element lies", [_kv("k", 9, struct.pack("<IQ", 8, 2) + _s("a") + struct.pack("<Q", 2**50))],
     [], b"", {}, "key 'k': string 1 has length 1125899906842624"),
    ("bool not 0/1", [_kv("b", 7, b"\x02")], [], b"", {}, "key 'b': bool value 2"),
    ("duplicate key", [_kv("k", 4, b"\0" * 4), _kv("k", 4, b"\1\0\0\0")], [], b"", {}, "duplicate metadata key 'k'"),
    ("NUL in key", [_kv("a\0b", 4, b"\0" * 4)], [], b"", {}, "contains a NUL byte"),
    ("alignment type", [_kv("general.alignment", 5, struct.pack("<i", 32))], [], b"", {},
     "'general.alignment' must be uint32"),
    ("alignment not power of 2", [_kv("general.alignment", 4, struct.pack("<I", 48))], [], b"", {},
     "general.alignment' = 48 is not a power of two"),
    ("alignment zero", [_kv("general.alignment", 4, struct.pack("<I", 0))], [], b"", {}, "= 0 is not a power"),
    ("too many dims", GOOD_KVS, [_ti("a", [1, 1, 1, 1, 8], 0, 0)], GOOD_DATA, {}, "tensor 'a' has 5 dimensions"),
    ("unknown ggml type", GOOD_KVS, [_ti("a", [8], 99, 0)], GOOD_DATA, {}, "tensor 'a' has unknown ggml type 99"),
    ("removed ggml type", GOOD_KVS, [_ti("a", [8], 4, 0)], GOOD_DATA, {}, "tensor 'a' has unknown ggml type 4"),
    ("row not whole blocks", GOOD_KVS, [_ti("q", [31], 8, 0)], GOOD_DATA, {}, "tensor 'q'.*block of 32"),
    ("negative dim", GOOD_KVS, [_ti("a", [2**63], 0, 0)], GOOD_DATA, {}, "tensor 'a': dimension 0"),
    ("size overflow", GOOD_KVS, [_ti("a", [2**40, 2**40], 0, 0)], GOOD_DATA, {}, "tensor 'a'.*overflows"),
    ("misaligned offset", GOOD_KVS, [_ti("a", [8], 0, 4)], GOOD_DATA, {}, "tensor 'a': offset 4 is not a multiple"),
    ("out of the data", GOOD_KVS, [_ti("a", [8], 0, 96)], GOOD_DATA, {}, "tensor 'a': bytes \\[96, 128\\)"),
    ("offset huge", GOOD_KVS, [_ti("a", [8], 0, 2**64 - 32)], GOOD_DATA, {}, "tensor 'a': bytes"),
    ("too big for the data", GOOD_KVS, [_ti("a", [1000], 0, 0)], GOOD_DATA, {}, "tensor 'a': bytes \\[0, 4000\\)"),
    ("overlap", GOOD_KVS, [_ti("a", [8], 0, 0), _ti("b", [8], 0, 0)], GOOD_DATA, {}, "'a' and 'b' overlap"),
    ("duplicate tensor", GOOD_KVS, [_ti("a", [8], 0, 0), _ti("a", [8], 0, 32)], GOOD_DATA, {},
     "duplicate tensor name 'a'"),
    ("tensor name lies", GOOD_KVS, [struct.pack("<Q", 2**33) + b"abc"], GOOD_DATA, {}, "the name of tensor 0"),
]


@pytest.mark.parametrize("case", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt(tmp_path, case):
    what, kvs, tis, data, extra, msg = case
    with pytest.raises(ValueError, match=msg):
        _open(tmp_path, _file(kvs, tis, data, **extra))


def test_unsupported_is_valueerror(tmp_path):
    with pytest.raises(llmc.UnsupportedError):
        _open(tmp_path, _file(GOOD_KVS, GOOD_TIS, GOOD_DATA, version=1))


def test_random_mutations_never_crash(tmp_path):
    """Randomized mutation (the parser's fuzz test): flip bytes, write random integers at random places, cut the
    file. Every result either opens (and then every value and tensor is readable) or raises ValueError."""
    base = _file(GOOD_KVS, GOOD_TIS, GOOD_DATA)
    rng = random.Random(1234)
    p = tmp_path / "m.gguf"
    opened = 0
    for it in range(1500):
        b = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            i = rng.randrange(len(b))
            if op < 0.4:
                b[i] = rng.randrange(256)
            elif op < 0.8:
                v = rng.choice([0, 1, 2, 3, 7, 8, 9, 12, 13, 31, 32, 255, 2**31, 2**32 - 1, 2**63, 2**64 - 1,
                                rng.randrange(2**64)])
                b[i:i + 8] = struct.pack("<Q", v)
            else:
                del b[rng.randrange(len(b)):]
                if not b:
                    b = bytearray(b"G")
        p.write_bytes(bytes(b))
        try:
            f = lg.GGUFFile(p)
        except ValueError:
            continue
        opened += 1
        f.metadata
        f.value_types()
        for t in f.tensors:
            assert len(f.tensor_bytes(t["name"])) == t["bytes"]
    assert opened > 0
