"""Self-supervised training (``llmc.train``; this module is ``llmc.training`` so the function keeps that name): next-token prediction on unlabeled text, in the C core (csrc/train.c).

The model's weights stay where they are (zero-copy NumPy views of the model's own buffers); the C trainer
computes the loss and accumulates gradients into arrays with the checkpoint's tensor names, and AdamW
(decoupled weight decay, bias correction), global-norm clipping and a warmup + cosine schedule update the
weights in place. Supported architectures: ``gpt2``, ``llama`` (with llama3 RoPE scaling, tied or untied head),
``mistral`` (sliding-window attention), ``qwen2`` (q/k/v biases) and ``qwen3`` (q/k norms), in float32 or bf16
mixed precision, and the mixtures of experts ``mixtral``, ``qwen2_moe`` and ``qwen3_moe`` in float32 (the loss adds
router_aux_loss_coef times the load-balancing loss; csrc/moe_train.c, docs/moe.md). Anything else raises
llmc.UnsupportedError naming the setting.

Anything with ``.config`` (a Hugging Face config dict) and ``.state_dict()`` (name -> writable float32 array
shared with the model; ``state_dict(writable=True)`` is asked for first) can be trained; ``llmc.Model`` is one.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from ._native import _core

__all__ = ["trainer_config", "Trainer", "loss_and_grads", "train", "TrainHistory", "NonFiniteLossError",
           "validate_hyperparameters"]


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss (or the gradient norm) became NaN or infinite.

    The update of the failing step was not applied: the model (and the trainer's AdamW moments) hold the weights
    after the last good step. Attributes: step (0-based index of the failing step), loss, grad_norm, history (the
    TrainHistory up to the last good step)."""

    def __init__(self, step: int, loss: float, grad_norm: float, history: "TrainHistory"):
        what = "loss" if not math.isfinite(loss) else "gradient norm"
        value = loss if not math.isfinite(loss) else grad_norm
        last = f"; the last good step was {step - 1} (loss {history.train_loss[-1]:.4g})" if history.train_loss else ""
        super().__init__(f"training diverged: the {what} became {value} at step {step}{last}. The update was not "
                         "applied, so the model holds the weights of the last good step. Lower lr, raise warmup or "
                         "clip gradients (grad_clip).")
        self.step, self.loss, self.grad_norm, self.history = step, loss, grad_norm, history


# Bounds beyond which a hyperparameter is a mistake, not a choice: AdamW moves each weight by about lr per step,
# so lr > 1 destroys weights of size ~0.02 in one step; decoupled weight decay shrinks weights by lr * wd per step.
_LIMITS = {"lr": (0.0, 1.0, False), "weight_decay": (0.0, 1.0, True), "grad_clip": (0.0, 1e6, True),
           "min_lr_ratio": (0.0, 1.0, True)}


def _int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _real(name: str, value) -> float:
    lo, hi, lo_ok = _LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if v < lo or (v == lo and not lo_ok) or v > hi:
        left = "[" if lo_ok else "("
        raise ValueError(f"{name} must be in {left}{lo:g}, {hi:g}], got {v:g}")
    return v


def validate_hyperparameters(*, steps: int, batch_size: int, seq_len: int, lr: float, weight_decay: float,
                             warmup: int | None, grad_clip: float | None, grad_accum: int, min_lr_ratio: float,
                             eval_every: int | None, eval_batches: int, seed: int, start_step: int,
                             n_positions: int | None = None) -> None:
    """Raise TypeError / ValueError naming the first bad training hyperparameter: non-numbers, NaN or infinity,
    lr <= 0 or > 1, weight_decay outside [0, 1], negative grad_clip, warmup outside [0, steps], seq_len beyond the
    model's positions (n_positions / max_position_embeddings), and the like."""
    steps = _int("steps", steps, 1)
    _int("batch_size", batch_size, 1)
    seq_len = _int("seq_len", seq_len, 1)
    if n_positions is not None and seq_len > n_positions:
        raise ValueError(f"seq_len {seq_len} exceeds the model's context window (max_position_embeddings / "
                         f"n_positions = {n_positions})")
    _real("lr", lr)
    _real("weight_decay", weight_decay)
    if warmup is not None:
        _int("warmup", warmup, 0, steps)
    if grad_clip is not None:
        _real("grad_clip", grad_clip)
    _int("grad_accum", grad_accum, 1)
    _real("min_lr_ratio", min_lr_ratio)
    if eval_every is not None:
        _int("eval_every", eval_every, 1)
    _int("eval_batches", eval_batches, 1)
    _int("seed", seed, 0)
    _int("start_step", start_step, 0, steps)


