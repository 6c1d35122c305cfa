"""Corpus perplexity throughput: one process vs a local Ray cluster (llmc.distributed.ModelPool), same CPUs.

The corpus is the King James Bible's held-out lines (llmc.data), --tokens tokens scored with method="chunks"
(llama.cpp's: disjoint --ctx-token chunks, second half scored). Four ways on the same 2 CPUs:

  1 process x 2 threads   llmc.perplexity with llmc.set_num_threads(2)
  1 process x 1 thread    the same with 1 thread (what one actor does)
  1 actor  x 1 thread     ModelPool(num_actors=1, threads=1) on ray.init(num_cpus=2): Ray's own cost at equal
                          resources (sharding, scheduling, the object store, the exact reduction)
  2 actors x 1 thread     ModelPool(num_actors=2, threads=1): the corpus sharded (~4 shards per actor)

Throughput is processed tokens (windows x ctx: what the model computes) per second, best of --repeats after a
warm-up round; the four ways run round robin (each repeat runs each once), so a change in the machine's load hits
all of them alike. The pools are started before timing (their start-up, the actors loading the model, is reported
apart, as is ray.init). Overheads: Ray 1x1 = time(1 actor) / time(1 process, 1 thread) - 1; Ray 2x1 = time(2 actors) /
(time(1 process, 1 thread) / 2) - 1, against perfect 2x scaling of one thread (on a machine shared with other jobs
this one also measures whether 2 cores were free). Models: the shipped default model (3.2 M parameters) and a random
Llama of --d-model width and --layers layers (saved to a temporary folder the actors load). On a machine shared
with other jobs wall time says little about scaling (two actors need two free cores); the CPU overhead (CPU seconds
of the driver, GCS, raylet and actors over those of one single-threaded process, for the same corpus) does not
depend on the load: it is what Ray and sharding cost.
Prints a table and writes JSON (--out benchmarks/results/distributed.json to refresh the committed one).

    python benchmarks/bench_distributed.py [--tokens 8192] [--ctx 256] [--repeats 5]
"""
import argparse
import json
import os
import platform
import tempfile
import time
import warnings

import numpy as np

import llmc


