"""Decoding: the sampler chain that turns next-token logits into a token.

The chain runs in the C core (csrc/sampling.c) in Hugging Face transformers' order and with its semantics:

    repetition penalty -> no-repeat n-grams -> temperature -> top-k -> top-p -> min-p -> softmax -> draw

Greedy decoding (``do_sample=False`` or ``temperature=0``) applies only the first two and takes the argmax.
Random draws use llmc's own generator (xoshiro256**), so a seed gives the same tokens on every machine.
"""
from __future__ import annotations

import os
import warnings
from typing import Iterable, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._native import _core

__all__ = ["Sampler", "sample", "process_logits", "generate", "ContextWindowWarning", "OVERFLOW_MODES"]

OVERFLOW_MODES = ("stop", "slide", "error")


class ContextWindowWarning(UserWarning):
    """generate() stopped because prompt + generated tokens filled the model's context window (overflow="stop")."""


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


# ---------------------------------------------------------------------------------------------------- generation
def _eos_ids(model) -> list[int]:
    cfg = getattr(model, "_config", None) or getattr(model, "config", {}) or {}
    eos = cfg.get("eos_token_id")
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def _wants_sampling(do_sample, temperature, top_k, top_p, min_p, seed) -> bool:
    if temperature == 0:
        return False
    if do_sample is not None:
        return bool(do_sample)
    # not said: sample when any sampling knob (or a seed) was given, otherwise decode greedily like transformers
    return temperature != 1.0 or top_k > 0 or top_p < 1.0 or min_p > 0.0 or seed is not None


def _stop_at(text: str, stop: Sequence[str]) -> int:
    """Index where the earliest stop string starts in text, or -1."""
    hits = [text.find(s) for s in stop if s and s in text]
    return min(hits) if hits else -1


class _Decoder:
    """Turns a growing list of token ids into text pieces, holding back a trailing partial UTF-8 character so that a
    character split over several tokens is emitted whole."""

    def __init__(self, tok):
        self.tok, self.ids, self.sent = tok, [], ""

    def push(self, token: int) -> str:
        self.ids.append(int(token))
        text = self.tok.decode(self.ids)
        stable = text.rstrip("\ufffd")  # an incomplete multi-byte character decodes as U+FFFD for now
        if not stable.startswith(self.sent):
            stable = self.sent  # the decoder rewrote earlier text (rare): wait for it to settle
        piece, self.sent = stable[len(self.sent):], stable
        return piece

    def flush(self) -> str:
        text = self.tok.decode(self.ids)
        piece = text[len(self.sent):] if text.startswith(self.sent) else ""
        self.sent = text
        return piece


