"""Quantization block formats and kernels against independent oracles.

- Bytes: gguf-py (``gguf.quants``, the GGUF project's own NumPy port of ggml's reference quantizers) for every
  type it can quantize (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): llmc's bytes must be identical, including
  all-zero, constant, tiny (1e-30), denormal, huge (1e30) rows and rows with +-inf / NaN.
- Values: ``gguf.quants.dequantize`` for every type, K-quants included: exactly equal (bit for bit, NaN where NaN).
- K-quant quantizers (no gguf-py quantizer): the round-trip error against the format's bound, and the defined
  non-finite behaviour (a super-block holding NaN/inf dequantizes to NaN).
- Kernels: ``llmc.quant.matmul`` against NumPy float64 on the dequantized weights: NMSE <= 5e-4 (ggml's threshold
  in test-backend-ops); every SIMD level the CPU has against the scalar level; 1 vs 2 threads identical.
"""
import numpy as np
import pytest

import llmc
from llmc import quant

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType as G  # noqa: E402
from gguf.quants import dequantize as g_dequantize  # noqa: E402
from gguf.quants import quantize as g_quantize  # noqa: E402

ORACLE_QUANTIZE = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]
KQUANTS = ["q2_k", "q3_k", "q4_k", "q5_k", "q6_k"]
ALL = list(llmc.quant_types())
rng = np.random.default_rng(20261201)


def gtype(name):
    return G[name.upper()]


def gguf_bytes(x, name):
    q = g_quantize(x, gtype(name))
    return np.ascontiguousarray(q).view(np.uint8).reshape(x.shape[0], -1)


def special_rows(n):
    """(name, (rows, n) float32) pairs covering the edge cases the byte oracle must agree on."""
    r = np.random.default_rng(7)
    cases = {
        "normal": r.standard_normal((6, n)),
        "scaled": r.standard_normal((4, n)) * np.array([[1e-3], [1.0], [300.0], [6e4]]),
        "uniform_pos": r.uniform(0.5, 2.0, (3, n)),
        "constant": np.full((2, n), 0.37),
        "neg_constant": np.full((1, n), -5.0),
        "zeros": np.zeros((2, n)),
        "neg_zero": np.full((1, n), -0.0),
        "tiny": r.standard_normal((2, n)) * 1e-30,
        "denormal": r.standard_normal((2, n)) * 1e-40,
        "huge": r.standard_normal((2, n)) * 1e30,
        "max_float": np.full((1, n), 3.4e38) * np.sign(r.standard_normal((1, n))),
        "f16_edges": np.resize(np.array([65504, 65519.99, 65520, -65520, 6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8]), (1, n)),
        "ties": np.resize(np.arange(-16, 16) / 2.0, (1, n)),
    }
    nonfinite = r.standard_normal((6, n))
    nonfinite[0, 3] = np.nan
    nonfinite[1, n - 1] = np.inf
    nonfinite[2, 0] = -np.inf
    nonfinite[3, :] = np.nan
    nonfinite[4, 1] = np.inf
    nonfinite[4, 2] = -np.inf
    nonfinite[5, 5] = -np.nan
    cases["nonfinite"] = nonfinite
    with np.errstate(over="ignore"):
        return [(k, v.astype(np.float32)) for k, v in cases.items()]


