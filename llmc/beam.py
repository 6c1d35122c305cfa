"""Beam search with Hugging Face transformers' semantics (its vectorised beam search of v4.50+/v5).

The model side is a callback, so the same search runs on llmc's KV-cached sessions or on anything else:

    step(parents, tokens) -> logits (num_beams, V)

``parents[i]`` is the beam whose state beam ``i`` continues (the caller reorders/forks its KV caches accordingly,
nothing is recomputed) and ``tokens[i]`` is the token beam ``i`` appends. The first call has ``parents=None,
tokens=None`` and must return the logits after the prompt, one identical row per beam.

Scoring (as in transformers): a beam's score is the sum of the log-probabilities of its tokens; a finished
hypothesis scores ``sum_logprobs / generated_len ** length_penalty`` where generated_len counts the EOS token;
``early_stopping`` True stops once ``num_beams`` hypotheses are finished, False stops when the best running beam
(at its current length) cannot beat the worst finished one, "never" uses the best possible length (max length when
length_penalty > 0). Arithmetic is float32 like torch's, so ties break the same way in practice.

``BeamSearch`` is the same search as a state machine (``advance(logits) -> (parents, tokens) | None``), so the
beams of several prompts can share one batched model call per step (llmc.generate does that).

The bookkeeping here is O(num_beams * V) NumPy work per step; the model forward dominates the cost, which is why
this loop lives in Python rather than in csrc/.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import ops

__all__ = ["Hypothesis", "BeamSearch", "beam_search"]

NEG = np.float32(-1.0e9)  # transformers' "impossible" score


@dataclass
class Hypothesis:
    """One returned sequence: generated ``ids`` (without the prompt, with the EOS token if it ended on one),
    its ``score`` (sum of log-probs / len ** length_penalty) and whether it ``finished`` on an EOS token."""
    ids: list
    score: float
    finished: bool


def _topk_desc(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest entries of a 1-D array, largest first (ties: lower index first)."""
    k = min(k, x.shape[0])
    part = np.argpartition(-x, k - 1)[:k] if k < x.shape[0] else np.arange(x.shape[0])
    return part[np.lexsort((part, -x[part]))]


