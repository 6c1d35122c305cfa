"""Latent-space benchmark: what hooks cost on a GPT-2-small-shaped model (124 M parameters, random weights).

Against a plain forward pass (model.logits, all T positions) of the same model in the same process:
  - run_with_cache(names=[])        the hooked entry point with nothing to keep (target: < 2% overhead)
  - run_with_cache(names=None)      every activation kept: 2 + 12 x 12 arrays (target: < 30%)
  - logits with a Steer at layer 6  one vector added to the residual stream
  - greedy decoding of 32 tokens in a session with and without a Steer attached
Each is the best of --repeats runs, interleaved so that load on the shared machine hits all alike. --clock cpu
(the default) times the process's CPU seconds (all threads; idle llmc threads sleep), which a busy shared machine
disturbs far less than wall time; --clock wall times the wall clock.

    python benchmarks/bench_latent.py [--tokens 256] [--repeats 5] [--threads 2] [--out benchmarks/results/latent.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc

GPT2 = dict(model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--decode", type=int, default=32)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "latent.json"),
                    help="the JSON file to write (benchmarks/results/latent.json to refresh the committed one)")
    args = ap.parse_args()
    llmc.set_num_threads(args.threads)
    model = llmc.Model.init(GPT2, seed=0)
    ids = np.random.default_rng(0).integers(0, GPT2["vocab_size"], args.tokens)
    v = np.random.default_rng(1).standard_normal(768).astype(np.float32)
    steer = [llmc.Steer(6, v, 4.0)]
    n_names = len(model.activation_names())

    def decode(interventions):
        s = model.session(capacity=16 + args.decode, interventions=interventions)
        out = s.append(ids[:16])
        for _ in range(args.decode):
            out = s.append(int(out.argmax()))

    cases = {
        "plain forward (logits)": lambda: model.logits(ids),
        "run_with_cache, no names": lambda: model.run_with_cache(ids, names=[]),
        f"run_with_cache, all {n_names} names": lambda: model.run_with_cache(ids),
        "logits + Steer(layer 6)": lambda: model.logits(ids, interventions=steer),
        f"decode {args.decode} tokens": lambda: decode(None),
        f"decode {args.decode} tokens + Steer": lambda: decode(steer),
    }
    for f in cases.values():  # warm up: thread pool, page faults of the weights
        f()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    best = {k: float("inf") for k in cases}
    for _ in range(args.repeats):
        for k, f in cases.items():
            t0 = clock()
            f()
            best[k] = min(best[k], clock() - t0)
    keys = list(cases)
    ref = {k: best[keys[0]] if not k.startswith("decode") else best[keys[4]] for k in keys}
    print(f"GPT-2 small shape (124 M), T = {args.tokens}, {args.threads} threads, best of {args.repeats}, "
          f"{args.clock} time")
    print(f"| case | {args.clock} ms | vs plain |\n|---|---:|---:|")
    rows = []
    for k in keys:
        over = best[k] / ref[k] - 1
        rows.append({"case": k, "ms": best[k] * 1e3, "overhead": over})
        print(f"| {k} | {best[k] * 1e3:.1f} | {'—' if k in (keys[0], keys[4]) else f'{100 * over:+.1f}%'} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                   "tokens": args.tokens, "repeats": args.repeats, "clock": args.clock, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
