"""NaN semantics (README "Reliability"): every op propagates NaN like NumPy does in float64 — a softmax slice holding
a NaN (or +inf) is all NaN, norms of a row with a NaN are NaN, elementwise ops map NaN to NaN — and hardmax is the
one-hot of numpy.argmax (a NaN wins). Attention: an output value is NaN wherever the textbook computation over the
visible keys makes it NaN. The sampler cannot draw from a NaN distribution: ValueError naming the token.
Checked under every SIMD level against NumPy float64 and torch."""
import warnings

import numpy as np
import pytest

import llmc

from conftest import lazy_import  # noqa: E402

torch = lazy_import("torch")  # the NumPy-only checks run without torch


@pytest.fixture(params=["best", "scalar", "avx2"])
def simd_level(request):
    levels = {"scalar": 0, "avx2": 1, "avx512": 2}
    best = llmc.simd_info()["best"]
    want = best if request.param == "best" else request.param
    if levels[want] > levels[best]:
        pytest.skip(f"CPU lacks {want}")
    llmc._core.set_simd_level(levels[want])
    yield want
    llmc._core.set_simd_level(levels[best])


def with_specials(shape, seed=0):
    """Random logits with a NaN, a +inf and a -inf planted in different rows (rows 1, 3, 5); other rows clean."""
    x = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    x[1, 2] = np.nan
    x[3, 0] = np.inf
    x[5, -1] = -np.inf
    return x


def np_softmax(x, axis=-1, log=False):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        z = x.astype(np.float64)
        m = z.max(axis=axis, keepdims=True)
        s = np.exp(z - m).sum(axis=axis, keepdims=True)
        return z - m - np.log(s) if log else np.exp(z - m) / s


def assert_same_nan(got, ref, rtol=1e-5, atol=1e-6):
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(got[ok], ref[ok], rtol=rtol, atol=atol)


@pytest.mark.parametrize("n", [5, 40, 1000])
def test_softmax_family(n, simd_level):
    x = with_specials((8, n))
    assert_same_nan(llmc.softmax(x), np_softmax(x))
    assert_same_nan(llmc.log_softmax(x), np_softmax(x, log=True), atol=1e-4)
    assert_same_nan(llmc.softmax(x.T, axis=0), np_softmax(x.T, axis=0))
    assert_same_nan(llmc.log_softmax(x.T, axis=0), np_softmax(x.T, axis=0, log=True), atol=1e-4)
    t = torch.from_numpy(x.astype(np.float64))
    assert_same_nan(llmc.softmax(x), torch.softmax(t, -1).numpy())
    # hardmax is numpy.argmax made one-hot: the first NaN wins, +inf wins over finite values
    ref = np.eye(n, dtype=np.float32)[np.argmax(x, axis=-1)]
    np.testing.assert_array_equal(llmc.hardmax(x), ref)


def test_cross_entropy_and_perplexity():
    x = with_specials((8, 30))
    targets = np.arange(8)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(x.astype(np.float64)), torch.from_numpy(targets))
    assert np.isnan(ref.item()) and np.isnan(llmc.cross_entropy(x, targets))
    assert np.isnan(llmc.perplexity_from_logits(x, targets))
    clean = np.delete(x, [1, 3], axis=0)  # -inf alone is fine unless it is the target's logit
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(clean.astype(np.float64)), torch.arange(6))
    assert llmc.cross_entropy(clean, np.arange(6)) == pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize("cols", [7, 64, 300])
def test_norms_and_activations(cols, simd_level):
    x = with_specials((8, cols), seed=1)
    w = np.random.default_rng(2).normal(size=cols).astype(np.float32)
    b = np.random.default_rng(3).normal(size=cols).astype(np.float32)
    t = torch.from_numpy(x.astype(np.float64))
    tw, tb = torch.from_numpy(w.astype(np.float64)), torch.from_numpy(b.astype(np.float64))
    assert_same_nan(llmc.layer_norm(x, w, b), torch.nn.functional.layer_norm(t, (cols,), tw, tb, 1e-5).numpy(),
                    atol=1e-4)
    rms = t * torch.rsqrt((t * t).mean(-1, keepdim=True) + 1e-6) * tw
    assert_same_nan(llmc.rms_norm(x, w), rms.numpy(), atol=1e-4)
    finite = np.where(np.isfinite(x), x, 0).astype(np.float32)
    finite[1, 2] = np.nan  # elementwise ops: NaN in, NaN out, neighbours untouched
    tf = torch.from_numpy(finite.astype(np.float64))
    assert_same_nan(llmc.gelu(finite), torch.nn.functional.gelu(tf, approximate="tanh").numpy(), atol=1e-5)
    assert_same_nan(llmc.gelu(finite, approximate="none"), torch.nn.functional.gelu(tf).numpy(), atol=1e-5)
    assert_same_nan(llmc.silu(finite), torch.nn.functional.silu(tf).numpy(), atol=1e-5)
    assert_same_nan(llmc.embedding(finite, [1, 0, 1]), finite[[1, 0, 1]])
    assert_same_nan(llmc.matmul(finite, finite.T), finite.astype(np.float64) @ finite.T.astype(np.float64),
                    rtol=1e-4, atol=1e-3)