def assert_same_floats(a, b):
    """Bit-identical except that any NaN matches any NaN."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    na, nb = np.isnan(a), np.isnan(b)
    np.testing.assert_array_equal(na, nb)
    ok = ~na
    np.testing.assert_array_equal(a[ok].view(np.uint32), b[ok].view(np.uint32))


# ------------------------------------------------------------------ the type table
def test_quant_types_match_ggml_sizes():
    from gguf.constants import GGML_QUANT_SIZES

    types = llmc.quant_types()
    for name in ["f32", "f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0"] + KQUANTS + ["q8_k"]:
        assert types[name] == GGML_QUANT_SIZES[gtype(name)], name
        assert quant.type_id(name) == int(gtype(name)), name
    # Q8_1 (an activation-only format, never in GGUF files): ggml-common.h's block is 2 fp16 + 32 int8 = 36 bytes;
    # gguf-py's table still says 40 (the old fp32 d and s), so ggml's static_assert is the reference here.
    assert types["q8_1"] == (32, 36) and quant.type_id("q8_1") == int(G.Q8_1)
    assert quant.type_id("Q4_K") == quant.type_id("q4_k") == 12


# ------------------------------------------------------------------ bytes: llmc.quantize == gguf.quants.quantize
@pytest.mark.parametrize("name", ORACLE_QUANTIZE)
def test_quantize_bytes_match_gguf(name):
    n = 64
    for case, x in special_rows(n):
        with np.errstate(all="ignore"):
            want = gguf_bytes(x, name)
        got = llmc.quantize(x, name)
        assert got.dtype == np.uint8 and got.shape == want.shape, case
        bad = np.nonzero((got != want).any(axis=1))[0]
        assert bad.size == 0, f"{name} {case}: rows {bad.tolist()} differ: {got[bad[0]].tobytes().hex()} vs " \
                              f"{want[bad[0]].tobytes().hex()}"


@pytest.mark.parametrize("name", ORACLE_QUANTIZE)
def test_quantize_bytes_match_gguf_large_random(name):
    x = (rng.standard_normal((33, 512)) * rng.uniform(0.01, 10, (33, 1))).astype(np.float32)
    np.testing.assert_array_equal(llmc.quantize(x, name), gguf_bytes(x, name))


def test_quantize_shapes_and_nd():
    x = rng.standard_normal((2, 3, 64)).astype(np.float32)
    q = llmc.quantize(x, "q8_0")
    assert q.shape == (2, 3, 68)
    np.testing.assert_array_equal(q.reshape(6, 68), gguf_bytes(x.reshape(6, 64), "q8_0"))
    assert llmc.quantize(x[0, 0], "q8_0").shape == (68,)
    y = llmc.dequantize(q, "q8_0", x.shape)
    assert y.shape == x.shape
    # bytes-like input and float64 input
    y2 = llmc.dequantize(q.tobytes(), "q8_0", (6, 64))
    np.testing.assert_array_equal(y.reshape(6, 64), y2)
    np.testing.assert_array_equal(llmc.quantize(x.astype(np.float64), "q4_0"), llmc.quantize(x, "q4_0"))


# ------------------------------------------------------------------ values: llmc.dequantize == gguf.quants.dequantize
@pytest.mark.parametrize("name", [t for t in ALL if t not in ("q8_1", "q8_k")])
def test_dequantize_matches_gguf_on_quantized_data(name):
    x = (rng.standard_normal((8, 512)) * rng.uniform(0.1, 5, (8, 1))).astype(np.float32)
    q = llmc.quantize(x, name)
    assert_same_floats(llmc.dequantize(q, name, x.shape), g_dequantize(q, gtype(name)).reshape(x.shape))


@pytest.mark.parametrize("name", [t for t in ALL if t not in ("q8_1", "q8_k", "f32")])
def test_dequantize_matches_gguf_on_random_bytes(name):
    """Arbitrary bytes exercise every bit pattern of every field (fp16 scales include inf and NaN)."""
    bs, bb = llmc.quant_types()[name]
    n = bs * (8 if bs > 1 else 512)
    q = rng.integers(0, 256, (16, n // bs * bb), dtype=np.uint8)
    with np.errstate(all="ignore"):
        want = g_dequantize(q, gtype(name)).reshape(16, n)
    assert_same_floats(llmc.dequantize(q, name, (16, n)), want)


# ------------------------------------------------------------------ K-quants: error bounds, non-finite, edge rows
# rms(dequant - x) / rms(x) on standard-normal data, measured with these (ggml-identical) quantizers as 0.293
# (q2_k), 0.152 (q3_k), 0.071 (q4_k), 0.036 (q5_k), 0.018 (q6_k), 0.0053 (q8_0), 0.086 (q4_0), 0.078 (q4_1),
# 0.043 (q5_0), 0.038 (q5_1); the bounds leave ~15% headroom for other random draws.
K_REL_RMSE = {"q2_k": 0.34, "q3_k": 0.175, "q4_k": 0.082, "q5_k": 0.042, "q6_k": 0.021, "q8_0": 0.0062,
              "q4_0": 0.099, "q4_1": 0.09, "q5_0": 0.05, "q5_1": 0.044}


@pytest.mark.parametrize("name", list(K_REL_RMSE))
def test_round_trip_error_bound(name):
    x = rng.standard_normal((16, 1024)).astype(np.float32)
    y = llmc.dequantize(llmc.quantize(x, name), name, x.shape)
    rel = np.sqrt(np.mean((y.astype(np.float64) - x) ** 2) / np.mean(x.astype(np.float64) ** 2))
    assert rel <= K_REL_RMSE[name], (name, rel)


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_edge_rows(name):
    n = 512
    for case, x in special_rows(n):
        if case in ("nonfinite", "huge", "max_float", "f16_edges"):
            continue
        y = llmc.dequantize(llmc.quantize(x, name), name, x.shape)
        assert np.isfinite(y).all(), case
        scale = np.abs(x).max(axis=1, keepdims=True).astype(np.float64)
        err = np.abs(y - x.astype(np.float64)).max(axis=1, keepdims=True)
        if case in ("tiny", "denormal"):  # the fp16 super-scale underflows: the block flushes to zero
            assert (y == 0).all(), case
            continue
        # at most half the value range (2 bits) and exact zeros stay zeros
        assert (err <= 0.5 * scale).all(), case
        if case in ("zeros", "neg_zero"):
            assert (y == 0).all()
    x = np.zeros((1, n), np.float32)
    x[0, 7] = 1.0  # one spike per super-block
    y = llmc.dequantize(llmc.quantize(x, name), name, x.shape)
    assert abs(y[0, 7] - 1.0) < 0.1 and np.abs(np.delete(y[0], 7)).max() < 0.1


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_nonfinite_superblock_is_nan(name):
    """llmc's definition: a super-block holding NaN or +-inf dequantizes to NaN; other super-blocks are untouched."""
    x = rng.standard_normal((3, 512)).astype(np.float32)
    x[0, 300] = np.nan
    x[1, 10] = np.inf
    x[2, 511] = -np.inf
    y = llmc.dequantize(llmc.quantize(x, name), name, x.shape)
    clean = llmc.dequantize(llmc.quantize(np.nan_to_num(x, posinf=0, neginf=0), name), name, x.shape)
    for r, bad in [(0, 1), (1, 0), (2, 1)]:
        assert np.isnan(y[r, bad * 256:(bad + 1) * 256]).all()
        good = slice((1 - bad) * 256, (2 - bad) * 256)
        np.testing.assert_array_equal(y[r, good], clean[r, good])


