"""GGUF, llama.cpp's model file: read its metadata and tensors (zero-copy, from a memory map) and write new files.

The parser and writer are C (csrc/gguf.c): every count, length, offset and dimension is checked against the file
before it is used, so a corrupt file raises ValueError naming the key or tensor, never crashes.

Quick tour::

    import llmc
    info = llmc.gguf_info("model.gguf")           # metadata + tensor table, no weights loaded
    info["metadata"]["general.architecture"]      # 'llama'
    info["tensors"][0]                            # {'name': 'token_embd.weight', 'type': 'q4_k', 'shape': (32000, 4096), ...}
    f = llmc.gguf.GGUFFile("model.gguf")
    f.tensor("output_norm.weight")                # a read-only NumPy view of the mapped bytes (F32/F16/BF16 typed)
    llmc.gguf.write("out.gguf", {"general.architecture": "llama"}, {"w": np.zeros((2, 32), np.float32)})

Shapes are NumPy's (rows, cols) order; GGUF stores the reverse (`ne`, fastest dimension first), reported as "ne".
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Union

import numpy as np

from ._native import _core

__all__ = ["GGUFFile", "gguf_info", "write", "Value", "GGML_TYPES", "VALUE_TYPES"]

PathLike = Union[str, "os.PathLike[str]"]

#: GGUF metadata value types (the file's ids)
VALUE_TYPES = {"uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5, "float32": 6, "bool": 7,
               "string": 8, "array": 9, "uint64": 10, "int64": 11, "float64": 12}
_NP_VALUE = {np.dtype(np.uint8): 0, np.dtype(np.int8): 1, np.dtype(np.uint16): 2, np.dtype(np.int16): 3,
             np.dtype(np.uint32): 4, np.dtype(np.int32): 5, np.dtype(np.float32): 6, np.dtype(np.bool_): 7,
             np.dtype(np.uint64): 10, np.dtype(np.int64): 11, np.dtype(np.float64): 12}

#: ggml tensor types a file may hold: name -> (id, values per block, bytes per block)
GGML_TYPES = {name: (i, bs, bb) for i, name, bs, bb in _core.ggml_types()}
_TYPE_NAME = {i: name for name, (i, _, _) in GGML_TYPES.items()}
_NP_TENSOR = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i8": np.int8, "i16": np.int16,
              "i32": np.int32, "i64": np.int64}


def type_name(type_id: int) -> str:
    """ggml type id -> name ("q4_k")."""
    return _TYPE_NAME[type_id]


def type_id(name: str) -> int:
    """ggml type name ("q4_k", "Q8_0", "f32") -> id; ValueError naming the known ones when unknown."""
    if not isinstance(name, str):
        raise TypeError(f"a ggml type name must be a str, got {type(name).__name__}")
    t = GGML_TYPES.get(name.lower())
    if t is None:
        raise ValueError(f"unknown ggml type {name!r}; known: {', '.join(GGML_TYPES)}")
    return t[0]


def row_bytes(type_id_: int, n: int) -> int:
    """Bytes of a row of n values of a ggml type (n a multiple of its block size)."""
    _, bs, bb = GGML_TYPES[type_name(type_id_)]
    if n % bs:
        raise ValueError(f"{n} values per row is not a multiple of {type_name(type_id_)}'s block of {bs}")
    return n // bs * bb


class Value:
    """A metadata value with an explicit GGUF type, for `write`: Value(7, "int32"), Value([1, 2], "array", "uint64").
    """

    __slots__ = ("value", "type", "elem_type")

    def __init__(self, value: Any, type: str, elem_type: str | None = None):
        if type not in VALUE_TYPES:
            raise ValueError(f"unknown GGUF value type {type!r}; known: {', '.join(VALUE_TYPES)}")
        if type == "array" and elem_type not in VALUE_TYPES:
            raise ValueError(f"an array needs an element type (one of {', '.join(VALUE_TYPES)}), got {elem_type!r}")
        self.value, self.type, self.elem_type = value, type, elem_type

    def __repr__(self):
        return f"Value({self.value!r}, {self.type!r}" + (f", {self.elem_type!r})" if self.elem_type else ")")


class GGUFFile:
    """An open GGUF file. Metadata is parsed on open; tensor bytes stay in the memory map until asked for."""

    def __init__(self, path: PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        self.path = os.fspath(path)
        self._h = _core.gguf_open(self.path)
        info = self._h.info()
        self.version: int = info["version"]
        self.alignment: int = info["alignment"]
        self.data_offset: int = info["data_offset"]
        self.file_size: int = info["file_size"]
        self._metadata: dict | None = None
        self._tensors = None

    @property
    def metadata(self) -> dict:
        """{key: value} in file order: numbers as int/float/bool, strings as str (invalid UTF-8 replaced), numeric
        arrays as NumPy arrays, string arrays as lists of str."""
        if self._metadata is None:
            self._metadata = self._h.metadata(False)
        return self._metadata

    def get(self, key: str, default: Any = None, raw: bool = False) -> Any:
        """One metadata value (raw=True: strings as bytes, exactly as stored), or default when absent."""
        v = self._h.get(key, raw)
        return default if v is None else v

    def value_types(self) -> dict:
        """{key: (type, element type or None, count)}, e.g. {'llama.block_count': ('uint32', None, 1)}."""
        return self._h.kv_types()

    @property
    def tensors(self) -> list[dict]:
        """The tensor table in file order: name, type (name), type_id, shape (NumPy order), ne (GGUF order),
        bytes, offset (from the start of the data section)."""
        if self._tensors is None:
            self._tensors = [{"name": n, "type": _TYPE_NAME[t], "type_id": t, "shape": tuple(reversed(ne)), "ne": ne,
                              "bytes": nb, "offset": off} for n, t, ne, off, nb in self._h.tensors()]
        return self._tensors

    def tensor_info(self, name: str) -> dict:
        for t in self.tensors:
            if t["name"] == name:
                return t
        raise KeyError(f"{self.path}: no tensor named {name!r}")

    def tensor_bytes(self, name: str) -> np.ndarray:
        """The tensor's bytes as a read-only uint8 view of the mapped file (keeps the file open while it lives)."""
        return self._h.tensor_bytes(name)

    def tensor(self, name: str) -> np.ndarray:
        """A read-only view in NumPy's shape order: float32/float16/int types as themselves, bf16 as uint16 bits,
        block-quantized types as uint8 of shape (..., rows, row bytes) (dequantize them with llmc.dequantize)."""
        t = self.tensor_info(name)
        raw = self.tensor_bytes(name)
        shape = t["shape"]
        if t["type"] in _NP_TENSOR:
            return raw.view(_NP_TENSOR[t["type"]]).reshape(shape)
        if t["type"] == "bf16":
            return raw.view(np.uint16).reshape(shape)
        return raw.reshape(shape[:-1] + (row_bytes(t["type_id"], shape[-1]),))

    def __repr__(self):
        arch = self.get("general.architecture", "?")
        return f"GGUFFile({self.path!r}, v{self.version}, {arch}, {len(self.tensors)} tensors)"


