"""safetensors reader (csrc/safetensors.c) against the `safetensors` package, plus corruption and fuzz tests."""
import json
import struct

import numpy as np
import pytest
from conftest import lazy_import
from safetensors.numpy import save_file

from llmc._native import _core

torch = lazy_import("torch")
safetensors_torch = lazy_import("safetensors.torch")  # needs torch: the tests using it skip without


def _tensors():
    rng = np.random.default_rng(0)
    return {
        "a.weight": rng.standard_normal((7, 5)).astype(np.float32),
        "b": rng.standard_normal((3,)).astype(np.float16),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "c.bias": rng.standard_normal((2, 3, 4)).astype(np.float32),
    }


def test_info_and_read_match_safetensors(tmp_path):
    p = tmp_path / "m.safetensors"
    t = _tensors()
    save_file(t, str(p), metadata={"format": "pt"})
    info = _core.safetensors_info(str(p))
    assert info == {k: ({"float32": "F32", "float16": "F16"}[str(v.dtype)], v.shape) for k, v in t.items()}
    for k, v in t.items():
        got = _core.safetensors_read(str(p), k)
        assert got.dtype == np.float32 and got.shape == v.shape
        np.testing.assert_array_equal(got, v.astype(np.float32))


def test_bf16_and_f16_exact(tmp_path):
    # every finite/inf/nan bit pattern of half, and a spread of bf16 values, convert exactly like torch
    h = torch.arange(0, 65536, dtype=torch.int32).to(torch.int16).view(torch.float16)
    b = torch.randn(4099, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    p = tmp_path / "x.safetensors"
    safetensors_torch.save_file({"h": h, "b": b}, str(p))
    got_h = _core.safetensors_read(str(p), "h")
    ref_h = h.float().numpy()
    assert np.array_equal(np.isnan(got_h), np.isnan(ref_h))
    m = ~np.isnan(ref_h)
    assert np.array_equal(got_h[m].view(np.uint32), ref_h[m].view(np.uint32))
    np.testing.assert_array_equal(_core.safetensors_read(str(p), "b"), b.float().numpy())


def _raw(header: dict, data: bytes, hlen=None) -> bytes:
    h = json.dumps(header).encode()
    return struct.pack("<Q", len(h) if hlen is None else hlen) + h + data


def _write(tmp_path, blob, name="bad.safetensors"):
    p = tmp_path / name
    p.write_bytes(blob)
    return str(p)


@pytest.mark.parametrize(
    "header,data,match",
    [
        ({"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 12]}}, b"\0" * 16, "does not match"),
        ({"x": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}, b"\0" * 8, "past the end"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}, b"\0" * 8, "before start"),
        ({"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "y": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12, "overlap"),
        ({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4, "shape"),
        ({"x": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "unknown dtype"),
        ({"x": {"dtype": "F32", "shape": [1]}}, b"\0" * 4, "data_offsets"),
        ({"x": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4, "dtype"),
        ({"x": [1, 2]}, b"", "object"),
        ({"x": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 4]}}, b"\0" * 4, "overflow"),
    ],
)
def test_corrupt_headers(tmp_path, header, data, match):
    p = _write(tmp_path, _raw(header, data))
    with pytest.raises(ValueError, match=match) as e:
        _core.safetensors_info(p)
    assert "bad.safetensors" in str(e.value)


def test_other_dtypes_open_but_do_not_convert(tmp_path):
    import llmc

    p = _write(tmp_path, _raw({"ids": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}}, b"\0" * 8))
    assert _core.safetensors_info(p) == {"ids": ("I64", (1,))}  # checkpoints carry int buffers (position_ids)
    with pytest.raises(llmc.UnsupportedError, match=r"'ids' has dtype I64"):
        _core.safetensors_read(p, "ids")
    p = _write(tmp_path, _raw({"x": {"dtype": "F4", "shape": [2], "data_offsets": [0, 1]}}, b"\0"))
    with pytest.raises(llmc.UnsupportedError, match=r"'x' has dtype F4"):
        _core.safetensors_info(p)


def test_header_length_lies(tmp_path):
    ok = _raw({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(ValueError, match="truncated"):
        _core.safetensors_info(_write(tmp_path, struct.pack("<Q", 10**6) + ok[8:]))
    with pytest.raises(ValueError, match="not sane"):
        _core.safetensors_info(_write(tmp_path, struct.pack("<Q", 2**63) + ok[8:]))
    with pytest.raises(ValueError, match="shorter than the 8-byte"):
        _core.safetensors_info(_write(tmp_path, b"\1\0\0"))
    with pytest.raises(ValueError, match="invalid JSON"):
        _core.safetensors_info(_write(tmp_path, struct.pack("<Q", 5) + b"{oops" + b"\0" * 4))
    with pytest.raises(FileNotFoundError):
        _core.safetensors_info(str(tmp_path / "missing.safetensors"))


def test_truncations_and_flipped_bytes_never_crash(tmp_path):
    p = tmp_path / "good.safetensors"
    save_file(_tensors(), str(p))
    blob = p.read_bytes()
    # every truncation point in the header and a spread in the data
    cuts = list(range(0, min(len(blob), 400))) + list(range(400, len(blob), 37))
    for n in cuts:
        q = _write(tmp_path, blob[:n], "cut.safetensors")
        with pytest.raises(ValueError):
            _core.safetensors_info(q)
    rng = np.random.default_rng(0)
    hlen = struct.unpack("<Q", blob[:8])[0]
    for _ in range(600):
        b = bytearray(blob)
        for i in rng.integers(0, 8 + hlen, size=int(rng.integers(1, 4))):
            b[i] = int(rng.integers(0, 256))
        q = _write(tmp_path, bytes(b), "flip.safetensors")
        try:
            info = _core.safetensors_info(q)
        except ValueError:  # incl. UnsupportedError
            continue
        for k in info:  # whatever parsed must be readable without going out of bounds
            try:
                _core.safetensors_read(q, k)
            except ValueError:  # a flipped dtype (e.g. F32 -> I32) is unsupported, not a crash
                pass
