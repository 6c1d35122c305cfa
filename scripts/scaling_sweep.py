"""A scaling-law sweep on the King James Bible: train a grid of Llama-architecture models with ``llmc.train``, record
held-out loss, and fit the Chinchilla law L(N, D) = E + A/N^alpha + B/D^beta and power laws in compute.

    OMP_NUM_THREADS=1 nice -n 10 python scripts/scaling_sweep.py [--out benchmarks/results/scaling_sweep.json]
    python scripts/scaling_sweep.py --fit-only            # refit the recorded runs (no training)

Data: kjv.txt with the default model's rule (first 95% of lines train, last 5% held out), tokenized with the default
model's 4096-token BPE tokenizer (llmc/default_model): ~985 k training tokens, ~51 k held-out tokens.

Sizing (designed for ~25 minutes on one idle core, so that it fits the 60-minute budget on this 2-core machine
shared by 8 developers): training cost is ~6 * (N_blocks + d * V) FLOPs per token plus attention, so with a fixed
4096-token vocabulary the tied lm head (d * V) dominates the small models; at 1 thread llmc trained the smallest
model below at ~16 k tokens/s and the largest at ~2.8 k tokens/s in a probe before the sweep. Five sizes span 60x
in non-embedding parameters (13 k to 0.8 M); each is trained at 3-4 token budgets (125 k to 2 M tokens, geometric,
overlapping between sizes), 11.2 M training tokens in all with the repeated-data arm. Every (N, D) point is its own
run with its own warmup + cosine schedule ending at D (Hoffmann et al. 2022: intermediate checkpoints of a longer
schedule overestimate the loss). On the shared machine (load ~15, nice 10) the committed sweep took 89 minutes of
wall-clock training; docs/scaling.md has the numbers.

Repeated data (Muennighoff et al. 2023): the training split holds only ~1 M unique tokens, so a 2 M-token run sees
every token twice. Each run records its epochs; a small extra arm trains one size at a fixed D on 1/8 and 1/16 of
the training split (4 and 8 epochs), taken as a prefix or as 32 chunks spread over the book, to measure what
repetition costs on this corpus.

Results are written to the JSON after every run (a partial sweep is usable; rerunning skips recorded runs).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout: the in-place build of llmc

import llmc  # noqa: E402
from llmc.default import DEFAULT_DIR  # noqa: E402

BASE = dict(model_type="llama", architectures=["LlamaForCausalLM"], vocab_size=4096, max_position_embeddings=256,
            rms_norm_eps=1e-5, rope_parameters={"rope_theta": 10000.0, "rope_type": "default"},
            tie_word_embeddings=True, hidden_act="silu", attention_bias=False, mlp_bias=False)

# name: (hidden_size, layers, heads, intermediate_size); intermediate ~ 8/3 d rounded up to a multiple of 16 (Llama)
SIZES = {
    "s1": (32, 1, 2, 96),
    "s2": (48, 2, 3, 128),
    "s3": (64, 2, 4, 176),
    "s4": (96, 3, 4, 256),
    "s5": (128, 4, 4, 352),
}
K = 1000
# token budgets per size (the grid): geometric in D, overlapping between sizes
BUDGETS = {
    "s1": [250 * K, 500 * K, 1000 * K],
    "s2": [125 * K, 250 * K, 500 * K],
    "s3": [125 * K, 250 * K, 500 * K],
    "s4": [125 * K, 250 * K, 500 * K],
    "s5": [125 * K, 250 * K, 500 * K],
}
# the repeated-data arm: (size, D, unique training tokens used, how they are drawn from the training split):
# "prefix" = its first U tokens (Genesis onwards: fewer unique tokens *and* a narrower slice of the book),
# "spread" = 32 evenly spaced chunks of U/32 tokens (fewer unique tokens from every part of the book)
REPEAT = [("s2", 500 * K, 62_500, "prefix"), ("s2", 500 * K, 125 * K, "prefix"),
          ("s2", 500 * K, 62_500, "spread"), ("s2", 500 * K, 125 * K, "spread")]
N_CHUNKS = 32
# trained last, when there is time: longer runs of the small models (the last one is 2 epochs)
EXTRA = [("s2", 1000 * K), ("s3", 1000 * K), ("s1", 2000 * K)]

BATCH, SEQ = 8, 128


def config_of(size: str) -> dict:
    d, n_layers, heads, ff = SIZES[size]
    return dict(BASE, hidden_size=d, num_hidden_layers=n_layers, num_attention_heads=heads, num_key_value_heads=heads,
                head_dim=d // heads, intermediate_size=ff)


def lr_of(size: str) -> float:
    # a common heuristic: smaller widths take larger steps (~1/sqrt(d)); 3e-3 at d = 192 trained the default model
    return 3e-3 * math.sqrt(192 / SIZES[size][0])


def kjv_split(shared: str | None) -> tuple[str, str]:
    """(training text, held-out text) by the default model's rule: first 95% of lines train, last 5% held out.
    From the copy shipped in llmc.data when this llmc has it, else ../shared/corpora/kjv.txt."""
    try:
        from llmc import data

        return data.kjv_text("train"), data.kjv_text("heldout")
    except ImportError:
        pass
    path = Path(shared or os.environ.get("LLMC_SHARED") or ROOT.parent / "shared") / "corpora" / "kjv.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    cut = int(len(lines) * 0.95)
    return "\n".join(lines[:cut]) + "\n", "\n".join(lines[cut:]) + "\n"


def heldout_loss(trainer, eval_ids: np.ndarray) -> tuple[float, int]:
    """Mean next-token NLL (nats) over all of the held-out split in non-overlapping windows of SEQ tokens."""
    n_win = (len(eval_ids) - 1) // SEQ
    n_win -= n_win % BATCH
    starts = np.arange(n_win) * SEQ
    total = 0.0
    for b in range(0, n_win, BATCH):
        x = np.stack([eval_ids[s: s + SEQ + 1] for s in starts[b: b + BATCH]]).astype(np.int64)
        total += trainer.loss(x[:, :-1], x[:, 1:])
    return total / (n_win // BATCH), n_win * SEQ


def run_key(size, tokens, unique, subset="prefix"):
    return f"{size}/D={tokens}/U={unique}" + ("" if subset in ("prefix", "all") else f"/{subset}")


def subset_ids(train_ids: np.ndarray, unique: int, subset: str) -> np.ndarray:
    if unique >= len(train_ids) or subset == "prefix":
        return train_ids[:unique]
    chunk = unique // N_CHUNKS
    starts = np.linspace(0, len(train_ids) - chunk, N_CHUNKS).astype(np.int64)
    return np.concatenate([train_ids[s: s + chunk] for s in starts])


def plan(train_tokens: int) -> list[tuple[str, int, int, str]]:
    """All runs, in the order they are trained: token budgets ascending (a partial sweep has every size at the
    small budgets), then the repeated-data arm, then the extra longer runs."""
    runs = [(s, D, train_tokens) for D in sorted({d for b in BUDGETS.values() for d in b})
            for s in SIZES if D in BUDGETS[s]]
    return ([(s, D, train_tokens, "all") for s, D, _ in runs] + list(REPEAT)
            + [(s, D, train_tokens, "all") for s, D in EXTRA])


def save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def train_one(size, tokens, unique, train_ids, eval_ids, subset="prefix") -> dict:
    cfg = config_of(size)
    model = llmc.Model.init(cfg, seed=0)
    ids = subset_ids(train_ids, unique, subset)
    steps = max(1, round(tokens / (BATCH * SEQ)))
    try:  # llmc >= wave 2 hands out read-only views unless asked
        params = model.state_dict(writable=True)
    except TypeError:
        params = model.state_dict()
    trainer = llmc.training.Trainer(model.config, params, BATCH, SEQ)
    t0 = time.time()
    hist = llmc.train(model, ids, steps=steps, batch_size=BATCH, seq_len=SEQ, lr=lr_of(size), weight_decay=0.1,
                      warmup=max(1, steps // 20), grad_clip=1.0, seed=0, progress=False, trainer=trainer)
    seconds = time.time() - t0
    loss, n_eval = heldout_loss(trainer, eval_ids)
    tail = max(1, steps // 20)
    return dict(size=size, config={k: cfg[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                                       "num_key_value_heads", "head_dim", "intermediate_size",
                                                       "vocab_size", "tie_word_embeddings")},
                steps=steps, batch=BATCH, seq_len=SEQ, tokens=steps * BATCH * SEQ, unique_tokens=int(len(ids)),
                subset=subset if len(ids) < len(train_ids) else "all",
                epochs=steps * BATCH * SEQ / len(ids), lr=lr_of(size), seed=0, heldout_loss=loss,
                heldout_tokens=n_eval, final_train_loss=float(np.mean(hist.train_loss[-tail:])),
                train_loss_every_10=[float(x) for x in hist.train_loss[::10]], train_seconds=seconds)


def fit(data: dict) -> dict:
    """Fit both laws to the recorded main-grid runs and annotate each run with its FLOPs."""
    from llmc import scaling

    runs = [r for r in data["runs"] if r["unique_tokens"] == data["train_tokens"]]
    for r in data["runs"]:
        cfg = dict(BASE, **r["config"])
        r["n_params"] = scaling.n_params(cfg)
        r["n_params_non_embedding"] = scaling.n_params(cfg, non_embedding=True)
        r["train_flops_per_token"] = scaling.flops(cfg, r["seq_len"], kind="train").total
        r["train_flops"] = r["train_flops_per_token"] * r["tokens"]
        r["flops_6ND"] = 6 * r["n_params_non_embedding"] * r["tokens"]
    out = {}
    if len(runs) >= 6:
        N = np.array([r["n_params_non_embedding"] for r in runs], float)
        D = np.array([r["tokens"] for r in runs], float)
        L = np.array([r["heldout_loss"] for r in runs], float)
        C = np.array([r["train_flops"] for r in runs], float)
        ch = scaling.fit_chinchilla(N, D, L, starts=256, bootstrap=100, seed=0)
        out["chinchilla"] = ch.as_dict()
        # the compute frontier: the lowest loss at or below each compute, then L(C) = E + a C^-b on it
        order = np.argsort(C)
        best, frontier = np.inf, []
        for i in order:
            if L[i] < best:
                best = L[i]
                frontier.append(int(i))
        out["frontier_runs"] = [run_key(runs[i]["size"], runs[i]["tokens"], runs[i]["unique_tokens"])
                                for i in frontier]
        if len(frontier) >= 4:
            pl = scaling.fit_power_law(C[frontier], L[frontier], offset=True, bootstrap=100, seed=0)
            out["loss_vs_compute"] = pl.as_dict()
        law = ch.law()
        out["optimum"] = [scaling.compute_optimal(c, law=law).as_dict() for c in np.geomspace(1e12, 1e16, 9)]
        # the same fit with N = all parameters (the Chinchilla paper's N) instead of non-embedding ones
        Nt = np.array([r["n_params"] for r in runs], float)
        out["chinchilla_total_n"] = scaling.fit_chinchilla(Nt, D, L, starts=256).as_dict()
    return out


def markdown(data: dict) -> str:
    """The runs and fits as Markdown tables (for docs/scaling.md)."""
    rows = ["| size | d, layers, heads, MLP | N non-emb. | N total | D (tokens) | unique | epochs | train FLOPs "
            "| FLOPs / 6ND | held-out loss | train loss | seconds |", "|" + "---|" * 12]
    for r in sorted(data["runs"], key=lambda r: (r["unique_tokens"] != data["train_tokens"], r["size"], r["tokens"],
                                                 -r["unique_tokens"])):
        c = r["config"]
        rows.append(f"| {r['size']} | {c['hidden_size']}, {c['num_hidden_layers']}, {c['num_attention_heads']}, "
                    f"{c['intermediate_size']} | {r.get('n_params_non_embedding', 0):,} | {r.get('n_params', 0):,} | "
                    f"{r['tokens']:,} | {r['unique_tokens']:,} | {r['epochs']:.2f} | {r.get('train_flops', 0):.3g} | "
                    f"{r.get('train_flops', 0) / max(1, r.get('flops_6ND', 1)):.2f} | {r['heldout_loss']:.4f} | "
                    f"{r['final_train_loss']:.4f} | {r['train_seconds']:.0f} |")
    out = "\n".join(rows)
    fit = data.get("fit", {})
    if "chinchilla" in fit:
        ch = fit["chinchilla"]
        iv = ch.get("intervals", {})
        out += "\n\n| parameter | fit | 95% bootstrap interval |\n|---|---|---|\n"
        for k in ("E", "A", "B", "alpha", "beta"):
            lo, hi = iv.get(k, (float("nan"), float("nan")))
            out += f"| {k} | {ch[k]:.4g} | {lo:.4g} – {hi:.4g} |\n"
    if "loss_vs_compute" in fit:
        pl = fit["loss_vs_compute"]
        out += (f"\nfrontier: L(C) = {pl['c']:.4g} + {pl['a']:.4g} C^-{pl['b']:.4g} "
                f"(b in {pl['intervals'].get('b', ['?', '?'])})\n")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scaling_sweep.json"))
    ap.add_argument("--shared", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--fit-only", action="store_true")
    ap.add_argument("--only", default=None, help="comma-separated sizes to train (default: all)")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.is_file() else {}

    if not args.fit_only:
        llmc.set_num_threads(args.threads)
        tok = llmc.Tokenizer.from_file(DEFAULT_DIR / "tokenizer.json")
        train_text, eval_text = kjv_split(args.shared)
        train_ids = np.asarray(tok.encode(train_text), np.int32)
        eval_ids = np.asarray(tok.encode(eval_text), np.int32)
        data.setdefault("runs", [])
        data.update(corpus="kjv.txt", split="first 95% of lines train, last 5% held out",
                    tokenizer="llmc/default_model/tokenizer.json (4096 tokens)", train_tokens=int(len(train_ids)),
                    heldout_tokens=int(len(eval_ids)), threads=args.threads, batch=BATCH, seq_len=SEQ,
                    schedule="AdamW (0.9, 0.95), wd 0.1, clip 1.0, 5% warmup + cosine to 10%, lr 3e-3 sqrt(192/d)")
        done = {run_key(r["size"], r["tokens"], r["unique_tokens"], r.get("subset", "prefix")) for r in data["runs"]}
        todo = [(s, D, min(u, len(train_ids)), sub) for s, D, u, sub in plan(len(train_ids))]
        if args.only:
            todo = [r for r in todo if r[0] in args.only.split(",")]
        t_start = time.time()
        for i, (size, D, U, sub) in enumerate(todo):
            steps = max(1, round(D / (BATCH * SEQ)))
            U = len(subset_ids(train_ids, U, sub))
            if run_key(size, steps * BATCH * SEQ, U, "prefix" if U == len(train_ids) else sub) in done:
                continue
            r = train_one(size, D, U, train_ids, eval_ids, sub)
            data["runs"].append(r)
            data["sweep_seconds"] = data.get("sweep_seconds", 0.0) + r["train_seconds"]
            save(out, data)
            print(f"[{i + 1}/{len(todo)}] {size} D={r['tokens']:>9,} U={U:>9,} {sub} ({r['epochs']:.2f} epochs): held-out "
                  f"{r['heldout_loss']:.4f}, train {r['final_train_loss']:.4f}, {r['train_seconds']:.0f}s "
                  f"({r['tokens'] / r['train_seconds']:.0f} tok/s); {time.time() - t_start:.0f}s so far", flush=True)
    try:
        data["fit"] = fit(data)
    except ImportError as e:  # scipy missing: keep the runs
        print(f"fit skipped: {e}")
    save(out, data)
    print(markdown(data))


if __name__ == "__main__":
    main()