def test_nonfinite_legacy_blocks_dequantize_to_nan():
    """Documented behaviour of the 32-value formats (gguf-py's): a NaN block dequantizes to NaN entirely."""
    x = rng.standard_normal((1, 64)).astype(np.float32)
    x[0, 3] = np.nan
    for name in ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]:
        y = llmc.dequantize(llmc.quantize(x, name), name, x.shape)
        assert np.isnan(y[0, :32]).all() and np.isfinite(y[0, 32:]).all(), name


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("name,n", [("q8_0", 33), ("q4_k", 255), ("q6_k", 32)])
def test_row_not_whole_blocks(name, n):
    bs = llmc.quant_types()[name][0]
    with pytest.raises(ValueError, match=rf"{n} values.*{bs} values each"):
        llmc.quantize(np.zeros((2, n), np.float32), name)
    with pytest.raises(ValueError, match=rf"{n} values.*{bs} values each"):
        llmc.dequantize(np.zeros(1000, np.uint8), name, (2, n))
    with pytest.raises(ValueError, match=rf"{n} values.*{bs} values each"):
        quant.matmul(np.zeros((1, n), np.float32), np.zeros((2, 100), np.uint8), name)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown quantization type 'q7_0'"):
        llmc.quantize(np.zeros(32, np.float32), "q7_0")
    with pytest.raises(ValueError, match="unknown ggml type id 4"):
        llmc.quantize(np.zeros(32, np.float32), 4)
    with pytest.raises(TypeError):
        llmc.quantize(np.zeros(32, np.float32), 1.5)
    with pytest.raises(TypeError):
        llmc.quantize(np.array(["a"] * 32), "q8_0")
    with pytest.raises(ValueError, match="holds 33 bytes, but the q8_0 shape needs 34"):
        llmc.dequantize(np.zeros(33, np.uint8), "q8_0", (1, 32))
    with pytest.raises(ValueError, match="scalar"):
        llmc.quantize(np.float32(1.0), "q8_0")
    with pytest.raises(ValueError):
        quant.matmul(np.zeros((1, 32), np.float32), np.zeros((3, 33), np.uint8), "q8_0")
    # empty inputs are fine
    assert llmc.quantize(np.zeros((0, 64), np.float32), "q4_0").shape == (0, 36)
    assert llmc.dequantize(b"", "q4_0", (0, 64)).shape == (0, 64)


