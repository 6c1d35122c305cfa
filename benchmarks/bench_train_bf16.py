"""bf16 mixed-precision training: does it learn like float32? llmc (precision='fp32' / 'bf16') vs PyTorch (float32
and CPU autocast bf16), same initial weights, same batches, same AdamW / clipping / schedule, 200 steps.

A small Llama (the default model's tokenizer, 2 layers, d 128) on the King James Bible shipped with llmc. Prints
for each run the final training loss (mean of the last 10 steps), the held-out loss of the final weights (float32
forward in each framework) and training tokens/s (median step), and writes JSON.

    python benchmarks/bench_train_bf16.py [--steps 200] [--threads 1] [--out benchmarks/results/train_bf16.json]

llmc's bf16 mode rounds every linear layer's matmul operands to bf16 and accumulates in float32 (attention, norms,
softmax and the loss stay float32). torch.autocast('cpu', bfloat16) runs linear layers and attention (sdpa) in bf16
and returns bf16 activations; both keep float32 master weights. Without AVX512_BF16 / AMX (this machine) neither
has bf16 hardware: llmc emulates the products exactly (rounding + float32 sgemm), oneDNN converts to float32 inside
its kernels.
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
from llmc.training import lr_at

CONFIG = dict(model_type="llama", vocab_size=4096, hidden_size=128, intermediate_size=352, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5,
              tie_word_embeddings=True, rope_theta=10000.0)
LR, WARMUP, WD, CLIP, BATCH, SEQ = 3e-3, 10, 0.1, 1.0, 8, 64


def batches(ids, steps, seed=0):
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, len(ids) - SEQ - 1, (steps, BATCH))
    for row in starts:
        w = np.stack([ids[s: s + SEQ + 1] for s in row]).astype(np.int64)
        yield w[:, :-1], w[:, 1:]


def held_batch(ids):
    w = np.stack([ids[s: s + SEQ + 1] for s in range(0, 16 * SEQ, SEQ)]).astype(np.int64)
    return w[:, :-1], w[:, 1:]


def run_llmc(precision, ids, held, steps):
    model = llmc.Model.init(CONFIG, seed=0)
    times = []
    hist = llmc.train(model, batches=batches(ids, steps), steps=steps, lr=LR, warmup=WARMUP, weight_decay=WD,
                      grad_clip=CLIP, progress=False, precision=precision,
                      callback=lambda s, h: times.append(BATCH * SEQ / h.tokens_per_s[-1]))
    x, y = held
    return dict(final_loss=float(np.mean(hist.train_loss[-10:])), held_loss=model.loss_and_grads(x, y)[0],
                tok_s=BATCH * SEQ / float(np.median(times)), losses=hist.train_loss)


def run_torch(precision, ids, held, steps):
    import torch
    import transformers

    init = llmc.Model.init(CONFIG, seed=0).state_dict()
    m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{k: v for k, v in CONFIG.items() if k != "model_type"}))
    m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in init.items()}, strict=False)
    m.tie_weights()
    m.train()
    emb = ("embed_tokens",)
    named = list(m.named_parameters())
    decay = [p for n, p in named if p.ndim >= 2 and not any(e in n for e in emb)]
    no_decay = [p for n, p in named if not (p.ndim >= 2 and not any(e in n for e in emb))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8)
    losses, times = [], []
    for step, (x, y) in enumerate(batches(ids, steps)):
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, lr=LR, warmup=WARMUP, steps=steps)
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = m(torch.from_numpy(x)).logits
        loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]),
                                                 torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), CLIP)
        opt.step()
        times.append(time.perf_counter() - t0)
        losses.append(loss.item())
    m.eval()
    with torch.no_grad():
        x, y = held
        logits = m(torch.from_numpy(x)).logits
        held_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                      torch.from_numpy(y).reshape(-1)).item()
    return dict(final_loss=float(np.mean(losses[-10:])), held_loss=held_loss,
                tok_s=BATCH * SEQ / float(np.median(times)), losses=losses)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "train_bf16.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    llmc.set_num_threads(args.threads)
    tok = llmc.load_default().tokenizer
    ids = np.array(tok.encode(llmc.data.kjv_text("train")[:400_000]))
    held = held_batch(np.array(tok.encode(llmc.data.kjv_text("heldout")[:20_000])))
    runs = {}
    for name, fn, prec in [("llmc fp32", run_llmc, "fp32"), ("llmc bf16", run_llmc, "bf16"),
                           ("torch fp32", run_torch, "fp32"), ("torch autocast bf16", run_torch, "bf16")]:
        runs[name] = fn(prec, ids, held, args.steps)
    ref = runs["llmc fp32"]["final_loss"]
    print(f"{args.steps} steps of {BATCH} x {SEQ} tokens; {args.threads} thread(s); load {os.getloadavg()[0]:.1f}")
    print(f"{'run':<22} {'final loss':>10} {'vs llmc fp32':>13} {'held-out':>9} {'tok/s':>8}")
    for name, r in runs.items():
        print(f"{name:<22} {r['final_loss']:>10.4f} {100 * (r['final_loss'] / ref - 1):>+12.2f}% "
              f"{r['held_loss']:>9.4f} {r['tok_s']:>8.0f}")
    meta = dict(steps=args.steps, threads=args.threads, batch=BATCH, seq=SEQ, config=CONFIG, torch=torch.__version__,
                machine=platform.machine(), simd=llmc.simd_info() if hasattr(llmc, "simd_info") else None,
                load=os.getloadavg()[0])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": runs}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
