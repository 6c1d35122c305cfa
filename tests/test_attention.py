"""llmc.attention (standard and flash) against torch.nn.functional.scaled_dot_product_attention and a NumPy float64
reference, plus masks, GQA, tiling, SIMD levels, memory behaviour and argument errors."""
import math
import os

import numpy as np
import pytest
from conftest import lazy_import

torch = lazy_import("torch")

import llmc
from llmc import _core
from llmc.attention import set_standard_memory_limit, standard_memory_limit

IMPLS = ["standard", "flash"]
rng = np.random.default_rng(1234)


def make_qkv(B, Hq, Hkv, Tq, Tk, d, mag=1.0, seed=None):
    r = np.random.default_rng(seed) if seed is not None else rng
    shape = (lambda H, T: (B, H, T, d)) if B else (lambda H, T: (H, T, d))
    q = (r.standard_normal(shape(Hq, Tq)) * mag).astype(np.float32)
    k = (r.standard_normal(shape(Hkv, Tk)) * mag).astype(np.float32)
    v = r.standard_normal(shape(Hkv, Tk)).astype(np.float32)
    return q, k, v


def visible_mask(Tq, Tk, causal, window):
    """(Tq, Tk) bool, True where query i (at position Tk - Tq + i) may see key j; written independently of the C."""
    p = np.arange(Tq)[:, None] + (Tk - Tq)
    j = np.arange(Tk)[None, :]
    m = np.ones((Tq, Tk), bool)
    if causal:
        m &= j <= p
    if window:
        m &= (j > p - window) if causal else (np.abs(j - p) < window)
    return m


def torch_ref(q, k, v, causal=False, window=None, scale=None):
    """torch SDPA in float64 (so the reference's own rounding is negligible), with an explicit boolean mask."""
    tq, tk, tv = (torch.from_numpy(x.astype(np.float64)) for x in (q, k, v))
    Tq, Tk = q.shape[-2], k.shape[-2]
    mask = None
    if causal or window:
        mask = torch.from_numpy(visible_mask(Tq, Tk, causal, window))
    gqa = q.shape[-3] != k.shape[-3]
    out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, attn_mask=mask, scale=scale, enable_gqa=gqa)
    return out.numpy()


