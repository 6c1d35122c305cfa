"""The few-row F32 product: llmc_matmul_typed's path for 2-64 activation rows against fp32 weights W: (out, in)
(simd.h rows_dot: the portable reference and the AVX2 kernel, chosen at run time). Batched decoding, beam search,
seq2seq beams and MoE experts all multiply through it.

Oracle: NumPy in float64. Tolerance: |y - ref| <= 1e-5 * (|x| @ |W|^T) + 1e-6 per element (fp32 accumulation over
`in` terms; the observed error is ~1e-7 of that bound), every SIMD level the CPU has forced in turn, on odd shapes
(rows 1..65, in / out not multiples of 8 or 16). Structure: an output row does not depend on the other rows (the
same bits in any batch, any order) nor on the thread count.
"""
import numpy as np
import pytest

import llmc
from llmc import quant

LEVELS = {"scalar": 0, "avx2": 1, "avx512": 2}
rng = np.random.default_rng(20261201)


def cpu_levels():
    return list(range(LEVELS[llmc.simd_info()["best"]] + 1))


@pytest.fixture
def restore():
    level, threads = LEVELS[llmc.simd_info()["active"]], llmc.get_num_threads()
    yield
    llmc._core.set_simd_level(level)
    llmc.set_num_threads(threads)


def f32_matmul(x, w, path="auto", out=None, beta=0.0):
    return quant.matmul(x, w.view(np.uint8), "f32", out=out, beta=beta, path=path)


def check(y, x, w, y0=None, beta=0.0):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref = x64 @ w64.T + (beta * y0.astype(np.float64) if beta else 0.0)
    bound = np.abs(x64) @ np.abs(w64).T + (abs(beta) * np.abs(y0) if beta else 0.0)
    err = np.abs(y.astype(np.float64) - ref)
    assert (err <= 1e-5 * bound + 1e-6).all(), f"max error {err.max():.3g}, bound {(1e-5 * bound).max():.3g}"


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 31, 33, 63, 64, 65])
@pytest.mark.parametrize("n_in,n_out", [(1, 1), (7, 5), (17, 29), (100, 3), (131, 257), (1027, 35)])
def test_against_numpy_every_level(T, n_in, n_out, restore):
    x = rng.standard_normal((T, n_in)).astype(np.float32)
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    for level in cpu_levels():
        llmc._core.set_simd_level(level)
        for path in ("auto", "rows"):  # auto: sgemv at T = 1, the few-row kernel up to 64, sgemm at 65
            check(f32_matmul(x, w, path), x, w)


@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_beta_and_nan_in_y(beta, restore):
    """y = beta * y + x @ W^T in place; beta 0 overwrites y, so a NaN there does not survive (as sgemv / sgemm)."""
    x = rng.standard_normal((6, 45)).astype(np.float32)
    w = rng.standard_normal((23, 45)).astype(np.float32)
    for level in cpu_levels():
        llmc._core.set_simd_level(level)
        y0 = rng.standard_normal((6, 23)).astype(np.float32)
        if beta == 0.0:
            y0[2, 5] = np.nan
        y = y0.copy()
        f32_matmul(x, w, "rows", out=y, beta=beta)
        assert np.isfinite(y).all()
        check(y, x, w, y0 if beta else None, beta)


def test_row_independent_of_batch_and_threads(restore):
    """A row's output is the same bits whatever rows share the call, their order, and the thread count."""
    n_in, n_out = 771, 1543  # several blocks of weight rows, so two threads split them
    w = rng.standard_normal((n_out, n_in)).astype(np.float32)
    x = rng.standard_normal((37, n_in)).astype(np.float32)
    for level in cpu_levels():
        llmc._core.set_simd_level(level)
        llmc.set_num_threads(1)
        full = f32_matmul(x, w, "rows")
        perm = rng.permutation(len(x))
        np.testing.assert_array_equal(f32_matmul(x[perm], w, "rows"), full[perm])
        for lo, hi in [(0, 2), (5, 8), (36, 37), (3, 30)]:
            np.testing.assert_array_equal(f32_matmul(x[lo:hi], w, "rows"), full[lo:hi])
        llmc.set_num_threads(2)
        np.testing.assert_array_equal(f32_matmul(x, w, "rows"), full)


def test_rows_path_is_f32_only():
    q = llmc.quantize(rng.standard_normal((4, 32)).astype(np.float32), "q8_0")
    with pytest.raises(llmc.UnsupportedError, match="few-row path takes f32 weights, not q8_0"):
        quant.matmul(np.ones((2, 32), np.float32), q, "q8_0", path="rows")
    with pytest.raises(ValueError, match="path must be one of"):
        quant.matmul(np.ones((2, 32), np.float32), q, "q8_0", path="few")