def _get(cfg: dict, key: str, default=None, *, required=True):
    if key in cfg and cfg[key] is not None:
        return cfg[key]
    if default is not None or not required:
        return default
    raise ValueError(f"config.json: missing field {key!r} needed for training")


_LLAMA_FAMILY = ("llama", "mistral", "qwen2", "qwen3")
_PRECISIONS = {"fp32": 0, "float32": 0, "bf16": 1, "bfloat16": 1}


def _precision(precision) -> int:
    """The C trainer's precision code for 'fp32' / 'bf16' (aliases 'float32', 'bfloat16')."""
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a string ('fp32' or 'bf16'), got {type(precision).__name__} {precision!r}")
    if precision.lower() not in _PRECISIONS:
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
    return _PRECISIONS[precision.lower()]


def _rope_scaling(config: dict) -> dict:
    """RoPE base and scaling of a llama-family config (transformers 5 'rope_parameters' or the older top-level
    'rope_theta' + 'rope_scaling'), as the C trainer's keyword arguments."""
    rp = config.get("rope_parameters") or {}
    sc = config.get("rope_scaling") or rp
    default = 1e6 if config.get("model_type") == "mixtral" else 10000.0  # transformers' default_theta
    theta = rp.get("rope_theta", config.get("rope_theta", default))
    kind = sc.get("rope_type") or sc.get("type") or "default"
    out = dict(rope_theta=float(theta))
    if kind == "llama3":
        for key in ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"):
            if sc.get(key) is None:
                raise ValueError(f"config.json: rope scaling llama3 needs {key!r}")
        out.update(rope_llama3=True, rope_factor=float(sc["factor"]), rope_low_freq_factor=float(sc["low_freq_factor"]),
                   rope_high_freq_factor=float(sc["high_freq_factor"]),
                   rope_original_context=int(sc["original_max_position_embeddings"]))
    elif kind != "default":
        raise _core.UnsupportedError(f"config.json: rope scaling of type {kind!r} is not supported for training "
                                     "(default and llama3 are)")
    return out


def trainer_config(config: dict) -> dict:
    """Map a Hugging Face config dict (gpt2, llama, mistral, qwen2, qwen3) to the C trainer's sizes and options;
    a setting training does not implement raises llmc.UnsupportedError naming the field (never a silently wrong
    gradient)."""
    mt = config.get("model_type")
    if mt == "gpt2":
        d = _get(config, "n_embd")
        act = config.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise _core.UnsupportedError(f"config.json: activation_function {act!r} is not supported for training "
                                         "(gelu_new only)")
        if config.get("tie_word_embeddings", True) is False:
            raise _core.UnsupportedError("config.json: tie_word_embeddings=false is not supported for gpt2 training")
        if config.get("scale_attn_by_inverse_layer_idx") or config.get("reorder_and_upcast_attn"):
            raise _core.UnsupportedError("config.json: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are "
                                         "not supported for gpt2 training")
        h = _get(config, "n_head")
        return dict(arch=0, n_layers=_get(config, "n_layer"), d_model=d, n_heads=h, n_kv_heads=h, head_dim=d // h,
                    d_ff=config.get("n_inner") or 4 * d, vocab=_get(config, "vocab_size"),
                    n_positions=_get(config, "n_positions"), eps=float(config.get("layer_norm_epsilon", 1e-5)),
                    rope_theta=0.0, tied=True)
    if mt in _LLAMA_FAMILY:
        checks = [("hidden_act", "silu"), ("mlp_bias", False)]
        if mt != "qwen2":  # qwen2's q/k/v biases are part of the architecture; the others have none
            checks.append(("attention_bias", False))
        if mt in ("qwen2", "qwen3"):
            checks.append(("use_sliding_window", False))
        for key, ok in checks:
            if config.get(key, ok) not in (ok, None):
                raise _core.UnsupportedError(f"config.json: {key}={config[key]!r} is not supported for training")
        layer_types = config.get("layer_types") or []
        if any(lt != "full_attention" for lt in layer_types) and mt != "mistral":
            raise _core.UnsupportedError(f"config.json: layer_types {sorted(set(layer_types))} are not supported for "
                                         "training (full_attention only)")
        window = int(config.get("sliding_window") or 0) if mt == "mistral" else 0
        d, h = _get(config, "hidden_size"), _get(config, "num_attention_heads")
        return dict(arch=1, n_layers=_get(config, "num_hidden_layers"), d_model=d, n_heads=h,
                    n_kv_heads=config.get("num_key_value_heads") or h, head_dim=config.get("head_dim") or d // h,
                    d_ff=_get(config, "intermediate_size"), vocab=_get(config, "vocab_size"),
                    n_positions=_get(config, "max_position_embeddings"), eps=float(config.get("rms_norm_eps", 1e-6)),
                    tied=bool(config.get("tie_word_embeddings", False)), window=window, qkv_bias=mt == "qwen2",
                    qk_norm=mt == "qwen3", **_rope_scaling(config))
    if mt in _MOE:
        return _moe_trainer_config(config, mt)
    raise _core.UnsupportedError(f"config.json: training supports model_type gpt2, llama, mistral, qwen2, qwen3, "
                                 f"mixtral, qwen2_moe and qwen3_moe, not {mt!r}")


