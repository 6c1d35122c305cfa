"""Mixture-of-experts benchmark (csrc/moe.c): time per token against the number of active experts, and llmc against
transformers (torch CPU) on the same random Mixtral and Qwen2-MoE checkpoints, same thread count.

1. k sweep: a Mixtral-shaped stack (d 512, 4 layers, 8/2 heads, E = 8 experts of width 1792, vocab 2048) with
   k = 1, 2, 4, 8 active experts per token, next to a dense Llama of the same shape whose MLP is k experts wide
   (d_ff = k * 1792): decode ms/token (64 steps after a 64-token prompt) and prefill ms/token (256 tokens).
   Compute is proportional to the active experts, so MoE-k should track dense-(k x F).
2. vs transformers: Mixtral (E 8, k 2, F 1792) and Qwen2-MoE (E 16, k 4, F 512, shared expert 2048, one dense layer
   of width 2048 via mlp_only_layers) at d 512, 4 layers: prefill tokens/s (256 tokens, best of 3) and greedy decode
   tokens/s (64 tokens with a KV cache); the greedy tokens must agree.

    python benchmarks/bench_moe.py [--threads 1] [--out benchmarks/results/moe.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np

D, L, H, HKV, V, F, E = 512, 4, 8, 2, 2048, 1792, 8
PREFILL, PROMPT, DECODE = 256, 64, 64
COMMON = dict(vocab_size=V, hidden_size=D, num_hidden_layers=L, num_attention_heads=H, num_key_value_heads=HKV,
              max_position_embeddings=1024, rms_norm_eps=1e-5, tie_word_embeddings=False)


def mixtral(k: int) -> dict:
    return dict(COMMON, model_type="mixtral", intermediate_size=F, num_local_experts=E, num_experts_per_tok=k)


def dense(width: int) -> dict:
    return dict(COMMON, model_type="llama", intermediate_size=width)


QWEN2_MOE = dict(COMMON, model_type="qwen2_moe", intermediate_size=2048, moe_intermediate_size=512,
                 shared_expert_intermediate_size=2048, num_experts=16, num_experts_per_tok=4, mlp_only_layers=[3],
                 norm_topk_prob=False)


def llmc_times(model, ids: np.ndarray) -> tuple[float, float, list]:
    """(prefill s/token best of 3, decode s/token, greedy tokens)"""
    best = 1e9
    for _ in range(3):
        s = model.session(capacity=PREFILL)
        t0 = time.perf_counter()
        s.append(ids[:PREFILL])
        best = min(best, time.perf_counter() - t0)
    s = model.session(capacity=PROMPT + DECODE + 1)
    out = s.append(ids[:PROMPT])
    toks = []
    t0 = time.perf_counter()
    for _ in range(DECODE):
        t = int(out.argmax())
        toks.append(t)
        out = s.append(t)
    return best / PREFILL, (time.perf_counter() - t0) / DECODE, toks


def hf_times(path: str, ids: np.ndarray) -> tuple[float, float, list]:
    import torch
    import transformers

    m = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    x = torch.tensor(ids[:PREFILL])[None]
    best = 1e9
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            m(x, use_cache=True, logits_to_keep=1)
            best = min(best, time.perf_counter() - t0)
        out = m(x[:, :PROMPT], use_cache=True, logits_to_keep=1)
        past, toks = out.past_key_values, []
        t0 = time.perf_counter()
        for _ in range(DECODE):
            t = int(out.logits[0, -1].argmax())
            toks.append(t)
            out = m(torch.tensor([[t]]), past_key_values=past, use_cache=True, logits_to_keep=1)
            past = out.past_key_values
    return best / PREFILL, (time.perf_counter() - t0) / DECODE, toks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1, help="threads for llmc and torch alike")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "moe.json"),
                    help="the JSON file to write (benchmarks/results/moe.json to refresh the committed one)")
    args = ap.parse_args()
    import torch

    import llmc

    llmc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    ids = np.random.default_rng(0).integers(0, V, PREFILL)
    res = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                       "threads": args.threads, "load_avg_at_start": os.getloadavg()[0]},
           "k_sweep": [], "vs_transformers": []}

    print(f"1. time per token vs active experts (E = {E}, F = {F}, d = {D}, {L} layers, {args.threads} thread(s))")
    print(f"{'k':>3} {'MoE decode ms':>14} {'dense k*F decode ms':>20} {'ratio':>6} {'MoE prefill ms':>15} "
          f"{'dense prefill ms':>17} {'ratio':>6}")
    for k in (1, 2, 4, 8):
        moe = llmc.Model.init(mixtral(k), seed=0)
        mp, md, _ = llmc_times(moe, ids)
        del moe
        dn = llmc.Model.init(dense(k * F), seed=0)
        dp, dd, _ = llmc_times(dn, ids)
        del dn
        row = dict(k=k, moe_decode_ms=md * 1e3, dense_decode_ms=dd * 1e3, moe_prefill_ms=mp * 1e3,
                   dense_prefill_ms=dp * 1e3)
        res["k_sweep"].append({a: round(b, 3) for a, b in row.items()})
        print(f"{k:>3} {md * 1e3:>14.2f} {dd * 1e3:>20.2f} {md / dd:>6.2f} {mp * 1e3:>15.3f} {dp * 1e3:>17.3f} "
              f"{mp / dp:>6.2f}")

    print(f"\n2. llmc vs transformers (same random checkpoint, {args.threads} thread(s)); tokens/s")
    print(f"{'model':>10} {'prefill llmc':>13} {'prefill hf':>11} {'x':>6} {'decode llmc':>12} {'decode hf':>10} "
          f"{'x':>6} {'same tokens':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in (("mixtral", mixtral(2)), ("qwen2_moe", QWEN2_MOE)):
            path = os.path.join(tmp, name)
            llmc.Model.init(cfg, seed=0).save(path)
            m = llmc.Model.load(path)
            lp, ld, lt = llmc_times(m, ids)
            del m
            hp, hd, ht = hf_times(path, ids)
            row = dict(model=name, llmc_prefill_tok_s=1 / lp, hf_prefill_tok_s=1 / hp, prefill_speedup=hp / lp,
                       llmc_decode_tok_s=1 / ld, hf_decode_tok_s=1 / hd, decode_speedup=hd / ld,
                       greedy_tokens_agree=lt == ht)
            res["vs_transformers"].append({a: (round(b, 2) if isinstance(b, float) else b) for a, b in row.items()})
            print(f"{name:>10} {1 / lp:>13.0f} {1 / hp:>11.0f} {hp / lp:>6.2f} {1 / ld:>12.1f} {1 / hd:>10.1f} "
                  f"{hd / ld:>6.2f} {str(lt == ht):>12}")
    res["machine"]["load_avg_at_end"] = os.getloadavg()[0]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"\nload average {res['machine']['load_avg_at_start']:.1f} -> {res['machine']['load_avg_at_end']:.1f}; "
          f"wrote {args.out}")


if __name__ == "__main__":
    main()
