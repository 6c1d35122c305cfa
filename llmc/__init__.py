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
from .model import Model, Session
from .hooks import AblateHeads, AblateNeurons, Patch, Steer
from . import latent
from .default import default_training_summary, load_default
from .generate import ContextWindowWarning, Sampler, process_logits, sample
from .perplexity import PerplexityResult, perplexity
from .training import NonFiniteLossError, TrainHistory, loss_and_grads, train
from .quant import dequantize, quant_types, quantize
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


def set_num_threads(n: int) -> None:
    """Set the threads used by llmc's kernels and by OpenBLAS (one setting for both)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The threads llmc's kernels and OpenBLAS use (all cores unless set)."""
    return _core.get_num_threads()


def simd_info() -> dict:
    """{'active': ..., 'best': ...}: the vector instruction set the kernels use and the best this CPU has."""
    return _core.simd_info()


def blas_info() -> str:
    """OpenBLAS's own build description (version, target, threading)."""
    return _core.blas_info()


__all__ = [
    "apply_rope", "cross_entropy", "embedding", "gelu", "hardmax", "layer_norm", "log_softmax", "matmul",
    "perplexity_from_logits", "rms_norm", "silu", "sinusoidal_positions", "softmax", "set_num_threads",
    "get_num_threads", "simd_info", "blas_info", "UnsupportedError", "Sampler", "sample", "process_logits",
    "perplexity", "PerplexityResult", "attention", "train", "loss_and_grads", "TrainHistory", "Model", "Session",
    "Tokenizer", "load_default", "default_training_summary", "get_encoding", "encoding_for_model",
    "encoding_name_for_model", "list_encoding_names", "data", "ContextWindowWarning", "NonFiniteLossError",
    "quantize", "dequantize", "quant_types",
    "Steer", "AblateHeads", "AblateNeurons", "Patch", "latent",
]