_MOE = ("mixtral", "qwen2_moe", "qwen3_moe")


def _moe_trainer_config(config: dict, mt: str) -> dict:
    """The C trainer's options for a mixture of experts (csrc/moe_train.c): llama-family attention (mixtral's
    sliding window, qwen2_moe's q/k/v biases, qwen3_moe's q/k norms) and sparse SwiGLU experts, with transformers'
    defaults for absent fields."""
    for key, ok in [("hidden_act", "silu"), ("router_jitter_noise", 0.0), ("use_sliding_window", False),
                    ("attention_bias", False)]:
        if config.get(key, ok) not in (ok, None, 0):
            raise _core.UnsupportedError(f"config.json: {key}={config[key]!r} is not supported for training")
    d, h = _get(config, "hidden_size"), _get(config, "num_attention_heads")
    n_layers = _get(config, "num_hidden_layers")
    ekey = "num_experts" if config.get("num_experts") is not None else "num_local_experts"
    E = int(config.get(ekey) or {"mixtral": 8, "qwen2_moe": 60, "qwen3_moe": 128}[mt])
    k = int(config.get("num_experts_per_tok") or {"mixtral": 2, "qwen2_moe": 4, "qwen3_moe": 8}[mt])
    moe = dict(n_experts=E, n_experts_used=k, aux_loss_coef=float(config.get("router_aux_loss_coef", 0.001)))
    if mt == "mixtral":
        moe.update(moe_d_ff=_get(config, "intermediate_size"), norm_topk_prob=True, moe_names=True)
    else:
        moe.update(moe_d_ff=int(config.get("moe_intermediate_size") or (1408 if mt == "qwen2_moe" else 768)),
                   norm_topk_prob=bool(config.get("norm_topk_prob", False)),
                   decoder_sparse_step=int(config.get("decoder_sparse_step") or 1),
                   mlp_only_layers=[l for l in (config.get("mlp_only_layers") or []) if 0 <= l < n_layers])
        if mt == "qwen2_moe":
            moe["shared_d_ff"] = int(config.get("shared_expert_intermediate_size") or 5632)
    return dict(arch=1, n_layers=n_layers, d_model=d, n_heads=h, n_kv_heads=config.get("num_key_value_heads") or h,
                head_dim=config.get("head_dim") or d // h, d_ff=_get(config, "intermediate_size"),
                vocab=_get(config, "vocab_size"), n_positions=_get(config, "max_position_embeddings"),
                eps=float(config.get("rms_norm_eps", 1e-5 if mt == "mixtral" else 1e-6)),
                tied=bool(config.get("tie_word_embeddings", False)),
                window=int(config.get("sliding_window") or 0) if mt == "mixtral" else 0,
                qkv_bias=mt == "qwen2_moe" and bool(config.get("qkv_bias", True)), qk_norm=mt == "qwen3_moe",
                **_rope_scaling(config), **moe)


