"""Model benchmark: llmc vs transformers (torch CPU), same thread count, random weights.

Shapes: GPT-2 small (124M) and a Llama-shaped ~135M model (SmolLM-135M's shape: d 576, 30 layers, 9/3 heads,
SwiGLU 1536, vocab 49152, tied). For each: prefill of 512 tokens (tokens/s, best of 3; only the last position's
logits, as generation needs), greedy decoding of 128 tokens with a KV cache (tokens/s), and the peak RSS of a fresh
process that loads the checkpoint and runs both (each implementation in its own subprocess, so neither pays for the
other's libraries).

    python benchmarks/bench_model.py [--threads 1,2] [--models gpt2,llama] [--out benchmarks/results/model.json]
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


PREFILL, DECODE, PROMPT = 512, 128, 16

CONFIGS = {
    "gpt2": dict(model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    "llama": dict(model_type="llama", vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                  num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048, tie_word_embeddings=True,
                  rope_theta=10000.0, rms_norm_eps=1e-5),
}

CHILD = r'''
import json, sys, time
import numpy as np
impl, path, threads, prefill, decode, prompt = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
rng = np.random.default_rng(0)
res = {}
if impl == "llmc":
    import llmc
    llmc.set_num_threads(threads)
    t0 = time.perf_counter(); m = llmc.Model.load(path); res["load_s"] = time.perf_counter() - t0
    vocab = m.vocab_size
    ids = rng.integers(0, vocab, prefill)
    best = 1e9
    for _ in range(3):
        s = m.session(capacity=prefill)
        t0 = time.perf_counter(); s.append(ids); best = min(best, time.perf_counter() - t0)
        del s
    res["prefill_tok_s"] = prefill / best
    s = m.session(capacity=prompt + decode)
    out = s.append(ids[:prompt]); toks = []
    t0 = time.perf_counter()
    for _ in range(decode):
        t = int(out.argmax()); toks.append(t); out = s.append(t)
    res["decode_tok_s"] = decode / (time.perf_counter() - t0)
else:
    import torch, transformers
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    m = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    res["load_s"] = time.perf_counter() - t0
    vocab = m.config.vocab_size
    ids = torch.tensor(rng.integers(0, vocab, prefill))[None]
    best = 1e9
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter(); m(ids, use_cache=True, logits_to_keep=1); best = min(best, time.perf_counter() - t0)
        res["prefill_tok_s"] = prefill / best
        out = m(ids[:, :prompt], use_cache=True, logits_to_keep=1)
        past, toks = out.past_key_values, []
        t0 = time.perf_counter()
        for _ in range(decode):
            t = int(out.logits[0, -1].argmax()); toks.append(t)
            out = m(torch.tensor([[t]]), past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
        res["decode_tok_s"] = decode / (time.perf_counter() - t0)
# VmHWM: this process image's peak RSS (ru_maxrss would include the parent's, inherited across fork + exec)
res["peak_rss_mb"] = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
res["tokens"] = toks[:16]
print(json.dumps(res))
'''


def n_params(cfg: dict) -> int:
    if cfg["model_type"] == "gpt2":
        d, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
        return V * d + P * d + L * (12 * d * d + 13 * d) + 2 * d
    d, L, V, F = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"], cfg["intermediate_size"]
    hd = d // cfg["num_attention_heads"]
    kv = cfg["num_key_value_heads"] * hd
    return V * d + L * (2 * d * d + 2 * d * kv + 3 * d * F + 2 * d) + d


def kv_bytes(cfg: dict, tokens: int) -> int:
    if cfg["model_type"] == "gpt2":
        return cfg["n_layer"] * 2 * tokens * cfg["n_embd"] * 4
    hd = cfg["hidden_size"] // cfg["num_attention_heads"]
    return cfg["num_hidden_layers"] * 2 * tokens * cfg["num_key_value_heads"] * hd * 4


def run_child(impl: str, path: str, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", CHILD, impl, path, str(threads), str(PREFILL), str(DECODE),
                          str(PROMPT)], capture_output=True, text=True, env=env, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{impl} child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, each used by both sides")
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "model.json"),
                    help="the JSON file to write (benchmarks/results/model.json to refresh the committed one)")
    args = ap.parse_args()
    import llmc

    threads = [int(t) for t in args.threads.split(",")]
    results = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                           "simd": llmc.simd_info()["active"], "load_avg_at_start": os.getloadavg()[0]},
               "prefill_tokens": PREFILL, "decode_tokens": DECODE, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            cfg = CONFIGS[name]
            path = os.path.join(tmp, name)
            llmc.Model.init(cfg, seed=0).save(path)  # random weights; both sides load this same folder
            for t in threads:
                r = {impl: run_child(impl, path, t) for impl in ("llmc", "transformers")}
                same = r["llmc"].pop("tokens") == r["transformers"].pop("tokens")
                w = n_params(cfg) * 4
                budget = 1.2 * (w + kv_bytes(cfg, PREFILL))  # the larger of the two sessions the child holds
                res = {
                    **{f"{impl}_{k}": round(v, 2) for impl in r for k, v in r[impl].items()},
                    "params_m": round(n_params(cfg) / 1e6, 1), "fp32_weights_mb": round(w / 2**20, 1),
                    "rss_budget_mb": round(budget / 2**20, 1), "greedy_tokens_agree": same,
                    "prefill_speedup": round(r["llmc"]["prefill_tok_s"] / r["transformers"]["prefill_tok_s"], 2),
                    "decode_speedup": round(r["llmc"]["decode_tok_s"] / r["transformers"]["decode_tok_s"], 2),
                }
                results["runs"].setdefault(f"threads={t}", {})[name] = res
                print(name, t, json.dumps(res), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("| model | threads | prefill 512 tok/s llmc / torch | decode 128 tok/s llmc / torch | peak RSS MB llmc / torch "
          "(budget) |")
    print("|---|---|---|---|---|")
    for run, models in results["runs"].items():
        for name, m in models.items():
            print(f"| {name} ({m['params_m']}M) | {run.split('=')[1]} | {m['llmc_prefill_tok_s']:.0f} / "
                  f"{m['transformers_prefill_tok_s']:.0f} ({m['prefill_speedup']}x) | {m['llmc_decode_tok_s']:.1f} / "
                  f"{m['transformers_decode_tok_s']:.1f} ({m['decode_speedup']}x) | {m['llmc_peak_rss_mb']:.0f} / "
                  f"{m['transformers_peak_rss_mb']:.0f} ({m['rss_budget_mb']:.0f}) |")


if __name__ == "__main__":
    main()
