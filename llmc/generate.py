"""Decoding: the sampler chain that turns next-token logits into a token.

The chain runs in the C core (csrc/sampling.c) in Hugging Face transformers' order and with its semantics:

    repetition penalty -> no-repeat n-grams -> temperature -> top-k -> top-p -> min-p -> softmax -> draw

Greedy decoding (``do_sample=False`` or ``temperature=0``) applies only the first two and takes the argmax.
Random draws use llmc's own generator (xoshiro256**), so a seed gives the same tokens on every machine.
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np
from numpy.typing import ArrayLike

from ._native import _core

__all__ = ["Sampler", "sample", "process_logits"]


class Sampler:
    """A reusable sampler chain with its own random state (one per generation).

    Args:
        vocab: number of logits per step.
        temperature: > 0 divides the logits (higher = flatter); 0 means greedy.
        top_k: keep only the k most likely tokens (ties with the k-th are kept); 0 = off.
        top_p: nucleus sampling: keep the smallest most-likely set whose mass reaches top_p; 1.0 = off.
        min_p: drop tokens whose probability is below min_p times the top token's; 0 = off.
        repetition_penalty: CTRL penalty for tokens already in the history (> 1 discourages repeats); 1.0 = off.
        no_repeat_ngram_size: forbid any n-gram of this size from occurring twice; 0 = off.
        do_sample: False for greedy decoding.
        seed: seed of the generator; None draws one from the OS.
    """

    def __init__(self, vocab: int, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0,
                 repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0, do_sample: bool = True,
                 seed: int | None = None):
        if seed is None:
            seed = int.from_bytes(os.urandom(8), "little")
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        for name, v in [("top_k", top_k), ("no_repeat_ngram_size", no_repeat_ngram_size)]:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {type(v).__name__}")
        self.params = dict(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), min_p=float(min_p),
                           repetition_penalty=float(repetition_penalty),
                           no_repeat_ngram_size=int(no_repeat_ngram_size), do_sample=bool(do_sample))
        self.vocab = int(vocab)
        self._s = _core.Sampler(self.vocab, seed=int(seed) & (2**64 - 1), **self.params)

    @property
    def is_sampling(self) -> bool:
        """False when this chain decodes greedily."""
        return self.params["do_sample"] and self.params["temperature"] > 0

    def process(self, logits: ArrayLike, history: ArrayLike | None = None) -> np.ndarray:
        """The processed logits (filtered tokens are -inf), for (V,) or (N, V) logits; history: ids so far."""
        return self._s.process(logits, history)

    def __call__(self, logits: ArrayLike, history: ArrayLike | None = None):
        """Pick the next token: (token, logprob) for (V,) logits, (tokens (N,), logprobs (N,)) for (N, V).

        logprob is the chosen token's log-probability under the processed distribution."""
        return self._s.sample(logits, history)

    def seed(self, seed: int) -> None:
        """Restart the random generator."""
        self._s.seed(int(seed))


def _vocab_of(logits) -> tuple[np.ndarray, int]:
    x = np.asarray(logits)
    if x.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (V,) or (N, V), got {x.shape}")
    return x, x.shape[-1]


def process_logits(logits: ArrayLike, *, history: ArrayLike | Iterable[int] | None = None, temperature: float = 1.0,
                   top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, repetition_penalty: float = 1.0,
                   no_repeat_ngram_size: int = 0, do_sample: bool = True) -> np.ndarray:
    """Apply the sampler chain to raw logits and return them (filtered tokens = -inf), to see what a setting keeps.

    ``llmc.softmax(process_logits(...))`` is the distribution :func:`sample` draws from."""
    x, V = _vocab_of(logits)
    s = Sampler(V, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                do_sample=do_sample, seed=0)
    return s.process(x, None if history is None else np.asarray(list(history) if not hasattr(history, "shape") else history))


def sample(logits: ArrayLike, *, history: ArrayLike | Iterable[int] | None = None, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0, repetition_penalty: float = 1.0,
           no_repeat_ngram_size: int = 0, do_sample: bool = True, seed: int | None = None,
           return_logprobs: bool = False):
    """Draw the next token from raw logits (V,) (or one per row of (N, V)) with the full sampler chain.

    Returns an int (or an int64 array for (N, V)); with ``return_logprobs=True`` also the log-probability of each
    choice under the processed distribution. ``temperature=0`` or ``do_sample=False`` is greedy.

    >>> import llmc, numpy as np
    >>> llmc.sample(np.array([1.0, 5.0, 2.0]), temperature=0)
    1
    """
    x, V = _vocab_of(logits)
    s = Sampler(V, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                do_sample=do_sample, seed=seed)
    hist = None if history is None else np.asarray(list(history) if not hasattr(history, "shape") else history)
    tok, lp = s(x, hist)
    return (tok, lp) if return_logprobs else tok
