"""The `llmc` command line (also `python -m llmc`).

    llmc demo [--model M]                      a tour on the default model: tokens, next-token probabilities,
                                               greedy / sampling / beam search, held-out perplexity
    llmc generate MODEL "prompt" [options]     continue a prompt
    llmc perplexity MODEL FILE [options]       perplexity of a text file
    llmc tokenize TOKENIZER "text"             ids and pieces
    llmc info [MODEL]                          architecture, parameters, context window, memory; build info
    llmc quantize SRC DST --type q4_k          convert a checkpoint folder's weights (progress bar)
    llmc train --text F --tokenizer T --config C --out DIR [options]

MODEL is a checkpoint folder (config.json + *.safetensors [+ tokenizer.json]) or "default". TOKENIZER is a
tokenizer.json, a .tiktoken file (pattern from the .json beside it, or --pattern), a model folder, or "default".
Bad arguments exit with code 2 and a message.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

import llmc


class CliError(Exception):
    pass


def _model(name: str, attention: str = "flash"):
    if name == "default":
        return llmc.load_default(attention=attention)
    p = Path(name)
    if not p.exists():
        raise CliError(f"model {name!r}: no such folder (give a checkpoint folder or 'default')")
    return llmc.Model.load(p, attention=attention)


def _tokenizer(name: str, pattern: str | None):
    if name == "default":
        return llmc.load_default().tokenizer
    p = Path(name)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.exists():
        raise CliError(f"tokenizer {name!r}: no such file")
    if p.suffix == ".tiktoken":
        meta = p.with_suffix(".json")
        specials = None
        if pattern is None and meta.is_file():
            from .tokenizer import tiktoken_meta

            pattern, specials = tiktoken_meta(meta)
        return llmc.Tokenizer.from_tiktoken(p, pattern=pattern or "cl100k", special_tokens=specials)
    return llmc.Tokenizer.from_file(p)


def _bar(p: float, width: int = 30) -> str:
    n = int(round(p * width))
    return "#" * n + "." * (width - n)


def _show(tok, ids) -> str:
    """Each token's text, quoted, so spaces and newlines show."""
    return " ".join(repr(tok.decode([i])) for i in ids)


# ------------------------------------------------------------------------------------------------------ commands
def cmd_demo(args) -> int:
    model = _model(args.model)
    tok = model.tokenizer
    if tok is None:
        raise CliError("the demo needs a model with a tokenizer")
    prompt = args.prompt
    ids = tok.encode(prompt)
    print(f"model: {model!r}")
    print(f"\n1. tokenize: {prompt!r} -> {len(ids)} tokens")
    print(f"   ids:    {ids}")
    print(f"   pieces: {_show(tok, ids)}")
    logits = model.logits(ids)[-1]
    top = np.argsort(-logits)[:8]
    print("\n2. next-token probabilities (softmax of the last position's logits):")
    for t in args.temperatures:
        p = llmc.softmax(logits, temperature=t)
        print(f"   temperature {t:g}:")
        for i in top:
            print(f"     {tok.decode([int(i)])!r:<14} {p[i]:6.3f} {_bar(float(p[i]))}")
    print(f"   hardmax (temperature -> 0): {tok.decode([int(np.argmax(llmc.hardmax(logits)))])!r}")
    n = args.max_new_tokens
    print("\n3. generation")
    print(f"   greedy:        {prompt}{model.generate(prompt, n)}")
    print(f"   sampling:      {prompt}{model.generate(prompt, n, temperature=0.8, top_p=0.95, seed=args.seed)}")
    print(f"   beam search 4: {prompt}{model.generate(prompt, n, num_beams=4, no_repeat_ngram_size=3)}")
    print("\n4. held-out perplexity")
    summary = llmc.default_training_summary() if args.model == "default" else {}
    # the corpus is not shipped: look where the project keeps it ($LLMC_SHARED, else ../shared from here)
    candidates = [os.environ.get("LLMC_SHARED"), Path.cwd().parent / "shared", Path.cwd() / "shared"]
    kjv = next((Path(c) / "corpora" / "kjv.txt" for c in candidates
                if c and (Path(c) / "corpora" / "kjv.txt").is_file()), None)
    if kjv is not None:
        lines = kjv.read_text(encoding="utf-8").splitlines()
        held = "\n".join(lines[int(len(lines) * 0.95):]) + "\n"  # the split rule of scripts/train_default.py
        ctx = min(256, model.context_length)
        r = llmc.perplexity(model, held, context_length=ctx, stride=ctx // 2, progress=False)
        print(f"   last 5% of kjv.txt ({r.n_tokens:,} tokens, sliding window {ctx}, stride {ctx // 2}): "
              f"perplexity {r.ppl:.2f}")
    elif summary:
        print(f"   recorded at training time: {summary['heldout_ppl']:.2f} ({summary['heldout_method']}); "
              f"kjv.txt not found here to recompute it")
    else:
        print("   (no held-out text available: set LLMC_SHARED to a folder with corpora/kjv.txt)")
    print(f"\nthreads={llmc.get_num_threads()} simd={llmc.simd_info()['active']}")
    return 0


def cmd_generate(args) -> int:
    model = _model(args.model)
    kw = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
              repetition_penalty=args.repetition_penalty, num_beams=args.beams, seed=args.seed)
    if args.stream:
        for piece in model.generate(args.prompt, args.max_new_tokens, stream=True, **kw):
            print(piece, end="", flush=True)
        print()
    else:
        print(model.generate(args.prompt, args.max_new_tokens, **kw))
    return 0


