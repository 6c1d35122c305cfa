"""The `llmc` command line (also `python -m llmc`).

    llmc demo [--model M]                      a tour on the default model: tokens, next-token probabilities,
                                               greedy / sampling / beam search, held-out perplexity
    llmc generate MODEL "prompt" [options]     continue a prompt
    llmc perplexity MODEL FILE [options]       perplexity of a text file
    llmc tokenize TOKENIZER "text"             ids and pieces
    llmc info [MODEL]                          architecture, parameters, context window, memory; build info
    llmc train --text F --tokenizer T --config C --out DIR [options]
    llmc scaling --compute C | --params N | --tokens D [--config CFG]   compute-optimal size (Chinchilla laws), FLOPs

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
        sd = m.state_dict()
        n = sum(v.size for v in sd.values())
        print(f"model: {m.path or args.model}")
        print(f"  architecture: {m.arch}   layers {m.n_layers}, d_model {m.d_model}, heads {m.n_heads} "
              f"(kv {m.n_kv_heads}), head_dim {m.head_dim}, vocab {m.vocab_size}")
        print(f"  parameters: {n:,} ({n / 1e6:.2f} M); weights in memory (fp32): {n * 4 / 2**20:.1f} MiB")
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
        model = llmc.Model.load(args.resume)
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


# ---------------------------------------------------------------- llmc scaling (llmc/scaling.py)
def _human(x: float) -> str:
    for unit, v in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= v:
            return f"{x / v:.3g}{unit}"
    return f"{x:.3g}"


def cmd_scaling(args) -> int:
    from . import scaling

    if args.compute is None and args.params is None and args.tokens is None:
        raise CliError("give --compute C, --params N and/or --tokens D")
    for flag, v in (("--compute", args.compute), ("--params", args.params), ("--tokens", args.tokens)):
        if v is not None and not (0 < v < float("inf")):
            raise CliError(f"{flag} must be a positive number, got {v!r}")
    laws = list(scaling.LAWS) if args.law == "all" else [args.law]
    out = {"laws": {}}
    C = args.compute
    if C is None and args.params is not None and args.tokens is not None:
        C = 6.0 * args.params * args.tokens
        print(f"N = {_human(args.params)} parameters on D = {_human(args.tokens)} tokens: C = 6ND = {C:.3g} FLOPs, "
              f"{args.tokens / args.params:.1f} tokens/parameter")
        for name in laws:
            loss = scaling.LAWS[name].loss(args.params, args.tokens)
            print(f"  predicted loss ({name}): {loss:.4f}")
            out["laws"].setdefault(name, {})["loss_at_N_D"] = loss
    print(f"{'law':<22} {'compute':>10} {'N_opt':>9} {'D_opt':>9} {'D/N':>6} {'loss':>7}")
    for name in laws:
        if C is not None:
            o = scaling.compute_optimal(C, law=name)
        elif args.params is not None:
            o = scaling.optimal_for_params(args.params, law=name)
        else:
            o = scaling.optimal_for_tokens(args.tokens, law=name)
        out["laws"].setdefault(name, {}).update(o.as_dict())
        print(f"{name:<22} {o.compute:>10.3g} {_human(o.n_params):>9} {_human(o.tokens):>9} "
              f"{o.tokens_per_param:>6.1f} {o.loss:>7.4f}")
    rule_C = C if C is not None else None
    if rule_C is None:  # the budget at which the ~20 tokens/parameter rule picks this N (or D)
        rule_C = 6 * 20 * (args.params ** 2 if args.params is not None else (args.tokens / 20) ** 2)
    r = scaling.chinchilla_optimal(rule_C)
    out["rule_20"] = r.as_dict()
    print(f"{'20 tokens/parameter':<22} {r.compute:>10.3g} {_human(r.n_params):>9} {_human(r.tokens):>9} "
          f"{r.tokens_per_param:>6.1f} {'':>7}")
    cfg = None
    if args.config == "default":
        from .default import DEFAULT_DIR

        cfg = json.loads((DEFAULT_DIR / "config.json").read_text())
    elif args.config:
        p = Path(args.config)
        p = p / "config.json" if p.is_dir() else p
        if not p.is_file():
            raise CliError(f"config {args.config!r}: no such file (give a config.json, a model folder or 'default')")
        cfg = json.loads(p.read_text())
    if cfg is not None:
        f = scaling.flops(cfg, args.seq_len, kind="train", attention=args.attention)
        n, n_ne = scaling.n_params(cfg), scaling.n_params(cfg, non_embedding=True)
        print(f"\n{args.config}: {cfg.get('model_type')}, {_human(n)} parameters ({_human(n_ne)} non-embedding); "
              f"training FLOPs per token at seq_len {args.seq_len} ({args.attention} attention):")
        for part, v in f.parts.items():
            if v:
                print(f"  {part:<12} {v:>14,.0f}  {100 * v / f.total:5.1f}%")
        print(f"  {'total':<12} {f.total:>14,.0f}  = {f.ratio_to_6n():.3f} x 6N (non-embedding), "
              f"{f.ratio_to_6n(False):.3f} x 6N (all parameters)")
        out["config"] = dict(flops=f.as_dict(), n_params=n, n_params_non_embedding=n_ne)
        if C is not None:
            D = C / f.total
            out["config"]["tokens_for_budget"] = D
            print(f"  {C:.3g} FLOPs train it on {_human(D)} tokens ({D / n:.3g} tokens/parameter)")
    if args.json:
        print(json.dumps(out, indent=1))
    return 0


def _add_scaling_parser(sub) -> None:
    s = sub.add_parser("scaling", help="compute-optimal model size and tokens (Chinchilla laws), FLOPs per token")
    s.add_argument("--compute", type=float, default=None, help="training budget in FLOPs, e.g. 1e21")
    s.add_argument("--params", type=float, default=None, help="model size N (parameters)")
    s.add_argument("--tokens", type=float, default=None, help="training tokens D")
    s.add_argument("--law", choices=["all", "hoffmann", "besiroglu"], default="all")
    s.add_argument("--config", default=None, help="a config.json, model folder or 'default': its FLOPs by part")
    s.add_argument("--seq-len", type=int, default=2048)
    s.add_argument("--attention", choices=["full", "causal"], default="full")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_scaling)
# ---------------------------------------------------------------- end of llmc scaling


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
    _add_scaling_parser(sub)
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
