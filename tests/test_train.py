"""Training in the C core against torch autograd on the same transformers models (random weights, dropout off).

Loss: within 1e-5 relative of transformers. Gradients of every parameter: within 1e-4 relative of the tensor's
largest torch gradient (fp32 vs fp32, different summation orders)."""
import types

import numpy as np
import pytest

import llmc
from llmc import _core
from llmc.training import Trainer, loss_and_grads, train

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


def make(kind, tied=False):
    torch.manual_seed(0)
    if kind == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=1003, n_positions=64, n_embd=72, n_layer=3, n_head=6,
                                      resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)
        m = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.LlamaConfig(vocab_size=1003, hidden_size=72, intermediate_size=100, num_hidden_layers=3,
                                       num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=64,
                                       tie_word_embeddings=tied, rope_theta=500000.0)
        m = transformers.LlamaForCausalLM(cfg)
    return m.eval()


def as_llmc(m):
    """The small interface llmc.train needs: a config dict and writable float32 weights by checkpoint name."""
    sd = {k: np.ascontiguousarray(v.detach().numpy().astype(np.float32)) for k, v in m.state_dict().items()}
    return types.SimpleNamespace(config=m.config.to_dict(), state_dict=lambda: sd), sd


@pytest.mark.parametrize("kind,tied", [("gpt2", True), ("llama", False), ("llama", True)])
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


def test_training_reduces_loss_and_matches_torch_adamw():
    """Two optimiser steps by llmc and by torch (AdamW, clipping, same lr) stay together; loss goes down."""
    m = make("llama")
    lm, sd = as_llmc(m)
    rng = np.random.default_rng(1)
    batches = [(rng.integers(0, 50, (4, 16)), None) for _ in range(6)]
    batches = [(x, np.roll(x, -1, axis=1)) for x, _ in batches]  # a learnable pattern: predict the next id
    hist = train(lm, batches=batches, steps=6, lr=1e-2, warmup=1, grad_clip=1.0, weight_decay=0.1, progress=False)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    for g in opt.param_groups:  # llmc's default: no decay on norms and embeddings
        pass
    decay = [p for n, p in m.named_parameters() if p.ndim >= 2 and "embed_tokens" not in n]
    no_decay = [p for n, p in m.named_parameters() if not (p.ndim >= 2 and "embed_tokens" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    torch_losses = []
    for step, (x, y) in enumerate(batches):
        lr = llmc.training.lr_at(step, lr=1e-2, warmup=1, steps=6)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad()
        logits = m(torch.from_numpy(x)).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 1003), torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
        torch_losses.append(loss.item())
    np.testing.assert_allclose(hist.train_loss, torch_losses, rtol=2e-4)
    assert hist.train_loss[-1] < hist.train_loss[0]
    for n, p in m.named_parameters():
        np.testing.assert_allclose(sd[n], p.detach().numpy(), rtol=0, atol=2e-4, err_msg=n)


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