class BeamSearch:
    """One beam search, advanced one step at a time by its caller:

        bs = BeamSearch(prompt_ids, num_beams=4, max_new_tokens=20, eos_token_ids=[2])
        nxt = bs.advance(logits_after_prompt)          # (num_beams, V), one identical row per beam
        while nxt is not None:
            parents, tokens = nxt                      # beam i continues beam parents[i] with tokens[i]
            nxt = bs.advance(logits_of_the_new_beams)  # (num_beams, V)
        hyps = bs.results()

    process(log_probs (V,), history ids) -> log_probs applies logits processors (repetition penalty, n-grams) to
    each beam's log-probabilities, as transformers does after its log_softmax."""

    def __init__(self, prompt_ids: Sequence[int], *, num_beams: int, max_new_tokens: int,
                 eos_token_ids: Sequence[int] = (), length_penalty: float = 1.0, early_stopping=False,
                 num_return_sequences: int = 1, process: Callable | None = None):
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        if not 1 <= num_return_sequences <= num_beams:
            raise ValueError(f"num_return_sequences must be in [1, num_beams={num_beams}], got {num_return_sequences}")
        if early_stopping not in (True, False, "never"):
            raise ValueError(f'early_stopping must be True, False or "never", got {early_stopping!r}')
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.num_beams, self.max_new_tokens = num_beams, max_new_tokens
        self.eos = set(int(e) for e in eos_token_ids)
        self.prompt = [int(t) for t in prompt_ids]
        self.lp = float(length_penalty)
        self.early_stopping, self.num_return_sequences, self.process = early_stopping, num_return_sequences, process
        self.keep = max(2, 1 + len(self.eos)) * num_beams  # candidates gathered per step, so enough non-EOS remain
        self.running = [[] for _ in range(num_beams)]  # generated tokens per running beam
        self.running_scores = np.full(num_beams, NEG, np.float32)
        self.running_scores[0] = 0.0  # all beams start identical: only the first may expand at step one
        self.finished: list = []  # (score, ids, ended_on_eos), at most num_beams, best first
        self.heuristic_unsatisfied = True
        self.cur = 0  # tokens generated so far
        self.done = False

    def advance(self, logits) -> tuple[list[int], list[int]] | None:
        """Take the logits (num_beams, V) of the current beams; return (parents, tokens) of the next step, or None
        when the search is over (then results() holds the hypotheses)."""
        if self.done:
            raise ValueError("this beam search is finished")
        num_beams, cur, lp, eos = self.num_beams, self.cur, self.lp, self.eos
        logits = np.asarray(logits, np.float32)
        V = logits.shape[-1]
        if logits.shape != (num_beams, V):
            raise ValueError(f"step() must return logits of shape ({num_beams}, V), got {logits.shape}")
        log_probs = ops.log_softmax(logits, axis=-1)
        if self.process is not None:
            log_probs = np.stack([self.process(log_probs[b], self.prompt + self.running[b]) for b in range(num_beams)])
        total = (log_probs + self.running_scores[:, None]).reshape(-1)  # (num_beams * V,)
        cand = _topk_desc(total, self.keep)
        cand_scores = total[cand]
        cand_beam, cand_tok = cand // V, cand % V
        last_step = cur + 1 >= self.max_new_tokens
        # a candidate "hits the stopping criteria" when it emits EOS or reaches the length limit
        hits = np.array([last_step or int(t) in eos for t in cand_tok])

        # next running beams: the best candidates that did not just stop
        run_scores = cand_scores + hits.astype(np.float32) * NEG
        nxt = _topk_desc(run_scores, num_beams)

        # finished hypotheses: only candidates among the first num_beams may finish
        fin_scores = cand_scores / np.float32((cur + 1) ** lp)
        all_full = (len(self.finished) == num_beams and all(s > NEG / 2 for s, _, _ in self.finished)
                    and self.early_stopping is True)
        merged = list(self.finished)
        for j in range(min(num_beams, len(cand))):
            if not hits[j]:
                continue
            if all_full or not self.heuristic_unsatisfied:
                continue  # transformers adds -1e9 here: such a hypothesis can never be kept
            merged.append((fin_scores[j], self.running[cand_beam[j]] + [int(cand_tok[j])], int(cand_tok[j]) in eos))
        merged.sort(key=lambda h: -h[0])  # stable: earlier (older) hypotheses win ties, like topk over the concat
        self.finished = merged[:num_beams]

        self.running = [self.running[cand_beam[j]] + [int(cand_tok[j])] for j in nxt]
        self.running_scores = run_scores[nxt].astype(np.float32)
        parents = [int(cand_beam[j]) for j in nxt]
        tokens = [int(cand_tok[j]) for j in nxt]

        # early-stop heuristic (sticky): can the best running beam still beat the worst finished hypothesis?
        gen_len = cur + 1
        best_len = (self.max_new_tokens if (self.early_stopping == "never" and lp > 0.0) else gen_len)
        best_possible = self.running_scores[0] / np.float32(best_len ** lp)
        all_done = len(self.finished) == num_beams
        worst = min(s for s, _, _ in self.finished) if all_done else NEG
        self.heuristic_unsatisfied = self.heuristic_unsatisfied and bool(best_possible > worst)
        exists_open = not (all_done and self.early_stopping is True)
        valid = not hits.all()
        self.cur = cur + 1
        if last_step or not (self.heuristic_unsatisfied and exists_open and valid):
            self.done = True
            return None
        return parents, tokens

    def results(self) -> list[Hypothesis]:
        """The num_return_sequences best hypotheses, best first."""
        return [Hypothesis(ids, float(s), ended) for s, ids, ended in self.finished[:self.num_return_sequences]]


def beam_search(step: Callable, prompt_ids: Sequence[int], *, num_beams: int, max_new_tokens: int,
                eos_token_ids: Sequence[int] = (), length_penalty: float = 1.0, early_stopping=False,
                num_return_sequences: int = 1, process: Callable | None = None) -> list[Hypothesis]:
    """Run beam search; returns ``num_return_sequences`` hypotheses, best first.

    process(log_probs (V,), history ids) -> log_probs applies logits processors (repetition penalty, n-grams)
    to each beam's log-probabilities, as transformers does after its log_softmax."""
    bs = BeamSearch(prompt_ids, num_beams=num_beams, max_new_tokens=max_new_tokens, eos_token_ids=eos_token_ids,
                    length_penalty=length_penalty, early_stopping=early_stopping,
                    num_return_sequences=num_return_sequences, process=process)
    nxt = bs.advance(step(None, None))
    while nxt is not None:
        nxt = bs.advance(step(*nxt))
    return bs.results()
