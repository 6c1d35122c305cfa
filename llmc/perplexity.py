"""Perplexity: exp of the mean negative log-likelihood a model assigns to each token of a text given the tokens
before it. Two standard ways to fit a long text into a finite context window:

- ``method="sliding"`` (Hugging Face's "Perplexity of fixed-length models"): windows of ``context_length`` tokens
  moved by ``stride``; each token is scored exactly once, by the first window that contains it at a position it can
  be predicted from, and the overlap with the previous window only serves as context. (The loop published there
  weights each window's mean loss by ``num_valid - 1``, one token short for every window after the first; llmc
  averages the exact per-token losses.) ``stride == context_length``
  gives disjoint windows (fast, pessimistic); smaller strides give every token more context.
- ``method="chunks"`` (llama.cpp's ``llama-perplexity``): disjoint chunks of ``context_length`` tokens (a trailing
  partial chunk is dropped) and only the second half of each chunk is scored, so every scored token has at least
  ``context_length / 2`` tokens of context. llama.cpp also replaces each chunk's first token by BOS for vocabularies
  that use one; llmc scores the text's own tokens and leaves that substitution out.

The very first token of a text is never scored (nothing predicts it). The mean NLL is ``math.fsum(nll) / n``: the
correctly rounded sum, independent of the order the tokens are added in, so a corpus scored in pieces
(``llmc.distributed``) reduces to exactly the same value.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from . import ops

__all__ = ["PerplexityResult", "perplexity"]


@dataclass
class PerplexityResult:
    """``ppl`` = exp(mean(nll)); ``nll[i]`` is the negative log-likelihood (nats) of token ``positions[i]``. The mean
    is ``math.fsum(nll) / n_tokens`` (the correctly rounded sum, whatever the order of the terms)."""
    ppl: float
    nll: np.ndarray
    positions: np.ndarray
    n_tokens: int
    method: str
    context_length: int
    stride: int | None = None
    windows: int = field(default=0)

    @property
    def nll_sum(self) -> float:
        """The summed NLL (nats), correctly rounded (math.fsum)."""
        return math.fsum(self.nll.tolist())

    @property
    def mean_nll(self) -> float:
        return self.nll_sum / len(self.nll)

    def __repr__(self) -> str:
        return (f"PerplexityResult(ppl={self.ppl:.4f}, mean_nll={self.mean_nll:.4f}, n_tokens={self.n_tokens}, "
                f"method={self.method!r}, context_length={self.context_length}, stride={self.stride})")


def _token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per row; logits (n, V), targets (n,)."""
    lp = ops.log_softmax(logits, axis=-1)
    return -lp[np.arange(len(targets)), targets].astype(np.float64)


def _windows_sliding(n: int, ctx: int, stride: int):
    """(begin, end, first_scored) per window, as in Hugging Face's documented loop."""
    prev_end = 0
    for begin in range(0, n, stride):
        end = min(begin + ctx, n)
        yield begin, end, max(prev_end, begin + 1)
        prev_end = end
        if end == n:
            break


def _windows_chunks(n: int, ctx: int):
    for c in range(n // ctx):
        begin = c * ctx
        yield begin, begin + ctx, begin + ctx // 2 + 1  # logits at ctx/2 .. ctx-2 predict tokens ctx/2+1 .. ctx-1


def perplexity(model, text_or_ids, *, context_length: int | None = None, stride: int | None = None,
               method: str = "sliding", batch_size: int = 1, progress: bool = True) -> PerplexityResult:
    """Perplexity of ``model`` on a text (encoded with ``model.tokenizer``) or a sequence of token ids.

    Args:
        model: an ``llmc.Model`` (anything with ``logits(ids) -> (T, V)`` and ``context_length`` works;
            ``logits_batch(list_of_ids)`` is used when batch_size > 1).
        context_length: window size; defaults to the model's context window.
        stride: step between sliding windows (default: context_length // 2); ignored by "chunks".
        method: "sliding" (Hugging Face) or "chunks" (llama.cpp).
        batch_size: windows evaluated per model call.
        progress: show a progress bar (tqdm) on a terminal.
    """
    if method not in ("sliding", "chunks"):
        raise ValueError(f'method must be "sliding" or "chunks", got {method!r}')
    if isinstance(text_or_ids, str):
        tok = getattr(model, "tokenizer", None)
        if tok is None:
            raise ValueError("model has no tokenizer: pass token ids instead of text")
        ids = np.asarray(tok.encode(text_or_ids), np.int64)
    else:
        ids = np.asarray(text_or_ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got dtype {ids.dtype}")
        ids = ids.astype(np.int64).reshape(-1)
    # None means "the model's window"; 0 is a value (and an error below), not a request for the default
    ctx = int(context_length if context_length is not None else (getattr(model, "context_length", 0) or 0))
    if ctx < 2:
        raise ValueError(f"context_length must be >= 2, got {context_length!r} (model: {getattr(model, 'context_length', None)})")
    model_ctx = getattr(model, "context_length", None)
    if model_ctx and ctx > model_ctx:
        raise ValueError(f"context_length {ctx} exceeds the model's context window {model_ctx}")
    if method == "sliding":
        stride = int(stride if stride is not None else max(1, ctx // 2))
        if not 1 <= stride <= ctx:
            raise ValueError(f"stride must be in [1, context_length={ctx}], got {stride}")
        windows = list(_windows_sliding(len(ids), ctx, stride))
    else:
        if ctx < 4:
            raise ValueError(f'method="chunks" needs context_length >= 4, got {ctx}')
        windows = list(_windows_chunks(len(ids), ctx))
    if len(ids) < 2 or not windows:
        raise ValueError(f"need at least 2 tokens (and one full chunk of {ctx} for method='chunks'); got {len(ids)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")

    bar = None
    if progress and sys.stderr.isatty() and len(windows) > 1:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(windows), desc="perplexity", unit="window")
        except ImportError:  # pragma: no cover
            bar = None
    nll_parts, pos_parts = [], []
    try:
        for i in range(0, len(windows), batch_size):
            group = windows[i: i + batch_size]
            seqs = [ids[b:e] for b, e, _ in group]
            if len(seqs) > 1 and hasattr(model, "logits_batch"):
                all_logits = model.logits_batch(seqs)
            else:
                all_logits = [model.logits(s) for s in seqs]
            for (b, e, first), logits in zip(group, all_logits):
                logits = np.asarray(logits)[: e - b]
                # logits at window index j predict token b + j + 1
                rows = np.arange(first - 1 - b, e - 1 - b)
                if len(rows):
                    nll_parts.append(_token_nll(logits[rows], ids[b + rows + 1]))
                    pos_parts.append(b + rows + 1)
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()
    nll = np.concatenate(nll_parts)
    # fsum: exact (correctly rounded) whatever the order, so sharded runs (llmc.distributed) reduce to the same bits
    return PerplexityResult(ppl=math.exp(math.fsum(nll.tolist()) / len(nll)), nll=nll, positions=np.concatenate(pos_parts),
                            n_tokens=len(nll), method=method, context_length=ctx,
                            stride=stride if method == "sliding" else None, windows=len(windows))
