"""Numeric building blocks against NumPy (float64) and PyTorch references.

Tolerances: float32 results vs float64 references, max abs error 1e-5 on O(1) values (softmax probabilities,
norms, activations), relative 1e-5 on sums/matmul; stated per test.
"""
import math

import numpy as np
import pytest

import llmc

from conftest import lazy_import

torch = lazy_import("torch")

SIZES = [1, 3, 17, 1000]
rng = np.random.default_rng(1234)


def f64_softmax(x, axis=-1, t=1.0):
    z = x.astype(np.float64) / t
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def f64_log_softmax(x, axis=-1, t=1.0):
    z = x.astype(np.float64) / t
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


@pytest.fixture(params=["best", "scalar", "avx2"], autouse=False)
def simd_level(request):
    """Run a test under each SIMD level this CPU has (the portable one is the reference)."""
    levels = {"scalar": 0, "avx2": 1, "avx512": 2}
    best = llmc.simd_info()["best"]
    want = best if request.param == "best" else request.param
    if levels[want] > levels[best]:
        pytest.skip(f"CPU lacks {want}")
    llmc._core.set_simd_level(levels[want])
    yield want
    llmc._core.set_simd_level(levels[best])


# ------------------------------------------------------------------ matmul
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 17, 1), (17, 3, 1000), (64, 128, 33), (1000, 17, 3)])
def test_matmul_2d(m, k, n):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    out = llmc.matmul(a, b)
    assert out.dtype == np.float32 and out.shape == (m, n)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5 * math.sqrt(k))
    np.testing.assert_allclose(out, torch.from_numpy(a) @ torch.from_numpy(b), rtol=1e-5, atol=1e-5 * math.sqrt(k))