def gguf_info(path: PathLike) -> dict:
    """A GGUF file's header without loading its weights:
    {"path", "version", "alignment", "data_offset", "file_size", "metadata": {key: value}, "value_types": {...},
     "tensors": [{"name", "type", "shape", "ne", "bytes", "offset"}]}."""
    f = GGUFFile(path)
    return {"path": f.path, "version": f.version, "alignment": f.alignment, "data_offset": f.data_offset,
            "file_size": f.file_size, "metadata": f.metadata, "value_types": f.value_types(),
            "tensors": [{k: v for k, v in t.items() if k != "type_id"} for t in f.tensors]}


# ---------------------------------------------------------------------------------------------- writing
def _infer(key: str, v: Any) -> tuple[int, Any, int]:
    """(type, value, elem_type) for a Python value: bool -> bool, int -> uint32 (>= 0) / int32 / int64 / uint64
    (llama.cpp reads its hyperparameters as uint32), float -> float32, str/bytes -> string, NumPy array -> array of
    its dtype, list of str -> string array, list of int -> int32 array, list of float -> float32 array."""
    if isinstance(v, Value):
        if v.type == "array":
            et = VALUE_TYPES[v.elem_type]
            if v.elem_type == "string":
                return 9, list(v.value), et
            np_t = {t: d for d, t in _NP_VALUE.items()}[et]
            return 9, np.ascontiguousarray(np.asarray(v.value, dtype=np_t)), et
        return VALUE_TYPES[v.type], v.value, -1
    if isinstance(v, (bool, np.bool_)):
        return 7, bool(v), -1
    if isinstance(v, (int, np.integer)):
        v = int(v)
        if 0 <= v < 2**32:
            return 4, v, -1
        if -(2**31) <= v < 0:
            return 5, v, -1
        return (11, v, -1) if v >= -(2**63) and v < 2**63 else (10, v, -1)
    if isinstance(v, (float, np.floating)):
        return 6, float(v), -1
    if isinstance(v, (str, bytes)):
        return 8, v, -1
    if isinstance(v, np.ndarray):
        if v.ndim != 1:
            raise ValueError(f"metadata {key!r}: arrays must be 1-D, got shape {v.shape}")
        if v.dtype.kind in "US" or v.dtype == object:
            return 9, [x for x in v.tolist()], 8
        if v.dtype not in _NP_VALUE:
            raise TypeError(f"metadata {key!r}: GGUF has no array of {v.dtype}")
        return 9, np.ascontiguousarray(v.astype(v.dtype.newbyteorder("<"), copy=False)), _NP_VALUE[v.dtype]
    if isinstance(v, (list, tuple)):
        if not v:
            return 9, np.zeros(0, np.int32), 5
        if all(isinstance(x, (str, bytes)) for x in v):
            return 9, list(v), 8
        if all(isinstance(x, (bool, np.bool_)) for x in v):
            return 9, np.asarray(v, np.bool_), 7
        if all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v):
            return 9, np.asarray(v, np.int32), 5
        if all(isinstance(x, (int, float, np.integer, np.floating)) for x in v):
            return 9, np.asarray(v, np.float32), 6
        raise TypeError(f"metadata {key!r}: a list must hold only str, only int, only float or only bool")
    raise TypeError(f"metadata {key!r}: cannot store a {type(v).__name__} in GGUF (use llmc.gguf.Value)")


