"""llmc: the core ideas of large language models, real, fast and inspectable, on a C core.

Quick tour::

    import llmc, numpy as np
    logits = np.array([2.0, 1.0, 0.1])
    llmc.softmax(logits, temperature=0.5)
    llmc.hardmax(logits)
"""
from __future__ import annotations

from ._native import _core
from .attention import attention
from .tokenizer import Tokenizer
from .encodings import encoding_for_model, encoding_name_for_model, get_encoding, list_encoding_names
from . import data
from . import gguf
from .gguf import gguf_info
from .model import Model, Session
from .seq2seq import Seq2SeqDecoder, Seq2SeqModel
from .hooks import AblateHeads, AblateNeurons, Patch, Steer
from . import latent
from .default import default_training_summary, load_default
from .generate import ContextWindowWarning, Sampler, process_logits, sample
from .perplexity import PerplexityResult, perplexity
from .training import NonFiniteLossError, TrainHistory, loss_and_grads, train
from .quant import dequantize, quant_types, quantize
from . import experts
from .experts import moe
from .ops import (
    apply_rope,
    cross_entropy,
    embedding,
    gelu,
    hardmax,
    layer_norm,
    log_softmax,
    matmul,
    perplexity_from_logits,
    rms_norm,
    silu,
    sinusoidal_positions,
    softmax,
)

__version__ = "0.1.0"

UnsupportedError = _core.UnsupportedError


def __getattr__(name: str):
    """``llmc.distributed`` (Ray, an optional extra) is imported on first use, so ``import llmc`` never needs Ray."""
    if name == "distributed":
        import importlib

        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module 'llmc' has no attribute {name!r}")


def set_num_threads(n: int) -> None:
    """Set the threads used by llmc's kernels and by OpenBLAS (one setting for both)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The threads llmc's kernels and OpenBLAS use: what set_num_threads set, else ``OMP_NUM_THREADS`` as it was
    when llmc was imported (a positive count; torch reads it the same way), else every core this process may use."""
    return _core.get_num_threads()


def simd_info() -> dict:
    """What the vector kernels run and why.

    - ``active`` / ``best``: the SIMD level in use and the best this CPU has ("scalar", "avx2", "avx512").
    - ``features``: what the CPU and OS offer (avx2, fma, f16c, avx512f/bw/vl, avx512_vnni, avx512_bf16, amx_*).
    - ``quant_kernels`` / ``quant_reason``: the quantized dot products the typed matmul runs, and why.
    - ``bf16_path``: how BF16 / F16 weights are multiplied.
    - ``amx``: what llmc does with Intel AMX (detects and reports it; it has no AMX kernel).
    """
    info = _core.simd_info()
    feats = info["features"]
    if info["quant_kernels"] == "avx2":
        info["bf16_path"] = ("bf16 -> fp32 by a 16-bit shift, f16 -> fp32 by F16C, then FMA against fp32 activations "
                             "(exact weights; vdpbf16ps is not used: it would round activations to bf16, and decode "
                             "is bound by reading the weights)")
    else:
        info["bf16_path"] = "portable: each weight converted exactly to fp32, fp32 multiply-adds"
    amx_os = {1: "the kernel supports AMX tile data", 0: "the kernel does not offer AMX tile data",
              -1: "the kernel cannot say whether it supports AMX"}.get(info.pop("amx_os"), "")
    if feats["amx_tile"]:
        info["amx"] = (f"detected (amx_bf16={feats['amx_bf16']}, amx_int8={feats['amx_int8']}); {amx_os}; not used: "
                       "llmc has no AMX kernel, so it never requests the tile permission or runs a tile instruction")
    else:
        info["amx"] = "not present on this CPU"
    return info


def blas_info() -> str:
    """OpenBLAS's own build description (version, target, threading)."""
    return _core.blas_info()


__all__ = [
    "apply_rope", "cross_entropy", "embedding", "gelu", "hardmax", "layer_norm", "log_softmax", "matmul",
    "perplexity_from_logits", "rms_norm", "silu", "sinusoidal_positions", "softmax", "set_num_threads",
    "get_num_threads", "simd_info", "blas_info", "UnsupportedError", "Sampler", "sample", "process_logits",
    "perplexity", "PerplexityResult", "attention", "train", "loss_and_grads", "TrainHistory", "Model", "Session",
    "Seq2SeqModel", "Seq2SeqDecoder",
    "Tokenizer", "load_default", "default_training_summary", "get_encoding", "encoding_for_model",
    "encoding_name_for_model", "list_encoding_names", "data", "ContextWindowWarning", "NonFiniteLossError",
    "quantize", "dequantize", "quant_types",
    "Steer", "AblateHeads", "AblateNeurons", "Patch", "latent", "gguf", "gguf_info", "moe", "experts",
]