def numpy_ref(q, k, v, causal=False, window=None, scale=None):
    """Plain float64 softmax(q k^T * scale + mask) v, with k/v heads repeated for GQA. Returns (out, weights)."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    G = q.shape[-3] // k.shape[-3]
    k, v = np.repeat(k, G, axis=-3), np.repeat(v, G, axis=-3)
    s = q @ np.swapaxes(k, -1, -2) * (1 / math.sqrt(q.shape[-1]) if scale is None else scale)
    m = visible_mask(q.shape[-2], k.shape[-2], causal, window)
    s = np.where(m, s, -np.inf)
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return w @ v, w


def maxerr(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b))) if np.size(b) else 0.0


# ---------------------------------------------------------------- against torch SDPA
LENGTHS = [(1, 1), (7, 7), (63, 63), (64, 64), (65, 65), (1000, 1000), (1, 1000), (7, 65), (63, 200), (65, 7)]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Tq,Tk", LENGTHS)
def test_matches_torch_lengths(impl, causal, Tq, Tk):
    if causal and Tq > Tk:
        pytest.skip("causal needs Tq <= Tk (tested as an error below)")
    q, k, v = make_qkv(0, 2, 2, Tq, Tk, 64)
    out = llmc.attention(q, k, v, causal=causal, impl=impl)
    assert out.shape == q.shape and out.dtype == np.float32
    assert maxerr(out, torch_ref(q, k, v, causal)) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("d", [32, 64, 80, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("Tq,Tk", [(1, 65), (65, 65), (100, 300)])
def test_matches_torch_head_dims(impl, d, causal, Tq, Tk):
    q, k, v = make_qkv(2, 3, 3, Tq, Tk, d)
    out = llmc.attention(q, k, v, causal=causal, impl=impl)
    assert maxerr(out, torch_ref(q, k, v, causal)) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("Hq,Hkv", [(8, 8), (8, 2), (8, 1)])  # GQA ratios 1, 4, 8 (8:1 is multi-query)
@pytest.mark.parametrize("causal", [False, True])
def test_grouped_query_attention(impl, Hq, Hkv, causal):
    q, k, v = make_qkv(2, Hq, Hkv, 70, 130, 64)
    out = llmc.attention(q, k, v, causal=causal, impl=impl)
    assert maxerr(out, torch_ref(q, k, v, causal)) < 1e-5
    # and the mapping is h -> h // (Hq // Hkv), not h % Hkv: compare with explicitly repeated k, v
    G = Hq // Hkv
    same = llmc.attention(q, np.repeat(k, G, axis=1), np.repeat(v, G, axis=1), causal=causal, impl=impl)
    assert maxerr(out, same) < 1e-6


@pytest.mark.parametrize("Hq,Hkv,Tq", [(8, 2, 1), (32, 2, 1), (8, 2, 3), (12, 4, 5), (64, 1, 2), (8, 8, 1)])
@pytest.mark.parametrize("window", [None, 100])
def test_grouped_query_decoding(Hq, Hkv, Tq, window):
    """Decoding with a KV cache: few queries, many keys. Flash puts the G = Hq / Hkv heads that share a key/value head
    in one tile (dot-product path below 8 columns, register tiles above, the row path for one column)."""
    q, k, v = make_qkv(2, Hq, Hkv, Tq, 700, 64)
    ref, _ = numpy_ref(q, k, v, True, window)
    for impl in IMPLS:
        assert maxerr(llmc.attention(q, k, v, causal=True, window=window, impl=impl), ref) < 1e-5
    for bq, bk in [(1, 64), (2, 29)]:
        out = llmc.attention(q, k, v, causal=True, window=window, block_q=bq, block_k=bk)
        assert maxerr(out, ref) < 1e-5


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_scores(impl, causal, seed):
    """Scores of magnitude ~100 (std 50, max ~250): the max subtraction (standard) / running max (flash) must keep
    exp in range. At this size float32 itself limits accuracy (a score of 250 carries ~1e-5 rounding, which moves
    the weights by about as much; torch's own float32 SDPA is ~5e-5 off the float64 result here, and ~2e-4 at std
    100), so the bar is 1e-4 and "no worse than torch float32 by more than 50 %"."""
    q, k, v = make_qkv(0, 4, 4, 200, 200, 64, mag=math.sqrt(50), seed=seed)  # score std = mag^2
    s = np.einsum("hid,hjd->hij", q.astype(np.float64), k.astype(np.float64)) / 8
    assert 40 < s.std() < 60 and np.abs(s).max() > 150
    out = llmc.attention(q, k, v, causal=causal, impl=impl)
    assert np.all(np.isfinite(out))
    ref = torch_ref(q, k, v, causal)
    torch32 = torch.nn.functional.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), is_causal=causal)
    assert maxerr(out, ref) < 1e-4
    assert maxerr(out, ref) < 1.5 * maxerr(torch32.numpy(), ref) + 1e-5


@pytest.mark.parametrize("impl", IMPLS)
def test_explicit_scale(impl):
    q, k, v = make_qkv(0, 2, 2, 33, 47, 32)
    for scale in (0.5, -0.3, 0.0):
        out = llmc.attention(q, k, v, impl=impl, scale=scale)
        assert maxerr(out, torch_ref(q, k, v, scale=scale)) < 1e-5
    # scale=0: uniform weights, so the output is the mean of v over keys
    out = llmc.attention(q, k, v, impl=impl, scale=0.0)
    assert maxerr(out, np.broadcast_to(v.astype(np.float64).mean(1, keepdims=True), out.shape)) < 1e-5


# ---------------------------------------------------------------- sliding windows (NumPy reference and torch)
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("window", [1, 3, 16, 64, 100, 5000])
@pytest.mark.parametrize("Tq,Tk", [(65, 65), (7, 200), (150, 150)])
def test_sliding_window(impl, causal, window, Tq, Tk):
    q, k, v = make_qkv(0, 2, 1, Tq, Tk, 32)
    out = llmc.attention(q, k, v, causal=causal, window=window, impl=impl, block_q=32, block_k=16)
    ref, _ = numpy_ref(q, k, v, causal, window)
    assert maxerr(out, ref) < 1e-5
    assert maxerr(out, torch_ref(q, k, v, causal, window)) < 1e-5


def test_window_one_causal_returns_own_value():
    """Window 1 with causal: each query sees only its own position, so out == v at the query positions."""
    q, k, v = make_qkv(0, 2, 2, 10, 30, 16)
    for impl in IMPLS:
        out = llmc.attention(q, k, v, causal=True, window=1, impl=impl)
        np.testing.assert_allclose(out, v[:, 20:], atol=1e-6)


def test_window_larger_than_sequence_is_plain_causal():
    q, k, v = make_qkv(0, 2, 2, 40, 90, 16)
    for impl in IMPLS:
        a = llmc.attention(q, k, v, causal=True, window=10_000, impl=impl)
        b = llmc.attention(q, k, v, causal=True, impl=impl)
        assert maxerr(a, b) < 1e-6


# ---------------------------------------------------------------- flash tiling
@pytest.mark.parametrize("bq,bk", [(1, 1), (3, 5), (7, 64), (64, 7), (100, 33), (5000, 5000)])
@pytest.mark.parametrize("causal,window", [(False, None), (True, None), (True, 20), (False, 9)])
def test_flash_blocks_that_do_not_divide(bq, bk, causal, window):
    q, k, v = make_qkv(1, 4, 2, 130, 203, 48)
    out = llmc.attention(q, k, v, causal=causal, window=window, block_q=bq, block_k=bk)
    ref, _ = numpy_ref(q, k, v, causal, window)
    assert maxerr(out, ref) < 1e-5


def test_flash_never_reads_fully_masked_keys():
    """Keys that no query can see (outside every window) are skipped, not computed: NaN there must not leak.
    The standard implementation multiplies its zero weights by them (0 * NaN = NaN), which shows the test can fail."""
    Tq, Tk, W = 4, 1000, 16
    q, k, v = make_qkv(0, 2, 2, Tq, Tk, 64)
    ref, _ = numpy_ref(q, k, v, True, W)
    first_seen = Tk - Tq - W + 1  # the first query sees keys (Tk - Tq) - W < j
    k[:, :first_seen], v[:, :first_seen] = np.nan, np.nan
    out = llmc.attention(q, k, v, causal=True, window=W, block_k=7)
    assert np.all(np.isfinite(out)) and maxerr(out, ref) < 1e-5
    assert np.isnan(llmc.attention(q, k, v, causal=True, window=W, impl="standard")).any()


# ---------------------------------------------------------------- weights
@pytest.mark.parametrize("causal,window", [(False, None), (True, None), (True, 5), (False, 4)])
def test_return_weights(causal, window):
    q, k, v = make_qkv(2, 4, 2, 20, 33, 16)
    out, w = llmc.attention(q, k, v, causal=causal, window=window, impl="standard", return_weights=True)
    ref_out, ref_w = numpy_ref(q, k, v, causal, window)
    assert w.shape == (2, 4, 20, 33) and w.dtype == np.float32
    assert maxerr(w, ref_w) < 1e-6 and maxerr(out, ref_out) < 1e-5
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    assert np.all(w[..., ~visible_mask(20, 33, causal, window)] == 0.0)  # exactly zero where masked
    # 3-D input gives 3-D weights
    _, w3 = llmc.attention(q[0], k[0], v[0], causal=causal, window=window, impl="standard", return_weights=True)
    np.testing.assert_array_equal(w3, w[0])


def test_causal_weights_are_lower_triangular():
    q, k, v = make_qkv(0, 1, 1, 6, 6, 8)
    _, w = llmc.attention(q, k, v, causal=True, impl="standard", return_weights=True)
    assert np.all(np.triu(w[0], 1) == 0) and np.all(w[0][np.tril_indices(6)] > 0)


# ---------------------------------------------------------------- layouts: strided views are read in place
@pytest.mark.parametrize("impl", IMPLS)
def test_strided_views_match_packed(impl):
    B, T, H, Hkv, d, C = 2, 50, 4, 2, 32, 80
    x = rng.standard_normal((B, T, H, d)).astype(np.float32)  # (B, T, H, d): the layout a model produces
    q = x.transpose(0, 2, 1, 3)                                # (B, H, T, d) view, time stride H * d
    cache = rng.standard_normal((2, B, Hkv, C, d)).astype(np.float32)  # KV cache of capacity C > T
    k, v = cache[0, :, :, :T], cache[1, :, :, :T]              # views with head stride C * d
    assert not q.flags.c_contiguous and not k.flags.c_contiguous
    out = llmc.attention(q, k, v, causal=True, impl=impl)
    packed = llmc.attention(*(np.ascontiguousarray(a) for a in (q, k, v)), causal=True, impl=impl)
    np.testing.assert_array_equal(out, packed)
    packed_ref = torch_ref(*(np.ascontiguousarray(a) for a in (q, k, v)), True)
    assert maxerr(out, packed_ref) < 1e-5


def test_other_dtypes_and_lists_are_converted():
    q, k, v = make_qkv(0, 2, 2, 5, 9, 8)
    a = llmc.attention(q.astype(np.float64), k.tolist(), v[:, ::1], causal=True)
    b = llmc.attention(q, k, v, causal=True)
    np.testing.assert_array_equal(a, b)
    # byte-swapped float32, negative strides and non-unit last-axis strides are converted, not misread
    np.testing.assert_array_equal(llmc.attention(q.astype(">f4"), k.astype(">f4"), v.astype(">f4")),
                                  llmc.attention(q, k, v))
    rev = llmc.attention(q[:, ::-1], k, v)
    np.testing.assert_array_equal(rev, llmc.attention(np.ascontiguousarray(q[:, ::-1]), k, v))
    wide = np.zeros((2, 5, 16), np.float32)
    wide[..., ::2] = q
    np.testing.assert_array_equal(llmc.attention(wide[..., ::2], k, v), llmc.attention(q, k, v))


def test_empty_queries_and_batch():
    q, k, v = make_qkv(0, 2, 2, 0, 5, 8)
    for impl in IMPLS:
        assert llmc.attention(q, k, v, impl=impl).shape == (2, 0, 8)
    q, k, v = make_qkv(0, 2, 2, 3, 5, 8)
    for impl in IMPLS:
        assert llmc.attention(q[None][:0], k[None][:0], v[None][:0], impl=impl).shape == (0, 2, 3, 8)


# ---------------------------------------------------------------- SIMD levels agree with the scalar reference
def test_simd_levels_agree_with_scalar():
    names = {"scalar": 0, "avx2": 1, "avx512": 2}
    best = names[llmc.simd_info()["best"]]
    before = names[llmc.simd_info()["active"]]
    q, k, v = make_qkv(2, 6, 2, 77, 141, 80)  # tails everywhere: 77 rows, 141 keys, d = 80, odd blocks
    # block_q = 13 / default / 40 give tiles of 39 / 63 / 120 columns (G = 3): the 8 x 32 and 6 x 64 register tiles
    # with their row and column tails; block_q = 2 gives 6 columns, the dot-product path
    cases = [dict(causal=True, block_q=13, block_k=29), dict(causal=False), dict(causal=True, window=30),
             dict(causal=True, block_q=40, block_k=70), dict(causal=True, block_q=2)]
    results = {}
    try:
        for level in range(best + 1):
            _core.set_simd_level(level)
            assert llmc.simd_info()["active"] == list(names)[level]
            results[level] = [llmc.attention(q, k, v, impl=impl, **c) for c in cases for impl in IMPLS]
    finally:
        _core.set_simd_level(before)
    assert llmc.simd_info()["active"] == list(names)[before]
    refs = [numpy_ref(q, k, v, c.get("causal", False), c.get("window"))[0] for c in cases for _ in IMPLS]
    for level, outs in results.items():
        for got, want, ref in zip(outs, results[0], refs):
            assert maxerr(got, want.astype(np.float64)) < 1e-5, level
            assert maxerr(got, ref) < 1e-5, level


# ---------------------------------------------------------------- memory
def test_flash_memory_is_independent_of_the_score_matrix():
    H, T, d = 2, 4096, 64
    q, k, v = make_qkv(0, H, H, T, T, d)
    _core.mem_reset_peak()
    base = _core.mem_stats()["current"]
    llmc.attention(q, k, v, causal=True)
    flash_peak = _core.mem_stats()["peak"] - base
    assert 0 < flash_peak < 2 * 2**20  # a few tiles per thread; the score matrix would be 128 MiB
    _core.mem_reset_peak()
    llmc.attention(q, k, v, causal=True, impl="standard")
    std_peak = _core.mem_stats()["peak"] - base
    assert std_peak >= H * T * T * 4


def test_standard_refuses_oversized_score_matrix():
    """H=12, T=16384 needs a 12 GiB score tensor: refused under an 8 GiB limit, before anything is allocated."""
    old = standard_memory_limit()
    try:
        assert set_standard_memory_limit(8 * 2**30) == 8 * 2**30
        q = np.zeros((12, 16384, 64), np.float32)
        _core.mem_reset_peak()
        base = _core.mem_stats()["current"]
        with pytest.raises(MemoryError, match=r"12\.00 GiB.*flash"):
            llmc.attention(q, q, q, causal=True, impl="standard")
        with pytest.raises(MemoryError, match=r"12\.00 GiB"):
            llmc.attention(q, q, q, impl="standard", return_weights=True)
        assert _core.mem_stats()["peak"] - base < 2**20  # nothing big was allocated
        # a small limit refuses small problems too, with the size it needed
        set_standard_memory_limit(1000)
        with pytest.raises(MemoryError, match="limit"):
            llmc.attention(q[:1, :16], q[:1, :16], q[:1, :16], impl="standard")
        llmc.attention(q[:1, :16], q[:1, :16], q[:1, :16], impl="flash")  # flash has no such limit
    finally:
        set_standard_memory_limit(None)
    assert standard_memory_limit() == os.sysconf("SC_PHYS_PAGES") // 2 * os.sysconf("SC_PAGE_SIZE")
    del old


# ---------------------------------------------------------------- errors
def test_value_errors():
    q, k, v = make_qkv(0, 4, 2, 5, 7, 8)
    bad = [
        (dict(q=q[:3]), "multiple"),                         # Hq % Hkv != 0
        (dict(k=k[..., :4]), "match"),                       # d mismatch between q and k
        (dict(v=v[:, :6]), "match"),                         # Tk mismatch between k and v
        (dict(v=v[..., :4]), "match"),                       # d mismatch between k and v
        (dict(q=q[0]), "takes"),                             # wrong rank
        (dict(q=q[None, None]), "takes"),                    # rank 5
        (dict(q=q[None]), "takes"),                          # ranks differ
        (dict(k=k[:, :0], v=v[:, :0]), "Tk = 0"),           # no keys
        (dict(q=make_qkv(0, 4, 2, 9, 7, 8)[0], causal=True), "Tq <= Tk"),  # causal with Tq > Tk
        (dict(q=make_qkv(0, 4, 2, 9, 7, 8)[0], window=3), "Tq <= Tk"),
        (dict(return_weights=True), "standard"),             # weights with flash
        (dict(impl="fast"), "impl"),
        (dict(window=0), "window"),
        (dict(window=-2), "window"),
        (dict(block_q=0), "block_q"),
        (dict(block_k=-1), "block_k"),
        (dict(scale=float("nan")), "finite"),
        (dict(scale=float("inf")), "finite"),
    ]
    for kw, msg in bad:
        args = dict(q=q, k=k, v=v)
        args.update(kw)
        with pytest.raises(ValueError, match=msg):
            llmc.attention(args.pop("q"), args.pop("k"), args.pop("v"), **args)
    with pytest.raises(ValueError, match="multiple"):
        llmc.attention(q[:3], k, v, impl="standard")
    with pytest.raises(ValueError):
        llmc.attention(q, k[:, :, :0], v[:, :, :0])  # d = 0 in k only
    with pytest.raises(ValueError, match="d must be"):
        z = np.zeros((2, 3, 0), np.float32)
        llmc.attention(z, z, z)


def test_type_errors():
    q, k, v = make_qkv(0, 2, 2, 3, 3, 4)
    with pytest.raises(TypeError):
        llmc.attention("q", k, v)
    with pytest.raises(TypeError):
        llmc.attention(q, k, np.array([["a"]]))
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, window="3")
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, scale="0.5")
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, impl=1)
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, block_q=2.5)
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, causal="yes")
    with pytest.raises(TypeError):
        llmc.attention(q, k, v, causal=True, window=True)


def test_standard_restores_blas_threads():
    """OpenBLAS stays single-threaded (llmc splits BLAS work over its own threads, see csrc/threads.c); the
    head-parallel standard path must leave it that way."""
    import ctypes

    ob = pytest.importorskip("scipy_openblas32")
    lib = ctypes.CDLL(os.path.join(ob.get_lib_dir(), ob.get_library(fullname=True)))
    get = getattr(lib, "scipy_openblas_get_num_threads")
    q, k, v = make_qkv(1, 8, 8, 300, 300, 64)
    before = get()
    assert before == 1
    out = llmc.attention(q, k, v, causal=True, impl="standard")
    assert get() == before
    assert maxerr(out, torch_ref(q, k, v, True)) < 1e-5