def test_matmul_batched_and_broadcast():
    a = rng.standard_normal((4, 7, 5)).astype(np.float32)
    b = rng.standard_normal((4, 5, 3)).astype(np.float32)
    b2 = rng.standard_normal((5, 3)).astype(np.float32)
    a2 = rng.standard_normal((7, 5)).astype(np.float32)
    np.testing.assert_allclose(llmc.matmul(a, b), np.matmul(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(llmc.matmul(a, b2), np.matmul(a, b2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(llmc.matmul(a2, b), np.matmul(a2, b), rtol=1e-5, atol=1e-5)


def test_matmul_converts_and_handles_views():
    a = np.arange(12, dtype=np.int64).reshape(3, 4)
    b = np.asfortranarray(rng.standard_normal((4, 2)))  # float64, Fortran order: copied to f32 C order
    np.testing.assert_allclose(llmc.matmul(a, b), a @ b, rtol=1e-5, atol=1e-4)
    big = rng.standard_normal((6, 8)).astype(np.float32)
    np.testing.assert_allclose(llmc.matmul(big[::2, ::2], big[:4, ::2].T), big[::2, ::2] @ big[:4, ::2].T, rtol=1e-5,
                               atol=1e-5)
    assert llmc.matmul([[1, 2]], [[3], [4]]).tolist() == [[11.0]]


def test_matmul_zero_k():
    out = llmc.matmul(np.ones((2, 0), np.float32), np.ones((0, 3), np.float32))
    assert out.shape == (2, 3) and not out.any()


@pytest.mark.parametrize("a,b", [((2, 3), (2, 3)), ((3,), (3, 2)), ((2, 2, 2, 2), (2, 2)), ((2, 3, 4), (3, 4, 5))])
def test_matmul_bad_shapes(a, b):
    with pytest.raises(ValueError) as e:
        llmc.matmul(np.ones(a), np.ones(b))
    assert str(a[-1] if len(a) > 1 else a[0]) in str(e.value)


# ------------------------------------------------------------------ softmax family
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("t", [1.0, 0.5, 2.0])
def test_softmax_vs_numpy_and_torch(n, t, simd_level):
    x = (rng.standard_normal((5, n)) * 3).astype(np.float32)
    out = llmc.softmax(x, temperature=t)
    # float32 sums of up to 1000 terms: relative error a few ulp of the row sum
    np.testing.assert_allclose(out, f64_softmax(x, t=t), rtol=5e-6, atol=1e-7)
    np.testing.assert_allclose(out, torch.softmax(torch.from_numpy(x) / t, -1).numpy(), rtol=5e-6, atol=1e-7)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    lout = llmc.log_softmax(x, temperature=t)
    np.testing.assert_allclose(lout, f64_log_softmax(x, t=t), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lout, torch.log_softmax(torch.from_numpy(x) / t, -1).numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
def test_softmax_any_axis(axis):
    x = rng.standard_normal((3, 17, 5)).astype(np.float32)
    np.testing.assert_allclose(llmc.softmax(x, axis=axis), f64_softmax(x, axis=axis), atol=1e-6)
    np.testing.assert_allclose(llmc.log_softmax(x, axis=axis, temperature=0.7), f64_log_softmax(x, axis, 0.7),
                               atol=1e-5)
    ref = np.zeros_like(x)
    np.put_along_axis(ref, np.expand_dims(x.argmax(axis=axis), axis), 1.0, axis=axis)
    np.testing.assert_array_equal(llmc.hardmax(x, axis=axis), ref)


def test_softmax_large_magnitudes_and_neg_inf(simd_level):
    x = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-np.inf, 0.0, 1.0, -np.inf], [-1e4, -1e4 + 0.5, -np.inf, -1e4]],
                 np.float32)
    out = llmc.softmax(x)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, f64_softmax(x), atol=1e-6)
    assert out[1, 0] == 0.0 and out[1, 3] == 0.0
    lout = llmc.log_softmax(x)
    fin = np.isfinite(f64_log_softmax(x))
    np.testing.assert_allclose(lout[fin], f64_log_softmax(x)[fin], atol=1e-4)
    assert np.isneginf(lout[~fin]).all()


def test_softmax_all_neg_inf_row_is_error():
    x = np.zeros((3, 4), np.float32)
    x[1] = -np.inf
    for fn in (llmc.softmax, llmc.log_softmax):
        with pytest.raises(ValueError, match="all -inf"):
            fn(x)
    with pytest.raises(ValueError, match="all -inf"):
        llmc.softmax(x.T, axis=0)


@pytest.mark.parametrize("t", [0.0, -1.0, float("nan"), float("inf")])
def test_temperature_must_be_positive(t):
    with pytest.raises(ValueError, match="temperature"):
        llmc.softmax([1.0, 2.0], temperature=t)
    with pytest.raises(ValueError, match="temperature"):
        llmc.log_softmax([1.0, 2.0], temperature=t)


def test_temperature_extremes_approach_hardmax_and_uniform():
    x = np.array([1.0, 3.0, 2.0], np.float32)
    np.testing.assert_allclose(llmc.softmax(x, temperature=1e-3), llmc.hardmax(x), atol=1e-6)
    np.testing.assert_allclose(llmc.softmax(x, temperature=1e6), np.full(3, 1 / 3), atol=1e-5)


def test_hardmax_ties_and_nan():
    assert llmc.hardmax([3, 1, 3]).tolist() == [1, 0, 0]
    assert llmc.hardmax([[0, 0, 0], [1, 2, 2]]).tolist() == [[1, 0, 0], [0, 1, 0]]
    x = np.array([1.0, np.nan, 5.0], np.float32)
    assert llmc.hardmax(x).tolist() == np.eye(3)[np.argmax(x)].tolist()  # numpy: NaN is the max
    assert llmc.hardmax(np.zeros((2, 0), np.float32)).shape == (2, 0)


# ------------------------------------------------------------------ cross-entropy / perplexity
@pytest.mark.parametrize("T,V", [(1, 1), (3, 17), (17, 1000), (64, 50257)])
def test_cross_entropy_vs_torch(T, V):
    logits = (rng.standard_normal((T, V)) * 4).astype(np.float32)
    targets = rng.integers(0, V, T)
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(), torch.from_numpy(targets)).item()
    ce = llmc.cross_entropy(logits, targets)
    assert isinstance(ce, float)
    assert ce == pytest.approx(ref, rel=1e-6, abs=1e-6)
    assert llmc.perplexity_from_logits(logits, targets) == pytest.approx(math.exp(ref), rel=1e-6)


def test_cross_entropy_large_logits():
    logits = np.array([[1e4, 0.0, -1e4], [5e3, 5e3, 0.0]], np.float32)
    t = np.array([1, 0])
    ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(), torch.from_numpy(t)).item()
    assert llmc.cross_entropy(logits, t) == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("bad", [[-1, 0], [0, 5], [0, 2**40]])
def test_cross_entropy_targets_out_of_range(bad):
    with pytest.raises(ValueError, match="outside the vocabulary"):
        llmc.cross_entropy(np.zeros((2, 5), np.float32), bad)


