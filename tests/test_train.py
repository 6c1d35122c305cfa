"""Training in the C core against torch autograd on the same transformers models (random weights, dropout off).

Loss: within 1e-5 relative of transformers. Gradients of every parameter: within 1e-4 relative of the tensor's
largest torch gradient (fp32 vs fp32, different summation orders)."""
import types

import numpy as np
import pytest

import llmc
from llmc import _core
from llmc.training import Trainer, loss_and_grads, train

from conftest import lazy_import

torch = lazy_import("torch")
transformers = lazy_import("transformers")


LLAMA_SIZES = dict(vocab_size=1003, hidden_size=72, intermediate_size=100, num_hidden_layers=3, num_attention_heads=6,
                   num_key_value_heads=2, max_position_embeddings=64)
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def make(kind, tied=False):
    """A tiny random transformers model of each architecture llmc trains (dropout off). The norms and biases are
    randomised too (transformers starts them at one and zero), so their gradients are exercised."""
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=1003, n_positions=64, n_embd=72, n_layer=3, n_head=6,
                                      resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
        return transformers.GPT2LMHeadModel(cfg).eval()
    if kind == "llama":
        cfg = transformers.LlamaConfig(**LLAMA_SIZES, tie_word_embeddings=tied, rope_theta=500000.0)
        return transformers.LlamaForCausalLM(cfg).eval()
    if kind == "llama3":  # llama 3's frequency-dependent RoPE scaling
        cfg = transformers.LlamaConfig(**LLAMA_SIZES, tie_word_embeddings=tied, rope_parameters=dict(LLAMA3_ROPE))
        m = transformers.LlamaForCausalLM(cfg)
    elif kind == "mistral":  # a sliding window shorter than the sequences
        cfg = transformers.MistralConfig(**LLAMA_SIZES, tie_word_embeddings=tied, sliding_window=5)
        m = transformers.MistralForCausalLM(cfg)
    elif kind == "qwen2":  # q/k/v biases
        cfg = transformers.Qwen2Config(**LLAMA_SIZES, tie_word_embeddings=tied)
        m = transformers.Qwen2ForCausalLM(cfg)
    elif kind == "qwen3":  # q/k RMSNorms per head; head_dim 16 != hidden_size / heads
        cfg = transformers.Qwen3Config(**LLAMA_SIZES, head_dim=16, tie_word_embeddings=tied)
        m = transformers.Qwen3ForCausalLM(cfg)
    else:
        raise ValueError(kind)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 1:
                p.add_(torch.randn_like(p) * 0.2)
    return m.eval()


def as_llmc(m):
    """The small interface llmc.train needs: a config dict and writable float32 weights by checkpoint name."""
    sd = {k: np.ascontiguousarray(v.detach().numpy().astype(np.float32)) for k, v in m.state_dict().items()}
    return types.SimpleNamespace(config=m.config.to_dict(), state_dict=lambda: sd), sd


@pytest.mark.parametrize("kind,tied", [("gpt2", True), ("llama", False), ("llama", True), ("llama3", False),
                                       ("mistral", False), ("mistral", True), ("qwen2", False), ("qwen2", True),
                                       ("qwen3", False), ("qwen3", True)])
def test_loss_and_grads_match_torch(kind, tied):
    m = make(kind, tied)
    lm, _ = as_llmc(m)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 1003, (3, 17))
    y = rng.integers(0, 1003, (3, 17))
    logits = m(torch.from_numpy(x)).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 1003), torch.from_numpy(y).reshape(-1))
    loss.backward()
    ours, grads = loss_and_grads(lm, x, y)
    assert ours == pytest.approx(loss.item(), rel=1e-5)
    named = dict(m.named_parameters())
    assert set(grads) == set(named) - ({"lm_head.weight"} if kind == "gpt2" or tied else set())
    for name, g in grads.items():
        ref = named[name].grad.numpy()
        scale = float(np.abs(ref).max())
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-4 * scale, err_msg=name)