class Trainer:
    """Loss and gradients of a model for batches of up to (batch, seq_len) tokens; activations allocated once.

    ``params``: name -> float32 array (the model's own weights, updated in place by :meth:`adamw_step`).
    ``precision``: 'fp32', or 'bf16' for mixed precision (bf16 matmul operands, float32 accumulation, float32
    master weights and gradients; see :func:`train`). ``rope_divisors``: per-frequency RoPE divisors of a GGUF
    model (its rope_freqs tensor), if any."""

    def __init__(self, config: dict, params: dict, batch: int, seq_len: int, precision: str = "fp32",
                 rope_divisors=None):
        self.config = dict(config)
        code = _precision(precision)
        self.precision = "bf16" if code else "fp32"
        kw = trainer_config(config)
        if rope_divisors is not None:
            if kw["arch"] != 1:
                raise _core.UnsupportedError("RoPE frequency divisors apply to llama-family models only")
            kw["rope_divisors"] = np.ascontiguousarray(rope_divisors, dtype=np.float32)
        self._t = _core.Trainer(**kw, batch=int(batch), seq_len=int(seq_len), precision=code)
        self.names = [n for n, _ in self._t.tensors()]
        shapes = dict(self._t.tensors())
        missing = [n for n in self.names if n not in params]
        if missing:
            raise ValueError(f"missing weights for training: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
        self.params = [params[n] for n in self.names]
        for n, p in zip(self.names, self.params):
            if tuple(p.shape) != tuple(shapes[n]):
                raise ValueError(f"weight {n} has shape {tuple(p.shape)}, expected {tuple(shapes[n])}")
        self.grads = [np.zeros_like(p) for p in self.params]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.step_count = 0

    def zero_grad(self) -> None:
        for g in self.grads:
            g.fill(0.0)

    def loss(self, inputs, targets) -> float:
        """Mean next-token NLL of a (B, T) batch, without gradients."""
        return self._t.step(self.params, None, inputs, targets, 1.0)

    def accumulate(self, inputs, targets, scale: float | None = None) -> float:
        """Add scale * d(summed NLL)/d(weights) to the gradients (default scale: 1 / number of tokens)."""
        inputs = np.asarray(inputs)
        if scale is None:
            scale = 1.0 / max(1, inputs.size)
        return self._t.step(self.params, self.grads, inputs, targets, float(scale))

    def grad_norm(self) -> float:
        """Global L2 norm of all gradients (summed in double in C: no NumPy BLAS call, whose own thread pool would
        spin beside llmc's)."""
        return math.sqrt(_core.grad_sumsq(self.grads))

    def clip(self, max_norm: float) -> float:
        """torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (norm + 1e-6) when that is < 1."""
        norm = self.grad_norm()
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            for g in self.grads:
                np.multiply(g, np.float32(coef), out=g)
        return norm

    def adamw_step(self, lr: float, *, weight_decay: float = 0.1, betas=(0.9, 0.95), eps: float = 1e-8,
                   decay_embeddings: bool = False) -> None:
        """One AdamW update of every weight; no decay on 1-D tensors (norms, biases) or embeddings unless asked."""
        self.step_count += 1
        for n, p, g, m, v in zip(self.names, self.params, self.grads, self.m, self.v):
            no_decay = p.ndim < 2 or (not decay_embeddings and ("wte" in n or "wpe" in n or "embed_tokens" in n))
            _core.adamw_step(p, g, m, v, float(lr), betas[0], betas[1], eps, 0.0 if no_decay else weight_decay,
                             self.step_count)


def _params_of(model) -> tuple[dict, dict]:
    if hasattr(model, "_need_f32"):  # an llmc.Model: training runs on float32 weights only
        model._need_f32("training")
    cfg = model.config if isinstance(model.config, dict) else model.config.to_dict()
    try:  # llmc.Model hands out read-only views unless asked for writable ones
        return cfg, model.state_dict(writable=True)
    except TypeError:  # another model type whose state_dict() takes no argument
        return cfg, model.state_dict()


def _trainer_for(model, batch: int, seq_len: int, precision: str = "fp32") -> Trainer:
    cfg, params = _params_of(model)
    return Trainer(cfg, params, batch, seq_len, precision, getattr(model, "_rope_factors", None))


def loss_and_grads(model, input_ids, target_ids, *, precision: str = "fp32") -> tuple[float, dict]:
    """The mean next-token loss of one batch and its gradient with respect to every weight.

    input_ids, target_ids: integer arrays of shape (B, T) (or (T,) for one sequence); target_ids[b, t] is the
    token that should follow input_ids[b, :t + 1]. Returns (loss, {checkpoint tensor name: float32 gradient of
    the same shape as the weight}); tied weights appear once, under the embedding's name. The model is not changed.
    precision='bf16' computes them with bf16 matmul operands (see :func:`train`). Also ``model.loss_and_grads``."""
    _precision(precision)
    inputs = np.asarray(input_ids)
    targets = np.asarray(target_ids)
    if inputs.ndim == 1:
        inputs, targets = inputs[None], targets[None]
    if inputs.ndim != 2 or inputs.shape != targets.shape:
        raise ValueError(f"input_ids and target_ids must both have shape (B, T) or (T,), got {np.shape(input_ids)} "
                         f"and {np.shape(target_ids)}")
    if inputs.size == 0:
        raise ValueError(f"input_ids is empty (shape {inputs.shape})")
    t = _trainer_for(model, inputs.shape[0], inputs.shape[1], precision)
    loss = t.accumulate(inputs, targets)
    return loss, dict(zip(t.names, t.grads))


@dataclass
class TrainHistory:
    step: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    eval_step: list = field(default_factory=list)
    eval_loss: list = field(default_factory=list)
    tokens_per_s: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)