# ------------------------------------------------------------------ matmul
MATMUL_TYPES = [t for t in ALL if t != "f32"] + ["f32"]


def nmse(y, ref):
    ref = ref.astype(np.float64)
    return float(np.sum((y - ref) ** 2) / np.sum(ref ** 2))


@pytest.mark.parametrize("name", MATMUL_TYPES)
@pytest.mark.parametrize("T", [1, 3, 20])
def test_matmul_vs_dequantized_fp64(name, T):
    bs = llmc.quant_types()[name][0]
    n_in = 512 if bs == 256 else 96
    n_out = 37
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    x = rng.standard_normal((T, n_in)).astype(np.float32)
    q = llmc.quantize(w, name)
    wd = llmc.dequantize(q, name, w.shape).astype(np.float64)
    ref = x.astype(np.float64) @ wd.T
    y = quant.matmul(x, q, name)
    assert y.shape == (T, n_out) and y.dtype == np.float32
    assert nmse(y, ref) <= 5e-4, (name, T, nmse(y, ref))
    if T > 8 or name in ("f32", "f16", "bf16", "q8_1", "q8_k"):  # fp32 arithmetic paths: float rounding only
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.sqrt(n_in))
    yv = quant.matmul(x[0], q, name)
    np.testing.assert_array_equal(yv, quant.matmul(x[:1], q, name)[0])


@pytest.mark.parametrize("name", ["q8_0", "q4_k", "bf16", "q5_1"])
@pytest.mark.parametrize("T", [1, 2, 64])
def test_matmul_threads_identical(name, T):
    bs = llmc.quant_types()[name][0]
    n_in = 1024
    w = rng.standard_normal((600, n_in)).astype(np.float32)
    x = rng.standard_normal((T, n_in)).astype(np.float32)
    q = llmc.quantize(w, name)
    before = llmc.get_num_threads()
    try:
        llmc.set_num_threads(1)
        y1 = quant.matmul(x, q, name)
        llmc.set_num_threads(2)
        y2 = quant.matmul(x, q, name)
    finally:
        llmc.set_num_threads(before)
    np.testing.assert_array_equal(y1, y2)
    assert bs  # noqa


def test_quantize_threads_identical():
    x = rng.standard_normal((64, 2048)).astype(np.float32)
    before = llmc.get_num_threads()
    try:
        llmc.set_num_threads(1)
        a = llmc.quantize(x, "q4_k")
        llmc.set_num_threads(2)
        b = llmc.quantize(x, "q4_k")
    finally:
        llmc.set_num_threads(before)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ SIMD kernels against the scalar reference
