"""Decoding against the memory-bandwidth roofline, at 1 and 2 threads, the bandwidth measured in the same run.

Decoding one token reads every weight matrix once (the embedding table one row, unless it is also the tied output
matrix), so tokens/s can be at most read bandwidth / weight bytes per token. Each (model, type, threads) runs in a
fresh process that alternates, `--repeats` times: a read-bandwidth probe at that thread count, then `--tokens`
decoded tokens (greedy, KV cache, after a 16-token prompt). Probe and decode so see the same machine load, which on
a shared machine changes by the minute. fraction = best tok/s x bytes per token / best bandwidth.

The probe: the faster of NumPy's bitwise-or reduction over 512 MiB (as int64) and a float32 matrix-vector product
over the same 512 MiB (NumPy's own OpenBLAS, one thread each: OPENBLAS_NUM_THREADS=1), one slice of rows per
thread, the GIL released: plain streaming reads that do less arithmetic per byte than any decode kernel.

Models (random weights): GPT-2 small (124M, tied) and a ~112M Llama shape (d 768, 14 layers, 12/4 heads, SwiGLU
2048, vocab 32000, tied). F32 loads the transformers-style checkpoint (GPT-2's Conv1D weights as stored, (in, out));
the other types are converted once with llmc's recipes and saved as GGUF.

--baseline DIR runs an older llmc too (a source tree built in place, e.g. `git worktree add /tmp/old <commit>` and
`python setup.py build_ext --inplace` there), in the same way and interleaved, for a before/after column.
--regions counts the OpenMP parallel regions per decoded token by preloading a tiny GOMP_parallel counter (compiled
with `cc`; libgomp only).

    python benchmarks/bench_decode.py [--threads 1,2] [--models gpt2,llama] [--types f32,q8_0,q4_0,q4_k]
        [--tokens 32] [--repeats 3] [--baseline DIR] [--regions] [--out benchmarks/results/decode.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from harness import DECODE_CONFIGS

PROMPT = 16
CONFIGS = DECODE_CONFIGS  # the GPT-2-small and ~112M Llama shapes (harness.py)

CHILD = r'''
import ctypes, json, os, sys, threading, time
import numpy as np
path, threads, tokens, repeats, counter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
import llmc
llmc.set_num_threads(threads)
m = llmc.Model.load(path)
# bytes read per decoded token: every matrix once; the embedding table one row unless it is also the output matrix
tied = m.config.get("tie_word_embeddings", m.arch == "gpt2")
per_tok = sum(view.nbytes for name, view, ty, shape, _ in m._m.tensors()
              if not (name.endswith(("wpe.weight", "position_embeddings.weight"))
                      or (("wte" in name or "embed_tokens" in name or "token_embd" in name) and not tied)))
buf = np.ones((1 << 16, 2048), np.float32)  # 512 MiB
vec = np.ones(2048, np.float32)
rows = np.array_split(np.arange(buf.shape[0]), threads)
probes = [lambda a: np.bitwise_or.reduce(a.view(np.int64).ravel()), lambda a: a @ vec]
def bandwidth():  # the faster of two streaming reads, one slice of rows per thread
    best = 0.0
    for probe in probes:
        ts = [threading.Thread(target=probe, args=(buf[r[0]:r[-1] + 1],)) for r in rows]
        t0 = time.perf_counter()
        for t in ts: t.start()
        for t in ts: t.join()
        best = max(best, buf.nbytes / (time.perf_counter() - t0) / 1e9)
    return best
lib = ctypes.CDLL(counter) if counter != "-" else None
s = m.session(capacity=PROMPT + (tokens + 1) * (repeats + 1))
out = s.append(list(range(1, PROMPT + 1)))
for _ in range(4):  # warm-up: pages mapped, caches and threads started
    out = s.append([int(out.argmax())])
bw, tok_s, regions, toks = [], [], None, []
for r in range(repeats):
    bw.append(bandwidth())
    c0 = lib.gompcount_calls() if lib else 0
    t0 = time.perf_counter()
    for _ in range(tokens):
        t = int(out.argmax()); toks.append(t); out = s.append([t])
    tok_s.append(tokens / (time.perf_counter() - t0))
    if lib: regions = (lib.gompcount_calls() - c0) / tokens
print(json.dumps(dict(bytes_per_token=per_tok, bandwidth_gb_s=bw, tok_s=tok_s, regions_per_token=regions,
                      tokens=toks[:8], load=os.getloadavg()[0])))
'''.replace("PROMPT", str(PROMPT))

COUNTER_C = r'''
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
static atomic_long calls;
long gompcount_calls(void) { return calls; }
void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags) {
    static void (*real)(void (*)(void *), void *, unsigned, unsigned);
    if (!real) real = dlsym(RTLD_NEXT, "GOMP_parallel");
    if (!real) real = dlsym(dlopen("libgomp.so.1", RTLD_LAZY), "GOMP_parallel"); /* loaded with RTLD_LOCAL */
    if (num_threads != 1) calls++; /* regions that fork (an if(0) region asks for 1 thread and forks nothing) */
    real(fn, data, num_threads, flags);
}
'''


def build_counter(tmp: str) -> str:
    src, so = os.path.join(tmp, "gompcount.c"), os.path.join(tmp, "gompcount.so")
    Path(src).write_text(COUNTER_C)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", so, src, "-ldl"], check=True)
    return so


def run_child(path: str, threads: int, tokens: int, repeats: int, llmc_root: str | None, counter: str | None) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS="1")
    if llmc_root:
        env["PYTHONPATH"] = llmc_root
    if counter:
        env["LD_PRELOAD"] = counter
    out = subprocess.run([sys.executable, "-c", CHILD, path, str(threads), str(tokens), str(repeats), counter or "-"],
                         capture_output=True, text=True, env=env, check=False, cwd=tempfile.gettempdir())
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({path}, {threads} threads):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--types", default="f32,q8_0,q4_0,q4_k")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="an older llmc source tree, built in place")
    ap.add_argument("--regions", action="store_true", help="count OpenMP regions per token (needs cc, libgomp)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "decode.json"))
    args = ap.parse_args()
    import llmc

    threads = [int(t) for t in args.threads.split(",")]
    impls = [("llmc", None)] + ([("baseline", str(Path(args.baseline).resolve()))] if args.baseline else [])
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "simd": llmc.simd_info().get("active"), "load_avg_at_start": os.getloadavg()[0]},
               "tokens": args.tokens, "repeats": args.repeats, "baseline": args.baseline, "rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        counter = build_counter(tmp) if args.regions else None
        for name in args.models.split(","):
            base = llmc.Model.init(CONFIGS[name], seed=0)
            hf = os.path.join(tmp, name)
            base.save(hf)
            for ty in args.types.split(","):
                path = hf
                if ty != "f32":
                    path = os.path.join(tmp, f"{name}.{ty}.gguf")
                    base.save(path, format="gguf", dtype=ty)
                for t in threads:
                    row = dict(model=name, dtype=ty, threads=t)
                    for impl, root in impls:  # interleaved: new and old under the same load
                        r = run_child(path, t, args.tokens, args.repeats, root, counter)
                        bw, best = max(r["bandwidth_gb_s"]), max(r["tok_s"])
                        row.update({f"{impl}_tok_s": round(best, 2), f"{impl}_bandwidth_gb_s": round(bw, 2),
                                    f"{impl}_roofline": round(best * r["bytes_per_token"] / (bw * 1e9), 3),
                                    f"{impl}_regions_per_token": r["regions_per_token"],
                                    f"{impl}_load": round(r["load"], 1), f"{impl}_tokens": r["tokens"]})
                        row["weight_mib_per_token"] = round(r["bytes_per_token"] / 2**20, 1)
                    results["rows"].append(row)
                    print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    cols = ["model", "type", "threads", "MiB/token", "tok/s", "GB/s (probe)", "roofline"]
    if args.regions:
        cols.append("regions/token")
    if args.baseline:
        cols += ["baseline tok/s", "baseline roofline", "speed-up"] + (["baseline regions"] if args.regions else [])
    cols.append("load")
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in results["rows"]:
        cells = [r["model"], r["dtype"], r["threads"], r["weight_mib_per_token"], r["llmc_tok_s"],
                 r["llmc_bandwidth_gb_s"], f"{r['llmc_roofline']:.0%}"]
        if args.regions:
            cells.append(r["llmc_regions_per_token"])
        if args.baseline:
            cells += [r["baseline_tok_s"], f"{r['baseline_roofline']:.0%}", f"{r['llmc_tok_s'] / r['baseline_tok_s']:.2f}x"]
            if args.regions:
                cells.append(r["baseline_regions_per_token"])
        cells.append(r["llmc_load"])
        print("| " + " | ".join(str(c) for c in cells) + " |")
    print(textwrap.dedent(f"""
        results: {args.out}; tok/s and GB/s: best of {args.repeats} repeats of {args.tokens} tokens each, the probe
        run right before each repeat in the same process; load: 1-minute load average during the llmc run."""))


if __name__ == "__main__":
    main()