def best(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and every live descendant: Ray's GCS server, raylet
    and workers are children of the driver that ran ray.init. CPU time, unlike wall time, does not depend on how
    many other jobs share the cores. Linux /proc (10 ms ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent, cpu = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rindex(")") + 2:].split()  # after "pid (comm) ": state ppid ... utime(11) stime(12)
        parent[int(d)] = int(rest[1])
        cpu[int(d)] = (int(rest[11]) + int(rest[12])) / tick
    me, total = os.getpid(), 0.0
    for pid in cpu:
        p = pid
        while p > 1 and p != me:
            p = parent.get(p, 0)
        if p == me:
            total += cpu[pid]
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8192, help="corpus tokens (whole chunks are kept)")
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--d-model", type=int, default=384)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "distributed.json"),
                    help="the JSON file to write (benchmarks/results/distributed.json to refresh the committed one)")
    args = ap.parse_args()
    import ray

    from llmc.distributed import ModelPool

    default = llmc.load_default()
    ids = np.concatenate([default.tokenizer.encode(line + "\n") for line in llmc.data.kjv_lines("heldout")])
    ids = ids[: (min(args.tokens, len(ids)) // args.ctx) * args.ctx]
    tmp = tempfile.TemporaryDirectory()
    cfg = dict(default.config, hidden_size=args.d_model, intermediate_size=args.d_model * 8 // 3 // 64 * 64,
               num_hidden_layers=args.layers, num_attention_heads=args.d_model // 64, num_key_value_heads=
               max(1, args.d_model // 256), head_dim=64, max_position_embeddings=max(args.ctx, 256))
    llmc.Model.init(cfg, seed=0).save(tmp.name)
    models = [("default (3.2 M)", default.path), (None, tmp.name)]

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20, log_to_driver=False)
    t_init = time.perf_counter() - t0
    rows = []
    try:
        for name, path in models:
            lm = llmc.Model.load(path)
            n_params = sum(int(np.prod(s)) for _, _, _, s, _ in lm._m.tensors())
            name = name or f"llama d={args.d_model} L={args.layers} ({n_params / 1e6:.1f} M)"
            n_proc = len(ids) // args.ctx * args.ctx  # tokens the model computes (every chunk, both halves)

            def single(threads):
                llmc.set_num_threads(threads)
                return llmc.perplexity(lm, ids, context_length=args.ctx, method="chunks", progress=False)

            t0 = time.perf_counter()
            pool1 = ModelPool(path, num_actors=1, threads=1, num_cpus=0.5)  # half-CPU reservations: both pools fit
            pool2 = ModelPool(path, num_actors=2, threads=1, num_cpus=0.5)
            pool_start = time.perf_counter() - t0
            runs = {"1x2": lambda: single(2), "1x1": lambda: single(1),
                    "ray1": lambda: pool1.perplexity(ids, context_length=args.ctx, method="chunks", progress=False),
                    "ray2": lambda: pool2.perplexity(ids, context_length=args.ctx, method="chunks", progress=False)}
            # round robin: every repeat runs each way once, so a change in the machine's load hits all of them
            times, cpus, res = {k: [] for k in runs}, {k: [] for k in runs}, {}
            try:
                for rep in range(args.repeats + 1):  # the first round is the warm-up
                    for k, fn in runs.items():
                        cpu = tree_cpu if k.startswith("ray") else time.process_time  # Ray: its processes too
                        c0, t0 = cpu(), time.perf_counter()
                        res[k] = fn()
                        if rep:
                            times[k].append(time.perf_counter() - t0)
                            cpus[k].append(cpu() - c0)
            finally:
                pool1.close()
                pool2.close()
            t2, t1, ray_t = min(times["1x2"]), min(times["1x1"]), {1: min(times["ray1"]), 2: min(times["ray2"])}
            r1, r2, rr = res["1x1"], res["1x2"], res["ray2"]
            assert rr.ppl == r1.ppl == res["ray1"].ppl, (rr.ppl, r1.ppl)  # exact: same kernels, 1 thread each
            start_s = {2: pool_start}
            c1, cray = min(cpus["1x1"]), {1: min(cpus["ray1"]), 2: min(cpus["ray2"])}
            rows.append(dict(model=name, params=n_params, tokens=n_proc, windows=rr.windows,
                             tok_s_1x2=n_proc / t2, tok_s_1x1=n_proc / t1, tok_s_ray_1x1=n_proc / ray_t[1],
                             tok_s_ray_2x1=n_proc / ray_t[2], ray_2x1_vs_1x2=t2 / ray_t[2],
                             ray_1x1_overhead=ray_t[1] / t1 - 1, ray_2x1_overhead=ray_t[2] / (t1 / 2) - 1,
                             cpu_s_1x1=c1, cpu_s_ray_1x1=cray[1], cpu_s_ray_2x1=cray[2],
                             ray_1x1_cpu_overhead=cray[1] / c1 - 1, ray_2x1_cpu_overhead=cray[2] / c1 - 1,
                             pool_start_s=start_s[2], ppl=rr.ppl, ppl_equal_1thread=rr.ppl == r1.ppl,
                             ppl_2threads=r2.ppl))
    finally:
        ray.shutdown()
        tmp.cleanup()
    load = os.getloadavg()[0]
    print(f"corpus perplexity, method=chunks ctx={args.ctx}, {len(ids)} KJV held-out tokens; 2 CPUs; "
          f"simd={llmc.simd_info()['active']}; load average {load:.1f}; ray.init {t_init:.1f} s")
    print(f"{'model':<26} {'1 proc x2':>9} {'1 proc x1':>9} {'Ray 1x1':>8} {'Ray 2x1':>8} {'2x1 / 1x2':>9} "
          f"{'wall ovh 1x1':>12} {'wall ovh 2x1':>12} {'CPU ovh 1x1':>11} {'CPU ovh 2x1':>11} {'pools start':>11}")
    for r in rows:
        print(f"{r['model']:<26} {r['tok_s_1x2']:>9.0f} {r['tok_s_1x1']:>9.0f} {r['tok_s_ray_1x1']:>8.0f} "
              f"{r['tok_s_ray_2x1']:>8.0f} {r['ray_2x1_vs_1x2']:>8.2f}x {100 * r['ray_1x1_overhead']:>11.1f}% "
              f"{100 * r['ray_2x1_overhead']:>11.1f}% {100 * r['ray_1x1_cpu_overhead']:>10.1f}% "
              f"{100 * r['ray_2x1_cpu_overhead']:>10.1f}% {r['pool_start_s']:>10.1f}s")
    print("tok/s: processed tokens (windows x ctx) per wall second. wall ovh 1x1 = time(1 actor) / time(1 process, "
          "1 thread) - 1; wall ovh 2x1 = time(2 actors) / (time(1 process, 1 thread) / 2) - 1; CPU ovh = CPU seconds "
          "of the driver + Ray's processes / CPU seconds of 1 process, 1 thread - 1")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(rows=rows, ctx=args.ctx, tokens=len(ids), repeats=args.repeats, ray_init_s=t_init,
                       load_average=load, machine=platform.machine(), cpu_count=os.cpu_count(),
                       simd=llmc.simd_info()["active"], ray=ray.__version__), f, indent=1)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