LEVELS = {"scalar": 0, "avx2": 1, "avx512": 2}


def cpu_levels():
    return list(range(LEVELS[llmc.simd_info()["best"]] + 1))


@pytest.fixture
def restore_level():
    before = LEVELS[llmc.simd_info()["active"]]
    yield
    llmc._core.set_simd_level(before)


DOT_TYPES = [t for t in ALL if t not in ("f32", "q8_1", "q8_k")]


@pytest.mark.parametrize("name", DOT_TYPES)
def test_simd_levels_match_scalar(name, restore_level):
    """Every dot-product kernel of every level the CPU has, forced, against the portable one: the integer sums are
    exact, so only the fp32 accumulation order may differ (relative 1e-5 of sum |w x|)."""
    bs = llmc.quant_types()[name][0]
    for n_in in ([bs, 7 * bs, 33 * bs] if bs > 1 else [1, 7, 100, 1027]):
        if bs == 256 and n_in > 3 * bs:
            n_in = 3 * bs
        w = rng.standard_normal((37, n_in)).astype(np.float32)
        x = rng.standard_normal((3, n_in)).astype(np.float32)
        q = llmc.quantize(w, name)
        llmc._core.set_simd_level(0)
        ref = quant.matmul(x, q, name, path="dot")
        bound = np.abs(x).astype(np.float64) @ np.abs(llmc.dequantize(q, name, w.shape)).T.astype(np.float64)
        for level in cpu_levels()[1:]:
            llmc._core.set_simd_level(level)
            got = quant.matmul(x, q, name, path="dot")
            assert (np.abs(got - ref) <= 1e-5 * bound + 1e-30).all(), (name, n_in, level)


