"""Benchmark: causal self-attention, llmc standard vs llmc flash vs torch SDPA (CPU), time and peak extra memory.

    python benchmarks/bench_attention.py                      # H=12, d=64, T = 256 ... 16384, flash also 65536
    python benchmarks/bench_attention.py --T 256 1024 --repeats 3 --no-json

Memory: every (implementation, T) runs once in its own subprocess, so each high-water mark starts clean. Inputs
are made, one small warm-up call starts the thread pools, the high-water marks are reset, and the call's peak is
measured two ways:
      - alloc: llmc's own allocator peak (llmc._core.mem_stats, every byte the C kernels malloc: the standard score
        tensor, the flash tiles); not available for torch.
      - rss:   the process's resident-set high-water mark (VmHWM, reset through /proc/self/clear_refs before the
        call) minus the resident set before it. It includes the (1, 12, T, 64) output array all three allocate
        (reported as out_MiB) and allocator/page granularity, so it is an upper bound of the extra memory.
Time: for each T one subprocess runs the implementations round-robin, --repeats rounds, pausing 0.3 s between
calls so the thread pools that spin after a call (OpenMP, OpenBLAS, torch's) are asleep before the next one; each
implementation's time is its best call (wall clock, time.perf_counter). Round-robin makes any background load on
the machine hit all three alike.

The standard implementation refuses T=16384 when its 12 GiB score tensor is over its limit (half the RAM by default,
see llmc.attention.standard_memory_limit); the table then shows the refusal and how long it took. Standard is not run
at T=65536 (48 GiB of scores), and neither is torch (the issue asks for flash only there).
Results: a table on stdout and a JSON file: --out (default: llmc-bench/attention.json in the temporary folder;
`--out benchmarks/results/attention.json` refreshes the committed one). Runs against the installed llmc.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

H, D = 12, 64


def rss_now() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # Linux: reset the peak RSS (VmHWM) to the current RSS
        return True
    except OSError:
        return False


def _setup(impl: str, T: int, threads: int):
    """Inputs and two closures: the full call and a small warm-up call."""
    import numpy as np

    import llmc

    llmc.set_num_threads(threads)
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, H, T, D), dtype=np.float32) for _ in range(3))
    if impl == "torch":
        import torch

        torch.set_num_threads(threads)
        tq, tk, tv = (torch.from_numpy(x) for x in (q, k, v))
        small = tuple(x[:, :, :64] for x in (tq, tk, tv))

        def run(*args):
            with torch.no_grad():
                return torch.nn.functional.scaled_dot_product_attention(*args, is_causal=True)

        return (lambda: run(tq, tk, tv)), (lambda: run(*small))

    def call():
        return llmc.attention(q, k, v, causal=True, impl=impl)

    def warm():
        return llmc.attention(q[:, :, :64], k[:, :, :64], v[:, :, :64], causal=True, impl=impl)

    return call, warm


def worker_memory(impl: str, T: int, threads: int) -> dict:
    """Subprocess: one call, its peak memory (and its time, used only where a case is run just once)."""
    call, warm = _setup(impl, T, threads)
    from llmc import _core

    warm()
    res = {"impl": impl, "T": T, "H": H, "d": D, "threads": threads, "out_bytes": H * T * D * 4}
    before = rss_now()
    res["rss_reset"] = reset_hwm()
    _core.mem_reset_peak()
    alloc_base = _core.mem_stats()["current"]
    t0 = time.perf_counter()
    try:
        out = call()
    except MemoryError as e:
        res.update(status="refused", message=str(e), time_s=time.perf_counter() - t0)
        res["alloc_peak_bytes"] = _core.mem_stats()["peak"] - alloc_base
        return res
    res.update(status="ok", first_call_s=time.perf_counter() - t0)
    res["rss_peak_delta_bytes"] = max(0, hwm() - before)
    res["alloc_peak_bytes"] = None if impl == "torch" else _core.mem_stats()["peak"] - alloc_base
    del out
    return res


def worker_time(impls: list[str], T: int, repeats: int, threads: int) -> dict:
    """Subprocess: the implementations round-robin, `repeats` rounds; every call's wall time."""
    cases = {impl: _setup(impl, T, threads) for impl in impls}
    for call, warm in cases.values():
        warm()
    times = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl, (call, _) in cases.items():
            time.sleep(0.3)  # let the other runtimes' spinning threads go to sleep
            t0 = time.perf_counter()
            call()
            times[impl].append(time.perf_counter() - t0)
    return times


