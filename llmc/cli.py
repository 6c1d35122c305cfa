"""The `llmc` command line (also `python -m llmc`).

    llmc demo [--model M]                      a tour on the default model: tokens, next-token probabilities,
                                               greedy / sampling / beam search, held-out perplexity
    llmc generate MODEL "prompt" [options]     continue a prompt
    llmc perplexity MODEL FILE [options]       perplexity of a text file
    llmc tokenize TOKENIZER "text"             ids and pieces
    llmc info [MODEL]                          architecture, parameters, context window, memory; build info
    llmc quantize SRC DST --type q4_k          convert a checkpoint folder's weights (progress bar)
    llmc train --text F --tokenizer T --config C --out DIR [options]
    llmc scaling --compute C | --params N | --tokens D [--config CFG]   compute-optimal size (Chinchilla laws), FLOPs

MODEL is a checkpoint folder (config.json + *.safetensors [+ tokenizer.json]) or "default". TOKENIZER is a
tokenizer.json, a .tiktoken file (pattern from the .json beside it, or --pattern), a model folder, "default", or
the name of a shipped tiktoken encoding (gpt2, r50k_base, p50k_base, cl100k_base, o200k_base, ...).
Bad arguments exit with code 2 and a message.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import llmc
from llmc import _files

from .training import NonFiniteLossError


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
    if name in llmc.list_encoding_names() and not p.exists():
        return llmc.get_encoding(name)  # a shipped tiktoken encoding: gpt2, cl100k_base, o200k_base, ...
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
    held = llmc.data.kjv_text("heldout")  # the last 5% of the shipped kjv.txt: the default model never saw it
    ctx = min(256, model.context_length)
    r = llmc.perplexity(model, held, context_length=ctx, stride=ctx // 2, progress=False)
    print(f"   last 5% of kjv.txt ({r.n_tokens:,} tokens, sliding window {ctx}, stride {ctx // 2}): "
          f"perplexity {r.ppl:.2f}")
    print(f"\nthreads={llmc.get_num_threads()} simd={llmc.simd_info()['active']}")
    return 0


def cmd_generate(args) -> int:
    model = _model(args.model)
    kw = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
              repetition_penalty=args.repetition_penalty, no_repeat_ngram_size=args.no_repeat_ngram_size,
              num_beams=args.beams, seed=args.seed, overflow=args.overflow, keep_first=args.keep_first)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", llmc.ContextWindowWarning)
        if args.stream:
            for piece in model.generate(args.prompt, args.max_new_tokens, stream=True, **kw):
                print(piece, end="", flush=True)
            print()
        else:
            print(model.generate(args.prompt, args.max_new_tokens, **kw))
    for w in caught:  # one line on stderr, not a warning with a source location
        if issubclass(w.category, llmc.ContextWindowWarning):
            print(f"llmc generate: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return 0


def cmd_perplexity(args) -> int:
    model = _model(args.model)
    p = Path(args.file)
    if not p.is_file():
        raise CliError(f"{args.file}: no such file")
    text = _files.read_regular(p).decode("utf-8")
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
        if m.info.get("causal", True):
            kv = 2 * m.n_layers * m.n_kv_heads * m.head_dim * 4
            print(f"  context window: {m.context_length} tokens; KV cache {kv:,} bytes/token, "
                  f"{kv * m.context_length / 2**20:.1f} MiB for a full window")
        else:  # an encoder (BERT) reads the whole input at once: nothing is cached between calls
            print(f"  context window: {m.context_length} tokens; encoder (bidirectional attention): no KV cache, "
                  "no generation")
        print(f"  tokenizer: {m.tokenizer!r}")
    return 0


def _read_text(path: Path, what: str) -> str:
    try:
        return _files.read_regular(path).decode("utf-8")  # a FIFO is refused, not waited on
    except UnicodeDecodeError as e:
        raise CliError(f"{what} {path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    except OSError as e:
        raise CliError(f"{what} {path}: {e.strerror or e}") from None


def cmd_train(args) -> int:
    text_path, tok_path, cfg_path = Path(args.text), Path(args.tokenizer), Path(args.config)
    for flag, p in (("--text", text_path), ("--tokenizer", tok_path), ("--config", cfg_path)):
        if not p.exists() and not (flag == "--tokenizer" and args.tokenizer in llmc.list_encoding_names()):
            raise CliError(f"{flag} {p}: no such file")
    try:
        tok = _tokenizer(str(tok_path), None)
    except (ValueError, TypeError, OSError) as e:
        raise CliError(f"--tokenizer {tok_path}: {e}") from None
    try:
        config = json.loads(_read_text(cfg_path, "--config"))
    except json.JSONDecodeError as e:
        raise CliError(f"--config {cfg_path}: not valid JSON: {e}") from None
    if not isinstance(config, dict):
        raise CliError(f"--config {cfg_path}: a config.json holds a JSON object, got {type(config).__name__}")
    config.setdefault("vocab_size", tok.n_vocab)
    ids = np.asarray(tok.encode(_read_text(text_path, "--text")), np.int32)
    n_eval = int(len(ids) * args.eval_fraction)
    train_ids, eval_ids = (ids[:-n_eval], ids[-n_eval:]) if n_eval > args.seq_len + 1 else (ids, None)
    if len(train_ids) < args.seq_len + 2:
        raise CliError(f"--text {text_path}: {len(train_ids):,} training tokens, fewer than one window of "
                       f"--seq-len {args.seq_len} + 1")
    out = Path(args.out)
    start = 0
    from .training import Trainer

    from .checkpoint import load_training_checkpoint, save_training_checkpoint

    if args.resume:  # model, AdamW moments and step count of one checkpoint set, so training continues exactly
        model, trainer, start = load_training_checkpoint(
            args.resume, lambda m: Trainer(m.config, m.state_dict(writable=True), args.batch_size, args.seq_len))
    else:
        try:
            model = llmc.Model.init(config, seed=args.seed)
        except (ValueError, TypeError, KeyError) as e:
            raise CliError(f"--config {cfg_path}: {e.args[0] if e.args else e}") from None
        trainer = Trainer(model.config, model.state_dict(writable=True), args.batch_size, args.seq_len)
    print(f"{len(train_ids):,} training tokens; {model!r}")

    def report(step, hist):
        if (step + 1) % args.log_every == 0:
            ev = f" eval {hist.eval_loss[-1]:.3f}" if hist.eval_step and hist.eval_step[-1] == step else ""
            print(f"step {step + 1}/{args.steps} loss {hist.train_loss[-1]:.4f}{ev} "
                  f"{hist.tokens_per_s[-1]:.0f} tok/s", flush=True)

    def save(step):
        # one atomic set: killed here or out of disk, the previous checkpoint in `out` stays whole (llmc/checkpoint.py)
        save_training_checkpoint(out, model, trainer, step, args.seed,
                                 _files.read_regular(tok_path) if tok_path.suffix == ".json" else None)

    try:
        llmc.train(model, train_ids, steps=args.steps, batch_size=args.batch_size, seq_len=args.seq_len,
                   lr=args.lr, weight_decay=args.weight_decay, eval_ids=eval_ids, eval_every=args.eval_every,
                   seed=args.seed, start_step=start, callback=report, progress=False, trainer=trainer)
    except NonFiniteLossError as e:
        # the failing step's update was not applied: the model holds the last good weights (after e.step steps)
        if e.step > start:
            save(e.step)
            e.args = (f"{e.args[0]} The last good state (step {e.step}) was saved to {out}; continue with "
                      f"--resume {out} and a lower --lr.",)
        raise
    save(args.steps)
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
    what = "compute-optimal model size and tokens (Chinchilla laws), FLOPs per token"
    s = sub.add_parser("scaling", help=what, description=what, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--compute", type=float, default=None, help="training budget in FLOPs, e.g. 1e21")
    s.add_argument("--params", type=float, default=None, help="model size N (parameters)")
    s.add_argument("--tokens", type=float, default=None, help="training tokens D")
    s.add_argument("--law", choices=["all", "hoffmann", "besiroglu"], default="all",
                   help="Hoffmann et al. 2022 (eq. 10), Besiroglu et al. 2024, or both")
    s.add_argument("--config", default=None, help="a config.json, model folder or 'default': its FLOPs by part")
    s.add_argument("--seq-len", type=int, default=2048, help="sequence length for the attention FLOPs")
    s.add_argument("--attention", choices=["full", "causal"], default="full",
                   help="count the whole score matrix, or only the unmasked keys")
    s.add_argument("--json", action="store_true", help="also print the results as JSON")
    s.set_defaults(fn=cmd_scaling)
# ---------------------------------------------------------------- end of llmc scaling


def _int_at_least(lo: int, what: str):
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
        if v < lo:
            raise argparse.ArgumentTypeError(f"{what} must be >= {lo}, got {v}")
        return v
    return parse


def _float(lo: float | None = None, hi: float | None = None, what: str = "value", lo_open: bool = False):
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if v != v or v in (float("inf"), float("-inf")):
            raise argparse.ArgumentTypeError(f"{what} must be finite, got {text}")
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise argparse.ArgumentTypeError(f"{what} must be {'>' if lo_open else '>='} {lo:g}, got {v:g}")
        if hi is not None and v > hi:
            raise argparse.ArgumentTypeError(f"{what} must be <= {hi:g}, got {v:g}")
        return v
    return parse


class _Help(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default; descriptions keep their line breaks."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="llmc", description=__doc__.split("\n\n", 1)[1], formatter_class=_Help)
    ap.add_argument("--version", action="version", version=f"llmc {llmc.__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name, help):
        return sub.add_parser(name, help=help, description=help, formatter_class=_Help)

    d = cmd("demo", "a tour of llmc on the default model: tokens, next-token probabilities, greedy / sampling / "
                    "beam search, held-out perplexity")
    d.add_argument("--model", default="default", help='a checkpoint folder, or "default"')
    d.add_argument("--prompt", default="In the beginning", help="the text to tokenize and continue")
    d.add_argument("--temperatures", type=_float(0.0, what="--temperatures"), nargs="+", default=[0.7, 1.5],
                   help="temperatures at which to show the next-token distribution")
    d.add_argument("--max-new-tokens", type=_int_at_least(0, "--max-new-tokens"), default=24,
                   help="tokens to generate with each strategy")
    d.add_argument("--seed", type=_int_at_least(0, "--seed"), default=0, help="seed of the sampling example")
    d.set_defaults(fn=cmd_demo)

    g = cmd("generate", "continue a prompt")
    g.add_argument("model", help='a checkpoint folder (config.json + *.safetensors + tokenizer.json), or "default"')
    g.add_argument("prompt", help="the text to continue")
    g.add_argument("--max-new-tokens", type=_int_at_least(0, "--max-new-tokens"), default=64,
                   help="the most tokens to generate")
    g.add_argument("--temperature", type=_float(0.0, what="--temperature"), default=1.0,
                   help="divides the logits; 0 = greedy")
    g.add_argument("--top-k", type=_int_at_least(0, "--top-k"), default=0, help="keep the k most likely tokens; 0 = off")
    g.add_argument("--top-p", type=_float(0.0, 1.0, "--top-p", lo_open=True), default=1.0,
                   help="nucleus sampling: keep the smallest set with this probability mass; 1 = off")
    g.add_argument("--min-p", type=_float(0.0, 1.0, "--min-p"), default=0.0,
                   help="drop tokens less likely than min-p times the top token; 0 = off")
    g.add_argument("--repetition-penalty", type=_float(0.0, what="--repetition-penalty", lo_open=True), default=1.0,
                   help="CTRL penalty on tokens already seen (> 1 discourages repeats); 1 = off")
    g.add_argument("--no-repeat-ngram-size", type=_int_at_least(0, "--no-repeat-ngram-size"), default=0,
                   help="forbid any n-gram of this size from occurring twice; 0 = off")
    g.add_argument("--beams", type=_int_at_least(1, "--beams"), default=1, help="beam search with this many beams; "
                   "1 = greedy / sampling")
    g.add_argument("--seed", type=_int_at_least(0, "--seed"), default=None,
                   help="sampler seed (sampling is on when a seed or a sampling option is given); none: from the OS")
    g.add_argument("--overflow", choices=["stop", "slide", "error"], default="stop",
                   help="when prompt + generated tokens would exceed the context window: stop there with a "
                        "warning, slide the window (drop the oldest tokens), or fail before generating")
    g.add_argument("--keep-first", type=_int_at_least(0, "--keep-first"), default=0,
                   help="with --overflow slide: tokens at the start that never leave the window")
    g.add_argument("--stream", action="store_true", help="print text as it is generated")
    g.set_defaults(fn=cmd_generate)

    p = cmd("perplexity", "perplexity of a text file")
    p.add_argument("model", help='a checkpoint folder, or "default"')
    p.add_argument("file", help="a UTF-8 text file")
    p.add_argument("--context", type=_int_at_least(1, "--context"), default=None,
                   help="tokens per window; none: min(256, the model's context window)")
    p.add_argument("--stride", type=_int_at_least(1, "--stride"), default=None,
                   help="sliding method: tokens the window moves; none: half the context")
    p.add_argument("--method", choices=["sliding", "chunks"], default="sliding",
                   help="sliding windows (Hugging Face) or disjoint chunks scoring their second half (llama.cpp)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_perplexity)

    t = cmd("tokenize", "token ids and pieces of a text")
    t.add_argument("tokenizer", help="a tokenizer.json, a .tiktoken file, a model folder, \"default\", or a shipped "
                                     "encoding name (gpt2, cl100k_base, o200k_base, ...)")
    t.add_argument("text", help="the text to tokenize")
    t.add_argument("--pattern", default=None, help="pre-tokenizer of a .tiktoken file (gpt2, cl100k, o200k, ...); "
                                                   "none: from the .json beside it")
    t.add_argument("--json", action="store_true", help="print one JSON object {ids, pieces}")
    t.set_defaults(fn=cmd_tokenize)

    i = cmd("info", "build info, and a model's architecture, size and memory")
    i.add_argument("model", nargs="?", default=None, help='a checkpoint folder, or "default"; none: build info only')
    i.set_defaults(fn=cmd_info)

    q = cmd("quantize", "convert a checkpoint folder's weights to another type (progress bar)")
    q.add_argument("src", help="a Hugging Face checkpoint folder")
    q.add_argument("dst", help="output: a folder for f32/bf16/f16, a .gguf file for quantized types")
    q.add_argument("--type", required=True, help="f32, bf16, f16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, ...")
    q.add_argument("--force", action="store_true", help="overwrite dst")
    q.set_defaults(fn=cmd_quantize)

    tr = cmd("train", "train a gpt2/llama model on a text file")
    tr.add_argument("--text", required=True, help="a UTF-8 text file to train on")
    tr.add_argument("--tokenizer", required=True, help="a tokenizer.json or .tiktoken file (or a shipped encoding name)")
    tr.add_argument("--config", required=True, help="a config.json (model_type gpt2 or llama)")
    tr.add_argument("--out", required=True, help="the folder to write the trained checkpoint to")
    tr.add_argument("--steps", type=_int_at_least(1, "--steps"), default=1000, help="optimizer steps")
    tr.add_argument("--batch-size", type=_int_at_least(1, "--batch-size"), default=8, help="windows per step")
    tr.add_argument("--seq-len", type=_int_at_least(1, "--seq-len"), default=128,
                    help="tokens per window (at most the config's context window)")
    tr.add_argument("--lr", type=_float(0.0, 1.0, "--lr", lo_open=True), default=3e-3,
                    help="peak AdamW learning rate (warmup, then cosine to a tenth)")
    tr.add_argument("--weight-decay", type=_float(0.0, 1.0, "--weight-decay"), default=0.1,
                    help="AdamW decoupled weight decay (not on norms, biases, embeddings)")
    tr.add_argument("--eval-fraction", type=_float(0.0, 0.5, "--eval-fraction"), default=0.05,
                    help="the last fraction of the text's tokens held out for evaluation")
    tr.add_argument("--eval-every", type=_int_at_least(1, "--eval-every"), default=100,
                    help="steps between held-out evaluations")
    tr.add_argument("--log-every", type=_int_at_least(1, "--log-every"), default=10, help="steps between log lines")
    tr.add_argument("--seed", type=_int_at_least(0, "--seed"), default=0, help="seeds the weights and the batches")
    tr.add_argument("--resume", default=None, help="a folder saved by an earlier run (continues at its step)")
    tr.set_defaults(fn=cmd_train)
    _add_scaling_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code: 0, 2 for bad arguments or input, 1 when the machine ran out
    of memory or training diverged."""
    args = build_parser().parse_args(argv)  # bad arguments: argparse prints usage and exits with code 2
    try:
        return args.fn(args)
    except MemoryError as e:
        print(f"llmc {args.command}: error: out of memory" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return 1
    except NonFiniteLossError as e:
        print(f"llmc {args.command}: error: {e}", file=sys.stderr)
        return 1
    except (CliError, ValueError, TypeError, OSError, KeyError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"llmc {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