def cmd_perplexity(args) -> int:
    model = _model(args.model)
    p = Path(args.file)
    if not p.is_file():
        raise CliError(f"{args.file}: no such file")
    text = p.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    r = llmc.perplexity(model, text, context_length=args.context, stride=args.stride, method=args.method,
                        progress=not args.quiet)
    dt = time.perf_counter() - t0
    print(f"perplexity {r.ppl:.4f}  (mean NLL {r.mean_nll:.4f} nats over {r.n_tokens:,} tokens; method "
          f"{r.method}, context {r.context_length}" + (f", stride {r.stride}" if r.stride else "") +
          f"; {r.n_tokens / dt:,.0f} tokens/s)")
    return 0


def cmd_tokenize(args) -> int:
    tok = _tokenizer(args.tokenizer, args.pattern)
    ids = tok.encode(args.text)
    if args.json:
        print(json.dumps({"ids": ids, "pieces": [tok.decode([i]) for i in ids]}, ensure_ascii=False))
    else:
        print(f"{len(ids)} tokens")
        print("ids:   ", ids)
        print("pieces:", _show(tok, ids))
    return 0


def cmd_info(args) -> int:
    print(f"llmc {llmc.__version__}  threads={llmc.get_num_threads()}  simd={llmc.simd_info()}")
    print(f"blas: {llmc.blas_info()}")
    if args.model:
        m = _model(args.model)
        n = sum(int(np.prod(shape)) for _, _, _, shape, _ in m._m.tensors())
        print(f"model: {m.path or args.model}")
        print(f"  architecture: {m.arch}   layers {m.n_layers}, d_model {m.d_model}, heads {m.n_heads} "
              f"(kv {m.n_kv_heads}), head_dim {m.head_dim}, vocab {m.vocab_size}")
        print(f"  parameters: {n:,} ({n / 1e6:.2f} M); weights in memory ({m.dtype}): "
              f"{m.weight_bytes() / 2**20:.1f} MiB")
        kv = 2 * m.n_layers * m.n_kv_heads * m.head_dim * 4
        print(f"  context window: {m.context_length} tokens; KV cache {kv:,} bytes/token, "
              f"{kv * m.context_length / 2**20:.1f} MiB for a full window")
        print(f"  tokenizer: {m.tokenizer!r}")
    return 0


