"""Each op's backward alone against torch.autograd (float64), and AdamW against torch.optim.AdamW.

Tolerance: relative 1e-4 of the largest gradient entry (fp32 kernels vs float64 reference), unless stated."""
import math

import numpy as np
import pytest

from llmc import _core

from conftest import lazy_import

torch = lazy_import("torch")
rng = np.random.default_rng(9)


def close(ours, ref, rel=1e-4):
    ref = ref.detach().numpy() if hasattr(ref, "detach") else np.asarray(ref)
    scale = max(float(np.abs(ref).max()), 1e-6)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rel * scale)


def t64(a, grad=True):
    return torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def randn(*shape, s=1.0):
    return (rng.standard_normal(shape) * s).astype(np.float32)


@pytest.mark.parametrize("N,i,o", [(1, 3, 2), (17, 64, 33), (64, 72, 216)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear(N, i, o, bias):
    x, w, b, dy = randn(N, i), randn(o, i), randn(o), randn(N, o)
    tx, tw, tb = t64(x), t64(w), t64(b)
    y = torch.nn.functional.linear(tx, tw, tb if bias else None)
    y.backward(torch.from_numpy(dy.astype(np.float64)))
    dx, dw, db = _core.linear_backward(dy, x, w, bias)
    close(dx, tx.grad)
    close(dw, tw.grad)
    if bias:
        close(db, tb.grad)
    else:
        assert db is None


@pytest.mark.parametrize("C", [1, 17, 72, 1000])
def test_layer_norm(C):
    x, w, b, dy = randn(5, C, s=3) + 1, randn(C), randn(C), randn(5, C)
    tx, tw, tb = t64(x), t64(w), t64(b)
    torch.nn.functional.layer_norm(tx, (C,), tw, tb, 1e-5).backward(torch.from_numpy(dy.astype(np.float64)))
    dx, dw, db = _core.layer_norm_backward(dy, x, w, 1e-5)
    close(dx, tx.grad)
    close(dw, tw.grad)
    close(db, tb.grad)


# C = 1 is left out: x / sqrt(x^2 + eps) has a gradient of ~eps / |x|^3 that float32 can only get from cancellation
@pytest.mark.parametrize("C", [2, 17, 72, 1000])
def test_rms_norm(C):
    x, w, dy = randn(2, 3, C, s=3), randn(C), randn(2, 3, C)
    tx, tw = t64(x), t64(w)
    torch.nn.functional.rms_norm(tx, (C,), tw, 1e-6).backward(torch.from_numpy(dy.astype(np.float64)))
    dx, dw = _core.rms_norm_backward(dy, x, w, 1e-6)
    close(dx, tx.grad)
    close(dw, tw.grad)


@pytest.mark.parametrize("name", ["gelu_tanh", "gelu", "silu"])
def test_activations(name):
    x, dy = randn(1003, s=4), randn(1003)
    tx = t64(x)
    f = {"gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
         "gelu": torch.nn.functional.gelu, "silu": torch.nn.functional.silu}[name]
    f(tx).backward(torch.from_numpy(dy.astype(np.float64)))
    close(getattr(_core, name + "_backward")(dy, x), tx.grad)


@pytest.mark.parametrize("name", ["gelu_tanh", "silu"])
def test_activations_saturate(name):
    """Far outside the usual range the derivatives saturate to 0 and 1 (no NaN from inf * 0); NaN stays NaN."""
    x = np.array([-1e30, -1e19, -200, -90, -88, -20, -1e-3, 0, 1e-6, 3, 20, 88, 90, 200, 1e19, 1e30], np.float32)
    tx = t64(x)
    f = {"gelu_tanh": lambda t: torch.nn.functional.gelu(t, approximate="tanh"), "silu": torch.nn.functional.silu}
    f[name](tx).sum().backward()
    np.testing.assert_allclose(getattr(_core, name + "_backward")(np.ones_like(x), x), tx.grad.numpy(), rtol=1e-5,
                               atol=1e-6)
    assert np.isnan(getattr(_core, name + "_backward")(np.ones(1, np.float32), np.array([np.nan], np.float32))).all()


def test_embedding_accumulates_repeated_ids():
    table, ids, dy = randn(50, 8), np.array([3, 7, 3, 3, 49, 0]), randn(6, 8)
    tt = t64(table)
    torch.nn.functional.embedding(torch.from_numpy(ids), tt).backward(torch.from_numpy(dy.astype(np.float64)))
    close(_core.embedding_backward(dy, ids, 50), tt.grad)
    with pytest.raises(ValueError, match="token id 50"):
        _core.embedding_backward(dy, [0, 1, 2, 3, 4, 50], 50)


@pytest.mark.parametrize("layout", [0, 1])
def test_rope(layout):
    import llmc

    x, dy, pos = randn(3, 9, 16), randn(3, 9, 16), rng.integers(0, 500, 9)
    # the forward is linear in x: the gradient is J^T dy, with J built column by column from the forward itself
    # is circular, so compare with torch autograd through an explicit rotation instead
    d = 16
    inv = 1.0 / (10000.0 ** (np.arange(0, d, 2) / d))
    ang = torch.from_numpy(np.outer(pos, inv))
    tx = t64(x)
    if layout == 0:
        a, b = tx[..., : d // 2], tx[..., d // 2:]
        y = torch.cat([a * ang.cos() - b * ang.sin(), a * ang.sin() + b * ang.cos()], -1)
    else:
        a, b = tx[..., 0::2], tx[..., 1::2]
        y = torch.stack([a * ang.cos() - b * ang.sin(), a * ang.sin() + b * ang.cos()], -1).reshape(tx.shape)
    np.testing.assert_allclose(llmc.apply_rope(x, pos, layout=["half", "interleaved"][layout]), y.detach().numpy(),
                               atol=1e-4)
    y.backward(torch.from_numpy(dy.astype(np.float64)))
    close(_core.rope_backward(dy, pos, 10000.0, layout), tx.grad)


@pytest.mark.parametrize("T,V", [(1, 5), (7, 1003), (32, 50257)])
def test_cross_entropy(T, V):
    logits, targets = randn(T, V, s=3), rng.integers(0, V, T)
    tl = t64(logits)
    loss = torch.nn.functional.cross_entropy(tl, torch.from_numpy(targets))
    loss.backward()
    ours, dl = _core.cross_entropy_backward(logits, targets)
    assert ours == pytest.approx(loss.item(), rel=1e-6)
    close(dl, tl.grad)


@pytest.mark.parametrize("Hq,Hkv,T,d", [(1, 1, 1, 8), (4, 4, 17, 16), (6, 2, 33, 12), (8, 1, 64, 32)])
@pytest.mark.parametrize("causal", [True, False])
def test_attention(Hq, Hkv, T, d, causal):
    q, k, v, do = randn(Hq, T, d), randn(Hkv, T, d), randn(Hkv, T, d), randn(Hq, T, d)
    tq, tk, tv = t64(q), t64(k), t64(v)
    g = Hq // Hkv
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk.repeat_interleave(g, 0), tv.repeat_interleave(g, 0),
                                                           is_causal=causal)
    out.backward(torch.from_numpy(do.astype(np.float64)))
    dq, dk, dv = _core.attention_backward(q, k, v, do, 1 / math.sqrt(d), causal)
    close(dq, tq.grad)
    close(dk, tk.grad)
    close(dv, tv.grad)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window", [1, 4, 40])
def test_attention_sliding_window(causal, window):
    """Mistral's sliding window: causal keys i - W < j <= i; non-causal |j - i| < W (the masks llmc_attention uses)."""
    Hq, Hkv, T, d = 4, 2, 23, 8
    q, k, v, do = randn(Hq, T, d), randn(Hkv, T, d), randn(Hkv, T, d), randn(Hq, T, d)
    tq, tk, tv = t64(q), t64(k), t64(v)
    i, j = np.arange(T)[:, None], np.arange(T)[None, :]
    allowed = (j <= i) & (i - j < window) if causal else np.abs(i - j) < window
    mask = torch.from_numpy(np.where(allowed, 0.0, -np.inf))
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk.repeat_interleave(2, 0), tv.repeat_interleave(2, 0),
                                                           attn_mask=mask)
    out.backward(torch.from_numpy(do.astype(np.float64)))
    dq, dk, dv = _core.attention_backward(q, k, v, do, 1 / math.sqrt(d), causal, window)
    close(dq, tq.grad)
    close(dk, tk.grad)
    close(dv, tv.grad)


def test_attention_bad_heads():
    with pytest.raises(ValueError, match="multiple"):
        _core.attention_backward(randn(3, 4, 8), randn(2, 4, 8), randn(2, 4, 8), randn(3, 4, 8), 0.3, True)


def test_adamw_matches_torch():
    p0, grads = randn(1003), [randn(1003) for _ in range(5)]
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    opt = torch.optim.AdamW([tp], lr=3e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    p, m, v = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    for step, g in enumerate(grads, 1):
        tp.grad = torch.from_numpy(g.copy())
        opt.step()
        _core.adamw_step(p, g, m, v, 3e-3, 0.9, 0.95, 1e-8, 0.1, step)
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="step"):
        _core.adamw_step(p, g, m, v, 1e-3, 0.9, 0.95, 1e-8, 0.1, 0)
    with pytest.raises(TypeError):
        _core.adamw_step(p.astype(np.float64), g, m, v, 1e-3, 0.9, 0.95, 1e-8, 0.1, 1)


def test_lr_schedule_matches_formula():
    lrs = [_core.lr_cosine(s, 10, 100, 1e-3, 1e-4) for s in range(120)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert lrs[55] == pytest.approx(1e-4 + 0.5 * (1 + math.cos(math.pi * 45 / 90)) * 9e-4, rel=1e-5)
    assert lrs[100] == lrs[119] == pytest.approx(1e-4)
    assert all(a >= b - 1e-12 for a, b in zip(lrs[10:], lrs[11:]))


@pytest.mark.parametrize("threads", [1, 3])
def test_linear_large_threaded(threads):
    """Big enough for the threaded sgemm split, with transposed operands (dW = dy^T x)."""
    import llmc

    old = llmc.get_num_threads()
    llmc.set_num_threads(threads)
    try:
        x, w, dy = randn(300, 200), randn(150, 200), randn(300, 150)
        tx, tw = t64(x), t64(w)
        torch.nn.functional.linear(tx, tw).backward(torch.from_numpy(dy.astype(np.float64)))
        dx, dw, _ = _core.linear_backward(dy, x, w, False)
        close(dx, tx.grad)
        close(dw, tw.grad)
    finally:
        llmc.set_num_threads(old)
