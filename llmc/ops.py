"""Numeric building blocks: matmul, softmax/hardmax, cross-entropy, norms, activations, positions, embeddings.

Every function accepts any array-like of real numbers, converts it to float32 (copying only when needed), runs in
the C core with the GIL released, and returns a new float32 NumPy array. Bad input raises TypeError (not numbers)
or ValueError (shapes, ranges), with the shapes in the message.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from ._native import _core

__all__ = [
    "matmul", "softmax", "log_softmax", "hardmax", "cross_entropy", "perplexity_from_logits", "layer_norm",
    "rms_norm", "gelu", "silu", "sinusoidal_positions", "apply_rope", "embedding",
]


def _axis(axis) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an int, got {type(axis).__name__}")
    return int(axis)


def _temperature(t) -> float:
    if isinstance(t, bool) or not isinstance(t, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a number, got {type(t).__name__}")
    t = float(t)
    if not (t > 0.0) or math.isinf(t):
        raise ValueError(f"temperature must be a finite number > 0, got {t}")
    return t


def matmul(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Matrix product through BLAS sgemm.

    a: (m, k) or (batch, m, k); b: (k, n) or (batch, k, n). A 2-D operand is shared across the batch.
    Returns (m, n) or (batch, m, n) float32.
    """
    return _core.matmul(a, b)


def softmax(x: ArrayLike, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """softmax(x / temperature) along `axis`.

    Subtracts the maximum first, so logits of +-1e4 are fine; -inf entries get probability 0. A slice that is all
    -inf has no softmax and raises ValueError. temperature must be > 0: higher flattens the distribution,
    lower sharpens it towards `hardmax`.
    """
    return _core.softmax(x, _axis(axis), _temperature(temperature))


def log_softmax(x: ArrayLike, axis: int = -1, temperature: float = 1.0) -> np.ndarray:
    """log(softmax(x / temperature)) along `axis`, computed as (x - max)/t - logsumexp, without forming softmax."""
    return _core.log_softmax(x, _axis(axis), _temperature(temperature))


def hardmax(x: ArrayLike, axis: int = -1) -> np.ndarray:
    """One-hot of the argmax along `axis` (the temperature -> 0 limit of softmax). Ties go to the lowest index."""
    return _core.hardmax(x, _axis(axis))


def cross_entropy(logits: ArrayLike, targets: ArrayLike) -> float:
    """Mean negative log-likelihood (natural log) of `targets` (T,) under softmax(`logits` (T, V)).

    Targets outside [0, V) raise ValueError. Accumulated in float64.
    """
    return _core.cross_entropy(logits, targets)


def perplexity_from_logits(logits: ArrayLike, targets: ArrayLike) -> float:
    """exp(cross_entropy(logits, targets)): the effective number of equally likely next tokens."""
    return math.exp(cross_entropy(logits, targets))


def layer_norm(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, eps: float = 1e-5) -> np.ndarray:
    """LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * weight + bias. x: (..., C); weight, bias: (C,)."""
    return _core.layer_norm(x, weight, bias, float(eps))


def rms_norm(x: ArrayLike, weight: ArrayLike, eps: float = 1e-6) -> np.ndarray:
    """RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight. x: (..., C); weight: (C,)."""
    return _core.rms_norm(x, weight, float(eps))


def gelu(x: ArrayLike, approximate: Literal["tanh", "none"] = "tanh") -> np.ndarray:
    """GELU. approximate="tanh" (GPT-2's gelu_new) or "none" (exact, x * Phi(x) with erf)."""
    if approximate == "tanh":
        return _core.gelu_tanh(x)
    if approximate == "none":
        return _core.gelu(x)
    raise ValueError(f'approximate must be "tanh" or "none", got {approximate!r}')


def silu(x: ArrayLike) -> np.ndarray:
    """SiLU (swish): x * sigmoid(x)."""
    return _core.silu(x)


def sinusoidal_positions(n_positions: int, dim: int) -> np.ndarray:
    """Vaswani et al.'s fixed positional encodings, (n_positions, dim) with dim even.

    Row p holds sin(p / 10000^(2i/dim)) at column 2i and cos(...) at column 2i+1.
    """
    return _core.sinusoidal_positions(int(n_positions), int(dim))


def apply_rope(
    x: ArrayLike, positions: ArrayLike, theta: float = 10000.0, layout: Literal["half", "interleaved"] = "half"
) -> np.ndarray:
    """Rotary position embedding of x (..., T, d) at integer `positions` (T,).

    Pair i of the head dimension rotates by positions[t] * theta^(-2i/d). layout="half" pairs (i, i + d/2)
    (Hugging Face Llama's rotate_half); "interleaved" pairs (2i, 2i+1) (GPT-J, Meta's original Llama).
    """
    layouts = {"half": 0, "interleaved": 1}
    if layout not in layouts:
        raise ValueError(f'layout must be "half" or "interleaved", got {layout!r}')
    return _core.apply_rope(x, positions, float(theta), layouts[layout])


def embedding(table: ArrayLike, ids: ArrayLike) -> np.ndarray:
    """Row lookup: table (vocab, dim), ids of any shape -> ids.shape + (dim,). An id outside [0, vocab) is a
    ValueError naming it."""
    return _core.embedding(table, ids)
