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
    """``ppl`` = exp(mean(nll)); ``nll[i]`` is the negative log-likelihood (nats) of token ``positions[i]`` (of text
    ``text_index[i]`` for ``texts=``). The mean
    is ``math.fsum(nll) / n_tokens`` (the correctly rounded sum, whatever the order of the terms)."""
    ppl: float
    nll: np.ndarray
    positions: np.ndarray
    n_tokens: int
    method: str
    context_length: int
    stride: int | None = None
    windows: int = field(default=0)
    text_index: np.ndarray | None = None  # texts=: the text each nll belongs to (positions count within it)
    n_texts: int = 1

    @property
    def text_ppl(self) -> np.ndarray:
        """Each text's own perplexity, (n_texts,) float64 (NaN for a text with no scored token); one text: (ppl,)."""
        if self.text_index is None:
            return np.array([self.ppl])
        out = np.full(self.n_texts, np.nan)
        for d in np.unique(self.text_index):
            part = self.nll[self.text_index == d]
            out[d] = math.exp(math.fsum(part.tolist()) / len(part))
        return out

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


def _encode(model, text_or_ids) -> np.ndarray:
    if isinstance(text_or_ids, str):
        tok = getattr(model, "tokenizer", None)
        if tok is None:
            raise ValueError("model has no tokenizer: pass token ids instead of text")
        return np.asarray(tok.encode(text_or_ids), np.int64)
    ids = np.asarray(text_or_ids)
    if ids.dtype.kind not in "iu" and not (ids.dtype.kind == "f" and ids.size == 0):
        raise TypeError(f"token ids must be integers, got dtype {ids.dtype}")
    return ids.astype(np.int64).reshape(-1)


# windows per call when texts= is given and batch_size is not: about this many tokens (the logits of a call are
# tokens * vocab floats, so this bounds them to a few hundred MB for a 50k vocabulary)
_TEXTS_BATCH_TOKENS = 1024


def perplexity(model, text_or_ids=None, *, texts=None, context_length: int | None = None, stride: int | None = None,
               method: str = "sliding", batch_size: int | None = None, progress: bool = True) -> PerplexityResult:
    """Perplexity of ``model`` on a text (encoded with ``model.tokenizer``) or a sequence of token ids, or on a
    corpus of them with ``texts=[...]``.

    Args:
        model: an ``llmc.Model`` (anything with ``logits(ids) -> (T, V)`` and ``context_length`` works;
            ``logits_batch(list_of_ids)`` is used when a call holds several windows).
        texts: a list of texts (str or id sequences) scored as a corpus: each text is windowed on its own (no
            window crosses two texts; each text's first token is not scored), the windows of all texts are run in
            batches (``model.logits_batch``: one batched prefill per call), and ``ppl`` is over every scored token
            of every text. ``result.text_index`` says which text each token belongs to, ``result.text_ppl`` gives
            each text's own perplexity (NaN for a text too short to score, which adds no tokens).
        context_length: window size; defaults to the model's context window.
        stride: step between sliding windows (default: context_length // 2); ignored by "chunks".
        method: "sliding" (Hugging Face) or "chunks" (llama.cpp).
        batch_size: windows evaluated per model call (default 1 for one text; with texts=, as many windows as
            fit about 1024 tokens).
        progress: show a progress bar (tqdm) on a terminal.
    """
    if method not in ("sliding", "chunks"):
        raise ValueError(f'method must be "sliding" or "chunks", got {method!r}')
    if (text_or_ids is None) == (texts is None):
        raise TypeError("perplexity takes one text (text_or_ids) or a corpus (texts=[...]), not both or neither")
    if texts is not None and (isinstance(texts, (str, bytes)) or (isinstance(texts, np.ndarray) and texts.ndim < 2)):
        raise TypeError("texts must be a list of texts or id sequences (for one text, pass it as text_or_ids)")
    docs = [_encode(model, text_or_ids)] if texts is None else [_encode(model, t) for t in texts]
    if not docs:
        raise ValueError("texts is empty: need at least one text")
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
    elif ctx < 4:
        raise ValueError(f'method="chunks" needs context_length >= 4, got {ctx}')
    windows = []  # (text, begin, end, first scored)
    for d, ids in enumerate(docs):
        w = _windows_sliding(len(ids), ctx, stride) if method == "sliding" else _windows_chunks(len(ids), ctx)
        if len(ids) >= 2:
            windows.extend((d, b, e, f) for b, e, f in w)
    if not windows:
        what = "the texts have" if texts is not None else "got"
        n = max(len(ids) for ids in docs)
        raise ValueError(f"need at least 2 tokens (and one full chunk of {ctx} for method='chunks'); {what} {n}")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    groups = []
    if batch_size is not None or texts is None:
        bs = batch_size or 1
        groups = [windows[i: i + bs] for i in range(0, len(windows), bs)]
    else:  # texts: as many windows per call as fit the token budget
        cur, tok = [], 0
        for w in windows:
            if cur and tok + (w[2] - w[1]) > _TEXTS_BATCH_TOKENS:
                groups.append(cur)
                cur, tok = [], 0
            cur.append(w)
            tok += w[2] - w[1]
        groups.append(cur)

    bar = None
    if progress and sys.stderr.isatty() and len(windows) > 1:
        try:
            from tqdm import tqdm

            bar = tqdm(total=len(windows), desc="perplexity", unit="window")
        except ImportError:  # pragma: no cover
            bar = None
    nll_parts, pos_parts, text_parts = [], [], []
    try:
        for group in groups:
            seqs = [docs[d][b:e] for d, b, e, _ in group]
            if len(seqs) > 1 and hasattr(model, "logits_batch"):
                all_logits = model.logits_batch(seqs)
            else:
                all_logits = [model.logits(s) for s in seqs]
            for (d, b, e, first), logits in zip(group, all_logits):
                logits = np.asarray(logits)[: e - b]
                # logits at window index j predict token b + j + 1
                rows = np.arange(first - 1 - b, e - 1 - b)
                if len(rows):
                    nll_parts.append(_token_nll(logits[rows], docs[d][b + rows + 1]))
                    pos_parts.append(b + rows + 1)
                    text_parts.append(np.full(len(rows), d, np.int64))
            if bar is not None:
                bar.update(len(group))
    finally:
        if bar is not None:
            bar.close()
    nll = np.concatenate(nll_parts)
    # fsum: exact (correctly rounded) whatever the order, so sharded runs (llmc.distributed) reduce to the same bits
    return PerplexityResult(ppl=math.exp(math.fsum(nll.tolist()) / len(nll)), nll=nll, positions=np.concatenate(pos_parts),
                            n_tokens=len(nll), method=method, context_length=ctx,
                            stride=stride if method == "sliding" else None, windows=len(windows),
                            text_index=None if texts is None else np.concatenate(text_parts),
                            n_texts=1 if texts is None else len(docs))