def test_cross_entropy_errors():
    with pytest.raises(ValueError, match=r"\(3, 5\) and \(2,\)"):
        llmc.cross_entropy(np.zeros((3, 5)), [0, 1])
    with pytest.raises(TypeError, match="integers"):
        llmc.cross_entropy(np.zeros((2, 5)), [0.5, 1.0])
    with pytest.raises(ValueError):
        llmc.cross_entropy(np.zeros((0, 5)), np.zeros(0, np.int64))


# ------------------------------------------------------------------ norms
@pytest.mark.parametrize("C", SIZES)
def test_layer_norm(C, simd_level):
    x = (rng.standard_normal((7, C)) * 5 + 3).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    x64 = x.astype(np.float64)
    mu, var = x64.mean(-1, keepdims=True), x64.var(-1, keepdims=True)
    ref = (x64 - mu) / np.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(llmc.layer_norm(x, w, b), ref, rtol=1e-4, atol=1e-4)
    tref = torch.nn.functional.layer_norm(torch.from_numpy(x), (C,), torch.from_numpy(w), torch.from_numpy(b), 1e-5)
    np.testing.assert_allclose(llmc.layer_norm(x, w, b), tref.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(llmc.layer_norm(x, w, None), ref - b, rtol=1e-4, atol=1e-4)


def test_layer_norm_large_offset_is_stable():
    # a mean of 1e4 with unit spread: E[x^2]-mean^2 would cancel; the two-pass variance must not
    x = (rng.standard_normal((4, 256)) + 1e4).astype(np.float32)
    x64 = x.astype(np.float64)
    ref = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(llmc.layer_norm(x, np.ones(256), np.zeros(256)), ref, atol=2e-3)


@pytest.mark.parametrize("C", SIZES)
def test_rms_norm(C, simd_level):
    x = (rng.standard_normal((2, 3, C)) * 10).astype(np.float32)
    w = rng.standard_normal(C).astype(np.float32)
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt((x64**2).mean(-1, keepdims=True) + 1e-6) * w
    out = llmc.rms_norm(x, w)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    tref = torch.nn.functional.rms_norm(torch.from_numpy(x), (C,), torch.from_numpy(w), 1e-6)
    np.testing.assert_allclose(out, tref.numpy(), rtol=1e-4, atol=1e-5)


def test_norm_bad_shapes():
    with pytest.raises(ValueError, match=r"\(4,\)"):
        llmc.layer_norm(np.zeros((2, 4)), np.ones(3), np.zeros(4))
    with pytest.raises(ValueError, match="bias"):
        llmc.layer_norm(np.zeros((2, 4)), np.ones(4), np.zeros(5))
    with pytest.raises(ValueError, match="weight"):
        llmc.rms_norm(np.zeros((2, 4)), np.ones((4, 1)))
    with pytest.raises(ValueError):
        llmc.rms_norm(np.float32(3.0), np.ones(1))


# ------------------------------------------------------------------ activations
@pytest.mark.parametrize("n", SIZES + [100003])
def test_activations(n, simd_level):
    x = (rng.standard_normal(n) * 4).astype(np.float32)
    x[: min(n, 4)] = [-100.0, 100.0, 0.0, -9.0][: min(n, 4)]
    tx = torch.from_numpy(x)
    np.testing.assert_allclose(llmc.gelu(x), torch.nn.functional.gelu(tx, approximate="tanh").numpy(), rtol=1e-5,
                               atol=1e-6)
    # torch computes 1 + erf in float32, which cancels for x < -3; 2e-6 absolute covers that, float64 below is tight
    np.testing.assert_allclose(llmc.gelu(x, approximate="none"), torch.nn.functional.gelu(tx).numpy(), rtol=1e-5,
                               atol=2e-6)
    np.testing.assert_allclose(llmc.silu(x), torch.nn.functional.silu(tx).numpy(), rtol=1e-5, atol=1e-6)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(llmc.silu(x), x64 / (1 + np.exp(-x64)), rtol=1e-5, atol=1e-6)
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(llmc.gelu(x, approximate="none"), 0.5 * x64 * (1 + erf(x64 / math.sqrt(2))), rtol=1e-5,
                               atol=1e-6)


def test_activation_shapes_and_errors():
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    assert llmc.gelu(x).shape == (2, 3, 5)
    with pytest.raises(ValueError, match="approximate"):
        llmc.gelu(x, approximate="sigmoid")
    with pytest.raises(TypeError):
        llmc.silu("abc")


# ------------------------------------------------------------------ positions
@pytest.mark.parametrize("n,dim", [(1, 2), (17, 4), (1000, 64), (3, 1000)])
def test_sinusoidal_positions(n, dim):
    pos = np.arange(n)[:, None].astype(np.float64)
    i = np.arange(dim // 2)[None, :]
    ang = pos / 10000 ** (2 * i / dim)
    ref = np.zeros((n, dim))
    ref[:, 0::2], ref[:, 1::2] = np.sin(ang), np.cos(ang)
    np.testing.assert_allclose(llmc.sinusoidal_positions(n, dim), ref, atol=1e-6)


def test_sinusoidal_errors():
    with pytest.raises(ValueError, match="even"):
        llmc.sinusoidal_positions(4, 3)
    with pytest.raises(ValueError):
        llmc.sinusoidal_positions(-1, 4)


def _rope_ref_half(x, pos, theta):
    # transformers' LlamaRotaryEmbedding + rotate_half, in float64
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.outer(pos, inv)
    emb = np.concatenate([ang, ang], -1)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    rot = np.concatenate([-x2, x1], -1)
    return x * np.cos(emb) + rot * np.sin(emb)


def _rope_ref_interleaved(x, pos, theta):
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.outer(pos, inv)
    xc = x[..., 0::2] + 1j * x[..., 1::2]  # Meta's Llama: pairs as complex numbers
    y = xc * np.exp(1j * ang)
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = y.real, y.imag
    return out


@pytest.mark.parametrize("d", [2, 32, 64, 80, 128])
@pytest.mark.parametrize("layout", ["half", "interleaved"])
def test_rope(d, layout):
    T = 17
    x = rng.standard_normal((2, 3, T, d)).astype(np.float32)
    pos = rng.integers(0, 4096, T)
    ref = (_rope_ref_half if layout == "half" else _rope_ref_interleaved)(x.astype(np.float64), pos, 10000.0)
    out = llmc.apply_rope(x, pos, layout=layout)
    # angles up to 4096 rad in float32 carry ~2e-4 absolute error, exactly as transformers computes them
    np.testing.assert_allclose(out, ref, atol=2e-3)
    # against transformers' own float32 formula, much tighter
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    ang = torch.from_numpy(pos).float()[:, None] * inv[None, :]
    if layout == "half":
        emb = torch.cat([ang, ang], -1)
        tx = torch.from_numpy(x)
        rot = torch.cat([-tx[..., d // 2:], tx[..., : d // 2]], -1)
        tref = (tx * emb.cos() + rot * emb.sin()).numpy()
        np.testing.assert_allclose(out, tref, atol=1e-5)


def test_rope_theta_and_small_positions():
    x = rng.standard_normal((5, 8)).astype(np.float32)
    pos = np.arange(5)
    np.testing.assert_allclose(llmc.apply_rope(x, pos, theta=500000.0), _rope_ref_half(x.astype(np.float64), pos, 5e5),
                               atol=1e-5)
    np.testing.assert_allclose(llmc.apply_rope(x, np.zeros(5, np.int64)), x, atol=0)


def test_rope_errors():
    x = np.zeros((4, 6), np.float32)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        llmc.apply_rope(x, np.arange(3))
    with pytest.raises(ValueError, match="even"):
        llmc.apply_rope(np.zeros((4, 5)), np.arange(4))
    with pytest.raises(ValueError, match="layout"):
        llmc.apply_rope(x, np.arange(4), layout="spiral")
    with pytest.raises(ValueError, match="theta"):
        llmc.apply_rope(x, np.arange(4), theta=-1.0)
    with pytest.raises(TypeError):
        llmc.apply_rope(x, np.arange(4) + 0.5)


# ------------------------------------------------------------------ embedding
def test_embedding():
    table = rng.standard_normal((50, 8)).astype(np.float32)
    ids = rng.integers(0, 50, (3, 7))
    out = llmc.embedding(table, ids)
    assert out.shape == (3, 7, 8)
    np.testing.assert_array_equal(out, table[ids])
    np.testing.assert_array_equal(out, torch.nn.functional.embedding(torch.from_numpy(ids), torch.from_numpy(table)))
    assert llmc.embedding(table, np.array([], np.int64)).shape == (0, 8)


@pytest.mark.parametrize("bad", [50, -1, 10**12])
def test_embedding_bad_id(bad):
    with pytest.raises(ValueError, match=f"token id {bad} at index 2"):
        llmc.embedding(np.zeros((50, 4)), [0, 1, bad])


def test_embedding_uint64_overflow():
    with pytest.raises(ValueError, match="int64"):
        llmc.embedding(np.zeros((5, 4)), np.array([2**63 + 5], np.uint64))


# ------------------------------------------------------------------ input conversion
@pytest.mark.parametrize("bad", ["hello", b"bytes", np.array(["a", "b"]), np.array([1 + 2j]), [object()], None])
def test_non_numeric_inputs_are_type_errors(bad):
    with pytest.raises(TypeError):
        llmc.softmax(bad)


def test_ragged_input_is_value_error():
    with pytest.raises(ValueError, match="x could not be converted"):
        llmc.softmax([[1, 2], [3]])


def test_scalar_and_axis_errors():
    with pytest.raises(ValueError, match="scalar"):
        llmc.softmax(3.0)
    with pytest.raises(ValueError, match="axis 2"):
        llmc.softmax(np.zeros((2, 2)), axis=2)
    with pytest.raises(TypeError):
        llmc.softmax(np.zeros(2), axis=1.5)


def test_outputs_are_new_float32_arrays():
    x = np.ones((2, 3), np.float32)
    for fn in (llmc.softmax, llmc.log_softmax, llmc.hardmax, llmc.silu, llmc.gelu):
        out = fn(x)
        assert out.dtype == np.float32 and out.flags.c_contiguous and not np.shares_memory(out, x)
    # float64 / int / bool inputs are accepted and converted
    assert llmc.softmax(np.array([0, 0], np.int32)).tolist() == [0.5, 0.5]
    assert llmc.softmax([True, True]).tolist() == [0.5, 0.5]


def test_big_endian_and_strided_inputs_are_converted():
    x = rng.standard_normal((4, 9)).astype(np.float32)
    np.testing.assert_allclose(llmc.softmax(x.astype(">f4")), f64_softmax(x), rtol=5e-6, atol=1e-7)
    np.testing.assert_allclose(llmc.softmax(x.astype(">f8")[:, ::2]), f64_softmax(x[:, ::2]), rtol=5e-6, atol=1e-7)
    assert llmc.embedding(x.astype(">f4"), np.array([1], ">i8")).tolist() == [x[1].tolist()]


def test_threads_setting():
    old = llmc.get_num_threads()
    try:
        llmc.set_num_threads(1)
        assert llmc.get_num_threads() == 1
        x = rng.standard_normal((300, 1000)).astype(np.float32)
        one = llmc.softmax(x)
        llmc.set_num_threads(2)
        np.testing.assert_array_equal(llmc.softmax(x), one)  # same math on any thread count
        with pytest.raises(ValueError):
            llmc.set_num_threads(0)
        with pytest.raises(TypeError):
            llmc.set_num_threads("2")
    finally:
        llmc.set_num_threads(old)


def test_simd_levels_agree_with_scalar():
    best = {"scalar": 0, "avx2": 1, "avx512": 2}[llmc.simd_info()["best"]]
    x = (rng.standard_normal((33, 1001)) * 6).astype(np.float32)
    w = rng.standard_normal(1001).astype(np.float32)
    fns = [lambda: llmc.softmax(x), lambda: llmc.log_softmax(x, temperature=0.3), lambda: llmc.layer_norm(x, w, w),
           lambda: llmc.rms_norm(x, w), lambda: llmc.silu(x), lambda: llmc.gelu(x)]
    try:
        llmc._core.set_simd_level(0)
        ref = [f() for f in fns]
        for level in range(1, best + 1):
            llmc._core.set_simd_level(level)
            for r, f in zip(ref, fns):
                np.testing.assert_allclose(f(), r, rtol=2e-5, atol=2e-6)
    finally:
        llmc._core.set_simd_level(best)
    if best < 2:
        with pytest.raises(llmc.UnsupportedError):
            llmc._core.set_simd_level(2)


def test_threaded_blas_split_matches_numpy():
    """Products large enough that llmc_sgemm splits them over threads (rows when m >= n, else columns)."""
    old = llmc.get_num_threads()
    try:
        for n_threads in (1, 2, 3):
            llmc.set_num_threads(n_threads)
            for m, k, n in [(301, 200, 97), (33, 150, 1001), (1000, 64, 1000)]:
                a = rng.standard_normal((m, k)).astype(np.float32)
                b = rng.standard_normal((k, n)).astype(np.float32)
                np.testing.assert_allclose(llmc.matmul(a, b), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-4)
    finally:
        llmc.set_num_threads(old)