@pytest.mark.parametrize("kind", ["llama", "gpt2", "mistral", "qwen3"])
def test_ten_adamw_steps_match_torch(kind):
    """Ten optimiser steps by llmc and by torch (AdamW, clipping, warmup + cosine lr) from the same weights on the
    same batches: losses within 1e-4 relative, weights together at the end; the loss goes down."""
    m = make(kind)
    lm, sd = as_llmc(m)
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 50, (4, 16)), None) for _ in range(10)]
    batches = [(x, np.roll(x, -1, axis=1)) for x, _ in batches]  # a learnable pattern: predict the next id
    hist = train(lm, batches=batches, steps=10, lr=1e-3, warmup=2, grad_clip=1.0, weight_decay=0.1, progress=False)
    emb = ("embed_tokens", "wte", "wpe")  # llmc's default: no decay on norms, biases and embeddings
    decay = [p for n, p in m.named_parameters() if p.ndim >= 2 and not any(e in n for e in emb)]
    no_decay = [p for n, p in m.named_parameters() if not (p.ndim >= 2 and not any(e in n for e in emb))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    torch_losses = []
    for step, (x, y) in enumerate(batches):
        lr = llmc.training.lr_at(step, lr=1e-3, warmup=2, steps=10)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        logits = m(torch.from_numpy(x)).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 1003), torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        torch_losses.append(loss.item())
    np.testing.assert_allclose(hist.train_loss, torch_losses, rtol=1e-4)
    assert hist.train_loss[-1] < hist.train_loss[0]
    for n, p in m.named_parameters():
        if n in sd:
            np.testing.assert_allclose(sd[n], p.detach().numpy(), rtol=0, atol=1e-4, err_msg=n)


def test_tiny_model_overfits_a_short_text():
    """A tiny llama memorises a 200-token text: loss < 0.1 within a few hundred steps."""
    rng = np.random.default_rng(3)
    text = rng.integers(0, 64, 200)
    model = llmc.Model.init(dict(model_type="llama", vocab_size=64, hidden_size=64, intermediate_size=128,
                                 num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                 max_position_embeddings=256, tie_word_embeddings=True), seed=0)
    x, y = text[None, :-1], text[None, 1:]
    hist = train(model, batches=[(x, y)] * 300, steps=300, lr=1e-2, warmup=10, weight_decay=0.0, progress=False)
    assert hist.train_loss[-1] < 0.1, hist.train_loss[-10:]
    # the trained weights are the model's own: its forward pass now predicts the text
    logits = model.logits(text[:-1])
    assert (logits.argmax(-1) == text[1:]).mean() > 0.98


def test_random_windows_are_reproducible_and_in_range():
    a = _core.random_starts(7, 3, 1000, 99)
    assert (a == _core.random_starts(7, 3, 1000, 99)).all()
    assert (a != _core.random_starts(7, 4, 1000, 99)).any()
    assert a.min() >= 0 and a.max() <= 99 and len(set(a.tolist())) > 90


def test_errors():
    m = make("llama")
    lm, sd = as_llmc(m)
    with pytest.raises(ValueError, match="target"):
        loss_and_grads(lm, np.zeros((1, 4), np.int64), np.full((1, 4), 5000))
    bad = dict(sd)
    bad.pop("model.norm.weight")
    with pytest.raises(ValueError, match="model.norm.weight"):
        Trainer(lm.config, bad, 1, 4)
    with pytest.raises(llmc.UnsupportedError, match="model_type"):
        Trainer({"model_type": "bert"}, sd, 1, 4)
    t = Trainer(lm.config, sd, 2, 8)
    with pytest.raises(ValueError, match="does not fit"):
        t.loss(np.zeros((2, 9), np.int64), np.zeros((2, 9), np.int64))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        train(lm, np.array([0, 1, 2000] * 20), steps=1, batch_size=1, seq_len=4, progress=False)


# ---------------------------------------------------------------- hyperparameter validation, divergence, context
def _tiny_llama(max_pos=32):
    cfg = dict(model_type="llama", vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_pos)
    return llmc.Model.init(cfg, seed=0)


IDS = (np.arange(400) * 7) % 64


@pytest.mark.parametrize("kw,name", [
    (dict(lr=0.0), "lr"), (dict(lr=-1e-3), "lr"), (dict(lr=float("nan")), "lr"), (dict(lr=float("inf")), "lr"),
    (dict(lr=10.0), "lr"), (dict(weight_decay=-0.1), "weight_decay"), (dict(weight_decay=float("nan")), "weight_decay"),
    (dict(weight_decay=5.0), "weight_decay"), (dict(grad_clip=-1.0), "grad_clip"),
    (dict(grad_clip=float("nan")), "grad_clip"), (dict(warmup=100), "warmup"), (dict(warmup=-1), "warmup"),
    (dict(batch_size=0), "batch_size"), (dict(seq_len=0), "seq_len"), (dict(grad_accum=0), "grad_accum"),
    (dict(min_lr_ratio=2.0), "min_lr_ratio"), (dict(steps=0), "steps"), (dict(seed=-1), "seed"),
    (dict(eval_every=0), "eval_every"), (dict(start_step=9), "start_step")])
