"""Models to and from GGUF files: Model.load("x.gguf") and model.save(path, format="gguf").

Loading is C (csrc/model_gguf.c): the {arch}.* keys give the configuration, the tensors keep their stored types
(pointing into the mapped file), llama's q/k rows are put back in Hugging Face order. This module adds the Python
side: a config.json-style dict (so the model saves to a Hugging Face folder too), the tokenizer from the metadata,
and writing: every weight in its type under llama.cpp's names, the {arch}.* keys and the tokenizer llama.cpp needs.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np

from ._native import _core
from . import gguf as _gguf
from .gguf_tokenizer import gguf_metadata_from_tokenizer_json, load_tokenizer, tokenizer_json

__all__ = ["load", "save", "hf_config"]

_GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gpt2": "gpt2"}
_HF_ARCH = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
            "qwen3": "Qwen3ForCausalLM", "gpt2": "GPT2LMHeadModel", "mixtral": "MixtralForCausalLM"}
# llama.cpp's general.file_type (enum llama_ftype) of a dtype recipe / majority type
_FTYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9, "q2_k": 10, "q3_k": 12,
          "q4_k_s": 14, "q4_k": 15, "q4_k_m": 15, "q5_k_s": 16, "q5_k": 17, "q5_k_m": 17, "q6_k": 18, "bf16": 32}


def hf_config(info: dict, rope: dict | None = None, special: dict | None = None) -> dict:
    """A transformers config.json (as a dict) for a model's parsed configuration (Model.info)."""
    arch = info["arch"]
    if arch == "gpt2":
        cfg = {"model_type": "gpt2", "vocab_size": info["vocab_size"], "n_embd": info["d_model"],
               "n_layer": info["n_layers"], "n_head": info["n_heads"], "n_positions": info["context_length"],
               "n_inner": info["d_ff"], "layer_norm_epsilon": info["norm_eps"],
               "activation_function": "gelu_new", "tie_word_embeddings": True}
    else:
        cfg = {"model_type": arch, "vocab_size": info["vocab_size"], "hidden_size": info["d_model"],
               "num_hidden_layers": info["n_layers"], "num_attention_heads": info["n_heads"],
               "num_key_value_heads": info["n_kv_heads"], "head_dim": info["head_dim"],
               "intermediate_size": info["d_ff"], "max_position_embeddings": info["context_length"],
               "rms_norm_eps": info["norm_eps"], "rope_theta": info["rope_theta"], "hidden_act": "silu",
               "tie_word_embeddings": bool(info["tied_embeddings"])}
        if arch in ("mistral", "mixtral"):
            cfg["sliding_window"] = info["sliding_window"] or None
        if arch == "mixtral":  # llama's GGUF form with {arch}.expert_count experts
            cfg.update(num_local_experts=info["n_experts"], num_experts_per_tok=info["n_experts_used"])
        if rope:
            cfg["rope_scaling"] = rope
    cfg["architectures"] = [_HF_ARCH[arch]]
    cfg.update({f"{k}_token_id": v for k, v in (special or {}).items() if v is not None})
    return cfg