def lr_at(step: int, *, lr: float, warmup: int, steps: int, min_lr_ratio: float = 0.1) -> float:
    """Linear warmup for `warmup` steps, then cosine decay to lr * min_lr_ratio at `steps` (C: llmc_lr_cosine)."""
    return _core.lr_cosine(step, warmup, steps, lr, lr * min_lr_ratio)


def train(model, train_ids=None, *, steps: int, batch_size: int = 8, seq_len: int = 128, lr: float = 3e-3,
          weight_decay: float = 0.1, warmup: int | None = None, grad_clip: float = 1.0, grad_accum: int = 1,
          min_lr_ratio: float = 0.1, eval_ids=None, eval_every: int | None = None, eval_batches: int = 8,
          seed: int = 0, progress: bool = True, callback: Callable | None = None,
          batches: Iterable | None = None, start_step: int = 0, trainer: Trainer | None = None,
          precision: str = "fp32") -> TrainHistory:
    """Train ``model`` in place on next-token prediction.

    train_ids: 1-D token ids (a NumPy array, memory-mapped for large files); each step draws ``batch_size`` random
    windows of ``seq_len + 1`` tokens (window starts from llmc's counter-based RNG: step s always gets the same
    batch for a given seed, so a run resumed at ``start_step`` continues exactly). Or ``batches``: an iterable of
    (inputs, targets) pairs of shape (B, T) used instead.
    Returns the history: train loss per step, eval loss every ``eval_every`` steps, tokens/s, grad norm, lr.
    ``callback(step, history)`` runs after each step; returning False stops training.

    Hyperparameters are checked first (see validate_hyperparameters): a bad one raises TypeError / ValueError
    naming it, e.g. lr <= 0, NaN, lr > 1, or seq_len beyond the model's max_position_embeddings. When the loss or
    the gradient norm of a step is NaN or infinite, training stops with NonFiniteLossError naming the step; that
    step's update is not applied, so the model keeps the weights of the last good step.

    precision: 'fp32' (default) or 'bf16': mixed precision as on accelerators: every linear layer's matmul (forward
    and backward, the lm head included) multiplies bf16-rounded operands with float32 accumulation, while the
    weights stay float32 masters updated by AdamW in float32, and norms, attention, softmax, cross-entropy and
    gradient sums stay float32 (no loss scaling: bf16 has float32's exponent range). This CPU path emulates the bf16
    products (rounding + float32 sgemm), so it shows bf16's numerics, not a speed-up; see benchmarks/README.md.
    """
    code = _precision(precision)
    cfg, params = _params_of(model)
    tcfg = trainer_config(cfg)
    validate_hyperparameters(steps=steps, batch_size=batch_size, seq_len=seq_len, lr=lr, weight_decay=weight_decay,
                             warmup=warmup, grad_clip=grad_clip, grad_accum=grad_accum, min_lr_ratio=min_lr_ratio,
                             eval_every=eval_every, eval_batches=eval_batches, seed=seed, start_step=start_step,
                             n_positions=tcfg["n_positions"] if batches is None else None)
    if (train_ids is None) == (batches is None):
        raise ValueError("pass exactly one of train_ids and batches")
    warmup = max(1, steps // 20) if warmup is None else int(warmup)
    if train_ids is not None:
        train_ids = np.asarray(train_ids)
        if train_ids.ndim != 1 or train_ids.dtype.kind not in "iu":
            raise TypeError("train_ids must be a 1-D array of integer token ids")
        if len(train_ids) < seq_len + 2:
            raise ValueError(f"train_ids has {len(train_ids)} tokens, fewer than one window of {seq_len + 1}")
        if int(train_ids.max()) >= cfg.get("vocab_size", 0) or int(train_ids.min()) < 0:
            raise ValueError(f"train_ids contains ids outside the vocabulary [0, {cfg.get('vocab_size')})")
    batch_iter = None
    if batches is not None:  # size the activations from the first given batch
        import itertools

        batch_iter = iter(batches)
        try:
            first = next(batch_iter)
        except StopIteration:
            raise ValueError("batches is empty") from None
        batch_size, seq_len = np.asarray(first[0]).shape
        if seq_len > tcfg["n_positions"]:
            raise ValueError(f"batches have {seq_len} tokens per row, more than the model's context window "
                             f"(max_position_embeddings / n_positions = {tcfg['n_positions']})")
        batch_iter = itertools.chain([first], batch_iter)
    if trainer is not None and trainer.precision != ("bf16" if code else "fp32"):
        raise ValueError(f"precision={precision!r} but the given trainer runs in {trainer.precision}")
    t = trainer or Trainer(cfg, params, batch_size, seq_len, precision, getattr(model, "_rope_factors", None))
    hist = TrainHistory()

    def window_batch(ids, step, n):
        starts = _core.random_starts(seed, step, n, len(ids) - seq_len - 1)
        x = np.stack([ids[s: s + seq_len + 1] for s in starts]).astype(np.int64)
        return x[:, :-1], x[:, 1:]

    def evaluate():
        losses = []
        for i in range(eval_batches):
            ex, ey = window_batch(np.asarray(eval_ids), 2**40 + i, batch_size)  # a fixed set of eval windows
            losses.append(t.loss(ex, ey))
        return float(np.mean(losses))

    bar = None
    if progress and sys.stderr.isatty():
        try:
            from tqdm import tqdm

            bar = tqdm(total=steps, initial=start_step, desc="train", unit="step")
        except ImportError:  # pragma: no cover
            bar = None
    try:
        for step in range(start_step, steps):
            t0 = time.perf_counter()
            t.zero_grad()
            loss, ntok = 0.0, 0
            for micro in range(grad_accum):
                if batch_iter is not None:
                    try:
                        x, y = next(batch_iter)
                    except StopIteration:
                        return hist
                else:
                    x, y = window_batch(train_ids, step * grad_accum + micro, batch_size)
                x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
                loss += t.accumulate(x, y, 1.0 / (x.size * grad_accum)) / grad_accum
                ntok += x.size
            norm = t.clip(grad_clip) if grad_clip and grad_clip > 0 else t.grad_norm()
            if not (math.isfinite(loss) and math.isfinite(norm)):
                raise NonFiniteLossError(step, loss, norm, hist)  # before the update: the weights stay good
            cur_lr = lr_at(step, lr=lr, warmup=warmup, steps=steps, min_lr_ratio=min_lr_ratio)
            t.adamw_step(cur_lr, weight_decay=weight_decay)
            dt = time.perf_counter() - t0
            hist.step.append(step)
            hist.lr.append(cur_lr)
            hist.train_loss.append(loss)
            hist.grad_norm.append(norm)
            hist.tokens_per_s.append(ntok / dt)
            if eval_ids is not None and eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
                hist.eval_step.append(step)
                hist.eval_loss.append(evaluate())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
            if callback is not None and callback(step, hist) is False:
                break
    finally:
        if bar is not None:
            bar.close()
    return hist
