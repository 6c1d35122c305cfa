"""Benchmark llmc's quantized matvec / matmul kernels (llmc.quant.matmul = llmc_matmul_typed) per weight type,
next to llmc's fp32 sgemv / sgemm and NumPy on the dequantized fp32 matrix, in one run.

- matvec (T = 1, decode): GB/s = bytes of the weight as stored / time (decode is memory-bound: fewer bytes per
  weight should be proportionally faster), and the speed-up over llmc's fp32 sgemv on the same shape.
- matmul (T = 64, prefill): GFLOP/s = 2 T in out / time, next to llmc's fp32 sgemm.
- the crossover between the two quantized paths (integer dots vs dequantized tiles + sgemm) for a few types.
Each number is the best of several repeats. Prints tables and writes a JSON file (--out; the committed one is benchmarks/results/quant_kernels.json).

    python benchmarks/bench_quant_kernels.py [--threads 1,2] [--size 4096] [--repeats 5] [--out FILE]
"""
import argparse
import platform

import numpy as np

import llmc
from harness import add_out_arg, best_time, load_average, write_json
from llmc import quant

try:  # limits NumPy's own BLAS threads to the same count (optional: without it NumPy uses all cores)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

TYPES = ["f32", "bf16", "f16", "q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0", "q3_k", "q2_k"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--size", type=int, default=4096, help="the weight is (size, size)")
    ap.add_argument("--prefill", type=int, default=64, help="rows T of the matmul")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--types", default=",".join(TYPES))
    add_out_arg(ap, "quant_kernels")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    n = args.size
    w = rng.standard_normal((n, n)).astype(np.float32)
    x1 = rng.standard_normal((1, n)).astype(np.float32)
    xT = rng.standard_normal((args.prefill, n)).astype(np.float32)
    types = args.types.split(",")
    qs = {t: llmc.quantize(w, t) for t in types}
    deq = {t: llmc.dequantize(qs[t], t, w.shape) for t in types}
    rows, cross = [], []
    for threads in [int(t) for t in args.threads.split(",")]:
        llmc.set_num_threads(threads)
        limit = threadpool_limits(threads, user_api="blas") if threadpool_limits else None
        f32_mv = best_time(lambda: quant.matmul(x1, qs["f32"] if "f32" in qs else w, "f32"), args.repeats)
        f32_mm = best_time(lambda: quant.matmul(xT, qs["f32"] if "f32" in qs else w, "f32"), args.repeats)
        for t in types:
            q, wd = qs[t], deq[t]
            mv = best_time(lambda: quant.matmul(x1, q, t), args.repeats)
            mm = best_time(lambda: quant.matmul(xT, q, t), args.repeats)
            np_mv = best_time(lambda: x1 @ wd.T, args.repeats)
            rows.append({
                "threads": threads, "type": t, "bits_per_weight": 8.0 * q.nbytes / w.size,
                "matvec_ms": mv * 1e3, "matvec_GBps": q.nbytes / mv / 1e9, "matvec_vs_f32": f32_mv / mv,
                "numpy_matvec_ms": np_mv * 1e3, "matvec_vs_numpy": np_mv / mv,
                "matmul_ms": mm * 1e3, "matmul_GFLOPs": 2.0 * args.prefill * n * n / mm / 1e9,
                "matmul_vs_f32": f32_mm / mm,
            })
        for t in [t for t in ("q8_0", "q4_0", "q4_k") if t in types]:
            for T in (1, 4, 8, 16, 32, 64):
                xs = rng.standard_normal((T, n)).astype(np.float32)
                td = best_time(lambda: quant.matmul(xs, qs[t], t, path="dot"), args.repeats)
                tt = best_time(lambda: quant.matmul(xs, qs[t], t, path="tiles"), args.repeats)
                cross.append({"threads": threads, "type": t, "T": T, "dot_ms": td * 1e3, "tiles_ms": tt * 1e3})
        if limit is not None:
            limit.unregister()

    hdr = (f"{'thr':>3} {'type':<5} {'bits':>5} {'matvec ms':>9} {'GB/s':>6} {'vs f32':>7} {'vs numpy':>8} "
           f"{'matmul ms':>9} {'GFLOP/s':>8} {'vs f32':>7}")
    print(f"weight ({n}, {n}); matvec T=1, matmul T={args.prefill}; simd {llmc.simd_info()['quant_kernels']}; "
          f"load average {load_average()}")
    print(hdr)
    for r in rows:
        print(f"{r['threads']:>3} {r['type']:<5} {r['bits_per_weight']:>5.2f} {r['matvec_ms']:>9.2f} "
              f"{r['matvec_GBps']:>6.1f} {r['matvec_vs_f32']:>6.2f}x {r['matvec_vs_numpy']:>7.2f}x "
              f"{r['matmul_ms']:>9.1f} {r['matmul_GFLOPs']:>8.1f} {r['matmul_vs_f32']:>6.2f}x")
    print("\npath crossover (ms): integer dots vs dequantized tiles + sgemm")
    print(f"{'thr':>3} {'type':<5} {'T':>3} {'dot':>8} {'tiles':>8} {'tiles/dot':>9}")
    for c in cross:
        print(f"{c['threads']:>3} {c['type']:<5} {c['T']:>3} {c['dot_ms']:>8.2f} {c['tiles_ms']:>8.2f} "
              f"{c['tiles_ms'] / c['dot_ms']:>8.2f}x")
    write_json(args.out, {"machine": platform.processor() or platform.machine(), "simd": llmc.simd_info(), "size": n,
                          "prefill_T": args.prefill, "load_average": load_average(), "rows": rows, "crossover": cross})


if __name__ == "__main__":
    main()
