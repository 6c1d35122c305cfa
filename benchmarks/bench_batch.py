"""Batched decoding: llmc's model.generate([p1, ..., pB]) vs transformers' batched generate, same model, same threads.

Two ~110-124 M parameter shapes with random weights: GPT-2 small (124 M) and a Llama (768 wide, 12 layers, 12 heads,
2048 MLP, 32000 tokens, tied embeddings: 110 M). B prompts of different lengths (8 to 24 tokens) are continued by
--new tokens each with greedy decoding; EOS is disabled on both sides, so every sequence produces the same number of
tokens. transformers gets the usual left-padded batch with an attention mask; llmc decodes the B sequences together
(one matrix product per weight per step, attention per sequence, csrc/batch.c). Tokens/s = B * new tokens / wall
time (prefill included), best of --repeats. B = 64 runs --new-64 tokens (short: the machine is shared).

Also: beam search with 4 beams on one prompt (its beams are the batch), and batched prefill (model.logits_batch of
16 sequences of 16..128 tokens: llmc packed, llmc one sequence at a time, transformers padded + masked).

    python benchmarks/bench_batch.py [--threads N] [--new 32] [--new-64 8] [--repeats 2] [--small]
        [--out benchmarks/results/batch.json]
"""
import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc


def best(fn, repeats, warm=None):
    (warm or fn)()  # warm-up (a short run when given)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def build(kind, small):
    import torch
    import transformers

    torch.manual_seed(0)
    if kind == "gpt2":
        shape = dict(n_embd=256, n_layer=4, n_head=4) if small else dict(n_embd=768, n_layer=12, n_head=12)
        cfg = transformers.GPT2Config(vocab_size=50257, n_positions=1024, **shape)
    else:
        shape = (dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=688) if small
                 else dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=2048))
        cfg = transformers.LlamaConfig(vocab_size=32000, max_position_embeddings=1024, num_key_value_heads=None,
                                       tie_word_embeddings=True, **shape)
    hf = transformers.AutoModelForCausalLM.from_config(cfg).eval()
    hf.generation_config.eos_token_id = None
    hf.generation_config.pad_token_id = 0
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        lm = llmc.Model.load(d)
    return hf, lm, sum(p.numel() for p in hf.parameters())


def hf_batch(torch, prompts):
    """Left-padded ids and attention mask, as transformers' tokenizers pad for decoder-only generation."""
    T = max(len(p) for p in prompts)
    ids = torch.zeros((len(prompts), T), dtype=torch.long)
    mask = torch.zeros((len(prompts), T), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, T - len(p):] = torch.tensor(p)
        mask[i, T - len(p):] = 1
    return ids, mask


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--new-64", type=int, default=8, help="new tokens per sequence at B = 64")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", default="1,4,16,64")
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--small", action="store_true", help="4-layer, 256-wide models (quick check)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "batch.json"),
                    help="the JSON file to write (benchmarks/results/batch.json to refresh the committed one)")
    args = ap.parse_args()
    import torch
    import transformers

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(args.threads)
    llmc.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    rows, meta_models = [], {}
    for kind in args.models.split(","):
        hf, lm, n_params = build(kind, args.small)
        meta_models[kind] = n_params
        V = lm.vocab_size
        for B in [int(b) for b in args.batches.split(",")]:
            new = args.new_64 if B >= 64 else args.new
            prompts = [rng.integers(0, V, int(n)).tolist() for n in rng.integers(8, 25, B)]
            ids, mask = hf_batch(torch, prompts)

            def run_llmc(n=new):
                out = lm.generate(prompts, n, eos_token_id=[], batch_size=B)
                assert [len(o) for o in out] == [n] * B

            def run_hf(n=new):
                with torch.no_grad():
                    out = hf.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False)
                assert out.shape == (B, ids.shape[1] + n)

            t_l = best(run_llmc, args.repeats, lambda: run_llmc(1))
            t_h = best(run_hf, args.repeats, lambda: run_hf(1))
            rows.append(dict(model=kind, case=f"greedy B={B}", new=new, llmc_tok_s=B * new / t_l,
                             hf_tok_s=B * new / t_h, ratio=t_h / t_l))
            print(rows[-1], flush=True)
        # beam search, 4 beams, one 32-token prompt
        prompt = rng.integers(0, V, 32).tolist()

        def beam_llmc(n=args.new):
            assert len(lm.generate(prompt, n, num_beams=4, eos_token_id=[])) == n

        def beam_hf(n=args.new):
            with torch.no_grad():
                out = hf.generate(torch.tensor([prompt]), max_new_tokens=n, min_new_tokens=n, num_beams=4,
                                  do_sample=False)
            assert out.shape[1] == len(prompt) + n

        t_l = best(beam_llmc, args.repeats, lambda: beam_llmc(2))
        t_h = best(beam_hf, args.repeats, lambda: beam_hf(2))
        rows.append(dict(model=kind, case="beam 4", new=args.new, llmc_tok_s=args.new / t_l,
                         hf_tok_s=args.new / t_h, ratio=t_h / t_l))
        print(rows[-1], flush=True)
        # batched prefill: 16 sequences of 16..128 tokens, all logits
        seqs = [rng.integers(0, V, int(n)).tolist() for n in rng.integers(16, 129, 16)]
        tokens = sum(len(s) for s in seqs)
        pids, pmask = hf_batch(torch, seqs)
        pad_frac = 1 - tokens / pids.numel()

        def pre_hf():
            with torch.no_grad():
                hf(pids, attention_mask=pmask)

        t_p = best(lambda: lm.logits_batch(seqs), args.repeats)
        t_1 = best(lambda: [lm.logits(s) for s in seqs], args.repeats)
        t_h = best(pre_hf, args.repeats)
        rows.append(dict(model=kind, case="prefill 16 seqs (packed)", new=0, llmc_tok_s=tokens / t_p,
                         hf_tok_s=tokens / t_h, ratio=t_h / t_p, llmc_one_by_one_tok_s=tokens / t_1,
                         hf_padding_fraction=pad_frac))
        print(rows[-1], flush=True)
        del hf, lm
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nrandom-weight models: " + ", ".join(f"{k} {v / 1e6:.0f} M" for k, v in meta_models.items()) +
          f"; prompts 8-24 tokens; threads={args.threads}; load average {load:.1f}; llmc simd="
          f"{llmc.simd_info()['active']}, torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'model':<6} {'case':<26} {'new':>4} {'llmc tok/s':>11} {'transformers tok/s':>19} {'llmc / tf':>10}")
    for r in rows:
        print(f"{r['model']:<6} {r['case']:<26} {r['new']:>4} {r['llmc_tok_s']:>11.1f} {r['hf_tok_s']:>19.1f} "
              f"{r['ratio']:>9.2f}x")
    for r in rows:
        if "llmc_one_by_one_tok_s" in r:
            print(f"{r['model']}: prefill one sequence at a time {r['llmc_one_by_one_tok_s']:.0f} tok/s vs packed "
                  f"{r['llmc_tok_s']:.0f} tok/s; transformers' padded batch is {100 * r['hf_padding_fraction']:.0f}% "
                  "padding")
    meta = dict(threads=args.threads, params=meta_models, new_tokens=args.new, new_tokens_b64=args.new_64,
                repeats=args.repeats, load_average=load, machine=platform.machine(), torch=torch.__version__,
                transformers=transformers.__version__, small=args.small)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
