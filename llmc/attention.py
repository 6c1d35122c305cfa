"""Scaled dot-product attention: the standard O(N^2)-memory kernel and a flash-style tiled O(N)-memory kernel.

Both run in the C core (csrc/attention.c) behind the same C call, ``llmc_attention``, so they can be swapped and
compared one for one::

    import llmc, numpy as np
    q = np.random.randn(12, 1024, 64).astype(np.float32)      # (heads, time, head dim)
    k, v = q.copy(), q.copy()
    o_flash = llmc.attention(q, k, v, causal=True)            # impl="flash" is the default
    o_std, w = llmc.attention(q, k, v, causal=True, impl="standard", return_weights=True)   # w: (12, 1024, 1024)
"""
from __future__ import annotations

import math
from typing import Literal, Optional, Tuple, Union

import numpy as np
from numpy.typing import ArrayLike

from ._native import _core

__all__ = ["attention", "standard_memory_limit", "set_standard_memory_limit"]

_IMPLS = {"standard": 0, "flash": 1}


def _opt_positive_int(value, name: str) -> int:
    """None -> 0 (the C core's 'automatic' / 'none'); else an int >= 1."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int or None, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{name} must be >= 1 (or None), got {value}")
    return int(value)


def attention(
    q: ArrayLike,
    k: ArrayLike,
    v: ArrayLike,
    *,
    causal: bool = False,
    impl: Literal["flash", "standard"] = "flash",
    scale: Optional[float] = None,
    window: Optional[int] = None,
    block_q: Optional[int] = None,
    block_k: Optional[int] = None,
    return_weights: bool = False,
) -> Union[np.ndarray, Tuple[np.ndarray, np.ndarray]]:
    """softmax(scale * q @ k^T + mask) @ v, per head, in float32.

    Shapes: q (Hq, Tq, d) or (B, Hq, Tq, d); k, v (Hkv, Tk, d) or (B, Hkv, Tk, d). Hq must be a multiple of Hkv:
    query head h reads key/value head h // (Hq // Hkv) (grouped-query attention; Hkv = 1 is multi-query). The result
    has q's shape. Float32 inputs whose last axis is contiguous are read in place, strides and all (e.g. a
    ``x.transpose(0, 2, 1, 3)`` view of a (B, T, H, d) tensor); anything else is converted to packed float32 first.

    Args:
        causal: query i sits at position ``Tk - Tq + i`` (the queries are the *last* Tq tokens, as when decoding
            with a KV cache) and sees only keys at positions <= its own. Needs Tq <= Tk.
        impl: ``"flash"`` (default) never forms the (Tq, Tk) score matrix: it walks blocks of queries and keys,
            keeping a running max and sum per query (online softmax), skips blocks the mask hides entirely, and
            runs batch x heads x query blocks in parallel; extra memory is a few tiles per thread.
            ``"standard"`` forms the whole (B, Hq, Tq, Tk) score tensor with BLAS, softmaxes its rows and multiplies
            by v. If that tensor would exceed :func:`standard_memory_limit` (half the RAM by default) it raises
            MemoryError naming the size, before allocating anything.
        scale: multiplies q . k; default 1 / sqrt(d). Must be finite.
        window: sliding-window size W >= 1. With ``causal=True`` a query at position p sees keys p - W < j <= p
            (its last W keys, as in Mistral); without it, keys with |j - p| < W. Needs Tq <= Tk.
        block_q, block_k: flash tile sizes: a tile holds block_q queries of each of the G = Hq // Hkv heads that
            share a key/value head (so K and V are read once per group), against block_k keys. Default 64 // G
            queries (at least 1) and 64 keys; any size >= 1 works, including ones that do not divide the lengths.
            Ignored by the standard implementation.
        return_weights: standard only; also return the softmax weights, (Hq, Tq, Tk) or (B, Hq, Tq, Tk), exactly 0
            where masked, e.g. for heat maps.

    Returns:
        out, or (out, weights) when ``return_weights=True``.

    Raises:
        TypeError: an argument of the wrong type (e.g. a string for q or for window).
        ValueError: mismatched shapes, Hq not a multiple of Hkv, Tk = 0, causal/window with Tq > Tk, window <= 0,
            a non-finite scale, an unknown impl, or return_weights with flash.
        MemoryError: the standard implementation's score tensor does not fit.
    """
    if not isinstance(impl, str):
        raise TypeError(f"impl must be 'flash' or 'standard', got {type(impl).__name__}")
    if impl not in _IMPLS:
        raise ValueError(f"impl must be 'flash' or 'standard', got {impl!r}")
    if not isinstance(causal, (bool, np.bool_)):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    if not isinstance(return_weights, (bool, np.bool_)):
        raise TypeError(f"return_weights must be a bool, got {type(return_weights).__name__}")
    if return_weights and impl != "standard":
        raise ValueError('return_weights=True needs impl="standard": the flash kernel never forms the weights')
    if scale is not None:
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise TypeError(f"scale must be a number or None, got {type(scale).__name__}")
        scale = float(scale)
        if not math.isfinite(scale):
            raise ValueError(f"scale must be finite, got {scale}")
    w = _opt_positive_int(window, "window")
    bq = _opt_positive_int(block_q, "block_q")
    bk = _opt_positive_int(block_k, "block_k")
    return _core.attention(q, k, v, int(bool(causal)), _IMPLS[impl], scale, w, bq, bk, bool(return_weights))


def standard_memory_limit() -> int:
    """Bytes the standard implementation may use for its score tensor (default: half the physical RAM)."""
    return _core.attention_standard_limit()


def set_standard_memory_limit(nbytes: Optional[int]) -> int:
    """Set the standard implementation's score-tensor limit in bytes (None restores the default); returns it."""
    if nbytes is None:
        return _core.attention_standard_limit(0)
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)):
        raise TypeError(f"nbytes must be an int or None, got {type(nbytes).__name__}")
    if nbytes <= 0:
        raise ValueError(f"nbytes must be >= 1 (or None for the default), got {nbytes}")
    return _core.attention_standard_limit(int(nbytes))