def generate(model, prompt, max_new_tokens: int = 64, *, temperature: float = 1.0, top_k: int = 0,
             top_p: float = 1.0, min_p: float = 0.0, repetition_penalty: float = 1.0, no_repeat_ngram_size: int = 0,
             do_sample: bool | None = None, num_beams: int = 1, length_penalty: float = 1.0, early_stopping=False,
             num_return_sequences: int = 1, stop: str | Sequence[str] | None = None, seed: int | None = None,
             stream: bool = False, return_logprobs: bool = False, overflow: str = "stop", keep_first: int = 0,
             eos_token_id: int | Sequence[int] | None = None, interventions=None, batch_size: int | None = None):
    """Continue ``prompt`` (a str, encoded with ``model.tokenizer``, or a list of token ids) by up to
    ``max_new_tokens`` tokens. See ``llmc.Model.generate`` for the parameters.

    A list of prompts (strs or id lists; a nested list is never read as one prompt) decodes them together with
    continuous batching (``llmc.batch.generate_batch``; ``batch_size`` sequences at once) and returns a list with
    one result per prompt.

    The context window (``model.context_length`` tokens) holds the prompt and the generated tokens. ``overflow``
    says what happens when they would not fit:

    - ``"stop"`` (default): generation stops when the window is full, warns (``llmc.ContextWindowWarning``) and
      returns what was generated. A prompt longer than the window raises ValueError before any work.
    - ``"slide"``: the oldest tokens after the first ``keep_first`` leave the window first-in-first-out and
      generation continues (see ``Model.session``).
    - ``"error"``: ValueError before any work when prompt + max_new_tokens exceeds the window.

    Returns the generated text (str prompt) or ids (id prompt), without the prompt; a list of them when
    ``num_return_sequences > 1``; with ``return_logprobs=True`` each result is a pair (result, logprobs) where
    logprobs are the chosen tokens' log-probabilities (greedy / sampling) or the hypothesis score (beam search).
    """
    if interventions:  # every session generation opens carries them (positions: absolute, prompt included)
        model = _Intervened(model, interventions)
    batch_kw = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                    repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                    do_sample=do_sample, num_beams=num_beams, length_penalty=length_penalty,
                    early_stopping=early_stopping, num_return_sequences=num_return_sequences, stop=stop, seed=seed,
                    stream=stream, return_logprobs=return_logprobs, overflow=overflow, keep_first=keep_first,
                    eos_token_id=eos_token_id, interventions=interventions, batch_size=batch_size)
    if _is_batch(prompt):  # a list of prompts: decoded together (llmc/batch.py)
        from .batch import generate_batch

        return generate_batch(model, list(prompt), max_new_tokens, **batch_kw)
    if batch_size is not None:
        raise ValueError("batch_size is for a list of prompts (or beam search, whose beams are the batch)")
    if num_beams > 1 and not interventions and not stream:  # the beams of one prompt are a batch
        from .batch import generate_batch

        return generate_batch(model, [prompt], max_new_tokens, **batch_kw)[0]
    text_mode = isinstance(prompt, str)
    tok = getattr(model, "tokenizer", None)
    if text_mode:
        if tok is None:
            raise ValueError("this model has no tokenizer: pass the prompt as a list of token ids")
        ids = list(tok.encode(prompt, add_special_tokens=True))  # the file's template, e.g. Llama's <s>
    else:
        ids = [int(i) for i in np.asarray(prompt).reshape(-1)]
    if not ids:
        raise ValueError("the prompt is empty: generation needs at least one token to condition on")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    max_new_tokens, window_limited = _fit_window(model, len(ids), int(max_new_tokens), overflow)
    session_overflow = "slide" if overflow == "slide" else "error"
    if not 1 <= num_return_sequences:
        raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if stops and tok is None:
        raise ValueError("stop strings need a tokenizer")
    eos = _eos_ids(model) if eos_token_id is None else (
        [int(eos_token_id)] if isinstance(eos_token_id, (int, np.integer)) else [int(e) for e in eos_token_id])
    sampling = _wants_sampling(do_sample, temperature, top_k, top_p, min_p, seed)
    V = model.vocab_size

    if num_beams > 1:
        if stream:
            raise ValueError("stream=True is not available with beam search (hypotheses change until the end)")
        if sampling:
            raise ValueError("beam search here is deterministic: use do_sample=False (or temperature=0) with num_beams")
        return _generate_beams(model, ids, max_new_tokens, num_beams, length_penalty, early_stopping,
                               num_return_sequences, eos, repetition_penalty, no_repeat_ngram_size, text_mode, tok,
                               stops, return_logprobs, session_overflow, keep_first, window_limited)

    sampler = Sampler(V, temperature=temperature if sampling else 1.0, top_k=top_k, top_p=top_p, min_p=min_p,
                      repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                      do_sample=sampling, seed=seed)
    if stream:
        if num_return_sequences != 1:
            raise ValueError("stream=True produces one sequence")
        if tok is None:
            raise ValueError("stream=True yields text and needs a tokenizer")
        return _stream(model, ids, max_new_tokens, sampler, eos, stops, tok, session_overflow, keep_first,
                       window_limited)
    results = []
    for _ in range(num_return_sequences):
        out, lps = [], []
        for t, lp in _decode_loop(model, ids, max_new_tokens, sampler, eos, session_overflow, keep_first):
            out.append(t)
            lps.append(lp)
            if stops and _stop_at(tok.decode(out), stops) >= 0:
                break
        if window_limited and len(out) == max_new_tokens and (not out or out[-1] not in eos):
            _warn_window(model, len(ids), len(out))
        results.append(_finish(out, lps, text_mode, tok, stops, return_logprobs))
    return results if num_return_sequences > 1 else results[0]


def _is_batch(prompt) -> bool:
    """True for a list of prompts: a list/tuple of str, of sequences or arrays, or a 2-D array (never a flat list of
    ids, which is one prompt)."""
    if isinstance(prompt, np.ndarray):
        return prompt.ndim > 1
    if isinstance(prompt, (list, tuple)):
        return any(isinstance(p, (str, list, tuple, np.ndarray)) for p in prompt)
    return False


class _Intervened:
    """A model whose sessions apply interventions (llmc.Steer, ...): generation code stays unaware of them."""

    def __init__(self, model, interventions):
        from .hooks import _intervention_hooks

        _intervention_hooks(model, interventions)  # validate once, before generating
        self._model, self._interventions = model, interventions

    def __getattr__(self, name):
        return getattr(self._model, name)

    def session(self, **kwargs):
        return self._model.session(interventions=self._interventions, **kwargs)


def _fit_window(model, n_prompt: int, max_new_tokens: int, overflow: str) -> tuple[int, bool]:
    """(max_new_tokens to run, whether the window, not the caller, set it) for the chosen overflow policy."""
    if overflow not in OVERFLOW_MODES:
        raise ValueError(f'overflow must be "stop", "slide" or "error", got {overflow!r}')
    ctx = int(getattr(model, "context_length", 0) or 0)
    if overflow == "slide" or ctx <= 0:
        return max_new_tokens, False
    if n_prompt > ctx:
        raise ValueError(f"the prompt has {n_prompt} tokens, more than the context window of {ctx}: shorten it, "
                         "or pass overflow=\"slide\" to keep only the most recent tokens")
    room = ctx - n_prompt
    if max_new_tokens <= room:
        return max_new_tokens, False
    if overflow == "error":
        raise ValueError(f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds the context "
                         f"window of {ctx} tokens; lower max_new_tokens to {room}, or pass overflow=\"stop\" "
                         "(stop at the window) or overflow=\"slide\" (drop the oldest tokens)")
    return room, True


