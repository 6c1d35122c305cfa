"""Mixture of experts (llmc.experts; llmc.moe is the op): the sparse MoE feed-forward as an op on arrays, and routing you can inspect.

    import numpy as np, llmc
    out = llmc.moe(x, router_w, w_gate, w_up, w_down, top_k=2)               # (T, D)
    out, experts, weights = llmc.moe(x, router_w, w_gate, w_up, w_down, 2, return_routing=True)

    model = llmc.Model.load("path/to/mixtral-like")                          # mixtral, qwen2_moe, qwen3_moe, olmoe
    r = model.routing(ids)            # one Routing per MoE layer: router logits (T, E), experts (T, k), weights (T, k)
    u = model.expert_usage(texts)     # ExpertUsage: counts (layers, E) of tokens routed to each expert, fractions

The block (csrc/moe.c): p = softmax(x @ router_w^T) per token; the top_k most probable experts (ties: the lowest
expert index, as torch.topk); their probabilities renormalised to sum 1 when ``normalize``; the output is the
weighted sum of the chosen experts' SwiGLU FFNs, down(silu(gate(x)) * up(x)). Tokens are grouped by expert, so the
compute is one matrix product per expert over exactly its tokens (docs/moe.md).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._native import _core

__all__ = ["moe", "Routing", "ExpertUsage", "routing", "expert_usage"]


def moe(x: ArrayLike, router_w: ArrayLike, w_gate: ArrayLike, w_up: ArrayLike, w_down: ArrayLike, top_k: int,
        normalize: bool = True, return_routing: bool = False):
    """A sparse mixture-of-experts SwiGLU feed-forward over tokens x.

    x: (T, D) or (D,); router_w: (E, D); w_gate, w_up: (E, F, D); w_down: (E, D, F) (each expert's matrices as
    torch's nn.Linear stores them, stacked). top_k: experts per token, 1 <= top_k <= E. normalize: renormalise the
    top_k probabilities to sum 1 (Mixtral; Qwen-MoE's norm_topk_prob). Returns out (T, D) float32 (or (D,) for a
    single token), and with return_routing=True also experts (T, k) int32 (by descending probability) and their
    weights (T, k)."""
    if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)):
        raise TypeError(f"top_k must be an int, got {type(top_k).__name__}")
    xa = np.asarray(x)
    single = xa.ndim == 1
    if single:
        xa = xa[None, :]
    out, experts, weights = _core.moe(xa, router_w, w_gate, w_up, w_down, int(top_k), bool(normalize))
    if single:
        out, experts, weights = out[0], experts[0], weights[0]
    return (out, experts, weights) if return_routing else out


class Routing(NamedTuple):
    """The routing of one MoE layer over a sequence of T tokens."""

    layer: int                 # the block index in the model
    router_logits: np.ndarray  # (T, E) float32: x @ router^T, before the softmax
    experts: np.ndarray        # (T, k) int32: the chosen experts, most probable first
    weights: np.ndarray        # (T, k) float32: their weights in the sum (renormalised when the config says so)

    @property
    def probs(self) -> np.ndarray:
        """softmax of the router logits: (T, E)."""
        z = self.router_logits - self.router_logits.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)


class ExpertUsage(NamedTuple):
    """How often each expert of each MoE layer was chosen over a corpus."""

    layers: list[int]      # block indices of the MoE layers
    counts: np.ndarray     # (len(layers), E) int64: (token, slot) assignments per expert
    tokens: int            # tokens routed (each counts top_k times per layer)

    @property
    def fractions(self) -> np.ndarray:
        """counts / (tokens * top_k): the share of the routed slots each expert took (rows sum to 1)."""
        tot = self.counts.sum(axis=1, keepdims=True)
        return self.counts / np.maximum(tot, 1)


def _moe_layers(model) -> list[int]:
    layers = list(model.info.get("moe_layers", []))
    if not layers:
        raise _core.UnsupportedError(f"this {model.arch} model has no mixture-of-experts layers")
    return layers


def routing(model, ids) -> list[Routing]:
    """Per MoE layer of model: the router logits (T, E), the chosen experts (T, k) and their weights (T, k) for
    the token ids (one forward pass in C; the experts are the ones the forward used)."""
    from .model import _ids

    layers = _moe_layers(model)
    a = _ids(ids)
    logits, experts, weights = model._m.routing(a)
    return [Routing(l, logits[i], experts[i], weights[i]) for i, l in enumerate(layers)]


def expert_usage(model, ids_or_texts) -> ExpertUsage:
    """Count the experts chosen over a corpus: ids_or_texts is one sequence of token ids, one str, or a list of
    either (strs are encoded with model.tokenizer; each sequence must fit the context). Returns ExpertUsage with
    counts (layers, E) and fractions."""
    layers = _moe_layers(model)
    E = int(model.info["n_experts"])
    if isinstance(ids_or_texts, (str, np.ndarray)) or (
            isinstance(ids_or_texts, Sequence) and ids_or_texts and isinstance(ids_or_texts[0], (int, np.integer))):
        seqs = [ids_or_texts]
    else:
        seqs = list(ids_or_texts)
    counts = np.zeros((len(layers), E), dtype=np.int64)
    tokens = 0
    for s in seqs:
        if isinstance(s, str):
            if model.tokenizer is None:
                raise ValueError("this model has no tokenizer: pass token ids instead of text")
            s = model.tokenizer.encode(s)
        if len(s) == 0:
            continue
        for i, r in enumerate(routing(model, s)):
            counts[i] += np.bincount(r.experts.ravel(), minlength=E)
        tokens += len(s)
    return ExpertUsage(layers, counts, tokens)
