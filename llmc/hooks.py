"""Activations by name, interventions, the logit lens and direct logit attribution — done in the C core.

    logits, cache = model.run_with_cache(ids, names=r"blocks\\.\\d+\\.resid_post")   # only what is asked is kept
    cache["blocks.3.resid_post"]                       # (T, d_model) NumPy array
    model.activation_names()                          # {name: shape} in forward order
    v = steering_vector(...)                          # e.g. a difference of two cached residual streams
    model.logits(ids, interventions=[llmc.Steer(layer=3, vector=v, scale=4.0),
                                     llmc.AblateHeads(layer=1, heads=[0, 2])])
    model.generate("And God said", 30, interventions=[llmc.Steer(3, v, 4.0)])
    lens = model.logit_lens(ids, k=5)                 # top-k tokens of every layer's residual stream

Names (H query heads, Hk key/value heads, hd head_dim, F MLP width, T tokens):

| name | shape | what |
|---|---|---|
| `embed` | (T, D) | token (+ position, + type, bert: + LayerNorm) embeddings: the input of block 0 |
| `blocks.{l}.resid_pre` | (T, D) | input of block l |
| `blocks.{l}.attn.q` | (H, T, hd) | queries as attention reads them (after q_norm and RoPE) |
| `blocks.{l}.attn.k`, `.attn.v` | (Hk, T, hd) | keys (after k_norm and RoPE) and values, as cached |
| `blocks.{l}.attn.pattern` | (H, T, T) | softmax attention weights (row: query, column: key) |
| `blocks.{l}.attn.z` | (H, T, hd) | attention output of each head, before the output projection |
| `blocks.{l}.attn_out` | (T, D) | output projection (+ bias) |
| `blocks.{l}.resid_mid` | (T, D) | residual stream after attention (bert: after its LayerNorm) |
| `blocks.{l}.mlp.pre_act` | (T, F) | gate projection (llama) / fc (gpt2, bert) before the activation |
| `blocks.{l}.mlp.post_act` | (T, F) | input of the down projection (llama: silu(gate) * up) |
| `blocks.{l}.mlp_out` | (T, D) | down projection (+ bias) |
| `blocks.{l}.resid_post` | (T, D) | output of block l (bert: after its LayerNorm) |
| `ln_final` | (T, D) | after the final norm: what the unembedding reads (decoders) |

Mixture-of-experts layers (mixtral, qwen2_moe, qwen3_moe, olmoe; docs/moe.md) have `blocks.{l}.moe.router_logits`
(T, E): the router logits before the softmax (a Steer/Patch there changes which experts run), and no
`mlp.pre_act` / `mlp.post_act` (each token runs different experts); their `mlp_out` is the whole MoE block's output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from ._native import _core

__all__ = ["AblateHeads", "AblateNeurons", "DirectLogitAttribution", "LogitLens", "Patch", "Steer"]

_ACTS = ["embed", "resid_pre", "attn.q", "attn.k", "attn.v", "attn.pattern", "attn.z", "attn_out", "resid_mid",
         "mlp.pre_act", "mlp.post_act", "mlp_out", "resid_post", "ln_final", "moe.router_logits"]
_ACT_ID = {n: i for i, n in enumerate(_ACTS)}
_BLOCK_ACTS = _ACTS[1:13] + ["moe.router_logits"]
_DENSE_ONLY = ("mlp.pre_act", "mlp.post_act")


def _layer_acts(model, layer: int) -> list[str]:
    """the activations block `layer` has: a MoE layer has a router and no single MLP hidden layer"""
    if layer in model.info.get("moe_layers", ()):
        return [a for a in _BLOCK_ACTS if a not in _DENSE_ONLY]
    return [a for a in _BLOCK_ACTS if a != "moe.router_logits"]
_CAPTURE, _ADD, _SET, _ZERO, _MEAN = range(5)
_NAME_RE = re.compile(r"blocks\.(-?\d+)\.(.+)")


# ------------------------------------------------------------------ names
def activation_names(model, T: int | None = None) -> dict[str, tuple]:
    """{name: shape} of every activation, in forward order; T (the tokens of a run) appears as "T" unless given."""
    t = "T" if T is None else int(T)
    out = {}
    for name in ["embed"] + [f"blocks.{l}.{a}" for l in range(model.n_layers) for a in _layer_acts(model, l)] + \
            ["ln_final"]:
        try:
            out[name] = _shape(model, _parse(model, name)[0], t)
        except _core.UnsupportedError:
            continue  # bert has no ln_final
    return out


def _parse(model, name: str) -> tuple[int, int]:
    """name -> (activation id, layer), with errors that say what is wrong."""
    if not isinstance(name, str):
        raise TypeError(f"activation names are str, got {type(name).__name__}")
    if name in ("embed", "ln_final"):
        if name == "ln_final" and model.arch == "bert":
            raise _core.UnsupportedError("bert has no final norm: 'ln_final' does not exist (use blocks.{l}.resid_post)")
        return _ACT_ID[name], 0
    m = _NAME_RE.fullmatch(name)
    if not m:
        raise ValueError(f"unknown activation name {name!r}: names are 'embed', 'ln_final' or 'blocks.{{l}}.{{act}}' "
                         f"with act one of {', '.join(_BLOCK_ACTS)} (see model.activation_names())")
    layer, act = int(m.group(1)), m.group(2)
    if act not in _BLOCK_ACTS:
        raise ValueError(f"unknown activation {act!r} in {name!r}: one of {', '.join(_BLOCK_ACTS)}")
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"layer {layer} out of range in {name!r}: the model has {model.n_layers} layers "
                         f"(0 .. {model.n_layers - 1})")
    if act not in _layer_acts(model, layer):
        if act == "moe.router_logits":
            what = "model" if not model.info.get("moe_layers") else f"model's layer {layer}"
            raise _core.UnsupportedError(f"{name!r}: this {model.arch} {what} has no mixture-of-experts router")
        raise _core.UnsupportedError(f"{name!r}: layer {layer} is a mixture of experts; each token runs different "
                                     "experts, so there is no single MLP hidden layer (use mlp_out or "
                                     "moe.router_logits)")
    return _ACT_ID[act], layer


def _shape(model, act: int, T) -> tuple:
    U, W = model._m.act_layout(act)
    if act == _ACT_ID["attn.pattern"]:
        return (U, T, T)
    return (T, W) if U == 1 else (U, T, W)


def _select(model, names) -> list[str]:
    every = list(activation_names(model))
    if names is None:
        return every
    if isinstance(names, str):
        try:
            rx = re.compile(names)
        except re.error as e:
            raise ValueError(f"names: {names!r} is not a valid regular expression ({e})") from None
        picked = [n for n in every if rx.fullmatch(n)]
        if not picked:
            raise ValueError(f"names: the regular expression {names!r} matches no activation of this model "
                             "(see model.activation_names())")
        return picked
    picked = list(names)
    for n in picked:
        _parse(model, n)
    return picked


# ------------------------------------------------------------------ interventions
def _ranges(positions) -> list[tuple[int, int]]:
    """positions -> [(start, stop)] with stop = -1 meaning "to the end"."""
    if positions is None:
        return [(0, -1)]
    if isinstance(positions, (int, np.integer)) and not isinstance(positions, bool):
        p = int(positions)
        if p < 0:
            raise ValueError(f"positions must be >= 0 (absolute positions), got {p}")
        return [(p, p + 1)]
    if isinstance(positions, (slice, range)):
        if positions.step not in (None, 1):
            raise ValueError(f"positions: a slice or range must have step 1, got {positions.step}")
        a = 0 if positions.start is None else int(positions.start)
        b = -1 if positions.stop is None else int(positions.stop)
        if a < 0 or (positions.stop is not None and b < a):
            raise ValueError(f"positions: [{a}, {positions.stop}) is not a range of absolute positions >= 0")
        return [(a, b)]
    ps = sorted({int(p) for p in np.asarray(positions, dtype=np.int64).reshape(-1)})
    if not ps:
        raise ValueError("positions is empty")
    if ps[0] < 0:
        raise ValueError(f"positions must be >= 0 (absolute positions), got {ps[0]}")
    out, start = [], ps[0]
    for prev, p in zip(ps, ps[1:] + [None]):
        if p != prev + 1:
            out.append((start, prev + 1))
            start = p
    return out


def _f32(x, shape: tuple, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise TypeError(f"{what} must be an array of real numbers, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{what} must have shape {shape}, got {a.shape}")
    a = np.array(a, dtype=np.float32, order="C", copy=True)  # a private copy: C reads it during the run
    if not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or infinity")
    return a


def _int_index(x, n: int, what: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.size == 0:
        raise ValueError(f"{what} is empty")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{what} must be integers, got dtype {a.dtype}")
    a = np.array(a.reshape(-1), dtype=np.int64, copy=True)
    bad = a[(a < 0) | (a >= n)]
    if bad.size:
        raise ValueError(f"{what}: {int(bad[0])} is out of range [0, {n})")
    return a


def _layer(model, layer, what: str) -> int:
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"{what}: layer must be an int, got {type(layer).__name__}")
    if not 0 <= layer < model.n_layers:
        raise ValueError(f"{what}: layer {layer} out of range: the model has {model.n_layers} layers")
    return int(layer)


@dataclass(frozen=True)
class Steer:
    """Add scale * vector (d_model,) to the residual stream of block `layer` at the given positions (None: all;
    an int; a slice/range; a list). at: "resid_pre" (the block's input, default), "resid_mid" or "resid_post".
    Positions are absolute: in a session, position p is the p-th token the session holds."""
    layer: int
    vector: Any
    scale: float = 1.0
    positions: Any = None
    at: str = "resid_pre"

    def _hooks(self, model):
        layer = _layer(model, self.layer, "Steer")
        if self.at not in ("resid_pre", "resid_mid", "resid_post"):
            raise ValueError(f'Steer: at must be "resid_pre", "resid_mid" or "resid_post", got {self.at!r}')
        v = _f32(self.vector, (model.d_model,), "Steer vector")
        return [(_ADD, _ACT_ID[self.at], layer, v, 0, float(self.scale), a, b, None) for a, b in _ranges(self.positions)]


@dataclass(frozen=True)
class AblateHeads:
    """Ablate attention heads of block `layer`: their outputs (attn.z) before the output projection are set to zero
    (mode="zero") or to their mean (mode="mean": over the positions affected in this forward call — each contiguous
    run of `positions` on its own — or `values` (n_heads, head_dim) from a reference run, e.g.
    cache["blocks.l.attn.z"].mean(1))."""
    layer: int
    heads: Any
    mode: str = "zero"
    positions: Any = None
    values: Any = None

    def _hooks(self, model):
        layer = _layer(model, self.layer, "AblateHeads")
        heads = _int_index(self.heads, model.n_heads, "AblateHeads heads")
        return _ablate(model, "attn.z", layer, heads, self.mode, self.positions, self.values,
                       (model.n_heads, model.head_dim), "AblateHeads")


@dataclass(frozen=True)
class AblateNeurons:
    """Ablate MLP neurons of block `layer`: columns of mlp.post_act (the input of the down projection) set to zero
    (mode="zero") or to their mean (over the positions affected in this call, or `values` (d_ff,))."""
    layer: int
    neurons: Any
    mode: str = "zero"
    positions: Any = None
    values: Any = None

    def _hooks(self, model):
        layer = _layer(model, self.layer, "AblateNeurons")
        F = model.info["d_ff"]
        neurons = _int_index(self.neurons, F, "AblateNeurons neurons")
        return _ablate(model, "mlp.post_act", layer, neurons, self.mode, self.positions, self.values, (F,),
                       "AblateNeurons")


def _ablate(model, act, layer, index, mode, positions, values, vshape, what):
    if mode not in ("zero", "mean"):
        raise ValueError(f'{what}: mode must be "zero" or "mean", got {mode!r}')
    if mode == "zero" and values is not None:
        raise ValueError(f'{what}: values are for mode="mean"')
    data = None if values is None else _f32(values, vshape, f"{what} values")
    kind = _ZERO if mode == "zero" else _MEAN
    return [(kind, _ACT_ID[act], layer, data, 0, 1.0, a, b, index) for a, b in _ranges(positions)]


@dataclass(frozen=True)
class Patch:
    """Replace activation `name` by `value` (activation patching): value has the activation's shape for the run
    (see model.activation_names(T)), typically cache[name] from a run on another input. Only the positions given
    (None: all of value's positions) are replaced."""
    name: str
    value: Any
    positions: Any = None

    def _hooks(self, model):
        act, layer = _parse(model, self.name)
        if act == _ACT_ID["attn.pattern"]:
            raise ValueError("Patch: attn.pattern can be captured, not patched (patch attn.q, attn.k or attn.z)")
        v = np.asarray(self.value)
        pattern = _shape(model, act, "T")
        T = v.shape[pattern.index("T")] if v.ndim == len(pattern) else 0
        if v.ndim != len(pattern) or T == 0:
            raise ValueError(f"Patch value for {self.name!r} must have shape {pattern} (T: positions), got {v.shape}")
        data = _f32(v, _shape(model, act, T), f"Patch value for {self.name!r}")
        return [(_SET, act, layer, data, T, 1.0, a, b, None) for a, b in _ranges(self.positions)]


def _intervention_hooks(model, interventions) -> list:
    if interventions is None:
        return []
    if isinstance(interventions, (Steer, AblateHeads, AblateNeurons, Patch)):
        interventions = [interventions]
    hooks = []
    for iv in interventions:
        if not isinstance(iv, (Steer, AblateHeads, AblateNeurons, Patch)):
            raise TypeError(f"interventions are llmc.Steer, AblateHeads, AblateNeurons or Patch, got "
                            f"{type(iv).__name__}")
        hooks.extend(iv._hooks(model))
    return hooks


# ------------------------------------------------------------------ running
def run_with_cache(model, ids, names=None, interventions=None, token_type_ids=None, attention=None):
    from .model import _attn, _ids

    ids = model._encode(ids)
    tt = None if token_type_ids is None else _ids(token_type_ids)
    T = len(ids)
    picked = _select(model, names)
    cache, hooks = {}, _intervention_hooks(model, interventions)
    for n in picked:  # interventions fire first, so the cache shows their effect
        act, layer = _parse(model, n)
        cache[n] = np.zeros(_shape(model, act, T), dtype=np.float32)
        hooks.append((_CAPTURE, act, layer, cache[n], T, 1.0, 0, -1, None))
    want_logits = model.arch != "bert"
    logits = model._m.forward_hooked(ids, tt, _attn(attention, model._attention), want_logits, hooks)
    return logits, cache


def logits_with(model, ids, interventions, attention=None):
    from .model import _attn

    hooks = _intervention_hooks(model, interventions)
    return model._m.forward_hooked(model._encode(ids), None, _attn(attention, model._attention), True, hooks)


class LogitLens(NamedTuple):
    """model.logit_lens(ids, k): what each layer's residual stream predicts when read through the final norm and
    the unembedding. Row 0 is the embedding output, row l + 1 the output of block l (the last row equals the
    model's logits)."""
    layers: list            # ["embed", "blocks.0", ...]
    top_ids: np.ndarray     # (n_layers + 1, T, k) token ids, most probable first
    top_probs: np.ndarray   # (n_layers + 1, T, k) their probabilities
    top_tokens: list | None  # the same as readable strings (tokenizer.id_to_token), [layer][position][rank]
    logits: np.ndarray      # (n_layers + 1, T, vocab)


def logit_lens(model, ids, k: int = 5, attention=None) -> LogitLens:
    from .ops import softmax

    if model.arch == "bert":
        raise _core.UnsupportedError("the logit lens needs a language-model head; bert has none")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= model.vocab_size:
        raise ValueError(f"k must be an int in [1, {model.vocab_size}], got {k!r}")
    names = ["embed"] + [f"blocks.{l}.resid_post" for l in range(model.n_layers)]
    _, cache = run_with_cache(model, ids, names=names, attention=attention)
    X = np.stack([cache[n] for n in names])  # (L + 1, T, D)
    L1, T, D = X.shape
    logits = model._m.readout(X.reshape(L1 * T, D)).reshape(L1, T, -1)
    probs = softmax(logits, axis=-1)
    top = np.argsort(-probs, axis=-1, kind="stable")[..., :k]
    tp = np.take_along_axis(probs, top, axis=-1)
    tok = model.tokenizer
    strings = None if tok is None else [[[tok.id_to_token(int(i)) for i in row] for row in lay] for lay in top]
    return LogitLens(["embed"] + [f"blocks.{l}" for l in range(model.n_layers)], top, tp, strings, logits)


class DirectLogitAttribution(NamedTuple):
    """How much each component writes towards one token's logit at one position (a linear read-out through the
    final norm, with the norm's scale frozen at its value in this run). embed + attn.sum() + mlp.sum() + bias
    equals the logit."""
    token: int
    position: int
    embed: float
    attn: np.ndarray   # (n_layers,): each block's attention output (attn_out)
    mlp: np.ndarray    # (n_layers,): each block's MLP output (mlp_out)
    bias: float        # the final norm's bias read through the unembedding (0 for RMSNorm)
    logit: float       # the model's logit for the token at the position


def direct_logit_attribution(model, ids, token: int, position: int = -1, attention=None) -> DirectLogitAttribution:
    if model.arch == "bert":
        raise _core.UnsupportedError("direct logit attribution needs a pre-norm decoder with a language-model head; "
                                     "bert is a post-norm encoder")
    if isinstance(token, bool) or not isinstance(token, (int, np.integer)) or not 0 <= token < model.vocab_size:
        raise ValueError(f"token must be an id in [0, {model.vocab_size}), got {token!r}")
    ids = model._encode(ids)
    T = len(ids)
    if not -T <= position < T:
        raise ValueError(f"position {position} is outside a sequence of {T} tokens")
    pos = position % T
    L = model.n_layers
    names = ["embed"] + [f"blocks.{l}.{a}" for l in range(L) for a in ("attn_out", "mlp_out")]
    names.append(f"blocks.{L - 1}.resid_post")
    logits, cache = run_with_cache(model, ids, names=names, attention=attention)
    eps = float(model.info["norm_eps"])
    x = cache[f"blocks.{L - 1}.resid_post"][pos].astype(np.float64)  # the final norm's input
    w, b = _final_norm_weights(model)
    u = model.unembedding[int(token)].astype(np.float64)
    layer_norm = model.arch == "gpt2"
    if layer_norm:  # LN(x) = (x - mean) / sqrt(var + eps) * w + b: linear in the centred components
        scale = np.sqrt(np.var(x) + eps)
        read = lambda c: float(((c - c.mean()) / scale * w) @ u)  # noqa: E731
    else:  # RMSNorm(x) = x / sqrt(mean(x^2) + eps) * w
        scale = np.sqrt(np.mean(x * x) + eps)
        read = lambda c: float((c / scale * w) @ u)  # noqa: E731
    comp = lambda n: cache[n][pos].astype(np.float64)  # noqa: E731
    attn = np.array([read(comp(f"blocks.{l}.attn_out")) for l in range(L)])
    mlp = np.array([read(comp(f"blocks.{l}.mlp_out")) for l in range(L)])
    return DirectLogitAttribution(int(token), pos, read(comp("embed")), attn, mlp,
                                  float(b @ u) if b is not None else 0.0, float(logits[pos, int(token)]))


def _final_norm_weights(model):
    sd = model.state_dict()
    if model.arch == "gpt2":
        get = lambda s: next(v for k, v in sd.items() if k == s or k.endswith("." + s))  # noqa: E731
        return get("ln_f.weight").astype(np.float64), get("ln_f.bias").astype(np.float64)
    w = next(v for k, v in sd.items() if k == "norm.weight" or k.endswith(".norm.weight"))
    return w.astype(np.float64), None
