"""Quantized decoding: tokens/s, resident memory and the fraction of the memory-bandwidth roofline, per weight type.

Shapes (random weights): GPT-2 small (124M) and a ~112M Llama (d 768, 14 layers, 12/4 heads, SwiGLU 2048, vocab
32000, tied). For each type (F32, BF16, Q8_0, Q4_0, Q4_K: Model.load(dtype=...)) and thread count: greedy decoding
of 64 tokens after a 16-token prompt with a KV cache, the resident set after it, and against it fp32 llmc and
transformers (torch, fp32) in the same run. Each run is a fresh subprocess.

Roofline: decoding reads every weight matrix once per token (the embedding table only one row, unless it is also
the tied output matrix), so tokens/s can be at most bandwidth / (weight bytes per token). The read bandwidth is
measured here, in a subprocess at the same thread count (NumPy sums over a 512 MiB buffer, one slice per thread).
fraction = tokens/s x bytes per token / bandwidth.

    python benchmarks/bench_quant.py [--threads 1,2] [--models gpt2,llama] [--types f32,bf16,q8_0,q4_0,q4_k]
                                     [--out benchmarks/results/quant.json]   (runs against the installed llmc)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from harness import DECODE_CONFIGS


DECODE, PROMPT = 64, 16

CONFIGS = DECODE_CONFIGS  # the GPT-2-small and ~112M Llama shapes (harness.py)

CHILD = r'''
import json, sys, time
import numpy as np
impl, path, threads, dtype, decode, prompt = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
res = {}
rng = np.random.default_rng(0)
if impl == "bandwidth":
    import threading
    a = np.ones((threads, 64 << 20), np.float64)  # 512 MiB, one row per thread
    best = 1e9
    for _ in range(5):
        ts = [threading.Thread(target=a[i].sum) for i in range(threads)]
        t0 = time.perf_counter()
        for t in ts: t.start()
        for t in ts: t.join()
        best = min(best, time.perf_counter() - t0)
    res["gb_s"] = a.nbytes / best / 1e9
elif impl == "llmc":
    import llmc
    llmc.set_num_threads(threads)
    r0 = rss()
    t0 = time.perf_counter()
    m = llmc.Model.load(path, dtype=None if dtype == "stored" else dtype)
    res["load_s"] = time.perf_counter() - t0
    # bytes read per decoded token: every matrix, except that the embedding lookup reads one row of the table
    # (unless the table is also the tied output matrix) and position tables one row
    per_tok = 0
    tied = m.config.get("tie_word_embeddings", m.arch == "gpt2")
    for name, view, ty, shape, _ in m._m.tensors():
        if name.endswith(("wpe.weight",)) or (("wte" in name or "embed_tokens" in name) and not tied):
            continue
        per_tok += view.nbytes
    res["bytes_per_token"] = per_tok
    res["weight_mb"] = m.weight_bytes() / 2**20
    ids = rng.integers(0, m.vocab_size, prompt)
    s = m.session(capacity=prompt + decode + 1)
    out = s.append(ids); toks = []
    best = 1e9
    t0 = time.perf_counter()
    for _ in range(decode):
        t1 = time.perf_counter()
        t = int(out.argmax()); toks.append(t); out = s.append(t)
        best = min(best, time.perf_counter() - t1)
    res["decode_tok_s"] = decode / (time.perf_counter() - t0)
    res["best_tok_s"] = 1 / best
    res["rss_mb"] = rss()
    res["rss_growth_mb"] = rss() - r0
    res["tokens"] = toks[:16]
else:
    import torch, transformers
    torch.set_num_threads(threads)
    r0 = rss()
    m = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    ids = torch.tensor(rng.integers(0, m.config.vocab_size, prompt))[None]
    with torch.inference_mode():
        out = m(ids, use_cache=True, logits_to_keep=1)
        past, toks = out.past_key_values, []
        t0 = time.perf_counter()
        for _ in range(decode):
            t = int(out.logits[0, -1].argmax()); toks.append(t)
            out = m(torch.tensor([[t]]), past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
        res["decode_tok_s"] = decode / (time.perf_counter() - t0)
    res["rss_mb"] = rss()
    res["rss_growth_mb"] = rss() - r0
    res["tokens"] = toks[:16]
print(json.dumps(res))
'''


def run_child(impl: str, path: str, threads: int, dtype: str = "stored") -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", CHILD, impl, path, str(threads), dtype, str(DECODE), str(PROMPT)],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} {dtype} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--types", default="f32,bf16,q8_0,q4_0,q4_k")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "quant.json"))
    args = ap.parse_args()
    import llmc

    threads = [int(t) for t in args.threads.split(",")]
    types = args.types.split(",")
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "simd": llmc.simd_info().get("active"), "load_avg_at_start": os.getloadavg()[0]},
               "decode_tokens": DECODE, "bandwidth_gb_s": {}, "runs": []}
    for t in threads:
        results["bandwidth_gb_s"][t] = round(max(run_child("bandwidth", "-", t)["gb_s"] for _ in range(2)), 2)
        print(f"read bandwidth, {t} thread(s): {results['bandwidth_gb_s'][t]} GB/s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = os.path.join(tmp, name)
            llmc.Model.init(CONFIGS[name], seed=0).save(path)  # F32 checkpoint; dtype= converts on load
            for t in threads:
                bw = results["bandwidth_gb_s"][t] * 1e9
                torch_r = run_child("transformers", path, t)
                f32 = None
                for ty in types:
                    r = run_child("llmc", path, t, ty)
                    f32 = f32 or (r if ty == "f32" else None)
                    row = dict(model=name, threads=t, dtype=ty, decode_tok_s=round(r["decode_tok_s"], 2),
                               weight_mb=round(r["weight_mb"], 1), rss_mb=round(r["rss_mb"], 1),
                               rss_growth_mb=round(r["rss_growth_mb"], 1), load_s=round(r["load_s"], 2),
                               bytes_per_token_mb=round(r["bytes_per_token"] / 2**20, 1),
                               roofline_tok_s=round(bw / r["bytes_per_token"], 2),
                               roofline_fraction=round(r["decode_tok_s"] * r["bytes_per_token"] / bw, 3),
                               best_token_roofline_fraction=round(r["best_tok_s"] * r["bytes_per_token"] / bw, 3),
                               vs_llmc_f32=round(r["decode_tok_s"] / f32["decode_tok_s"], 2) if f32 else None,
                               vs_torch_f32=round(r["decode_tok_s"] / torch_r["decode_tok_s"], 2),
                               torch_decode_tok_s=round(torch_r["decode_tok_s"], 2),
                               torch_rss_mb=round(torch_r["rss_mb"], 1),
                               greedy_same_as_f32=(r["tokens"] == f32["tokens"]) if f32 else None)
                    results["runs"].append(row)
                    print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("\n| model | threads | type | decode tok/s | vs llmc f32 | vs torch f32 | weights MiB | RSS MiB | "
          "roofline tok/s | fraction of roofline |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results["runs"]:
        print(f"| {r['model']} | {r['threads']} | {r['dtype']} | {r['decode_tok_s']} | {r['vs_llmc_f32']} | "
              f"{r['vs_torch_f32']} | {r['weight_mb']} | {r['rss_mb']} | {r['roofline_tok_s']} | "
              f"{r['roofline_fraction']:.0%} |")
    for t in threads:
        print(f"transformers fp32, {t} thread(s): " + ", ".join(
            f"{r['model']} {r['torch_decode_tok_s']} tok/s ({r['torch_rss_mb']} MiB)"
            for r in results["runs"] if r["threads"] == t and r["dtype"] == types[0]))


if __name__ == "__main__":
    main()
