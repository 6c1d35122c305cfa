"""Encoder-decoder speed: llmc's Seq2SeqModel vs transformers' T5ForConditionalGeneration on torch CPU, same model,
same threads.

A t5-small-shaped model (d_model 512, 6 + 6 layers, 8 heads, d_ff 2048, vocab 32128, ReLU; random weights) is run
three ways:
  encoder    the encoder over a --src-token source (llmc: model.encode; transformers: model.encoder)
  greedy     generate --new tokens from that source, greedy
  beam 4     generate --new tokens with 4 beams
EOS is disabled on both sides so every run produces the same number of tokens. generate times include encoding
the source once; "decode tok/s" = new tokens / (generate time - encoder time). Best of --repeats after a warm-up.
Prints a table and writes JSON (default: a temp dir; --out benchmarks/results/seq2seq.json refreshes the committed
one).

    python benchmarks/bench_seq2seq.py [--threads N] [--src 512] [--new 32] [--repeats 3] [--small]
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


def best(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--src", type=int, default=512, help="source tokens")
    ap.add_argument("--new", type=int, default=32, help="generated tokens")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--small", action="store_true", help="a 2 + 2 layer, 256-wide model (quick check)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "seq2seq.json"),
                    help="the JSON file to write (benchmarks/results/seq2seq.json to refresh the committed one)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    llmc.set_num_threads(args.threads)
    shape = dict(d_model=256, d_kv=32, d_ff=1024, num_layers=2, num_heads=8) if args.small else \
        dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8)
    cfg = transformers.T5Config(vocab_size=32128, feed_forward_proj="relu", decoder_start_token_id=0,
                                eos_token_id=1, pad_token_id=0, **shape)
    torch.manual_seed(0)
    hf = transformers.T5ForConditionalGeneration(cfg).eval()
    hf.generation_config.eos_token_id = None
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        lm = llmc.Model.load(d)
    n_params = sum(p.numel() for p in hf.parameters())
    src = np.random.default_rng(0).integers(2, 32128, args.src).tolist()
    ts = torch.tensor([src])

    def enc_llmc():
        lm.encode(src)

    def enc_hf():
        with torch.no_grad():
            hf.encoder(input_ids=ts)

    rows = []
    t_el, t_eh = best(enc_llmc, args.repeats), best(enc_hf, args.repeats)
    rows.append(dict(mode=f"encoder ({args.src} tokens)", llmc_s=t_el, hf_s=t_eh, ratio=t_eh / t_el))
    for name, beams in (("greedy", 1), ("beam 4", 4)):
        def run_llmc():
            out = lm.generate(src, args.new, num_beams=beams, eos_token_id=[])
            assert len(out) == args.new

        def run_hf():
            with torch.no_grad():
                out = hf.generate(ts, max_new_tokens=args.new, min_new_tokens=args.new, num_beams=beams,
                                  do_sample=False)
            assert out.shape[1] == args.new + 1

        t_l, t_h = best(run_llmc, args.repeats), best(run_hf, args.repeats)
        rows.append(dict(mode=f"generate {name}", llmc_s=t_l, hf_s=t_h, ratio=t_h / t_l,
                         llmc_decode_tok_s=args.new / max(t_l - t_el, 1e-9),
                         hf_decode_tok_s=args.new / max(t_h - t_eh, 1e-9)))
    load = os.getloadavg()[0]
    print(f"t5-small-shaped model, {n_params / 1e6:.0f} M parameters; source {args.src} tokens, {args.new} new tokens; "
          f"threads={args.threads}; load average {load:.1f}; llmc simd={llmc.simd_info()['active']}, "
          f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'case':<24} {'llmc s':>9} {'transformers s':>15} {'speed-up':>9} {'llmc decode tok/s':>18} "
          f"{'hf decode tok/s':>16}")
    for r in rows:
        dl = f"{r['llmc_decode_tok_s']:.1f}" if "llmc_decode_tok_s" in r else ""
        dh = f"{r['hf_decode_tok_s']:.1f}" if "hf_decode_tok_s" in r else ""
        print(f"{r['mode']:<24} {r['llmc_s']:>9.3f} {r['hf_s']:>15.3f} {r['ratio']:>8.2f}x {dl:>18} {dh:>16}")
    meta = dict(threads=args.threads, params=n_params, src_tokens=args.src, new_tokens=args.new,
                repeats=args.repeats, load_average=load, machine=platform.machine(), torch=torch.__version__,
                transformers=transformers.__version__, small=args.small)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