def test_rope_nan():
    x = np.random.default_rng(4).normal(size=(2, 6, 16)).astype(np.float32)
    x[1, 2, 3] = np.nan
    out = llmc.apply_rope(x, np.arange(6))
    # half layout: dimension 3 pairs with 3 + 8; both become NaN, nothing else
    expect = np.zeros_like(x, dtype=bool)
    expect[1, 2, [3, 11]] = True
    np.testing.assert_array_equal(np.isnan(out), expect)


def attention_nan_bounds(q, k, v, causal):
    """(must, may): output values the visible-keys computation makes NaN, and those the full masked matrix
    product does (0 * NaN = NaN for a masked key whose value row holds a NaN, as in torch's math attention)."""
    B, H, T, d = q.shape
    must = np.zeros(q.shape, bool)
    may = np.zeros(q.shape, bool)
    with np.errstate(all="ignore"):
        for b in range(B):
            for h in range(H):
                s = q[b, h].astype(np.float64) @ k[b, h].T.astype(np.float64)
                for i in range(T):
                    hi = i + 1 if causal else T
                    p = np_softmax(s[i, :hi][None])[0]
                    must[b, h, i] = np.isnan(p @ v[b, h, :hi].astype(np.float64))
                    full = np.zeros(T)
                    full[:hi] = p
                    may[b, h, i] = np.isnan(full @ v[b, h].astype(np.float64))
    return must, may


@pytest.mark.parametrize("where", ["q", "k", "v", "inf_k"])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("T", [5, 80])
def test_attention_nan(where, causal, T, simd_level):
    rng = np.random.default_rng(5)
    q, k, v = (rng.normal(size=(1, 2, T, 16)).astype(np.float32) for _ in range(3))
    pos = T // 2
    {"q": q, "k": k, "v": v, "inf_k": k}[where][0, 1, pos, 3] = np.inf if where == "inf_k" else np.nan
    must, may = attention_nan_bounds(q, k, v, causal)
    assert must.any()
    for impl in ("standard", "flash"):
        out = llmc.attention(q, k, v, causal=causal, impl=impl)
        nan = np.isnan(out)
        assert not (must & ~nan).any(), f"{impl}: a value that depends on the NaN is not NaN"
        assert not (nan & ~may).any(), f"{impl}: NaN where nothing depends on it"
        np.testing.assert_array_equal(np.isinf(out), False)
        clean_heads = out[0, 0]  # head 0 never sees the planted value
        assert np.isfinite(clean_heads).all()


def test_sampler_refuses_nan():
    x = np.array([0.0, np.nan, 1.0], np.float32)
    for kw in [dict(temperature=0), dict(temperature=1.0, seed=1), dict(top_k=2, seed=1), dict(top_p=0.5, seed=1)]:
        with pytest.raises(ValueError, match="token 1 is NaN"):
            llmc.sample(x, **kw)
    with pytest.raises(ValueError, match="token 2 is \\+inf"):
        llmc.sample(np.array([0.0, 1.0, np.inf]), temperature=0.7, seed=0)
    with pytest.raises(ValueError, match="token 0 is NaN"):
        llmc.process_logits(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="overflows"):
        llmc.sample(np.array([0.0, 3e38], np.float32), temperature=1e-3, seed=0)
    # -inf is an ordinary filtered token; the choice and its log-probability are the torch ones
    x = np.array([0.0, -np.inf, 1.0], np.float32)
    tok, lp = llmc.sample(x, temperature=0, return_logprobs=True)
    assert tok == 2
    assert lp == pytest.approx(torch.log_softmax(torch.tensor(x), -1)[2].item(), abs=1e-6)