def cmd_train(args) -> int:
    text_path, tok_path, cfg_path = Path(args.text), Path(args.tokenizer), Path(args.config)
    for p in (text_path, tok_path, cfg_path):
        if not p.exists():
            raise CliError(f"{p}: no such file")
    tok = _tokenizer(str(tok_path), None)
    config = json.loads(cfg_path.read_text())
    config.setdefault("vocab_size", tok.n_vocab)
    ids = np.asarray(tok.encode(text_path.read_text(encoding="utf-8")), np.int32)
    n_eval = int(len(ids) * args.eval_fraction)
    train_ids, eval_ids = (ids[:-n_eval], ids[-n_eval:]) if n_eval > args.seq_len + 1 else (ids, None)
    out = Path(args.out)
    start = 0
    from .training import Trainer

    if args.resume:
        model = llmc.Model.load(args.resume, dtype="f32")  # training runs on float32 weights
        state = json.loads((Path(args.resume) / "trainer_state.json").read_text())
        start = int(state["step"])
    else:
        model = llmc.Model.init(config, seed=args.seed)
    trainer = Trainer(model.config, model.state_dict(), args.batch_size, args.seq_len)
    if args.resume:  # AdamW moments and step count, so the optimiser continues where it stopped
        opt = np.load(Path(args.resume) / "optimizer.npz")
        for i, n in enumerate(trainer.names):
            trainer.m[i][...] = opt["m:" + n]
            trainer.v[i][...] = opt["v:" + n]
        trainer.step_count = int(opt["step_count"])
    print(f"{len(train_ids):,} training tokens; {model!r}")

    def report(step, hist):
        if (step + 1) % args.log_every == 0:
            ev = f" eval {hist.eval_loss[-1]:.3f}" if hist.eval_step and hist.eval_step[-1] == step else ""
            print(f"step {step + 1}/{args.steps} loss {hist.train_loss[-1]:.4f}{ev} "
                  f"{hist.tokens_per_s[-1]:.0f} tok/s", flush=True)

    llmc.train(model, train_ids, steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len, lr=args.lr,
               weight_decay=args.weight_decay, eval_ids=eval_ids, eval_every=args.eval_every, seed=args.seed,
               start_step=start, callback=report, progress=False, trainer=trainer)
    model.save(out)
    (out / "trainer_state.json").write_text(json.dumps({"step": args.steps, "seed": args.seed}))
    np.savez(out / "optimizer.npz", step_count=trainer.step_count,
             **{f"m:{n}": m for n, m in zip(trainer.names, trainer.m)},
             **{f"v:{n}": v for n, v in zip(trainer.names, trainer.v)})
    if tok_path.suffix == ".json":
        (out / "tokenizer.json").write_bytes(tok_path.read_bytes())
    print(f"saved {out}")
    return 0


def _progress(label: str):
    """A progress bar on stderr for Model.load(progress=...): label [#####.....] done/total."""
    start = time.perf_counter()

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r{label} [{_bar(done / max(total, 1))}] {done}/{total} tensors "
              f"{time.perf_counter() - start:.1f} s", end=end, file=sys.stderr, flush=True)

    return show


