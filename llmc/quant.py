"""Quantization: ggml's block formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants Q2_K..Q6_K, F16, BF16), byte
for byte, so a tensor's bytes move between llmc and a GGUF file without conversion.

A quantized row of ``n`` values is ``n / block_size`` blocks; each block stores one or two fp16 scales and small
integers (value = scale * q, or scale * q - min). See docs/quantization.md for the layouts and error bounds::

    import llmc, numpy as np
    w = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    q = llmc.quantize(w, "q4_k")            # (4, 144) uint8: 144 bytes per 256 values
    w2 = llmc.dequantize(q, "q4_k", w.shape)
    llmc.quant_types()["q8_0"]              # (32, 34): 32 values in 34 bytes
"""
from __future__ import annotations

import numpy as np

from ._native import _core

_MAX_ID = 31  # ggml's ids run up to BF16 = 30


def _table() -> dict:
    out = {}
    for i in range(_MAX_ID):
        info = _core.type_info(i)
        if info is not None:
            out[info[0]] = (i, info[1], info[2])
    return out


_TYPES = _table()  # name -> (ggml id, block size, bytes per block)


def quant_types() -> dict:
    """{name: (block_size, bytes_per_block)} for every type llmc stores, e.g. ``"q8_0": (32, 34)``."""
    return {name: (bs, bb) for name, (_, bs, bb) in _TYPES.items()}


def type_id(type) -> int:
    """ggml's id of a type given by name (``"q4_k"``, case-insensitive) or id."""
    if isinstance(type, str):
        key = type.lower()
        if key not in _TYPES:
            raise ValueError(f"unknown quantization type {type!r}; known: {', '.join(sorted(_TYPES))}")
        return _TYPES[key][0]
    if isinstance(type, bool) or not isinstance(type, (int, np.integer)):
        raise TypeError(f"type must be a name like 'q8_0' or a ggml type id, got {type.__class__.__name__}")
    if _core.type_info(int(type)) is None:
        raise ValueError(f"unknown ggml type id {int(type)}")
    return int(type)


def row_bytes(type, n: int) -> int:
    """Bytes of one row of ``n`` values of ``type`` (ValueError unless n is a whole number of blocks)."""
    name, bs, bb = _core.type_info(type_id(type))
    if n % bs:
        raise ValueError(f"a row of {n} values is not a whole number of {name} blocks ({bs} values each)")
    return n // bs * bb


def quantize(array, type) -> np.ndarray:
    """Quantize ``array`` (..., n) to ``type``: a uint8 array (..., row_bytes) holding ggml's block bytes for each
    row (for a 2-D array: shape (rows, row_bytes)). Byte-identical to ggml's reference quantizers and to
    ``gguf.quants.quantize``. The last axis must be a whole number of blocks (ValueError naming n and the block
    size). A block holding NaN dequantizes to NaN (docs/quantization.md)."""
    tid = type_id(type)
    x = np.asarray(array)
    if x.dtype.kind not in "fiub":
        raise TypeError(f"array must hold real numbers, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError("quantize needs at least a 1-D array (a row of values), got a scalar")
    n = x.shape[-1]
    rb = row_bytes(tid, n)
    rows = int(np.prod(x.shape[:-1], dtype=np.int64))
    q = _core.quantize(np.ascontiguousarray(x, dtype=np.float32).reshape(rows, n), tid)
    return q.reshape(*x.shape[:-1], rb)


def dequantize(data, type, shape) -> np.ndarray:
    """The float32 values (shape ``shape``) of ``data``: the block bytes of a (..., n) tensor of ``type`` (a uint8
    array as ``quantize`` returns, or any bytes-like object). Equal to ``gguf.quants.dequantize`` exactly."""
    tid = type_id(type)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
    if not shape:
        raise ValueError("shape must have at least one dimension (the row length)")
    if any(s < 0 for s in shape):
        raise ValueError(f"shape {shape} has a negative dimension")
    if isinstance(data, np.ndarray):
        buf = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    else:
        buf = np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)
    n = shape[-1]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    return _core.dequantize(buf, tid, rows, n).reshape(shape)


_PATHS = {"auto": 0, "dot": 1, "tiles": 2, "rows": 3}


def matmul(x, w, type, out_features: int | None = None, *, out: np.ndarray | None = None, beta: float = 0.0,
           path: str = "auto") -> np.ndarray:
    """``x @ W.T`` for a weight W: (out, in) stored as block bytes of ``type`` (the uint8 (out, row_bytes) array
    ``quantize`` returns, or its bytes with ``out_features``). x: (T, in) or (in,). With ``out`` (a float32
    C-contiguous (T, out) array), computes ``out = beta * out + x @ W.T`` in place and returns it.

    This is the kernel the models' forward passes run (``llmc_matmul_typed``): few rows quantize x to Q8 once and
    take integer dot products with the weight blocks; many rows dequantize tiles of W and use sgemm. F32 weights
    take sgemv for one row, the few-row kernel (W streamed once, no packing) for 2-64 rows and sgemm above. ``path``
    forces one of them ("dot", "tiles", or "rows": the F32 few-row kernel for any T; for benchmarks and tests)."""
    if path not in _PATHS:
        raise ValueError(f"path must be one of {sorted(_PATHS)}, got {path!r}")
    tid = type_id(type)
    xa = np.asarray(x, dtype=np.float32)
    vec = xa.ndim == 1
    if xa.ndim not in (1, 2):
        raise ValueError(f"x must be (T, in) or (in,), got shape {xa.shape}")
    x2 = np.ascontiguousarray(xa.reshape(1, -1) if vec else xa)
    n_in = x2.shape[1]
    rb = row_bytes(tid, n_in)
    wa = np.asarray(w) if isinstance(w, np.ndarray) else np.frombuffer(memoryview(w).cast("B"), dtype=np.uint8)
    if out_features is None:
        if wa.ndim != 2 or wa.shape[1] != rb:
            raise ValueError(f"w must be (out, {rb}) uint8 for {n_in} {_core.type_info(tid)[0]} values per row, "
                             f"got shape {wa.shape}; pass out_features with flat bytes")
        out_features = wa.shape[0]
    buf = np.ascontiguousarray(wa).reshape(-1).view(np.uint8)
    if out is not None:
        y2 = out.reshape(1, -1) if (vec and out.ndim == 1) else out
        _core.matmul_typed(x2, buf, tid, int(out_features), _PATHS[path], y2, float(beta))
        return out
    y = _core.matmul_typed(x2, buf, tid, int(out_features), _PATHS[path])
    return y[0] if vec else y


__all__ = ["quant_types", "quantize", "dequantize", "matmul", "row_bytes", "type_id"]
