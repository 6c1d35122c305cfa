"""Self-supervised training (``llmc.train``; this module is ``llmc.training`` so the function keeps that name): next-token prediction on unlabeled text, in the C core (csrc/train.c).

The model's weights stay where they are (zero-copy NumPy views of the model's own buffers); the C trainer
computes the loss and accumulates gradients into arrays with the checkpoint's tensor names, and AdamW
(decoupled weight decay, bias correction), global-norm clipping and a warmup + cosine schedule update the
weights in place. Supported architectures: ``gpt2`` and ``llama`` (RoPE without scaling, no biases).

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


def trainer_config(config: dict) -> dict:
    """Map a Hugging Face config dict (gpt2 or llama) to the C trainer's sizes; unsupported settings raise an error
    naming the field."""
    mt = config.get("model_type")
    if mt == "gpt2":
        d = _get(config, "n_embd")
        act = config.get("activation_function", "gelu_new")
        if act not in ("gelu_new", "gelu_pytorch_tanh"):
            raise _core.UnsupportedError(f"config.json: activation_function {act!r} is not supported for training "
                                         "(gelu_new only)")
        if config.get("tie_word_embeddings", True) is False:
            raise _core.UnsupportedError("config.json: tie_word_embeddings=false is not supported for gpt2 training")
        h = _get(config, "n_head")
        return dict(arch=0, n_layers=_get(config, "n_layer"), d_model=d, n_heads=h, n_kv_heads=h, head_dim=d // h,
                    d_ff=config.get("n_inner") or 4 * d, vocab=_get(config, "vocab_size"),
                    n_positions=_get(config, "n_positions"), eps=float(config.get("layer_norm_epsilon", 1e-5)),
                    rope_theta=0.0, tied=True)
    if mt == "llama":
        for key, ok in [("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)]:
            if config.get(key, ok) != ok:
                raise _core.UnsupportedError(f"config.json: {key}={config[key]!r} is not supported for training")
        rope = config.get("rope_parameters") or {}
        if config.get("rope_scaling") or rope.get("rope_type", "default") != "default":
            raise _core.UnsupportedError("config.json: rope scaling is not supported for training")
        theta = rope.get("rope_theta", config.get("rope_theta", 10000.0))
        d, h = _get(config, "hidden_size"), _get(config, "num_attention_heads")
        return dict(arch=1, n_layers=_get(config, "num_hidden_layers"), d_model=d, n_heads=h,
                    n_kv_heads=config.get("num_key_value_heads") or h, head_dim=config.get("head_dim") or d // h,
                    d_ff=_get(config, "intermediate_size"), vocab=_get(config, "vocab_size"),
                    n_positions=_get(config, "max_position_embeddings"), eps=float(config.get("rms_norm_eps", 1e-6)),
                    rope_theta=float(theta), tied=bool(config.get("tie_word_embeddings", False)))
    raise _core.UnsupportedError(f"config.json: training supports model_type gpt2 and llama, not {mt!r}")


class Trainer:
    """Loss and gradients of a model for batches of up to (batch, seq_len) tokens; activations allocated once.

    ``params``: name -> float32 array (the model's own weights, updated in place by :meth:`adamw_step`)."""

    def __init__(self, config: dict, params: dict, batch: int, seq_len: int):
        self.config = dict(config)
        self._t = _core.Trainer(**trainer_config(config), batch=int(batch), seq_len=int(seq_len))
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
    cfg = model.config if isinstance(model.config, dict) else model.config.to_dict()
    try:  # llmc.Model hands out read-only views unless asked for writable ones
        return cfg, model.state_dict(writable=True)
    except TypeError:  # another model type whose state_dict() takes no argument
        return cfg, model.state_dict()


def loss_and_grads(model, input_ids, target_ids) -> tuple[float, dict]:
    """(mean loss, {tensor name: gradient}) for one (B, T) batch, with the checkpoint's tensor names."""
    inputs = np.asarray(input_ids)
    if inputs.ndim == 1:
        inputs, target_ids = inputs[None], np.asarray(target_ids)[None]
    cfg, params = _params_of(model)
    t = Trainer(cfg, params, inputs.shape[0], inputs.shape[1])
    loss = t.accumulate(inputs, target_ids)
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
          batches: Iterable | None = None, start_step: int = 0, trainer: Trainer | None = None) -> TrainHistory:
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
    """
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
    t = trainer or Trainer(cfg, params, batch_size, seq_len)
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
