"""Plot the default model's training curve (train and held-out loss vs step) from the record that
scripts/train_default.py writes next to the model, into examples/training_curve.png.

    python examples/training_curve.py [path/to/training.json]
"""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import llmc  # noqa: E402


def main():
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else llmc.default.DEFAULT_DIR / "training.json"
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
    out = Path(__file__).parent / "training_curve.png"
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
