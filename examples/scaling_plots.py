"""Plots of llmc's scaling sweep on the King James Bible (scripts/scaling_sweep.py), into examples/scaling_laws.png:

  1. held-out loss against training compute (exact FLOPs, llmc.scaling.flops), one line per model size, the
     compute frontier and the power law fitted to it;
  2. iso-loss contours of the fitted Chinchilla law L(N, D) with the runs, iso-FLOP lines and the efficient
     frontier (compute_optimal);
  3. tokens per parameter at the optimum against compute: the law fitted on KJV, Hoffmann et al. 2022,
     Besiroglu et al. 2024 and the ~20 rule, with the compute where the optimum needs more than one epoch of KJV;
  4. repeated data (Muennighoff et al. 2023): one model at a fixed D on fewer unique tokens (more epochs):
     held-out loss rises, training loss falls, and the law (which assumes fresh tokens) misses both ways.

    pip install "llmc[examples,scaling]"
    python examples/scaling_plots.py [--results benchmarks/results/scaling_sweep.json] [--out DIR]

It writes scaling_laws.png into --out (default: a new temporary folder; the committed examples/scaling_laws.png
was made with `--out examples`).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from llmc import scaling

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "scaling_sweep.json"

# Muennighoff et al. (2023), eq. 5: repeated tokens are worth less; R_D* fitted on their runs
R_D_STAR = 15.39


def effective_tokens(unique: float, tokens: float) -> float:
    """D' = U + U R* (1 - exp(-R / R*)), R = epochs - 1 repetitions (Muennighoff et al. 2023)."""
    if tokens <= unique:
        return tokens
    R = tokens / unique - 1.0
    return unique + unique * R_D_STAR * (1.0 - np.exp(-R / R_D_STAR))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", default=str(RESULTS), help="the JSON written by scripts/scaling_sweep.py")
    ap.add_argument("--out", default=None, help="folder for scaling_laws.png (default: a new temporary folder)")
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(args.results).read_text())
    fit = data.get("fit") or {}
    if "chinchilla" not in fit:
        raise SystemExit("no fit in the results: run `python scripts/scaling_sweep.py --fit-only` first")
    U = data["train_tokens"]
    runs = [r for r in data["runs"] if "train_flops" in r]
    main_runs = [r for r in runs if r["unique_tokens"] == U]
    rep_runs = [r for r in runs if r["unique_tokens"] != U]
    ch = fit["chinchilla"]
    law = scaling.ChinchillaLaw(ch["E"], ch["A"], ch["B"], ch["alpha"], ch["beta"], name="KJV fit")
    sizes = sorted({r["size"] for r in main_runs}, key=lambda s: next(r["n_params_non_embedding"]
                                                                      for r in main_runs if r["size"] == s))
    cmap = plt.get_cmap("viridis")
    color = {s: cmap(i / max(1, len(sizes) - 1)) for i, s in enumerate(sizes)}
    n_of = {s: next(r["n_params_non_embedding"] for r in main_runs if r["size"] == s) for s in sizes}

    fig, ax = plt.subplots(2, 2, figsize=(13, 10))
    # 1. loss vs compute
    a = ax[0, 0]
    for s in sizes:
        rs = sorted((r for r in main_runs if r["size"] == s), key=lambda r: r["tokens"])
        a.plot([r["train_flops"] for r in rs], [r["heldout_loss"] for r in rs], "o-", color=color[s],
               label=f"N = {n_of[s] / 1e3:.0f}k non-emb.")
        for r in rs:
            if r["epochs"] > 1.05:
                a.annotate(f"{r['epochs']:.1f} ep.", (r["train_flops"], r["heldout_loss"]), fontsize=7,
                           xytext=(3, 3), textcoords="offset points")
    for r in rep_runs:
        a.plot(r["train_flops"], r["heldout_loss"], "x", color=color[r["size"]], ms=9, mew=2)
        a.annotate(f"{r['epochs']:.0f} epochs", (r["train_flops"], r["heldout_loss"]), fontsize=7,
                   xytext=(4, -10), textcoords="offset points")
    front = [r for r in main_runs if f"{r['size']}/D={r['tokens']}/U={r['unique_tokens']}" in fit.get("frontier_runs", [])]
    front.sort(key=lambda r: r["train_flops"])
    a.plot([r["train_flops"] for r in front], [r["heldout_loss"] for r in front], "s", mfc="none", mec="k", ms=11,
           label="compute frontier")
    if "loss_vs_compute" in fit:
        pl = fit["loss_vs_compute"]
        c = np.geomspace(min(r["train_flops"] for r in main_runs), max(r["train_flops"] for r in main_runs) * 3, 100)
        a.plot(c, pl["a"] * c ** -pl["b"] + pl["c"], "k--", lw=1,
               label=f"L = {pl['c']:.2f} + {pl['a']:.3g} C^-{pl['b']:.3f}")
    a.set_xscale("log")
    a.set_xlabel("training compute C (FLOPs, exact count)")
    a.set_ylabel("held-out loss (nats/token)")
    a.set_title("KJV held-out loss vs compute (x: fewer unique tokens, repeated)")
    a.legend(fontsize=8)

    # 2. iso-loss contours of the fitted law
    a = ax[0, 1]
    Ng = np.geomspace(1e3, 3e6, 200)
    Dg = np.geomspace(5e4, 1e9, 200)
    NN, DD = np.meshgrid(Ng, Dg)
    LL = law.loss(NN, DD)
    cs = a.contour(NN, DD, LL, levels=np.round(np.linspace(LL.min() + 0.05, min(LL.max(), 6.5), 12), 2),
                   cmap="magma_r", linewidths=0.8)
    a.clabel(cs, fontsize=7, fmt="%.2f")
    Cs = np.geomspace(6 * Ng[0] * Dg[0] * 10, 6 * Ng[-1] * Dg[-1] / 10, 100)
    opt = [scaling.compute_optimal(c, law=law) for c in Cs]
    a.plot([o.n_params for o in opt], [o.tokens for o in opt], "b-", lw=2, label="efficient frontier (fit)")
    for c in (1e11, 1e12, 1e13, 1e14, 1e15):
        a.plot(Ng, c / (6 * Ng), ":", color="gray", lw=0.8)
        a.annotate(f"6ND = {c:.0e}", (Ng[-1] * 0.9, c / (6 * Ng[-1] * 0.9)), fontsize=7, color="gray",
                   ha="right", va="bottom")
    for r in main_runs:
        a.plot(r["n_params_non_embedding"], r["tokens"], "o", color=color[r["size"]])
    a.axhline(U, color="r", lw=1)
    a.annotate("one epoch of KJV (unique training tokens)", (Ng[0] * 1.2, U * 1.08), color="r", fontsize=8)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlim(Ng[0], Ng[-1])
    a.set_ylim(Dg[0], Dg[-1])
    a.set_xlabel("non-embedding parameters N")
    a.set_ylabel("training tokens D")
    a.set_title(f"fitted L = {law.E:.2f} + {law.A:.3g}/N^{law.alpha:.3f} + {law.B:.3g}/D^{law.beta:.3f}")
    a.legend(fontsize=8, loc="lower right")

    # 3. tokens per parameter at the optimum
    a = ax[1, 0]
    Cs = np.geomspace(1e10, 1e24, 200)
    for lw_, name, style in ((law, "fitted on KJV (non-embedding N)", "b-"), (scaling.HOFFMANN, "Hoffmann et al. 2022", "k--"),
                             (scaling.BESIROGLU, "Besiroglu et al. 2024", "g--")):
        a.plot(Cs, [scaling.compute_optimal(c, law=lw_).tokens_per_param for c in Cs], style, label=name)
    a.axhline(20, color="gray", ls=":", label="~20 tokens/parameter")
    # where the fitted optimum asks for more than one epoch of the corpus
    d_opt = np.array([scaling.compute_optimal(c, law=law).tokens for c in Cs])
    over = Cs[d_opt > U]
    if over.size:
        a.axvspan(over[0], Cs[-1], color="r", alpha=0.08)
        a.annotate("red: the fitted optimum needs > 1 epoch of KJV\n(repeated data: Muennighoff et al.)",
                   (over[0] * 1.5, 1.5), color="r", fontsize=8)
    lo, hi = min(r["train_flops"] for r in main_runs), max(r["train_flops"] for r in main_runs)
    a.axvspan(lo, hi, color="b", alpha=0.08)
    a.annotate("sweep", (lo * 1.2, 300), color="b", fontsize=8)
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel("compute C = 6ND (FLOPs)")
    a.set_ylabel("D_opt / N_opt (tokens per parameter)")
    a.set_title("tokens per parameter at the compute optimum")
    a.legend(fontsize=8)

    # 4. repeated data
    a = ax[1, 1]
    if rep_runs:
        s = rep_runs[0]["size"]
        D = rep_runs[0]["tokens"]
        fresh = [r for r in main_runs if r["size"] == s and r["tokens"] == D]
        n = (fresh or rep_runs)[0]["n_params_non_embedding"]
        for sub, hc, tc in (("prefix", "C3", "C0"), ("spread", "C1", "C9")):
            pts = sorted(fresh + [r for r in rep_runs if r["size"] == s and r["tokens"] == D
                                  and r.get("subset", "prefix") == sub], key=lambda r: r["epochs"])
            if len(pts) < 2:
                continue
            ep = [r["epochs"] for r in pts]
            what = "first U tokens" if sub == "prefix" else "32 chunks spread over the book"
            a.plot(ep, [r["heldout_loss"] for r in pts], "o-", color=hc, label=f"held-out, {what}")
            a.plot(ep, [r["final_train_loss"] for r in pts], "s--", color=tc, label=f"training, {what}")
        ep = np.geomspace(min(r["epochs"] for r in rep_runs + fresh), max(r["epochs"] for r in rep_runs), 50)
        a.axhline(law.loss(n, D), color="k", ls="--", lw=1, label=f"fitted law, D = {D / 1e3:.0f}k fresh tokens")
        a.plot(ep, [law.loss(n, effective_tokens(D / e, D)) for e in ep], "k:",
               label="fitted law at Muennighoff's effective D'")
        a.set_xscale("log")
        a.set_xlabel(f"epochs over the unique tokens U (N = {n / 1e3:.0f}k, D = {D / 1e3:.0f}k fixed)")
        a.set_ylabel("loss (nats/token)")
        a.set_title("repeating a small corpus: same compute, fewer unique tokens")
        a.legend(fontsize=7)
    fig.suptitle(f"llmc scaling sweep on KJV: {len(main_runs)} + {len(rep_runs)} runs, "
                 f"{sum(r['train_seconds'] for r in runs) / 60:.0f} min at 1 thread", fontsize=12)
    fig.tight_layout()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llmc-scaling-"))
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "scaling_laws.png", dpi=110)
    print(f"wrote {folder / 'scaling_laws.png'}")


if __name__ == "__main__":
    main()