def _sub(args: list[str]):
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if p.returncode != 0:
        return None, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def run_T(T: int, repeats: int, threads: int, impls: list[str]) -> list[dict]:
    results = []
    for impl in impls:
        r, err = _sub(["--worker-memory", impl, str(T), "--threads", str(threads)])
        results.append(r if r else {"impl": impl, "T": T, "status": "crashed", "message": err})
    timed = [r["impl"] for r in results if r["status"] == "ok"]
    if repeats > 1 and timed:
        times, err = _sub(["--worker-time", ",".join(timed), str(T), "--repeats", str(repeats),
                           "--threads", str(threads)])
        for r in results:
            if r["impl"] in timed:
                r["times_s"] = times[r["impl"]] if times else []
                if not times:
                    r.update(status="crashed", message=err)
    for r in results:
        if r["status"] == "ok":
            r["time_s"] = min(r.get("times_s") or [r["first_call_s"]])
        t = r.get("time_s", float("nan"))
        print(f"  {r['impl']:8s} T={T:6d}: {r['status']:8s} {t * 1e3:10.1f} ms", file=sys.stderr, flush=True)
    return results


def mib(x):
    return f"{x / 2**20:.1f}" if isinstance(x, (int, float)) else "-"


def table(results: list[dict], Ts: list[int]) -> str:
    by = {(r["impl"], r["T"]): r for r in results}
    rows = ["| T | standard ms | flash ms | torch SDPA ms | flash / standard | flash / torch | standard extra MiB "
            "(alloc) | flash extra MiB (alloc) | flash RSS delta MiB | torch RSS delta MiB | output MiB |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for T in Ts:
        s, f, t = by.get(("standard", T)), by.get(("flash", T)), by.get(("torch", T))

        def ms(r):
            if r is None:
                return "not run"
            if r["status"] == "refused":
                return f"refused ({r['time_s'] * 1e3:.1f} ms)"
            return f"{r['time_s'] * 1e3:.1f}" if r["status"] == "ok" else r["status"]

        def ratio(a, b):
            ok = a and b and a["status"] == "ok" and b["status"] == "ok"
            return f"{a['time_s'] / b['time_s']:.2f}x" if ok else "-"

        def alloc(r):
            if r is None or r["status"] == "crashed":
                return "-"
            if r["status"] == "refused":
                return "needs " + r["message"].split("needs ")[1].split(" for")[0]
            return mib(r.get("alloc_peak_bytes"))

        rows.append(f"| {T} | {ms(s)} | {ms(f)} | {ms(t)} | {ratio(f, s)} | {ratio(f, t)} | {alloc(s)} | "
                    f"{alloc(f)} | {mib(f.get('rss_peak_delta_bytes')) if f else '-'} | "
                    f"{mib(t.get('rss_peak_delta_bytes')) if t else '-'} | {mib(H * T * D * 4)} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--T", type=int, nargs="+", default=[256, 1024, 4096, 16384, 65536])
    ap.add_argument("--repeats", type=int, default=0, help="timed calls per case (default: by T)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "attention.json"), help="the JSON file to write")
    ap.add_argument("--worker-memory", nargs=2, metavar=("IMPL", "T"), help=argparse.SUPPRESS)
    ap.add_argument("--worker-time", nargs=2, metavar=("IMPLS", "T"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker_memory:
        print(json.dumps(worker_memory(a.worker_memory[0], int(a.worker_memory[1]), a.threads)))
        return
    if a.worker_time:
        impls, T = a.worker_time[0].split(","), int(a.worker_time[1])
        print(json.dumps(worker_time(impls, T, max(1, a.repeats), a.threads)))
        return
    import llmc
    import torch
    from llmc.attention import standard_memory_limit

    results = []
    for T in a.T:
        reps = a.repeats or (15 if T <= 1024 else 7 if T <= 4096 else 3 if T <= 16384 else 1)
        impls = ["standard", "flash", "torch"] if T <= 16384 else ["flash"]
        results += run_T(T, reps, a.threads, impls)
    info = {
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "cores": os.cpu_count(), "threads": a.threads, "simd": llmc.simd_info()["active"],
        "blas": llmc.blas_info(), "torch": torch.__version__, "python": platform.python_version(),
        "standard_limit_bytes": standard_memory_limit(),
        "command": "python benchmarks/bench_attention.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_after": open("/proc/loadavg").read().split()[:3],
    }
    tab = table(results, a.T)
    print(f"causal attention, H={H}, d={D}, batch 1, float32, {a.threads} threads, {info['cpu']} ({info['simd']})")
    print(tab)
    if not a.no_json:
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"machine": info, "results": results, "table_markdown": tab}, indent=1) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
