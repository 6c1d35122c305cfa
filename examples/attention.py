"""Standard vs flash attention, side by side: time and memory against sequence length, and attention heat maps.

    python examples/attention.py            # measures T = 256 ... 4096 (flash also 8192, 16384), ~1 minute
    python examples/attention.py --quick    # T = 256 ... 1024

Writes attention_time_memory.png and attention_heatmap.png into --out (default: a new temporary folder; the
committed images in examples/ were made with `--out examples`). Runs against the installed llmc.
Memory is llmc's own allocator peak (llmc._core.mem_stats): every byte the C kernels allocate, nothing guessed.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import llmc  # noqa: E402
from llmc import _core  # noqa: E402


def measure(impl: str, T: int, H: int = 12, d: int = 64, repeats: int = 3):
    """(best wall time in s, peak bytes the C core allocated) for causal attention at length T."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((H, T, d), dtype=np.float32) for _ in range(3))
    llmc.attention(q[:, :64], k[:, :64], v[:, :64], causal=True, impl=impl)  # start the thread pools
    _core.mem_reset_peak()
    base = _core.mem_stats()["current"]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        llmc.attention(q, k, v, causal=True, impl=impl)
        best = min(best, time.perf_counter() - t0)
    return best, _core.mem_stats()["peak"] - base


def plot_time_memory(Ts_std, Ts_flash, path: Path):
    res = {"standard": [measure("standard", T) for T in Ts_std], "flash": [measure("flash", T) for T in Ts_flash]}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for impl, Ts, style in (("standard", Ts_std, "o-"), ("flash", Ts_flash, "s-")):
        t = [r[0] * 1e3 for r in res[impl]]
        m = [max(r[1], 1) / 2**20 for r in res[impl]]
        a1.loglog(Ts, t, style, label=impl, base=2)
        a2.loglog(Ts, m, style, label=impl, base=2)
        for T, tt, mm in zip(Ts, t, m):
            print(f"{impl:8s} T={T:6d}  {tt:9.1f} ms  {mm:9.2f} MiB")
    a1.set(xlabel="sequence length T", ylabel="time (ms, best of 3)", title="causal attention, H=12, d=64")
    a2.set(xlabel="sequence length T", ylabel="peak extra memory (MiB, C allocator)",
           title="standard holds (H, T, T) scores; flash a few tiles")
    for a in (a1, a2):
        a.grid(True, which="both", alpha=0.3)
        a.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def plot_heatmaps(path: Path, T: int = 48, d: int = 32):
    """Attention weights from return_weights=True. q and k are sinusoidal position codes, so a query attends most to
    keys at nearby positions: the heat map shows the bands the masks cut out of that pattern."""
    pos = llmc.sinusoidal_positions(T, d)
    q = k = (pos * 0.9)[None]  # (1 head, T, d); the factor sets how sharply attention peaks
    v = np.random.default_rng(0).standard_normal((1, T, d)).astype(np.float32)
    cases = [("no mask", {}), ("causal", {"causal": True}), ("causal, window=8", {"causal": True, "window": 8})]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.4))
    for ax, (title, kw) in zip(axes, cases):
        out, w = llmc.attention(q, k, v, impl="standard", return_weights=True, **kw)
        flash = llmc.attention(q, k, v, **kw)  # same output without ever forming w
        assert np.abs(out - flash).max() < 1e-5
        im = ax.imshow(w[0], cmap="viridis", norm=matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=1))
        ax.set(title=title, xlabel="key position j", ylabel="query position i")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("attention weights softmax(q k^T / sqrt(d) + mask), q = k = sinusoidal positions (sqrt colour scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only T = 256 ... 1024")
    ap.add_argument("--heatmap-only", action="store_true", help="only the heat maps")
    ap.add_argument("--out", default=None, help="folder for the two PNG files (default: a new temporary folder)")
    a = ap.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp(prefix="llmc-attention-"))
    out.mkdir(parents=True, exist_ok=True)
    Ts_std = [256, 512, 1024] if a.quick else [256, 512, 1024, 2048, 4096]
    Ts_flash = Ts_std if a.quick else Ts_std + [8192, 16384]
    plot_heatmaps(out / "attention_heatmap.png")
    if a.heatmap_only:
        return
    plot_time_memory(Ts_std, Ts_flash, out / "attention_time_memory.png")


if __name__ == "__main__":
    main()