def load(cls, path, attention: str, dtype: str | None, progress):
    """Model.load for a .gguf file (see Model.load)."""
    from .model import _dtype

    d = _dtype(dtype)
    p = Path(path).expanduser()
    core = _core.model_load_gguf(os.fsdecode(p), d, progress)
    f = _gguf.GGUFFile(p)
    special = {k: f.get(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos")}
    model = cls(core, hf_config(core.config(), None, special), attention, p)
    model.gguf_metadata = {k: v for k, v in f.metadata.items()}
    model._gguf_tokenizer = {k: (f.get(k, raw=True), f.value_types()[k]) for k in f.metadata
                             if k.startswith("tokenizer.")}
    if any(t["name"] == "rope_freqs.weight" for t in f.tensors):  # Llama 3 scaling, written back as it came
        model._rope_factors = np.array(f.tensor("rope_freqs.weight"), dtype=np.float32)
    if f.get("tokenizer.ggml.model") is not None:
        try:
            model.tokenizer = load_tokenizer(f)
        except (_core.UnsupportedError, ValueError) as e:
            warnings.warn(f"model.tokenizer is None: {e}", stacklevel=3)
    return model


# ---------------------------------------------------------------------------------------------- writing
def _permute(rows: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's converter's q/k row order from Hugging Face's: per head, rows (j, j + hd/2) become (2j, 2j+1).
    rows: (n_head * hd, row bytes) uint8."""
    r, rb = rows.shape
    return rows.reshape(n_head, 2, r // n_head // 2, rb).swapaxes(1, 2).reshape(r, rb)


def _tokenizer_metadata(model) -> dict:
    """tokenizer.ggml.* keys: kept from a GGUF the model came from, else converted from its tokenizer.json."""
    kept = getattr(model, "_gguf_tokenizer", None)
    if kept:
        out = {}
        names = {v: k for k, v in _gguf.VALUE_TYPES.items()}
        for k, (v, (t, et, _)) in kept.items():
            if t == "array":
                out[k] = _gguf.Value(v, "array", et) if et == "string" else np.asarray(
                    v, dtype={"float32": np.float32, "int32": np.int32, "uint32": np.uint32, "int64": np.int64,
                              "uint64": np.uint64, "uint8": np.uint8, "int8": np.int8, "bool": np.bool_,
                              "float64": np.float64, "uint16": np.uint16, "int16": np.int16}[et])
            else:
                out[k] = _gguf.Value(v, t) if t in names.values() else v
        return out
    tj_path = Path(model.path) / "tokenizer.json" if model.path and Path(model.path).is_dir() else None
    if tj_path is None or not tj_path.is_file():
        return {}
    tj = json.loads(tj_path.read_text(encoding="utf-8"))
    cfg = model.config
    add_bos, tcj = None, {}
    tc = tj_path.parent / "tokenizer_config.json"
    if tc.is_file():
        tcj = json.loads(tc.read_text(encoding="utf-8"))
        if isinstance(tcj.get("add_bos_token"), bool):
            add_bos = tcj["add_bos_token"]
    # special ids as llama.cpp's converter finds them: tokenizer_config.json's tokens first, then config.json's ids
    ids = {t["content"]: t["id"] for t in tj.get("added_tokens", [])}
    vocab = (tj.get("model") or {}).get("vocab") or {}
    special: dict = {}
    for typ, key in (("bos", "bos"), ("eos", "eos"), ("unk", "unknown"), ("sep", "seperator"), ("pad", "padding")):
        tok = tcj.get(f"{typ}_token")
        tok = tok.get("content") if isinstance(tok, dict) else tok
        tid = ids.get(tok, vocab.get(tok)) if isinstance(tok, str) else None
        if tid is None:
            v = cfg.get(f"{typ}_token_id")
            tid = v[0] if isinstance(v, list) and v else v
        if isinstance(tid, int) and 0 <= tid < model.vocab_size:
            special[key] = tid
    md = gguf_metadata_from_tokenizer_json(tj, model.vocab_size, special, add_bos)
    if isinstance(tcj.get("chat_template"), str):
        md["tokenizer.chat_template"] = tcj["chat_template"]
    return md


def _rope_factors(cfg: dict, head_dim: int) -> np.ndarray | None:
    """Llama 3's RoPE scaling as llama.cpp holds it: per-frequency divisors (rope_freqs.weight)."""
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    if (rp.get("rope_type") or rp.get("type")) != "llama3":
        return None
    import math

    base = float(rp.get("rope_theta", cfg.get("rope_theta", 10000.0)))
    factor, lo, hi = float(rp["factor"]), float(rp["low_freq_factor"]), float(rp["high_freq_factor"])
    orig = float(rp["original_max_position_embeddings"])
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / base ** (i / head_dim)
        wl = 2 * math.pi / freq
        if wl < orig / hi:
            out.append(1.0)
        elif wl > orig / lo:
            out.append(factor)
        else:
            smooth = (orig / wl - lo) / (hi - lo)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, np.float32)


def save(model, path, dtype: str | None = None, name: str | None = None) -> None:
    """model.save(path, format="gguf", dtype=None): a GGUF v3 file llama.cpp loads (see Model.save)."""
    from .model import _dtype

    d = _dtype(dtype)
    p = Path(path).expanduser()
    if d is not None and d != model.dtype:
        # convert a copy: write as is, reload converted, write that (the model itself is left as it is)
        tmp = p.with_name(p.name + ".unconverted.tmp")
        try:
            save(model, tmp, None, name)
            conv = load(type(model), tmp, "flash", d, None)
            # the tokenizer and rope factors came back from the temporary file
            conv._config = model.config
            save(conv, p, None, name)
            del conv
        finally:
            if tmp.exists():
                tmp.unlink()
        return
    info = model.info
    arch = _GGUF_ARCH.get(model.arch)
    if arch is None:
        raise _core.UnsupportedError(f"save(format='gguf'): architecture {model.arch!r} has no llama.cpp form here "
                                     f"(supported: {', '.join(_GGUF_ARCH)})")
    tensors: dict = {}
    types: dict[str, int] = {}
    for hf_name, view, ty, shape, transposed in model._m.tensors(True):
        g = _core.gguf_name(model.arch, hf_name, True)
        if g is None:
            raise _core.UnsupportedError(f"save(format='gguf'): no llama.cpp name for tensor {hf_name!r}")
        if len(shape) == 1:
            tensors[g] = np.ascontiguousarray(view, dtype=np.float32)
            continue
        raw = np.ascontiguousarray(view)
        if ty == "f32":
            raw = raw.view(np.float32)
            if model.arch == "gpt2" and hf_name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")) \
                    and not transposed:
                raw = np.ascontiguousarray(raw.T)  # Conv1D (in, out) -> llama.cpp's (out, in)
            raw = raw.view(np.uint8).reshape(raw.shape[0], -1)
        rows = raw.shape[0]
        cols = shape[0] if transposed else shape[1]
        if model.arch == "gpt2" and ty == "f32" and hf_name.endswith((".c_attn.weight", ".c_proj.weight",
                                                                       ".c_fc.weight")):
            rows, cols = shape[1], shape[0]
        if model.arch in ("llama", "mistral") and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            heads = info["n_heads"] if hf_name.endswith("q_proj.weight") else info["n_kv_heads"]
            raw = _permute(raw.reshape(rows, -1), heads)
        tensors[g] = (ty, (rows, cols), np.ascontiguousarray(raw))
        types[ty] = types.get(ty, 0) + raw.nbytes
    factors = getattr(model, "_rope_factors", None)
    if factors is None:
        factors = _rope_factors(model.config, info["head_dim"]) if arch == "llama" else None
    if factors is not None:
        tensors["rope_freqs.weight"] = np.asarray(factors, np.float32)
    major = max(types, key=types.get) if types else "f32"
    md: dict = {"general.architecture": arch, "general.type": "model",
                "general.name": name or (Path(model.path).name if model.path else f"llmc-{model.arch}"),
                "general.file_type": _FTYPE.get(model._m.dtype() or major, _FTYPE.get(major, 0)),
                "general.quantization_version": 2,
                f"{arch}.block_count": info["n_layers"], f"{arch}.context_length": info["context_length"],
                f"{arch}.embedding_length": info["d_model"], f"{arch}.feed_forward_length": info["d_ff"],
                f"{arch}.attention.head_count": info["n_heads"]}
    if arch == "gpt2":
        md[f"{arch}.attention.layer_norm_epsilon"] = float(info["norm_eps"])
    else:
        md[f"{arch}.attention.head_count_kv"] = info["n_kv_heads"]
        md[f"{arch}.rope.freq_base"] = float(info["rope_theta"])
        md[f"{arch}.attention.layer_norm_rms_epsilon"] = float(info["norm_eps"])
        md[f"{arch}.attention.key_length"] = info["head_dim"]
        md[f"{arch}.attention.value_length"] = info["head_dim"]
        md[f"{arch}.rope.dimension_count"] = info["head_dim"]
        if model.arch == "mistral" and info["sliding_window"]:
            md[f"{arch}.attention.sliding_window"] = info["sliding_window"]
    md[f"{arch}.vocab_size"] = info["vocab_size"]
    md.update(_tokenizer_metadata(model))
    _gguf.write(p, md, tensors)
