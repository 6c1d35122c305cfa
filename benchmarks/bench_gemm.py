"""Benchmark float32 GEMM on the shapes llmc's models run, at 1 and 2 threads, next to NumPy and PyTorch, in one run.

Shapes (M tokens of a 512-token GPT-2-small prefill): the attention projections (qkv 768 -> 2304, out 768 -> 768),
the MLP (768 -> 3072, 3072 -> 768) and the lm head (768 -> 50257). The weight is stored (out, in) like llmc's
Linear weights, so every product is x @ W^T. llmc cuts a product into 2 chunks of rows or columns per thread,
claimed by its OpenMP threads, each a single-threaded OpenBLAS call (csrc/threads.c); NumPy's wheel runs its own
OpenBLAS with its own pthreads (threads limited with threadpoolctl); torch runs its own kernels on its OpenMP
threads. The libraries are timed in turn inside each repeat
(interleaved), so load from other processes hits them alike; each number is the best of the repeats (short
samples of ~0.5 GFLOP, many repeats: on a shared machine the best sample is the one least disturbed). Prints a table
and writes JSON.

    python benchmarks/bench_gemm.py [--threads 1 2] [--repeats R] [--out FILE]
"""
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc

try:
    import torch
except ImportError:  # torch is optional: its column is left empty
    torch = None
try:
    from threadpoolctl import threadpool_limits
except ImportError:  # without it NumPy's OpenBLAS uses all cores
    threadpool_limits = None

SHAPES = [  # (name, M, in, out)
    ("qkv", 512, 768, 2304),
    ("attn out", 512, 768, 768),
    ("mlp up", 512, 768, 3072),
    ("mlp down", 512, 3072, 768),
    ("lm head", 512, 768, 50257),
]


def timed(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "gemm.json"),
                    help="the JSON file to write (benchmarks/results/gemm.json to refresh the committed one)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    load0 = os.getloadavg()[0]
    for name, m, k, n in SHAPES:
        x = rng.standard_normal((m, k)).astype(np.float32)
        w = rng.standard_normal((n, k)).astype(np.float32)  # (out, in)
        wt = w.T  # a transposed view: x @ W^T without a copy
        wb = w.view(np.uint8)  # the same bytes as llmc's typed-weight API takes them
        flops = 2.0 * m * n * k
        calls = max(1, int(5e8 / flops))  # ~0.5 GFLOP per sample: short samples, many repeats (best of)
        for nt in args.threads:
            llmc.set_num_threads(nt)
            # llmc: the models' own entry (llmc_matmul_typed on an F32 weight: sgemm with W transposed, no copy)
            fns = {"llmc": lambda: llmc.quant.matmul(x, wb, "f32")}
            if torch is not None:
                torch.set_num_threads(nt)
                tx, tw = torch.from_numpy(x), torch.from_numpy(w)
                fns["torch"] = lambda: torch.nn.functional.linear(tx, tw)
            fns["numpy"] = lambda: np.matmul(x, wt)  # last in each repeat: see the pause below
            best = {k2: float("inf") for k2 in fns}
            ctx = threadpool_limits(limits=nt, user_api="blas") if threadpool_limits else None
            try:
                if ctx:
                    ctx.__enter__()
                for f in fns.values():
                    f()  # warm up
                for _ in range(args.repeats):
                    for key, f in fns.items():
                        best[key] = min(best[key], timed(f, calls))
                    if nt > 1:
                        # NumPy's OpenBLAS threads busy-wait ~0.1 s after a call (OpenBLAS's THREAD_TIMEOUT, 2^28
                        # cycles) before they sleep: without this pause they take a core from the next library's
                        # sample (measured: llmc's 2-thread samples right after NumPy's ran at a third of the speed)
                        time.sleep(0.25)
            finally:
                if ctx:
                    ctx.__exit__(None, None, None)
            r = {"shape": name, "m": m, "k": k, "n": n, "threads": nt}
            for key, t in best.items():
                r[key] = flops / t / 1e9
            ref = max(v for key, v in r.items() if key in ("numpy", "torch"))
            r["llmc/best"] = r["llmc"] / ref
            rows.append(r)
    load1 = os.getloadavg()[0]

    print(f"{'shape':10s} {'M x K x N':>18s} {'thr':>3s} {'llmc':>8s} {'numpy':>8s} {'torch':>8s} {'llmc/best':>9s}"
          "   (GFLOP/s)")
    for r in rows:
        dims = f"{r['m']}x{r['k']}x{r['n']}"
        print(f"{r['shape']:10s} {dims:>18s} {r['threads']:3d} {r['llmc']:8.1f} {r['numpy']:8.1f} "
              f"{r.get('torch', float('nan')):8.1f} {r['llmc/best']:8.2f}x")
    print(f"load average {load0:.1f} -> {load1:.1f}; llmc one pool: {llmc._core.blas_one_pool()}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "simd": llmc.simd_info(),
                               "blas": llmc.blas_info(), "load_average": [load0, load1], "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
