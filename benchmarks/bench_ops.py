"""Benchmark llmc's numeric building blocks next to NumPy and PyTorch, in one run.

matmul: GFLOP/s for square sizes 256..2048 (llmc sgemm via OpenBLAS vs numpy.matmul vs torch.matmul).
softmax / layer_norm: throughput in GB/s (bytes read + written) on (rows, cols) float32 inputs.
Each number is the best of several repeats. Prints a table and writes benchmarks/results/ops.json.

    python benchmarks/bench_ops.py [--threads N] [--repeats R]
"""
import argparse
import os
import platform

import numpy as np

import llmc
from harness import add_out_arg, best_time, load_average, write_json

try:
    import torch
except ImportError:  # torch is optional: its columns are left empty
    torch = None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=5)
    add_out_arg(ap, "ops")
    args = ap.parse_args()
    llmc.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows = []

    for n in [256, 512, 1024, 2048]:
        a = rng.standard_normal((n, n)).astype(np.float32)
        b = rng.standard_normal((n, n)).astype(np.float32)
        flops = 2.0 * n**3
        r = {"op": "matmul", "shape": f"{n}x{n}", "unit": "GFLOP/s",
             "llmc": flops / best_time(lambda: llmc.matmul(a, b), args.repeats) / 1e9,
             "numpy": flops / best_time(lambda: np.matmul(a, b), args.repeats) / 1e9}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            r["torch"] = flops / best_time(lambda: torch.matmul(ta, tb), args.repeats) / 1e9
        rows.append(r)

    def np_softmax(x):
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def np_layer_norm(x, w, b):
        mu = x.mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b

    for shape in [(4096, 1024), (512, 50257)]:
        x = rng.standard_normal(shape).astype(np.float32)
        w = rng.standard_normal(shape[1]).astype(np.float32)
        bb = rng.standard_normal(shape[1]).astype(np.float32)
        gb = 2 * x.nbytes / 1e9  # read x, write out
        for op, fl, fn, ft in [
            ("softmax", lambda: llmc.softmax(x), lambda: np_softmax(x),
             (lambda tx: lambda: torch.softmax(tx, -1)) if torch else None),
            ("layer_norm", lambda: llmc.layer_norm(x, w, bb), lambda: np_layer_norm(x, w, bb),
             (lambda tx: lambda: torch.nn.functional.layer_norm(tx, (shape[1],), torch.from_numpy(w),
                                                               torch.from_numpy(bb))) if torch else None),
        ]:
            r = {"op": op, "shape": f"{shape[0]}x{shape[1]}", "unit": "GB/s",
                 "llmc": gb / best_time(fl, args.repeats), "numpy": gb / best_time(fn, args.repeats)}
            if ft is not None:
                r["torch"] = gb / best_time(ft(torch.from_numpy(x)), args.repeats)
            rows.append(r)

    print(f"llmc {llmc.__version__} | threads={args.threads} | simd={llmc.simd_info()['active']} | "
          f"{platform.processor() or platform.machine()} | load average {load_average()}")
    print(f"{'op':<11} {'shape':<11} {'unit':<8} {'llmc':>9} {'numpy':>9} {'torch':>9} {'llmc/numpy':>10} {'llmc/torch':>10}")
    for r in rows:
        t = r.get("torch")
        tcol = f"{t:9.1f}" if t else "        -"
        tratio = f"{r['llmc'] / t:9.2f}x" if t else "         -"
        print(f"{r['op']:<11} {r['shape']:<11} {r['unit']:<8} {r['llmc']:>9.1f} {r['numpy']:>9.1f} "
              f"{tcol} {r['llmc'] / r['numpy']:>9.2f}x {tratio}")
    meta = {"threads": args.threads, "simd": llmc.simd_info(), "blas": llmc.blas_info(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "repeats": args.repeats,
            "torch": torch.__version__ if torch else None, "numpy": np.__version__, "load_average": load_average()}
    write_json(args.out, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
