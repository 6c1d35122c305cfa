"""Batched decoding: several sequences advanced together, one batched model call per step (csrc/batch.c).

``model.generate([p1, p2, ...])`` lands here. Every step appends one token to each running sequence (and a whole
prompt to each sequence that starts) in a single call, so each weight matrix is read once per step for the whole
batch. The batch is *continuous*: at most ``batch_size`` sequences run at once, and a sequence that finishes (EOS,
a stop string, max_new_tokens, the context window) leaves its slot to the next prompt of the queue at the next step.
Each sequence keeps its own stop conditions, sampler and history, so its tokens are the ones an unbatched
``generate`` gives (greedy and beam search: identical; sampling: identical with the per-prompt seed described in
``generate_batch``).

Beam search runs on the batch too: the beams of a prompt are rows of the batch (forking a beam copies its cache;
a beam that continues itself keeps its session), and the beams of several prompts share the same call.
"""
from __future__ import annotations

import warnings
from collections import deque
from typing import Sequence

import numpy as np

__all__ = ["append_batch", "generate_batch"]


def append_batch(model, sessions, ids) -> np.ndarray:
    """Append ids[i] (an int or a sequence of ints) to sessions[i] for every i in one batched call; returns the
    next-token logits (B, vocab) after each session's last new token. Equal to ``sessions[i].append(ids[i])`` for
    each i up to float rounding, but every weight is read once for the whole batch. The sessions must be distinct,
    of this model, and without interventions."""
    seqs = [np.atleast_1d(np.asarray(t)) for t in ids]
    if len(seqs) != len(sessions):
        raise ValueError(f"append_batch got {len(sessions)} sessions and {len(seqs)} id sequences")
    for i, s in enumerate(seqs):
        if s.ndim != 1 or s.size == 0:
            raise ValueError(f"ids[{i}] must be a non-empty 1-D sequence of token ids, got shape {s.shape}")
        if s.dtype.kind not in "iu":
            raise TypeError(f"ids[{i}] must hold integer token ids, got dtype {s.dtype}")
    packed = np.concatenate(seqs).astype(np.int64) if seqs else np.zeros(0, np.int64)
    n = np.array([len(s) for s in seqs], np.int64)
    return model._m.append_batch([s._s for s in sessions], packed, n, False)


class _Job:
    """One sequence of the queue: a prompt (and which of its return sequences), its sampler, its outputs."""

    def __init__(self, index, ids, text_mode, max_new, window_limited, sampler):
        self.index, self.ids, self.text_mode = index, ids, text_mode
        self.max_new, self.window_limited, self.sampler = max_new, window_limited, sampler
        self.out, self.lps, self.history = [], [], list(ids)
        self.session = None
        self.pending = list(ids)  # tokens the next call appends: the prompt, then the last sampled token


def _prompt_ids(model, p, tok):
    """(ids, text_mode) of one prompt of a batch."""
    from .generate import _is_batch

    if isinstance(p, str):
        if tok is None:
            raise ValueError("this model has no tokenizer: pass the prompts as lists of token ids")
        ids = list(tok.encode(p, add_special_tokens=True))
        text = True
    else:
        if _is_batch(p):
            raise ValueError("a prompt of the batch is itself a list of prompts: pass one flat list of prompts")
        ids = [int(i) for i in np.asarray(p).reshape(-1)]
        text = False
    if not ids:
        raise ValueError("a prompt of the batch is empty: generation needs at least one token to condition on")
    return ids, text


