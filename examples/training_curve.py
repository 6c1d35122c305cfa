"""Plot the default model's training curve (train and held-out loss vs step) from the record that
scripts/train_default.py writes next to the model, into training_curve.png in --out (default: a new temporary
folder; the committed examples/training_curve.png was made with `--out examples`).

    python examples/training_curve.py [path/to/training.json] [--out DIR]
"""
import argparse
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import llmc  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="plot the default model's training curve")
    ap.add_argument("record", nargs="?", default=str(llmc.default.DEFAULT_DIR / "training.json"),
                    help="a training.json written by scripts/train_default.py")
    ap.add_argument("--out", default=None, help="folder for training_curve.png (default: a new temporary folder)")
    args = ap.parse_args()
    src = Path(args.record)
    rec = json.loads(src.read_text())
    h = rec["history"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot([s + 1 for s in h["step"]], h["train_loss"], lw=1, alpha=0.8, label="train loss (batch)")
    ax.plot([s + 1 for s in h["eval_step"]], h["eval_loss"], "o-", label="held-out loss (last 5% of kjv.txt)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(f"llmc default model: {rec['parameters'] / 1e6:.2f} M params, {rec['tokens_seen'] / 1e6:.1f} M tokens "
                 f"({rec['epochs']:.1f} epochs); held-out ppl {rec['heldout_ppl']:.1f}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="llmc-curve-"))
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "training_curve.png"
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