def test_bad_hyperparameters_are_named_before_any_work(kw, name):
    model = _tiny_llama()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    args = dict(steps=5, batch_size=2, seq_len=8, progress=False)
    args.update(kw)
    with pytest.raises(ValueError, match=rf"^{name} must be"):
        train(model, IDS, **args)
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())  # nothing ran


def test_hyperparameter_types():
    model = _tiny_llama()
    with pytest.raises(TypeError, match="lr must be a real number"):
        train(model, IDS, steps=1, seq_len=8, lr="3e-3", progress=False)
    with pytest.raises(TypeError, match="steps must be an int"):
        train(model, IDS, steps=2.5, seq_len=8, progress=False)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        train(model, IDS, steps=1, seq_len=8, batch_size=True, progress=False)


def test_llama_training_honours_max_position_embeddings():
    model = _tiny_llama(max_pos=16)
    with pytest.raises(ValueError, match=r"seq_len 32 exceeds .*max_position_embeddings.* 16"):
        train(model, IDS, steps=1, batch_size=1, seq_len=32, progress=False)
    x = np.zeros((1, 32), np.int64)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        train(model, batches=[(x, x)], steps=1, progress=False)
    with pytest.raises(ValueError, match="max_position_embeddings"):  # the C trainer checks it too
        Trainer(model.config, model.state_dict(writable=True), 1, 32)
    train(model, IDS, steps=1, batch_size=1, seq_len=16, progress=False)  # exactly the window: fine


def test_nonfinite_loss_stops_naming_the_step_and_keeps_the_weights():
    model = _tiny_llama()
    sd = model.state_dict(writable=True)
    snap = {}

    def poison(step, hist):
        if step == 2:  # after 3 good steps, a NaN weight makes step 3's loss NaN
            sd["model.norm.weight"][0] = np.nan
            snap.update({k: v.copy() for k, v in sd.items()})

    with pytest.raises(llmc.NonFiniteLossError, match="loss became nan at step 3") as e:
        train(model, IDS, steps=10, batch_size=2, seq_len=8, progress=False, callback=poison)
    assert e.value.step == 3 and len(e.value.history.train_loss) == 3
    assert isinstance(e.value, FloatingPointError)
    for k, v in model.state_dict().items():  # the failing step's update was not applied
        np.testing.assert_array_equal(v, snap[k])


def test_nonfinite_gradient_norm_stops_before_the_update(monkeypatch):
    model = _tiny_llama()
    calls = {"n": 0}
    clip = Trainer.clip

    def flaky_clip(self, max_norm):
        calls["n"] += 1
        return float("inf") if calls["n"] == 3 else clip(self, max_norm)

    monkeypatch.setattr(Trainer, "clip", flaky_clip)
    snap = {}
    cb = lambda step, hist: snap.update({k: v.copy() for k, v in model.state_dict().items()})  # noqa: E731
    with pytest.raises(llmc.NonFiniteLossError, match="gradient norm became inf at step 2"):
        train(model, IDS, steps=5, batch_size=2, seq_len=8, progress=False, callback=cb)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, snap[k])  # the weights after step 1, the last good one


# ---------------------------------------------------------------- every decoder llmc runs; model.loss_and_grads
def test_model_method_matches_torch(tmp_path):
    """model.loss_and_grads(x, y) on an llmc.Model loaded from a transformers checkpoint (qwen2: biases, untied
    head) equals torch autograd; llmc.loss_and_grads(model, ...) is the same function; the weights are untouched."""
    m = make("qwen2")
    m.save_pretrained(tmp_path)
    model = llmc.Model.load(tmp_path)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 1003, (2, 13)), rng.integers(0, 1003, (2, 13))
    logits = m(torch.from_numpy(x)).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 1003), torch.from_numpy(y).reshape(-1))
    loss.backward()
    ours, grads = model.loss_and_grads(x, y)
    assert ours == pytest.approx(loss.item(), rel=1e-5)
    named = dict(m.named_parameters())
    assert set(grads) == set(named) == set(model.state_dict())
    for name, g in grads.items():
        ref = named[name].grad.numpy()
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-4 * float(np.abs(ref).max()), err_msg=name)
    loss2, grads2 = llmc.loss_and_grads(model, x[0], y[0])  # one sequence as (T,)
    assert loss2 == pytest.approx(model.loss_and_grads(x[:1], y[:1])[0], rel=1e-6)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="shape"):
        model.loss_and_grads(x, y[:, :-1])


TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=64)


@pytest.mark.parametrize("mt,extra", [("mistral", dict(sliding_window=8)), ("qwen2", {}),
                                      ("qwen3", dict(head_dim=16)), ("llama", dict(rope_parameters=LLAMA3_ROPE)),
                                      ("gpt2", None)])
def test_short_run_loss_falls(mt, extra):
    """A short llmc.train run of each architecture learns a repeating pattern: the loss falls by more than half."""
    if mt == "gpt2":
        cfg = dict(model_type="gpt2", vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64)
    else:
        cfg = dict(TINY, model_type=mt, **extra)
    model = llmc.Model.init(cfg, seed=0)
    ids = np.tile(np.random.default_rng(0).integers(0, 64, 24), 20)
    hist = train(model, ids, steps=40, batch_size=4, seq_len=32, lr=1e-2, warmup=4, progress=False)
    assert hist.train_loss[-1] < 0.5 * hist.train_loss[0], hist.train_loss[::8]


@pytest.mark.parametrize("cfg,field", [
    (dict(model_type="qwen2", use_sliding_window=True), "use_sliding_window"),
    (dict(model_type="qwen3", attention_bias=True), "attention_bias"),
    (dict(model_type="llama", attention_bias=True), "attention_bias"),
    (dict(model_type="llama", mlp_bias=True), "mlp_bias"),
    (dict(model_type="llama", hidden_act="gelu"), "hidden_act"),
    (dict(model_type="llama", rope_scaling={"rope_type": "yarn", "factor": 4.0}), "yarn"),
    (dict(model_type="qwen3", layer_types=["full_attention", "sliding_attention"]), "layer_types"),
    (dict(model_type="olmoe"), "model_type"),  # mixtral, qwen2_moe, qwen3_moe train (tests/test_moe.py)
    (dict(model_type="gpt2", n_embd=32, n_layer=1, n_head=4, n_positions=8, tie_word_embeddings=False),
     "tie_word_embeddings")])
def test_unsupported_settings_are_named(cfg, field):
    full = dict(TINY, **cfg) if cfg["model_type"] != "gpt2" else dict(cfg, vocab_size=64)
    with pytest.raises(llmc.UnsupportedError, match=field):
        Trainer(full, {}, 1, 4)


def test_precision_is_validated():
    model = _tiny_llama()
    with pytest.raises(ValueError, match="precision must be 'fp32' or 'bf16', got 'fp16'"):
        train(model, IDS, steps=1, batch_size=1, seq_len=8, progress=False, precision="fp16")
    with pytest.raises(TypeError, match="precision must be a string"):
        model.loss_and_grads(IDS[:8], IDS[1:9], precision=16)
    t = Trainer(model.config, model.state_dict(writable=True), 1, 8)
    with pytest.raises(ValueError, match="trainer runs in fp32"):
        train(model, IDS, steps=1, batch_size=1, seq_len=8, progress=False, precision="bf16", trainer=t)


# ---------------------------------------------------------------- bf16 mixed precision
def _bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


class _BF16Linear(torch.autograd.Function if torch else object):
    """The oracle of llmc's bf16 mode in float64: operands rounded to bf16, exact products, unrounded sums; the
    bias gradient from the unrounded output gradient."""

    @staticmethod
    def forward(ctx, x, w, b):
        xr, wr = _bf16(x), _bf16(w)
        ctx.save_for_backward(xr, wr)
        ctx.has_b = b is not None
        y = xr @ wr.T
        return y + b if b is not None else y

    @staticmethod
    def backward(ctx, gy):
        xr, wr = ctx.saved_tensors
        g = _bf16(gy)
        gx = g @ wr
        gw = g.reshape(-1, g.shape[-1]).T @ xr.reshape(-1, xr.shape[-1])
        gb = gy.reshape(-1, gy.shape[-1]).sum(0) if ctx.has_b else None
        return gx, gw, gb


