"""Training throughput: llmc's C trainer vs PyTorch (the same model in transformers), same threads, same batch.

One step = forward + backward + global-norm clipping + AdamW update, on random token batches of --batch x 256.
Configs: the default model's (scripts/train_default.py) and a GPT-2-small-shaped one (124 M). Tokens/s is the
best of --repeats steps after a warm-up step, llmc's and torch's steps taking turns (so load from other processes
hits both alike). --precision fp32,bf16 adds mixed-precision rows: llmc's precision='bf16' against
torch.autocast('cpu', torch.bfloat16) (both with float32 master weights). Prints a table and writes JSON (--out benchmarks/results/train.json to refresh the committed one).

    python benchmarks/bench_train.py [--threads N] [--batch 4] [--repeats 3] [--configs default,gpt2]
                                     [--precision fp32,bf16]
"""
import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc
from llmc.training import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))


def time_steps(steps, repeats):
    """Best time of each step function over `repeats` rounds after a warm-up; the functions take turns inside each
    round (interleaved), so load from other processes hits them alike."""
    for step in steps:
        step()
    best = [float("inf")] * len(steps)
    for _ in range(repeats):
        for i, step in enumerate(steps):
            t0 = time.perf_counter()
            step()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-gpt2", action="store_true")
    ap.add_argument("--configs", default="default,gpt2", help="comma-separated: default, gpt2")
    ap.add_argument("--precision", default="fp32", help="comma-separated: fp32, bf16")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "train.json"),
                    help="the JSON file to write (benchmarks/results/train.json to refresh the committed one)")
    args = ap.parse_args()
    import torch
    import transformers

    from train_default import CONFIG

    torch.set_num_threads(args.threads)
    llmc.set_num_threads(args.threads)
    wanted = args.configs.split(",")
    configs = []
    if "default" in wanted:
        configs.append(("default (llama 3.2M)", dict(CONFIG, eos_token_id=0)))
    if "gpt2" in wanted and not args.skip_gpt2:
        configs.append(("gpt2-small (124M)", dict(model_type="gpt2", vocab_size=50257, n_positions=1024, n_embd=768,
                                                  n_layer=12, n_head=12)))
    rows = []
    rng = np.random.default_rng(0)
    precisions = args.precision.split(",")
    for name, cfg in configs:
        for precision in precisions:
            model = llmc.Model.init(cfg, seed=0)
            x = rng.integers(0, cfg["vocab_size"], (args.batch, args.seq))
            y = rng.integers(0, cfg["vocab_size"], (args.batch, args.seq))
            t = Trainer(model.config, model.state_dict(writable=True), args.batch, args.seq, precision=precision)

            def llmc_step():
                t.zero_grad()
                t.accumulate(x, y)
                t.clip(1.0)
                t.adamw_step(1e-4)

            hf_cfg = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.items() if k != "architectures"})
            for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop", "attention_dropout"):
                if hasattr(hf_cfg, k):
                    setattr(hf_cfg, k, 0.0)
            hf = transformers.AutoModelForCausalLM.from_config(hf_cfg)
            hf.train()
            opt = torch.optim.AdamW(hf.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
            tx, ty = torch.from_numpy(x), torch.from_numpy(y)

            def torch_step():
                opt.zero_grad()
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    logits = hf(tx).logits
                loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ty.reshape(-1))
                loss.backward()
                torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
                opt.step()

            tl, tt = time_steps([llmc_step, torch_step], args.repeats)
            n = args.batch * args.seq
            rows.append(dict(config=name, precision=precision, llmc_tok_s=n / tl, torch_tok_s=n / tt, ratio=tt / tl))
            del t, model, hf, opt
    load = os.getloadavg()[0]
    print(f"batch {args.batch} x seq {args.seq}; threads={args.threads}; torch {torch.__version__}; load {load:.1f}")
    print(f"{'config':<22} {'prec':>5} {'llmc tok/s':>11} {'torch tok/s':>12} {'llmc / torch':>13} {'vs llmc fp32':>13}")
    fp32 = {r["config"]: r["llmc_tok_s"] for r in rows if r["precision"] == "fp32"}
    for r in rows:
        vs = f"{r['llmc_tok_s'] / fp32[r['config']]:.2f}x" if r["config"] in fp32 else "-"
        print(f"{r['config']:<22} {r['precision']:>5} {r['llmc_tok_s']:>11.0f} {r['torch_tok_s']:>12.0f} "
              f"{r['ratio']:>12.2f}x {vs:>13}")
    meta = dict(threads=args.threads, batch=args.batch, seq=args.seq, repeats=args.repeats, machine=platform.machine(),
                torch=torch.__version__, transformers=transformers.__version__, load=load, simd=llmc.simd_info())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