def _warn_window(model, n_prompt: int, n_new: int) -> None:
    warnings.warn(f"generation stopped at the context window ({model.context_length} tokens: {n_prompt} of prompt "
                  f"+ {n_new} generated); pass overflow=\"slide\" to continue past it", ContextWindowWarning,
                  stacklevel=4)


def _decode_loop(model, ids, max_new_tokens, sampler, eos, overflow, keep_first):
    """Yield (token, logprob) from one KV-cached session until EOS (yielded) or max_new_tokens."""
    if max_new_tokens == 0:
        return
    s = model.session(overflow=overflow, keep_first=keep_first)
    logits = s.append(ids)
    history = list(ids)
    for _ in range(max_new_tokens):
        t, lp = sampler(logits, np.asarray(history, np.int64))
        t = int(t)
        yield t, float(lp)
        if t in eos:
            return
        history.append(t)
        logits = s.append([t])


def _finish(out, lps, text_mode, tok, stops, return_logprobs):
    if text_mode:
        text = tok.decode(out)
        cut = _stop_at(text, stops) if stops else -1
        res = text[:cut] if cut >= 0 else text
    else:
        res = out
    return (res, lps) if return_logprobs else res


def _stream(model, ids, max_new_tokens, sampler, eos, stops, tok, overflow, keep_first, window_limited=False):
    dec = _Decoder(tok)
    n_out, last = 0, None
    held = ""  # text not yet yielded because it may be the start of a stop string
    longest = max((len(s) for s in stops), default=0)
    for t, _ in _decode_loop(model, ids, max_new_tokens, sampler, eos, overflow, keep_first):
        n_out, last = n_out + 1, t
        if t in eos:
            break
        held += dec.push(t)
        if stops:
            cut = _stop_at(held, stops)
            if cut >= 0:
                if held[:cut]:
                    yield held[:cut]
                return
            # keep the last (longest stop - 1) characters back: they could begin a stop string
            safe = len(held) - (longest - 1)
            if safe > 0:
                yield held[:safe]
                held = held[safe:]
        elif held:
            yield held
            held = ""
    held += dec.flush()
    cut = _stop_at(held, stops) if stops else -1
    held = held[:cut] if cut >= 0 else held
    if held:
        yield held
    if window_limited and n_out == max_new_tokens and last not in eos:
        _warn_window(model, len(ids), n_out)


def _generate_beams(model, ids, max_new_tokens, num_beams, length_penalty, early_stopping, num_return_sequences,
                    eos, repetition_penalty, no_repeat_ngram_size, text_mode, tok, stops, return_logprobs, overflow,
                    keep_first, window_limited=False):
    from .beam import beam_search

    if max_new_tokens == 0:
        if window_limited:
            _warn_window(model, len(ids), 0)
        empty = _finish([], [], text_mode, tok, stops, False)
        return [empty] * num_return_sequences if num_return_sequences > 1 else empty
    # two banks of sessions: each step copies the parents' caches from one bank into the other (no recomputation)
    banks = [[model.session(overflow=overflow, keep_first=keep_first) for _ in range(num_beams)] for _ in range(2)]
    cur = 0
    V = model.vocab_size

    def step(parents, tokens):
        nonlocal cur
        if parents is None:
            first = banks[cur][0]
            logits = first.append(ids)
            for s in banks[cur][1:]:
                s.copy_from(first)
            return np.tile(logits, (num_beams, 1))
        nxt = banks[1 - cur]
        out = np.empty((num_beams, V), np.float32)
        for i, (p, t) in enumerate(zip(parents, tokens)):
            nxt[i].copy_from(banks[cur][p])
            out[i] = nxt[i].append([t])
        cur = 1 - cur
        return out

    process = None
    if repetition_penalty != 1.0 or no_repeat_ngram_size:
        chain = Sampler(V, repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                        do_sample=False, seed=0)
        process = lambda lp, hist: chain.process(lp, np.asarray(hist, np.int64))  # noqa: E731
    hyps = beam_search(step, ids, num_beams=num_beams, max_new_tokens=max_new_tokens, eos_token_ids=eos,
                       length_penalty=length_penalty, early_stopping=early_stopping,
                       num_return_sequences=num_return_sequences, process=process)
    if window_limited and any(len(h.ids) == max_new_tokens and h.ids[-1] not in eos for h in hyps):
        _warn_window(model, len(ids), max_new_tokens)
    results = []
    for h in hyps:
        res = _finish(h.ids, [], text_mode, tok, stops, False)
        results.append((res, h.score) if return_logprobs else res)
    return results if num_return_sequences > 1 else results[0]