def test_q8_0_weights_with_minus_128(restore_level):
    """Q8_0 bytes from other producers may hold -128 (llmc's quantizer never writes it): every level must still
    multiply it exactly (the AVX2 sign trick turns -128 into the unsigned byte 128)."""
    n_in = 64
    blocks = rng.integers(-128, 128, (5, n_in // 32, 34), dtype=np.int64).astype(np.int8).view(np.uint8)
    blocks[:, :, 0:2] = np.frombuffer(np.float16(0.01).tobytes(), np.uint8)
    blocks[0, 0, 2:] = np.uint8(0x80)  # a whole block of -128
    q = blocks.reshape(5, -1)
    x = rng.standard_normal((1, n_in)).astype(np.float32)
    wd = llmc.dequantize(q, "q8_0", (5, n_in)).astype(np.float64)
    assert wd.min() == np.float16(0.01) * -128
    ys = []
    for level in cpu_levels():
        llmc._core.set_simd_level(level)
        ys.append(quant.matmul(x, q, "q8_0", path="dot"))
    xq = llmc.dequantize(llmc.quantize(x, "q8_0"), "q8_0", x.shape).astype(np.float64)
    for y in ys:  # exact integer products: only fp32 rounding of the block sums
        np.testing.assert_allclose(y, xq @ wd.T, rtol=1e-5, atol=1e-5)


def test_simd_info_reports_the_quant_path():
    info = llmc.simd_info()
    assert {"active", "best", "features", "quant_kernels", "quant_reason", "bf16_path", "amx"} <= set(info)
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"} <= set(info["features"])
    assert info["quant_kernels"] in ("scalar", "avx2")
    if info["active"] == "scalar":
        assert info["quant_kernels"] == "scalar"


# ------------------------------------------------------------------ matmul paths, beta, shapes
@pytest.mark.parametrize("name", ["q4_0", "q6_k", "f16", "q8_0"])
def test_paths_agree_and_beta(name):
    bs = llmc.quant_types()[name][0]
    n_in = 3 * max(bs, 32)
    w = rng.standard_normal((19, n_in)).astype(np.float32)
    q = llmc.quantize(w, name)
    wd = llmc.dequantize(q, name, w.shape).astype(np.float64)
    for T in (1, 5, 13):
        x = rng.standard_normal((T, n_in)).astype(np.float32)
        ref = x.astype(np.float64) @ wd.T
        tiles = quant.matmul(x, q, name, path="tiles")
        np.testing.assert_allclose(tiles, ref, rtol=1e-5, atol=1e-5 * np.sqrt(n_in))
        assert nmse(quant.matmul(x, q, name, path="dot"), ref) <= 5e-4
        for path in ("dot", "tiles"):
            y0 = rng.standard_normal((T, 19)).astype(np.float32)
            out = y0.copy()
            quant.matmul(x, q, name, out=out, beta=0.5, path=path)
            assert nmse(out, 0.5 * y0 + ref) <= 5e-4
            out = np.full((T, 19), np.nan, np.float32)  # beta 0 ignores what y held, NaN included
            quant.matmul(x, q, name, out=out, beta=0.0, path=path)
            assert np.isfinite(out).all()


def test_f32_path_and_empty_shapes():
    w = rng.standard_normal((7, 10)).astype(np.float32)
    q = llmc.quantize(w, "f32")
    x = rng.standard_normal((3, 10)).astype(np.float32)
    np.testing.assert_allclose(quant.matmul(x, q, "f32"), x.astype(np.float64) @ w.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(quant.matmul(x[0], q, "f32"), x[0].astype(np.float64) @ w.T, rtol=1e-5, atol=1e-5)
    out = np.full((1, 7), np.nan, np.float32)
    quant.matmul(x[:1], q, "f32", out=out)
    assert np.isfinite(out).all()
    assert quant.matmul(np.zeros((0, 32), np.float32), llmc.quantize(np.zeros((4, 32)), "q8_0"), "q8_0").shape == (0, 4)
    np.testing.assert_allclose(quant.matmul(x, q, "f32", path="dot"), x.astype(np.float64) @ w.T, rtol=1e-5,
                               atol=1e-5)
    with pytest.raises(llmc.UnsupportedError, match="no integer-dot kernel"):
        quant.matmul(np.zeros((1, 256), np.float32), np.zeros((7, 292), np.uint8), "q8_k", path="dot")
    with pytest.raises(ValueError, match="path must be"):
        quant.matmul(x, q, "f32", path="fast")


@pytest.mark.parametrize("name", [t for t in ALL if t != "q8_k"])
def test_dequantize_identical_at_every_level(name, restore_level):
    """The vector dequantize rows (used by llmc.dequantize and the prefill tiles) are bit-identical to the
    portable ones, on arbitrary bytes (NaN / inf scales included)."""
    bs, bb = llmc.quant_types()[name]
    n = bs * (4 if bs > 1 else 300)
    q = rng.integers(0, 256, (8, n // bs * bb), dtype=np.uint8)
    llmc._core.set_simd_level(0)
    ref = llmc.dequantize(q, name, (8, n))
    for level in cpu_levels()[1:]:
        llmc._core.set_simd_level(level)
        assert_same_floats(llmc.dequantize(q, name, (8, n)), ref)


@pytest.mark.parametrize("name", KQUANTS)
def test_kquant_quantize_identical_at_every_level(name, restore_level):
    """The K-quant searches run 8 sub-blocks per vector (compiled for the baseline CPU and for AVX2): the bytes must
    not depend on the level, on ordinary, heavy-tailed, sparse (flat sub-blocks), constant, tied, single-signed and
    extreme rows."""
    r = np.random.default_rng(11)
    n = 1024
    rows = [r.standard_normal((6, n)), r.standard_t(2, (4, n)), r.standard_normal((4, n)) * (r.random((4, n)) < 0.1),
            np.round(r.standard_normal((2, n)) * 3), r.uniform(0.5, 2.0, (2, n)), -r.uniform(0.25, 1.0, (2, n)),
            r.standard_normal((4, n)) * np.logspace(-20, 20, 4)[:, None]]
    x = np.concatenate(rows + [v for _, v in special_rows(n)]).astype(np.float32)
    llmc._core.set_simd_level(0)
    ref = llmc.quantize(x, name)
    for level in cpu_levels()[1:]:
        llmc._core.set_simd_level(level)
        np.testing.assert_array_equal(llmc.quantize(x, name), ref, err_msg=f"level {level}")


# ------------------------------------------------------------------ byte identity with ggml's own C quantizers
def _ggml_lib():
    """libggml-base from llama-cpp-python (or any build named by $LLMC_GGML_LIB), which exports ggml's reference
    quantizers quantize_row_*_ref; None when neither is available."""
    import ctypes
    import glob
    import os

    path = os.environ.get("LLMC_GGML_LIB")
    if not path:
        try:
            import llama_cpp
        except Exception:
            return None
        libs = sorted(glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "**", "libggml-base.*"),
                                recursive=True))
        if not libs:
            return None
        path = libs[0]
    try:
        return ctypes.CDLL(path, mode=os.RTLD_LAZY)  # lazy: a bare ggml-quants build leaves a few symbols unbound
    except OSError:
        return None


@pytest.mark.parametrize("name", ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_K", "q3_K", "q4_K", "q5_K", "q6_K"])
def test_bytes_match_ggml_c_reference(name):
    """K-quants have no gguf-py quantizer: compare with llama.cpp's own (when llama-cpp-python is installed)."""
    import ctypes

    lib = _ggml_lib()
    if lib is None:
        pytest.skip("no libggml (install llama-cpp-python or set LLMC_GGML_LIB)")
    fn = getattr(lib, f"quantize_row_{name}_ref")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    r = np.random.default_rng(3)
    n = 1024
    x = np.concatenate([r.standard_normal((24, n)), r.standard_t(2, (8, n)), r.uniform(-1, 3, (4, n)),
                        r.standard_normal((4, n)) * (r.random((4, n)) < 0.05) + 0.0,  # + 0.0: no -0.0 blocks
                        r.standard_normal((4, n)) * np.logspace(-6, 4, 4)[:, None]]).astype(np.float32)
    got = llmc.quantize(x, name.lower())
    want = np.zeros_like(got)
    for i in range(x.shape[0]):
        fn(x[i].ctypes.data, want[i].ctypes.data, n)
    bad = np.nonzero((got != want).any(axis=1))[0]
    assert bad.size == 0, f"{name}: rows {bad.tolist()} differ from ggml"


def test_q4_k_random_block_bytes_match_scalar(restore_level):
    """Q4_K blocks of random bytes (every 6-bit scale / min pattern, not only what llmc's quantizer writes): each
    level's dot product against the scalar reference, on an odd number of super-blocks and rows."""
    n_rows, n_in = 13, 5 * 256
    blocks = rng.integers(0, 256, (n_rows, n_in // 256, 144), dtype=np.int64).astype(np.uint8)
    blocks[:, :, 0:2] = np.frombuffer(np.float16(0.003).tobytes(), np.uint8)  # d
    blocks[:, :, 2:4] = np.frombuffer(np.float16(0.002).tobytes(), np.uint8)  # dmin
    q = blocks.reshape(n_rows, -1)
    x = rng.standard_normal((3, n_in)).astype(np.float32)
    llmc._core.set_simd_level(0)
    ref = quant.matmul(x, q, "q4_k", path="dot")
    wd = llmc.dequantize(q, "q4_k", (n_rows, n_in)).astype(np.float64)
    bound = np.abs(x).astype(np.float64) @ np.abs(wd).T
    # the scalar kernel itself against float64 (the activations are rounded to 8 bits: ~1/127 of sum |w x|)
    assert (np.abs(ref - x.astype(np.float64) @ wd.T) <= 1e-2 * bound).all()
    for level in cpu_levels()[1:]:
        llmc._core.set_simd_level(level)
        got = quant.matmul(x, q, "q4_k", path="dot")
        assert (np.abs(got - ref) <= 1e-5 * bound + 1e-30).all(), level
