"""Scaling laws: exact FLOP and parameter counts for llmc's models, the Chinchilla law and its compute optimum, and
fitting both kinds of law to your own training runs.

    from llmc import scaling
    scaling.n_params(model.config, non_embedding=True)
    f = scaling.flops(model.config, seq_len=256, kind="train")    # FLOPs per token, by part
    f.total, f.parts["mlp"], f.ratio_to_6n()
    scaling.compute_optimal(1e21, law="hoffmann")                # (N_opt, D_opt, loss) in closed form
    scaling.chinchilla_optimal(1e21)                             # the ~20 tokens per parameter rule
    fit = scaling.fit_chinchilla(N, D, loss, bootstrap=200)      # Huber on log-loss, L-BFGS, grid of starts

FLOPs are counted as the Kaplan et al. (2020) and Hoffmann et al. (2022) papers count them: a multiply-accumulate is
2 FLOPs, every matrix product is counted, and element-wise work (norms, activations, RoPE, softmax, residual adds)
is left out (it is O(d) or O(T) per token against O(d^2) or O(T d) for the products; :func:`chinchilla_flops` adds
the paper's softmax term). Embedding lookups are row copies (0 FLOPs in llmc); ``embeddings=True`` adds the
2 * V * d that the Chinchilla paper charges for them. A training step is the forward pass plus a backward pass of
twice its FLOPs (the gradient with respect to both the input and the weight of every product).

The fitting functions need SciPy (``pip install "llmc[scaling]"``); everything else is NumPy only.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "ModelShape", "MoEShape", "FlopCount", "count_flops", "model_shape", "n_params", "flops", "chinchilla_flops",
    "ChinchillaLaw", "HOFFMANN", "BESIROGLU", "LAWS", "Optimum", "compute_optimal", "optimal_for_params",
    "optimal_for_tokens", "chinchilla_optimal", "PowerLawFit", "ChinchillaFit", "fit_power_law", "fit_chinchilla",
]


# ------------------------------------------------------------------------------------------------ model shapes
@dataclass(frozen=True)
class MoEShape:
    """A mixture-of-experts MLP: ``n_experts`` experts of width ``d_ff_expert``, ``top_k`` of them active per token,
    chosen by a linear router (d -> n_experts); optionally an always-active shared expert of width ``d_ff_shared``
    with a sigmoid gate (d -> 1, Qwen2-MoE). ``layers``: the indices of the layers whose MLP is the MoE (the others
    are dense with the config's ``intermediate_size``).

    Read from Hugging Face configs: Mixtral (``num_local_experts``, ``num_experts_per_tok``, ``intermediate_size``),
    Qwen2-MoE / Qwen3-MoE (``num_experts``, ``num_experts_per_tok``, ``moe_intermediate_size``,
    ``shared_expert_intermediate_size``, ``decoder_sparse_step``, ``mlp_only_layers``) and DeepSeek-style configs
    (``n_routed_experts``, ``n_shared_experts``, ``moe_intermediate_size``, ``first_k_dense_replace``)."""

    n_experts: int
    top_k: int
    d_ff_expert: int
    d_ff_shared: int = 0
    shared_gate: bool = False
    layers: tuple = ()


@dataclass(frozen=True)
class ModelShape:
    """The sizes that determine parameters and FLOPs, read from an llmc / Hugging Face config."""

    family: str              # "gpt2", "llama" (llama, mistral, qwen2, qwen3, mixtral, qwen*_moe) or "bert"
    vocab: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    n_positions: int = 0     # learned position embeddings (gpt2, bert); 0 for RoPE
    type_vocab: int = 0      # bert token types
    tied: bool = True        # lm head shares the token embedding
    has_lm_head: bool = True
    gated_mlp: bool = True   # SwiGLU (gate, up, down) vs GELU (fc, proj)
    qkv_bias: bool = False
    proj_biases: bool = False  # gpt2 / bert: biases on every linear layer
    qk_norm: bool = False    # qwen3: RMSNorm of each q and k head
    layer_norm_bias: bool = False
    causal: bool = True
    moe: MoEShape | None = None


_LLAMA_FAMILY = {"llama", "mistral", "qwen2", "qwen3", "mixtral", "qwen2_moe", "qwen3_moe", "deepseek_v2",
                 "deepseek_v3"}


def _cfg_dict(config) -> dict:
    if isinstance(config, ModelShape):
        raise TypeError("pass a config dict or a model, not a ModelShape")
    if hasattr(config, "config") and not isinstance(config, Mapping):  # an llmc.Model (or a transformers model)
        config = config.config
    if hasattr(config, "to_dict") and not isinstance(config, Mapping):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict (a config.json) or a model, got {type(config).__name__}")
    return dict(config)


def _size(cfg: dict, key: str, default=None) -> int:
    v = cfg.get(key, default)
    if v is None:
        raise ValueError(f"config: missing field {key!r}")
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"config: field {key!r} must be a non-negative integer, got {v!r}")
    return int(v)


def _moe(cfg: dict, n_layers: int) -> MoEShape | None:
    if cfg.get("num_local_experts"):  # Mixtral: every layer, experts of intermediate_size
        return MoEShape(_size(cfg, "num_local_experts"), _size(cfg, "num_experts_per_tok", 2),
                        _size(cfg, "intermediate_size"), layers=tuple(range(n_layers)))
    if cfg.get("n_routed_experts"):  # DeepSeek: first_k_dense_replace dense layers, then MoE every moe_layer_freq
        first, freq = _size(cfg, "first_k_dense_replace", 0), max(1, _size(cfg, "moe_layer_freq", 1))
        d_e = _size(cfg, "moe_intermediate_size")
        return MoEShape(_size(cfg, "n_routed_experts"), _size(cfg, "num_experts_per_tok"), d_e,
                        d_ff_shared=_size(cfg, "n_shared_experts", 0) * d_e,
                        layers=tuple(i for i in range(first, n_layers) if (i - first) % freq == 0))
    if cfg.get("num_experts"):  # Qwen2-MoE / Qwen3-MoE
        step = max(1, _size(cfg, "decoder_sparse_step", 1))
        dense = set(cfg.get("mlp_only_layers") or [])
        shared = _size(cfg, "shared_expert_intermediate_size", 0)
        return MoEShape(_size(cfg, "num_experts"), _size(cfg, "num_experts_per_tok"),
                        _size(cfg, "moe_intermediate_size", cfg.get("intermediate_size")), d_ff_shared=shared,
                        shared_gate=shared > 0,
                        layers=tuple(i for i in range(n_layers) if i not in dense and (i + 1) % step == 0))
    return None


def model_shape(config) -> ModelShape:
    """The :class:`ModelShape` of a config dict (config.json) or of a model (anything with ``.config``)."""
    cfg = _cfg_dict(config)
    mt = cfg.get("model_type")
    if mt == "gpt2":
        d, h = _size(cfg, "n_embd"), _size(cfg, "n_head")
        if h == 0 or d % h:
            raise ValueError(f"config: n_embd {d} is not divisible by n_head {h}")
        return ModelShape("gpt2", _size(cfg, "vocab_size"), d, _size(cfg, "n_layer"), h, h, d // h,
                          _size(cfg, "n_inner", None) if cfg.get("n_inner") else 4 * d,
                          n_positions=_size(cfg, "n_positions"), tied=True, gated_mlp=False, qkv_bias=True,
                          proj_biases=True, layer_norm_bias=True)
    if mt == "bert":
        d, h = _size(cfg, "hidden_size"), _size(cfg, "num_attention_heads")
        if h == 0 or d % h:
            raise ValueError(f"config: hidden_size {d} is not divisible by num_attention_heads {h}")
        return ModelShape("bert", _size(cfg, "vocab_size"), d, _size(cfg, "num_hidden_layers"), h, h, d // h,
                          _size(cfg, "intermediate_size"), n_positions=_size(cfg, "max_position_embeddings"),
                          type_vocab=_size(cfg, "type_vocab_size", 2), tied=False, has_lm_head=False,
                          gated_mlp=False, qkv_bias=True, proj_biases=True, layer_norm_bias=True, causal=False)
    if mt in _LLAMA_FAMILY:
        d, h = _size(cfg, "hidden_size"), _size(cfg, "num_attention_heads")
        if h == 0:
            raise ValueError("config: num_attention_heads must be positive")
        kv = _size(cfg, "num_key_value_heads", h) or h
        if h % kv:
            raise ValueError(f"config: num_attention_heads {h} is not a multiple of num_key_value_heads {kv}")
        hd = _size(cfg, "head_dim", None) if cfg.get("head_dim") else d // h
        n_layers = _size(cfg, "num_hidden_layers")
        return ModelShape("llama", _size(cfg, "vocab_size"), d, n_layers, h, kv, hd, _size(cfg, "intermediate_size"),
                          tied=bool(cfg.get("tie_word_embeddings", False)),
                          qkv_bias=mt in ("qwen2", "qwen2_moe") or bool(cfg.get("attention_bias", False)),
                          qk_norm=mt in ("qwen3", "qwen3_moe"), moe=_moe(cfg, n_layers))
    raise ValueError(f"config: model_type {mt!r} is not one scaling knows (gpt2, bert, and the llama family: "
                     f"{', '.join(sorted(_LLAMA_FAMILY))})")


# ------------------------------------------------------------------------------------------------ parameters
def _mlp_params(s: ModelShape, d_ff: int) -> int:
    if s.gated_mlp:
        return 3 * s.d_model * d_ff
    return 2 * s.d_model * d_ff + (d_ff + s.d_model if s.proj_biases else 0)


def _layer_params(s: ModelShape, layer: int, active: bool) -> int:
    d, qd, kvd = s.d_model, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim
    attn = d * qd + 2 * d * kvd + qd * d
    if s.qkv_bias:
        attn += qd + 2 * kvd
    if s.proj_biases:
        attn += d
    if s.qk_norm:
        attn += 2 * s.head_dim
    norms = 2 * d * (2 if s.layer_norm_bias else 1)
    m = s.moe
    if m is not None and layer in m.layers:
        experts = m.top_k if active else m.n_experts
        mlp = d * m.n_experts + experts * 3 * d * m.d_ff_expert  # router + experts
        if m.d_ff_shared:
            mlp += 3 * d * m.d_ff_shared + (d if m.shared_gate else 0)
    else:
        mlp = _mlp_params(s, s.d_ff)
    return attn + norms + mlp


def n_params(config, *, non_embedding: bool = False, active: bool = False) -> int:
    """Parameters of a model, exactly as llmc stores them (tensor for tensor, for the configs llmc loads).

    non_embedding=True leaves out the lookup tables and the vocabulary projection: token embeddings, position and
    token-type embeddings, and an untied lm head (Kaplan et al. 2020's N). active=True counts, for a mixture of
    experts, only the ``top_k`` experts a token uses (the N behind its FLOPs)."""
    s = model_shape(config)
    total = sum(_layer_params(s, i, active) for i in range(s.n_layers))
    emb = s.vocab * s.d_model + s.n_positions * s.d_model + s.type_vocab * s.d_model
    final_norm = 0
    if s.family == "bert":
        final_norm = 2 * s.d_model  # the embeddings LayerNorm (bert has no final norm)
    else:
        final_norm = s.d_model * (2 if s.layer_norm_bias else 1)
    head = s.vocab * s.d_model if s.has_lm_head and not s.tied else 0
    return total + final_norm + (0 if non_embedding else emb + head)


# ------------------------------------------------------------------------------------------------ FLOPs
@dataclass(frozen=True)
class FlopCount:
    """FLOPs per token, by part. ``parts`` keys: embeddings, attn_qkv, attn_scores, attn_softmax, attn_values,
    attn_out, router, mlp, lm_head (a part the model lacks is 0). ``total`` sums them."""

    parts: dict
    kind: str
    seq_len: int
    n_params: int
    n_params_non_embedding: int

    @property
    def total(self) -> float:
        return float(sum(self.parts.values()))

    @property
    def attention(self) -> float:
        """The parts that grow with the context: scores, softmax and the weighted sum of values."""
        return float(self.parts["attn_scores"] + self.parts["attn_softmax"] + self.parts["attn_values"])

    def ratio_to_6n(self, non_embedding: bool = True) -> float:
        """total / (6 N) for training (2 N for a forward pass): how far the 6ND rule is from the exact count."""
        n = self.n_params_non_embedding if non_embedding else self.n_params
        return self.total / ((6 if self.kind == "train" else 2) * n)

    def per_sequence(self) -> float:
        return self.total * self.seq_len

    def as_dict(self) -> dict:
        return dict(kind=self.kind, seq_len=self.seq_len, total=self.total, parts=dict(self.parts),
                    n_params=self.n_params, n_params_non_embedding=self.n_params_non_embedding)


_PARTS = ("embeddings", "attn_qkv", "attn_scores", "attn_softmax", "attn_values", "attn_out", "router", "mlp",
          "lm_head")


def _check_kind(kind: str) -> int:
    if kind not in ("forward", "train"):
        raise ValueError(f'kind must be "forward" or "train", got {kind!r}')
    return 1 if kind == "forward" else 3


def _check_seq(seq_len) -> int:
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    return int(seq_len)


def flops(config, seq_len: int, kind: str = "forward", *, attention: str = "full",
          embeddings: bool = False) -> FlopCount:
    """Exact matrix-product FLOPs per token of a model on sequences of ``seq_len`` tokens, by part.

    Per layer and token (d = d_model, H / Hkv query / key-value heads of size hd, F = MLP width, V = vocabulary):

    - attn_qkv: 2 d (H + 2 Hkv) hd (grouped-query heads shrink k and v)
    - attn_scores: 2 H hd T_ctx and attn_values: 2 H hd T_ctx, where T_ctx is the number of keys a query is scored
      against: T for ``attention="full"`` (what llmc's standard attention, its training backward and the
      Chinchilla paper compute: the whole T x T score matrix, the masked half included) or (T + 1) / 2 on average
      for ``"causal"`` (only the keys at or before each query)
    - attn_out: 2 H hd d
    - mlp: 2 * 3 d F for SwiGLU (gate, up, down), 2 * 2 d F for GELU; a mixture of experts counts its router
      (2 d E, part "router") and the ``top_k`` active experts (+ a shared expert), not all E
    - lm_head: 2 d V once per token (bert has none); embeddings: 2 d V if ``embeddings=True`` (the Chinchilla
      convention; llmc gathers rows, 0 FLOPs)

    kind="train" multiplies every part by 3 (forward + backward; the backward of y = x W^T computes both
    dx = dy W and dW = dy^T x, each as large as the forward product). attn_softmax is 0 here (element-wise);
    :func:`chinchilla_flops` includes it.
    """
    mult = _check_kind(kind)
    T = _check_seq(seq_len)
    if attention not in ("full", "causal"):
        raise ValueError(f'attention must be "full" or "causal", got {attention!r}')
    s = model_shape(config)
    d, qd, kvd = s.d_model, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim
    ctx = T if (attention == "full" or not s.causal) else (T + 1) / 2
    p = dict.fromkeys(_PARTS, 0.0)
    p["embeddings"] = 2.0 * d * s.vocab if embeddings else 0.0
    m = s.moe
    for layer in range(s.n_layers):
        p["attn_qkv"] += 2.0 * d * (qd + 2 * kvd)
        p["attn_scores"] += 2.0 * qd * ctx
        p["attn_values"] += 2.0 * qd * ctx
        p["attn_out"] += 2.0 * qd * d
        if m is not None and layer in m.layers:
            p["router"] += 2.0 * d * m.n_experts
            p["mlp"] += 2.0 * 3 * d * m.d_ff_expert * m.top_k
            if m.d_ff_shared:
                p["mlp"] += 2.0 * 3 * d * m.d_ff_shared + (2.0 * d if m.shared_gate else 0.0)
        else:
            p["mlp"] += 2.0 * (3 if s.gated_mlp else 2) * d * s.d_ff
    p["lm_head"] = 2.0 * d * s.vocab if s.has_lm_head else 0.0
    p = {k: v * mult for k, v in p.items()}
    return FlopCount(p, kind, T, n_params(config, active=True), n_params(config, non_embedding=True, active=True))


def chinchilla_flops(seq_len: int, vocab_size: int, d_model: int, num_heads: int, num_layers: int, ffw_size: int,
                     key_size: int | None = None, *, kind: str = "train", embeddings: bool = True,
                     logits: bool = True) -> FlopCount:
    """FLOPs per token by the Chinchilla paper's own method (Hoffmann et al. 2022, Appendix F), for its
    architecture (dense GELU MLP, multi-head attention):

    embeddings 2 T V d; per layer: q, k, v projections 2 * 3 T d (k H), key @ query logits 2 T^2 (k H),
    softmax 3 H T^2, softmax @ values 2 T^2 (k H), final linear 2 T (k H) d, dense block 2 T (2 d F);
    final logits 2 T d V; training = 3 x forward. Returned per token (divided by T).

    The paper's Table A4 ratios to 6ND (1.03 for its 73M model, ...) come out of these formulas only with
    ``embeddings=False, logits=False`` and N counting its relative-position weights and output projection
    (tests/test_scaling.py reproduces the table that way); with both terms the ratios are larger."""
    mult = _check_kind(kind)
    T = _check_seq(seq_len)
    for name, v in dict(vocab_size=vocab_size, d_model=d_model, num_heads=num_heads, num_layers=num_layers,
                        ffw_size=ffw_size).items():
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    k = key_size or d_model // num_heads
    kh = k * num_heads
    p = dict.fromkeys(_PARTS, 0.0)
    p["embeddings"] = 2.0 * vocab_size * d_model if embeddings else 0.0
    p["attn_qkv"] = num_layers * 2.0 * 3 * d_model * kh
    p["attn_scores"] = num_layers * 2.0 * T * kh
    p["attn_softmax"] = num_layers * 3.0 * num_heads * T
    p["attn_values"] = num_layers * 2.0 * T * kh
    p["attn_out"] = num_layers * 2.0 * kh * d_model
    p["mlp"] = num_layers * 2.0 * 2 * d_model * ffw_size
    p["lm_head"] = 2.0 * d_model * vocab_size if logits else 0.0
    p = {kk: v * mult for kk, v in p.items()}
    n_block = num_layers * (4 * d_model * kh + 2 * d_model * ffw_size)
    return FlopCount(p, kind, T, n_block + 2 * vocab_size * d_model, n_block)


class count_flops:
    """Count the FLOPs of the float32 matrix products llmc runs (BLAS sgemm / sgemv, in the C core) inside a
    ``with`` block::

        with scaling.count_flops() as c:
            model.logits(ids)
        c.flops, c.calls

    Each product adds 2 m n k. The counter is process-wide (every thread's products count, including other
    threads' work while the block is open); it costs one atomic load per product when no block is open. Attention
    through llmc's flash kernel and element-wise work are not BLAS products and are not counted."""

    def __init__(self):
        self.flops = 0
        self.calls = 0
        self._start = None

    def __enter__(self):
        from ._native import _core

        self._core = _core
        _core.flop_counter_enable(True)
        self._start = _core.flop_counter_read()
        return self

    def __exit__(self, *exc):
        end = self._core.flop_counter_read()
        self._core.flop_counter_enable(False)
        self.flops = end[0] - self._start[0]
        self.calls = end[1] - self._start[1]
        return False


# ------------------------------------------------------------------------------------------------ the Chinchilla law
@dataclass(frozen=True)
class ChinchillaLaw:
    """L(N, D) = E + A / N^alpha + B / D^beta: loss (nats per token) after training N parameters on D tokens."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    name: str = "custom"

    def loss(self, N, D):
        N, D = np.asarray(N, float), np.asarray(D, float)
        if np.any(N <= 0) or np.any(D <= 0):
            raise ValueError("N and D must be positive")
        out = self.E + self.A / N ** self.alpha + self.B / D ** self.beta
        return float(out) if out.ndim == 0 else out

    __call__ = loss

    def as_dict(self) -> dict:
        return dict(name=self.name, E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta)


#: Hoffmann et al. (2022), eq. (10): the paper's Approach 3 fit on MassiveText
HOFFMANN = ChinchillaLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28, name="hoffmann")
#: Besiroglu et al. (2024), "Chinchilla Scaling: A replication attempt": refit on the data read off the paper's Fig. 4
BESIROGLU = ChinchillaLaw(E=1.82, A=482.01, B=2085.43, alpha=0.3478, beta=0.3658, name="besiroglu")
LAWS = {"hoffmann": HOFFMANN, "besiroglu": BESIROGLU}


def _law(law) -> ChinchillaLaw:
    if isinstance(law, ChinchillaLaw):
        return law
    if isinstance(law, str) and law in LAWS:
        return LAWS[law]
    if hasattr(law, "law") and callable(law.law):  # a ChinchillaFit
        return law.law()
    raise ValueError(f'law must be "hoffmann", "besiroglu", a ChinchillaLaw or a ChinchillaFit, got {law!r}')


@dataclass(frozen=True)
class Optimum:
    """A compute-optimal allocation: N parameters trained on D tokens for C = flops_per_param_token * N * D."""

    compute: float
    n_params: float
    tokens: float
    loss: float | None
    law: str

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.n_params

    def as_dict(self) -> dict:
        return dict(compute=self.compute, n_params=self.n_params, tokens=self.tokens, loss=self.loss,
                    tokens_per_param=self.tokens_per_param, law=self.law)


def _positive(name: str, x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {type(x).__name__}") from None
    if not (v > 0) or not math.isfinite(v):
        raise ValueError(f"{name} must be a positive finite number, got {x!r}")
    return v


def compute_optimal(C: float, law="hoffmann", *, flops_per_param_token: float = 6.0) -> Optimum:
    """The N and D that minimise L(N, D) = E + A N^-alpha + B D^-beta for a training budget of C FLOPs.

    Derivation. With C = k N D (k = 6: forward + backward, 2 + 4 FLOPs per parameter per token), D = C / (k N) and

        f(N) = A N^-alpha + B (C/k)^-beta N^beta.

    f'(N) = -alpha A N^(-alpha-1) + beta B (C/k)^-beta N^(beta-1) = 0 gives
    alpha A N^-alpha = beta B (C/k)^-beta N^beta, so

        N_opt = G (C/k)^a,   D_opt = (C/k) / N_opt = G^-1 (C/k)^b,
        G = (alpha A / (beta B))^(1 / (alpha + beta)),   a = beta / (alpha + beta),   b = alpha / (alpha + beta)

    (Hoffmann et al. 2022, eq. 4). It is the only stationary point and a minimum: in x = log N, f is a sum of
    two exponentials e^(-alpha x) and e^(beta x) with positive weights, so convex. At the optimum the two
    reducible terms stand in the ratio A N^-alpha : B D^-beta = beta : alpha.
    """
    C = _positive("C", C)
    k = _positive("flops_per_param_token", flops_per_param_token)
    lw = _law(law)
    s = lw.alpha + lw.beta
    G = (lw.alpha * lw.A / (lw.beta * lw.B)) ** (1.0 / s)
    N = G * (C / k) ** (lw.beta / s)
    D = (C / k) / N
    return Optimum(C, N, D, lw.loss(N, D), lw.name)


def optimal_for_params(N: float, law="hoffmann", *, flops_per_param_token: float = 6.0) -> Optimum:
    """The budget for which an N-parameter model is compute-optimal: inverting N = G (C/k)^a gives
    C = k (N / G)^(1/a) (the paper's Table 3 / A3 read by model size)."""
    N = _positive("N", N)
    lw = _law(law)
    s = lw.alpha + lw.beta
    G = (lw.alpha * lw.A / (lw.beta * lw.B)) ** (1.0 / s)
    C = flops_per_param_token * (N / G) ** (s / lw.beta)
    return compute_optimal(C, lw, flops_per_param_token=flops_per_param_token)


def optimal_for_tokens(D: float, law="hoffmann", *, flops_per_param_token: float = 6.0) -> Optimum:
    """The budget for which training on D tokens is compute-optimal: C = k (G D)^(1/b)."""
    D = _positive("D", D)
    lw = _law(law)
    s = lw.alpha + lw.beta
    G = (lw.alpha * lw.A / (lw.beta * lw.B)) ** (1.0 / s)
    C = flops_per_param_token * (G * D) ** (s / lw.alpha)
    return compute_optimal(C, lw, flops_per_param_token=flops_per_param_token)


def chinchilla_optimal(C: float, *, tokens_per_param: float = 20.0, flops_per_param_token: float = 6.0) -> Optimum:
    """The rule of thumb from the Chinchilla paper's Table 3: train on ~20 tokens per parameter, so with
    C = 6 N D = 6 r N^2: N = sqrt(C / (6 r)), D = r N.

    Table 3 (Approach 1) itself drifts from 20.0 tokens per parameter at 400M parameters to 21.6 at 10T, so this
    rule gives its model sizes within 4% (1.21e20 FLOPs -> 1.00B, 5.76e23 -> 69B for its "67 Billion")."""
    C = _positive("C", C)
    r = _positive("tokens_per_param", tokens_per_param)
    k = _positive("flops_per_param_token", flops_per_param_token)
    N = math.sqrt(C / (k * r))
    return Optimum(C, N, r * N, None, f"{r:g} tokens/parameter")


# ------------------------------------------------------------------------------------------------ fitting
def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, element-wise."""
    a = np.abs(r)
    small = a <= delta
    loss = np.where(small, 0.5 * r * r, delta * (a - 0.5 * delta))
    return loss, np.clip(r, -delta, delta)


def _scipy_minimize():
    try:
        from scipy.optimize import minimize
    except ImportError as e:  # pragma: no cover - exercised only without scipy
        raise ImportError('fitting scaling laws needs SciPy: pip install "llmc[scaling]" (or scipy)') from e
    return minimize


def _as_points(name: str, x, n_min: int) -> np.ndarray:
    a = np.asarray(x, float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence, got shape {a.shape}")
    if a.size < n_min:
        raise ValueError(f"need at least {n_min} points to fit, got {a.size} {name}")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        bad = a[~(np.isfinite(a) & (a > 0))][0]
        raise ValueError(f"{name} must be positive and finite, got {bad!r}")
    return a


def _ci(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _lbfgs(fun, x0):
    minimize = _scipy_minimize()
    return minimize(fun, x0, jac=True, method="L-BFGS-B",
                    options=dict(maxiter=500, ftol=1e-10, gtol=1e-8, maxcor=20))


@dataclass
class PowerLawFit:
    """L = a x^-b + c (c = 0 without an offset), fitted by Huber loss on log L. ``intervals``: name -> (lo, hi)
    bootstrap percentile interval (empty without ``bootstrap``)."""

    a: float
    b: float
    c: float
    offset: bool
    objective: float
    n_points: int
    intervals: dict = field(default_factory=dict)
    level: float = 0.95

    def __call__(self, x):
        x = np.asarray(x, float)
        out = self.a * x ** -self.b + self.c
        return float(out) if out.ndim == 0 else out

    def as_dict(self) -> dict:
        return dict(a=self.a, b=self.b, c=self.c, offset=self.offset, objective=self.objective,
                    n_points=self.n_points, intervals={k: list(v) for k, v in self.intervals.items()},
                    level=self.level)


def _screen(grid: np.ndarray, predict, ly: np.ndarray, delta: float, keep: int) -> np.ndarray:
    """The ``keep`` rows of ``grid`` (starting points) with the lowest objective, evaluated for all at once;
    ``predict(grid) -> (len(grid), n)`` log-loss predictions."""
    h, _ = _huber(predict(grid) - ly[None, :], delta)
    obj = np.where(np.isfinite(h), h, np.inf).sum(axis=1)
    return grid[np.argsort(obj, kind="stable")[:keep]]


def _fit_power_once(lx, ly, offset, delta, starts):
    # parameters: (log a, b, log c): log L_hat = LSE(log a - b log x, log c) (or log a - b log x)
    def fun(t):
        if offset:
            u, v = t[0] - t[1] * lx, np.full_like(lx, t[2])
            m = np.maximum(u, v)
            eu, ev = np.exp(u - m), np.exp(v - m)
            pred = m + np.log(eu + ev)
            wu, wv = eu / (eu + ev), ev / (eu + ev)
            h, psi = _huber(pred - ly, delta)
            g = np.array([np.sum(psi * wu), np.sum(psi * wu * -lx), np.sum(psi * wv)])
        else:
            pred = t[0] - t[1] * lx
            h, psi = _huber(pred - ly, delta)
            g = np.array([np.sum(psi), np.sum(-psi * lx)])
        return float(np.sum(h)) / delta, g / delta

    best = None
    for x0 in starts:
        r = _lbfgs(fun, np.asarray(x0, float))
        if np.all(np.isfinite(r.x)) and (best is None or r.fun < best.fun):
            best = r
    return best


def fit_power_law(x, loss, *, offset: bool = True, delta: float = 1e-3, bootstrap: int = 0, level: float = 0.95,
                  seed: int = 0) -> PowerLawFit:
    """Fit L = a x^-b (+ c) to (x, loss) points, e.g. loss against compute along the frontier.

    Minimises sum_i Huber_delta(log L_hat(x_i) - log L_i) with L-BFGS from a grid of starting points, as
    Hoffmann et al. (2022) fit their law; ``bootstrap`` > 0 refits that many resamples (with replacement) and
    reports percentile intervals at ``level``. Needs at least 3 points (4 with an offset)."""
    xs = _as_points("x", x, 4 if offset else 3)
    ys = _as_points("loss", loss, 4 if offset else 3)
    if xs.size != ys.size:
        raise ValueError(f"x and loss differ in length ({xs.size} vs {ys.size})")
    delta = _positive("delta", delta)
    lx, ly = np.log(xs), np.log(ys)
    if offset:
        lo = float(np.log(ys.min()))
        grid = np.array([(la, b, lo + dc) for la in np.linspace(0, 40, 9) for b in (0.05, 0.1, 0.2, 0.35, 0.5, 1.0)
                         for dc in (-3.0, -1.0, -0.3, -0.1, -0.02)])
        starts = list(_screen(grid, lambda t: np.logaddexp(t[:, 0:1] - t[:, 1:2] * lx, t[:, 2:3]), ly, delta, 12))
    else:
        slope, icpt = np.polyfit(lx, ly, 1)
        starts = [(icpt, -slope)]
    r = _fit_power_once(lx, ly, offset, delta, starts)
    fit = PowerLawFit(float(np.exp(r.x[0])), float(r.x[1]), float(np.exp(r.x[2])) if offset else 0.0, offset,
                      float(r.fun * delta), int(xs.size), level=level)
    if bootstrap:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(int(bootstrap)):
            idx = rng.integers(0, xs.size, xs.size)
            rb = _fit_power_once(lx[idx], ly[idx], offset, delta, [r.x] + starts[:3])
            samples.append([np.exp(rb.x[0]), rb.x[1], np.exp(rb.x[2]) if offset else 0.0])
        s = np.array(samples)
        fit.intervals = {n: _ci(s[:, i], level) for i, n in enumerate(["a", "b", "c"][: 3 if offset else 2])}
    return fit


@dataclass
class ChinchillaFit:
    """A fitted L(N, D) = E + A/N^alpha + B/D^beta, its objective and bootstrap intervals (name -> (lo, hi))."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n_points: int
    intervals: dict = field(default_factory=dict)
    level: float = 0.95

    def law(self) -> ChinchillaLaw:
        return ChinchillaLaw(self.E, self.A, self.B, self.alpha, self.beta, name="fit")

    def __call__(self, N, D):
        return self.law().loss(N, D)

    def as_dict(self) -> dict:
        return dict(E=self.E, A=self.A, B=self.B, alpha=self.alpha, beta=self.beta, objective=self.objective,
                    n_points=self.n_points, intervals={k: list(v) for k, v in self.intervals.items()},
                    level=self.level)


#: The paper's grid of initialisations (Appendix D.2): alpha, beta in {0, 0.5, ..., 2}, e in {-1, -0.5, ..., 1},
#: a, b in {0, 5, ..., 25}
PAPER_GRID = dict(alpha=np.arange(0, 2.01, 0.5), beta=np.arange(0, 2.01, 0.5), e=np.arange(-1, 1.01, 0.5),
                  a=np.arange(0, 25.1, 5), b=np.arange(0, 25.1, 5))


def _chin_objective(lN, lD, lL, delta):
    def fun(t):
        a, b, e, al, be = t
        u, v, w = a - al * lN, b - be * lD, np.full_like(lN, e)
        m = np.maximum(np.maximum(u, v), w)
        eu, ev, ew = np.exp(u - m), np.exp(v - m), np.exp(w - m)
        z = eu + ev + ew
        pred = m + np.log(z)  # log(A N^-alpha + B D^-beta + E), computed stably
        h, psi = _huber(pred - lL, delta)
        wu, wv, ww = psi * eu / z, psi * ev / z, psi * ew / z
        g = np.array([wu.sum(), wv.sum(), ww.sum(), -(wu * lN).sum(), -(wv * lD).sum()])
        return float(h.sum()) / delta, g / delta

    return fun


def _fit_chin_once(lN, lD, lL, delta, starts):
    fun = _chin_objective(lN, lD, lL, delta)
    results = []
    for x0 in starts:
        r = _lbfgs(fun, np.asarray(x0, float))
        if np.all(np.isfinite(r.x)):
            results.append(r)
    results.sort(key=lambda r: r.fun)
    return results


def fit_chinchilla(N, D, loss, *, delta: float = 1e-3, grid: Mapping | None = None, starts: int | None = 64,
                   bootstrap: int = 0, level: float = 0.95, seed: int = 0) -> ChinchillaFit:
    """Fit L(N, D) = E + A/N^alpha + B/D^beta to training runs (N parameters, D tokens, final loss), the way
    Hoffmann et al. (2022, eq. 3 and Appendix D.2) fit theirs:

        min over (a, b, e, alpha, beta) of  sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i )

    with A, B, E = exp(a), exp(b), exp(e), delta = 1e-3, L-BFGS started from every point of a grid of
    initialisations (default: the paper's 5 x 5 x 5 x 6 x 6 grid, :data:`PAPER_GRID`), keeping the best.
    The objective is first evaluated at every grid point (one vectorised pass) and L-BFGS runs from the ``starts``
    best of them (default 64: seconds instead of minutes); ``starts=None`` runs it from all 4500, as the paper did.

    bootstrap > 0: refit that many resamples of the runs (drawn with replacement), each started from the full-data
    optimum and the 10 best distinct starting points of the full fit, and report percentile intervals at
    ``level``. Needs at least 5 runs (5 parameters); far more make a meaningful fit."""
    Ns, Ds, Ls = _as_points("N", N, 5), _as_points("D", D, 5), _as_points("loss", loss, 5)
    if not (Ns.size == Ds.size == Ls.size):
        raise ValueError(f"N, D and loss differ in length ({Ns.size}, {Ds.size}, {Ls.size})")
    delta = _positive("delta", delta)
    g = dict(PAPER_GRID, **(grid or {}))
    pts = np.array(list(itertools.product(g["a"], g["b"], g["e"], g["alpha"], g["beta"])), float)
    lN, lD, lL = np.log(Ns), np.log(Ds), np.log(Ls)
    if starts is not None:
        if isinstance(starts, bool) or not isinstance(starts, (int, np.integer)) or starts < 1:
            raise ValueError(f"starts must be a positive integer or None, got {starts!r}")

        def predict(t):  # log(A N^-alpha + B D^-beta + E) for every starting point at once
            return np.logaddexp(np.logaddexp(t[:, 0:1] - t[:, 3:4] * lN, t[:, 1:2] - t[:, 4:5] * lD), t[:, 2:3])

        pts = _screen(pts, predict, lL, delta, int(starts))
    results = _fit_chin_once(lN, lD, lL, delta, list(pts))
    if not results:
        raise ValueError("the fit failed from every starting point")
    best = results[0]
    a, b, e, al, be = best.x
    fit = ChinchillaFit(float(np.exp(e)), float(np.exp(a)), float(np.exp(b)), float(al), float(be),
                        float(best.fun * delta), int(Ns.size), level=level)
    if bootstrap:
        seeds = [best.x]
        for r in results[1:]:
            if len(seeds) >= 11:
                break
            if all(np.max(np.abs(r.x - s)) > 1e-3 for s in seeds):
                seeds.append(r.x)
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(int(bootstrap)):
            idx = rng.integers(0, Ns.size, Ns.size)
            rb = _fit_chin_once(lN[idx], lD[idx], lL[idx], delta, seeds)
            if rb:
                a, b, e, al, be = rb[0].x
                samples.append([np.exp(e), np.exp(a), np.exp(b), al, be])
        s = np.array(samples)
        fit.intervals = {n: _ci(s[:, i], level) for i, n in enumerate(["E", "A", "B", "alpha", "beta"])}
    return fit