def cmd_quantize(args) -> int:
    src, dst = Path(args.src), Path(args.dst)
    dtype = args.type.lower()
    if dtype not in llmc.model.DTYPES:
        raise CliError(f"--type {args.type!r}: expected one of {', '.join(llmc.model.DTYPES)}")
    if not src.is_dir():
        raise CliError(f"{src}: no such checkpoint folder (config.json + *.safetensors)")
    if dtype not in ("f32", "bf16", "f16"):
        # a Hugging Face folder (safetensors) has no block formats: quantized weights need GGUF
        save_gguf = getattr(llmc.Model, "save_gguf", None)
        if save_gguf is None:
            raise CliError(f"--type {dtype}: a quantized model is written as GGUF, which this llmc build cannot write "
                           "yet (the gguf work); use --type f32, bf16 or f16 for a Hugging Face folder, or "
                           f"Model.load(path, dtype={dtype!r}) to quantize in memory")
    occupied = any(dst.iterdir()) if dst.is_dir() else dst.exists()
    if occupied and not args.force:
        raise CliError(f"{dst} exists (pass --force to overwrite)")
    model = llmc.Model.load(src, dtype=dtype, progress=_progress(f"{src.name} -> {dtype}"))
    if dtype in ("f32", "bf16", "f16"):
        model.save(dst)
        tok = src / "tokenizer.json"
        if tok.is_file():
            import shutil

            for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
                if (src / name).is_file():
                    shutil.copyfile(src / name, dst / name)
    else:
        model.save_gguf(dst)
    size = sum(f.stat().st_size for f in (dst.iterdir() if dst.is_dir() else [dst]))
    print(f"{dst}: {model.dtype}, weights {model.weight_bytes() / 2**20:.1f} MiB, files {size / 2**20:.1f} MiB")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="llmc", description="llmc: large language models on a fast, inspectable C core")
    sub = ap.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="a tour of llmc on the default model")
    d.add_argument("--model", default="default")
    d.add_argument("--prompt", default="In the beginning")
    d.add_argument("--temperatures", type=float, nargs="+", default=[0.7, 1.5])
    d.add_argument("--max-new-tokens", type=int, default=24)
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(fn=cmd_demo)

    g = sub.add_parser("generate", help="continue a prompt")
    g.add_argument("model")
    g.add_argument("prompt")
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=0)
    g.add_argument("--top-p", type=float, default=1.0)
    g.add_argument("--min-p", type=float, default=0.0)
    g.add_argument("--repetition-penalty", type=float, default=1.0)
    g.add_argument("--beams", type=int, default=1)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--stream", action="store_true")
    g.set_defaults(fn=cmd_generate)

    p = sub.add_parser("perplexity", help="perplexity of a text file")
    p.add_argument("model")
    p.add_argument("file")
    p.add_argument("--context", type=int, default=None)
    p.add_argument("--stride", type=int, default=None)
    p.add_argument("--method", choices=["sliding", "chunks"], default="sliding")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(fn=cmd_perplexity)

    t = sub.add_parser("tokenize", help="token ids and pieces of a text")
    t.add_argument("tokenizer")
    t.add_argument("text")
    t.add_argument("--pattern", default=None, help="pre-tokenizer of a .tiktoken file (gpt2, cl100k, o200k, ...)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=cmd_tokenize)

    i = sub.add_parser("info", help="build info, and a model's architecture, size and memory")
    i.add_argument("model", nargs="?")
    i.set_defaults(fn=cmd_info)

    q = sub.add_parser("quantize", help="convert a checkpoint folder's weights to another type")
    q.add_argument("src", help="a Hugging Face checkpoint folder")
    q.add_argument("dst", help="output: a folder for f32/bf16/f16, a .gguf file for quantized types")
    q.add_argument("--type", required=True, help="f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, ...")
    q.add_argument("--force", action="store_true", help="overwrite dst")
    q.set_defaults(fn=cmd_quantize)

    tr = sub.add_parser("train", help="train a gpt2/llama model on a text file")
    tr.add_argument("--text", required=True)
    tr.add_argument("--tokenizer", required=True)
    tr.add_argument("--config", required=True, help="a config.json (model_type gpt2 or llama)")
    tr.add_argument("--out", required=True)
    tr.add_argument("--steps", type=int, default=1000)
    tr.add_argument("--batch-size", type=int, default=8)
    tr.add_argument("--seq-len", type=int, default=128)
    tr.add_argument("--lr", type=float, default=3e-3)
    tr.add_argument("--weight-decay", type=float, default=0.1)
    tr.add_argument("--eval-fraction", type=float, default=0.05)
    tr.add_argument("--eval-every", type=int, default=100)
    tr.add_argument("--log-every", type=int, default=10)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", default=None, help="a folder saved by an earlier run (continues at its step)")
    tr.set_defaults(fn=cmd_train)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # bad arguments: argparse prints usage and exits with code 2
    try:
        return args.fn(args)
    except (CliError, ValueError, TypeError, OSError, KeyError) as e:
        print(f"llmc {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