def write(path: PathLike, metadata: Mapping[str, Any], tensors: Mapping[str, Any], alignment: int = 32) -> None:
    """Write a GGUF v3 file atomically (temporary file, fsync, rename).

    metadata: {key: value}; types are inferred (see _infer) or given with llmc.gguf.Value. general.alignment is
    added when alignment is not 32.
    tensors: {name: array} in file order, where an array is float32/float16/int (stored as f32/f16/i*), or a
    (type, shape, data) triple with a ggml type name, a NumPy-order shape and the raw bytes (any buffer) of that type
    and shape, e.g. ("q4_k", (4096, 4096), q_bytes).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if isinstance(alignment, bool) or not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise ValueError(f"alignment must be a power of two, got {alignment!r}")
    kvs = []
    md = dict(metadata)
    if alignment != 32 and "general.alignment" not in md:
        md["general.alignment"] = Value(alignment, "uint32")
    for k, v in md.items():
        if not isinstance(k, str):
            raise TypeError(f"metadata keys must be str, got {type(k).__name__}")
        t, val, et = _infer(k, v)
        kvs.append((k, t, val, et))
    ts = []
    np_types = {np.dtype(d): n for n, d in _NP_TENSOR.items()}
    for name, v in tensors.items():
        if not isinstance(name, str):
            raise TypeError(f"tensor names must be str, got {type(name).__name__}")
        if isinstance(v, tuple):
            if len(v) != 3:
                raise ValueError(f"tensor {name!r}: give an array or a (type, shape, data) triple")
            tname, shape, data = v
            tid = type_id(tname)
            shape = tuple(int(s) for s in shape)
            data = memoryview(data).cast("B") if not isinstance(data, np.ndarray) else np.ascontiguousarray(data)
        else:
            a = np.ascontiguousarray(v)
            if a.dtype not in np_types:
                raise TypeError(f"tensor {name!r}: dtype {a.dtype} has no ggml type (use float32, float16 or ints, "
                                "or a (type, shape, bytes) triple)")
            tid, shape, data = type_id(np_types[a.dtype]), a.shape if a.ndim else (1,), a
        if not 1 <= len(shape) <= 4:
            raise ValueError(f"tensor {name!r}: GGUF holds 1 to 4 dimensions, got shape {shape}")
        ts.append((name, tid, tuple(reversed(shape)), data))
    _core.gguf_write(os.fspath(path), kvs, ts, alignment if "general.alignment" not in md else 0)