def generate_batch(model, prompts, max_new_tokens, *, batch_size=None, temperature=1.0, top_k=0, top_p=1.0,
                   min_p=0.0, repetition_penalty=1.0, no_repeat_ngram_size=0, do_sample=None, num_beams=1,
                   length_penalty=1.0, early_stopping=False, num_return_sequences=1, stop=None, seed=None,
                   stream=False, return_logprobs=False, overflow="stop", keep_first=0, eos_token_id=None,
                   interventions=None):
    """``generate`` on a list of prompts: returns a list with, for each prompt, what ``generate(prompt, ...)``
    returns. batch_size: sequences decoding at once (default: all of them, at most 64); with beam search each prompt
    takes num_beams of them. Sampling: prompt i draws from its own generator seeded with ``seed + i`` (seed None:
    from the OS), so its tokens equal ``generate(prompts[i], seed=seed + i)`` (for num_return_sequences=1; its
    return sequences run concurrently and share that generator). interventions run the prompts one after another
    (batched sessions do not carry hooks)."""
    from .generate import (Sampler, _eos_ids, _finish, _fit_window, _stop_at, _wants_sampling, _warn_window,
                           generate)

    items = list(prompts)
    if not items:
        return []
    if stream:
        raise ValueError("stream=True yields one text: it is not available for a list of prompts")
    if interventions:
        return [generate(model, p, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                         repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                         do_sample=do_sample, num_beams=num_beams, length_penalty=length_penalty,
                         early_stopping=early_stopping, num_return_sequences=num_return_sequences, stop=stop,
                         seed=None if seed is None else seed + i, return_logprobs=return_logprobs, overflow=overflow,
                         keep_first=keep_first, eos_token_id=eos_token_id, interventions=interventions)
                for i, p in enumerate(items)]
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise TypeError(f"max_new_tokens must be an int, got {type(max_new_tokens).__name__}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if num_return_sequences < 1:
        raise ValueError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    if batch_size is None:
        batch_size = max(num_beams, min(64, len(items) * num_beams * num_return_sequences))
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if batch_size < num_beams:
        raise ValueError(f"batch_size ({batch_size}) must hold the num_beams ({num_beams}) beams of a prompt")
    tok = getattr(model, "tokenizer", None)
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    if stops and tok is None:
        raise ValueError("stop strings need a tokenizer")
    eos = _eos_ids(model) if eos_token_id is None else (
        [int(eos_token_id)] if isinstance(eos_token_id, (int, np.integer)) else [int(e) for e in eos_token_id])
    sampling = _wants_sampling(do_sample, temperature, top_k, top_p, min_p, seed)
    if num_beams > 1 and sampling:
        raise ValueError("beam search here is deterministic: use do_sample=False (or temperature=0) with num_beams")
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    session_overflow = "slide" if overflow == "slide" else "error"
    parsed = []
    for p in items:  # everything is checked before any work
        ids, text = _prompt_ids(model, p, tok)
        max_new, limited = _fit_window(model, len(ids), int(max_new_tokens), overflow)
        parsed.append((ids, text, max_new, limited))

    def new_session(n_tokens):
        # only what the sequence can hold: a batch of 64 full-context caches would not fit in memory
        if session_overflow == "slide":
            return model.session(overflow="slide", keep_first=keep_first)
        return model.session(capacity=max(1, min(model.context_length, n_tokens)))

    if num_beams > 1:
        return _beams(model, parsed, num_beams, batch_size, length_penalty, early_stopping, num_return_sequences, eos,
                      repetition_penalty, no_repeat_ngram_size, tok, stops, return_logprobs, new_session)

    results = [[None] * num_return_sequences for _ in parsed]
    queue = deque()
    V = model.vocab_size
    for i, (ids, text, max_new, limited) in enumerate(parsed):
        sampler = Sampler(V, temperature=temperature if sampling else 1.0, top_k=top_k, top_p=top_p, min_p=min_p,
                          repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                          do_sample=sampling, seed=None if seed is None else seed + i)
        for r in range(num_return_sequences):
            queue.append(_Job((i, r), ids, text, max_new, limited, sampler))

    def finish(job):
        if job.window_limited and len(job.out) == job.max_new and (not job.out or job.out[-1] not in eos):
            _warn_window(model, len(job.ids), len(job.out))
        i, r = job.index
        results[i][r] = _finish(job.out, job.lps, job.text_mode, tok, stops, return_logprobs)
        job.session = None

    active: list[_Job] = []
    while queue or active:
        while queue and len(active) < batch_size:  # refill free slots from the queue
            job = queue.popleft()
            if job.max_new == 0:
                finish(job)
                continue
            job.session = new_session(len(job.ids) + job.max_new)
            active.append(job)
        if not active:
            break
        logits = append_batch(model, [j.session for j in active], [j.pending for j in active])
        still = []
        for j, row in zip(active, logits):
            t, lp = j.sampler(row, np.asarray(j.history, np.int64))
            t = int(t)
            j.out.append(t)
            j.lps.append(float(lp))
            j.history.append(t)
            j.pending = [t]
            done = t in eos or len(j.out) >= j.max_new or (stops and _stop_at(tok.decode(j.out), stops) >= 0)
            if done:
                finish(j)
            else:
                still.append(j)
        active = still
    return [r if num_return_sequences > 1 else r[0] for r in results]


class _BeamJob:
    """The beam search of one prompt: its search state and one session per beam."""

    def __init__(self, index, ids, text_mode, max_new, window_limited, search):
        self.index, self.ids, self.text_mode = index, ids, text_mode
        self.max_new, self.window_limited, self.search = max_new, window_limited, search
        self.sessions = []
        self.spare = []  # sessions of beams that were dropped, reused for forks
        self.next = None  # (parents, tokens) of the next step; None before the prompt ran


def _beams(model, parsed, num_beams, batch_size, length_penalty, early_stopping, num_return_sequences, eos,
           repetition_penalty, no_repeat_ngram_size, tok, stops, return_logprobs, new_session):
    from .beam import BeamSearch
    from .generate import Sampler, _finish, _warn_window

    V = model.vocab_size
    process = None
    if repetition_penalty != 1.0 or no_repeat_ngram_size:
        chain = Sampler(V, repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size,
                        do_sample=False, seed=0)
        process = lambda lp, hist: chain.process(lp, np.asarray(hist, np.int64))  # noqa: E731
    results = [None] * len(parsed)
    queue = deque()
    for i, (ids, text, max_new, limited) in enumerate(parsed):
        if max_new == 0:
            if limited:
                _warn_window(model, len(ids), 0)
            empty = _finish([], [], text, tok, stops, False)
            results[i] = [empty] * num_return_sequences if num_return_sequences > 1 else empty
            continue
        search = BeamSearch(ids, num_beams=num_beams, max_new_tokens=max_new, eos_token_ids=eos,
                            length_penalty=length_penalty, early_stopping=early_stopping,
                            num_return_sequences=num_return_sequences, process=process)
        queue.append(_BeamJob(i, ids, text, max_new, limited, search))

    def finish(job):
        hyps = job.search.results()
        if job.window_limited and any(len(h.ids) == job.max_new and h.ids[-1] not in eos for h in hyps):
            _warn_window(model, len(job.ids), job.max_new)
        out = []
        for h in hyps:
            res = _finish(h.ids, [], job.text_mode, tok, stops, False)
            out.append((res, h.score) if return_logprobs else res)
        results[job.index] = out if num_return_sequences > 1 else out[0]
        job.sessions = job.spare = []

    per_prompt = num_beams
    active: list[_BeamJob] = []
    while queue or active:
        while queue and (len(active) + 1) * per_prompt <= batch_size:
            job = queue.popleft()
            job.sessions = [new_session(len(job.ids) + job.max_new) for _ in range(num_beams)]
            active.append(job)
        rows, ids = [], []  # the sessions of this call and what each appends
        for job in active:
            if job.next is None:  # a new prompt runs once, in its first beam's session
                rows.append(job.sessions[0])
                ids.append(job.ids)
                continue
            parents, tokens = job.next
            # beam i continues beam parents[i]: the first child of a parent takes over its session, the others
            # fork a copy of it into a spare session (nothing is recomputed)
            old, taken = job.sessions, set()
            new = [None] * num_beams
            for i, p in enumerate(parents):
                if p not in taken:
                    new[i] = old[p]
                    taken.add(p)
            spare = [old[k] for k in range(num_beams) if k not in taken] + job.spare
            for i, p in enumerate(parents):
                if new[i] is None:
                    new[i] = spare.pop()
                    new[i].copy_from(old[p])
            job.sessions, job.spare = new, spare
            rows.extend(new)
            ids.extend([t] for t in tokens)
        logits = append_batch(model, rows, ids)
        k, still = 0, []
        for job in active:
            if job.next is None:
                first = job.sessions[0]
                for s in job.sessions[1:]:
                    s.copy_from(first)
                lg = np.repeat(logits[k: k + 1], num_beams, axis=0)
                k += 1
            else:
                lg = logits[k: k + num_beams]
                k += num_beams
            job.next = job.search.advance(lg)
            if job.next is None:
                finish(job)
            else:
                still.append(job)
        active = still
    return results
