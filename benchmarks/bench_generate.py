"""Decode speed: llmc's model.generate vs transformers' generate on torch CPU, same model, same threads.

A GPT-2-small-shaped model (124 M parameters, random weights) continues a 32-token prompt by --new tokens with
greedy decoding, nucleus sampling (top-p 0.9) and beam search (4 beams); EOS is disabled on both sides so every
run produces the same number of tokens. Tokens/s = new tokens / wall time (prefill included), best of --repeats.
Prints a table and writes benchmarks/results/generate.json.

    python benchmarks/bench_generate.py [--threads N] [--new 64] [--repeats 3] [--small]
"""
import argparse
import os
import platform
import tempfile

import numpy as np

import llmc
from harness import add_out_arg, best_call, load_average, write_json


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="a 4-layer, 256-wide model (quick check)")
    add_out_arg(ap, "generate")
    args = ap.parse_args()
    import torch
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    llmc.set_num_threads(args.threads)
    shape = dict(n_embd=256, n_layer=4, n_head=4) if args.small else dict(n_embd=768, n_layer=12, n_head=12)
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=1024, **shape)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(cfg).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        lm = llmc.Model.load(d)
    n_params = sum(p.numel() for p in hf.parameters())
    prompt = np.random.default_rng(0).integers(0, 50257, 32).tolist()
    tp = torch.tensor([prompt])
    rows = []
    cases = [("greedy", dict(), dict(do_sample=False)),
             ("top-p 0.9", dict(top_p=0.9, temperature=1.0, do_sample=True, seed=0), dict(do_sample=True, top_p=0.9)),
             ("beam 4", dict(num_beams=4), dict(do_sample=False, num_beams=4))]
    for name, ours, theirs in cases:
        def run_llmc():
            out = lm.generate(prompt, args.new, eos_token_id=[], **ours)
            assert len(out) == args.new

        def run_hf():
            with torch.no_grad():
                out = hf.generate(tp, max_new_tokens=args.new, min_new_tokens=args.new, **theirs)
            assert out.shape[1] == len(prompt) + args.new

        t_l, t_h = best_call(run_llmc, args.repeats), best_call(run_hf, args.repeats)
        rows.append(dict(mode=name, llmc_tok_s=args.new / t_l, hf_tok_s=args.new / t_h, ratio=t_h / t_l))
    print(f"GPT-2-shaped model, {n_params / 1e6:.0f} M parameters; prompt 32 tokens, {args.new} new tokens; "
          f"threads={args.threads}; llmc simd={llmc.simd_info()['active']}, torch {torch.__version__}")
    print(f"{'mode':<11} {'llmc tok/s':>11} {'transformers tok/s':>19} {'llmc / transformers':>20}")
    for r in rows:
        print(f"{r['mode']:<11} {r['llmc_tok_s']:>11.1f} {r['hf_tok_s']:>19.1f} {r['ratio']:>19.2f}x")
    meta = dict(threads=args.threads, params=n_params, new_tokens=args.new, prompt=32, repeats=args.repeats,
                machine=platform.machine(), torch=torch.__version__, transformers=transformers.__version__,
                load_average=load_average())
    write_json(args.out, {"meta": meta, "results": rows})


if __name__ == "__main__":
    main()