def test_bf16_gradients_follow_the_bf16_oracle():
    """precision='bf16' gradients are those of bf16 matmul operands. Relative L2 error per tensor: within 3e-3 of a
    float64 oracle that rounds every linear layer's operands to bf16 (_BF16Linear), under a third of their distance
    from llmc's float32 gradients (~5e-3: the bf16 effect), and within 3e-2 of float32. (The oracle is not exact:
    float32 vs float64 upstream flips an occasional bf16 rounding; the last layer agrees to ~1e-6.)"""
    m = make("qwen2").double()
    lm, _ = as_llmc(make("qwen2"))
    rng = np.random.default_rng(2)
    x, y = rng.integers(0, 1003, (2, 17)), rng.integers(0, 1003, (2, 17))
    _, g32 = loss_and_grads(lm, x, y)
    _, g16 = loss_and_grads(lm, x, y, precision="bf16")
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.forward = lambda inp, mod=mod: _BF16Linear.apply(inp, mod.weight, mod.bias)
    logits = m(torch.from_numpy(x)).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, 1003), torch.from_numpy(y).reshape(-1)).backward()
    named = dict(m.named_parameters())
    for name in g16:
        ref = named[name].grad.numpy()
        scale = float(np.linalg.norm(ref))
        err_oracle = float(np.linalg.norm(g16[name] - ref)) / scale
        err_fp32 = float(np.linalg.norm(g16[name] - g32[name])) / scale
        assert err_oracle < 3e-3 and err_oracle < err_fp32 / 3, (name, err_oracle, err_fp32)
        assert err_fp32 < 3e-2, (name, err_fp32)


def test_bf16_training_ends_within_one_percent_of_fp32():
    """200 AdamW steps from the same weights on the same batches: the final loss (mean of the last 10 steps, and a
    held-out loss evaluated in float32) in bf16 mixed precision is within 1% of the float32 run."""
    cfg = dict(TINY, model_type="llama", tie_word_embeddings=True)
    rng = np.random.default_rng(4)
    # a Markov chain over 64 symbols with a few likely successors each: learnable, loss well above zero
    succ = rng.integers(0, 64, (64, 3))
    ids = [0]
    for _ in range(6000):
        ids.append(int(succ[ids[-1], rng.integers(0, 3)]))
    ids = np.array(ids)
    held = ids[-600:]
    results = {}
    for precision in ("fp32", "bf16"):
        model = llmc.Model.init(cfg, seed=0)
        hist = train(model, ids[:-600], steps=200, batch_size=4, seq_len=32, lr=3e-3, warmup=10, progress=False,
                     precision=precision)
        x = np.stack([held[i: i + 32] for i in range(0, 512, 32)])
        y = np.stack([held[i + 1: i + 33] for i in range(0, 512, 32)])
        results[precision] = (float(np.mean(hist.train_loss[-10:])), model.loss_and_grads(x, y)[0])
    (tr32, ev32), (tr16, ev16) = results["fp32"], results["bf16"]
    assert tr32 < 2.0  # it learned (log 64 = 4.16 at the start; the chain's entropy is ~log 3 = 1.1)
    assert abs(tr16 - tr32) < 0.01 * tr32, results
    assert abs(ev16 - ev32) < 0.01 * ev32, results


def test_gguf_model_with_rope_freqs_trains_like_transformers():
    """An F32 GGUF Llama 3 file carries its RoPE scaling as a rope_freqs tensor, not in the config: the trainer
    takes the model's divisors, and its loss and gradients equal torch autograd on the transformers original."""
    from gguf_fixtures import fixture

    hf_dir, path = fixture("model-llama3-rope", "llama", "llama2", "f32",
                           rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 16},
                           rope_theta=500000.0)
    model = llmc.Model.load(path)
    assert getattr(model, "_rope_factors", None) is not None
    m = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    rng = np.random.default_rng(6)
    V = model.vocab_size
    x, y = rng.integers(0, V, (1, 128)), rng.integers(0, V, (1, 128))  # long enough for the scaling to matter
    logits = m(torch.from_numpy(x)).logits
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
    loss.backward()
    ours, grads = model.loss_and_grads(x, y)
    assert ours == pytest.approx(loss.item(), rel=1e-5)
    named = dict(m.named_parameters())
    for name, g in grads.items():
        ref = named[name].grad.numpy()
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-4 * float(np.abs(ref).max()), err_msg=name)
