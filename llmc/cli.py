"""The `llmc` command line (also `python -m llmc`).

    llmc demo      a tour of what llmc computes, on the default model when one ships (for now: the ops)
    llmc info      versions, threads, SIMD level and BLAS of this installation
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import llmc


def _bar(p: float, width: int = 30) -> str:
    n = int(round(p * width))
    return "#" * n + "." * (width - n)


def cmd_demo(args: argparse.Namespace) -> int:
    words = ["the", "a", "light", "darkness", "and", "God", "was", "said"]
    logits = np.array([3.1, 2.2, 1.5, 1.4, 0.3, 0.2, -0.5, -2.0], np.float32)
    print("llmc demo: turning next-token scores (logits) into probabilities\n")
    print("logits:", ", ".join(f"{w}={x:+.1f}" for w, x in zip(words, logits)))
    for t in args.temperatures:
        p = llmc.softmax(logits, temperature=t)
        print(f"\nsoftmax at temperature {t:g} (entropy {float(-(p * np.log(p)).sum()):.2f} nats):")
        for w, pi in zip(words, p):
            print(f"  {w:<9} {pi:6.3f} {_bar(float(pi))}")
    h = llmc.hardmax(logits)
    print("\nhardmax (the temperature -> 0 limit, greedy decoding):", words[int(h.argmax())])
    targets = np.array([0, 1, 3])
    rows = np.stack([logits, np.roll(logits, 1), np.roll(logits, 3)])
    print(f"cross-entropy of targets {[words[i] for i in targets]} under three rows of logits: "
          f"{llmc.cross_entropy(rows, targets):.3f} nats, perplexity {llmc.perplexity_from_logits(rows, targets):.2f}")
    print(f"\nthreads={llmc.get_num_threads()} simd={llmc.simd_info()['active']}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    print(f"llmc {llmc.__version__}")
    print(f"threads: {llmc.get_num_threads()}")
    print(f"simd: {llmc.simd_info()}")
    print(f"blas: {llmc.blas_info()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="llmc", description="llmc: large language models on a fast, inspectable C core")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="a short tour of llmc")
    d.add_argument("--temperatures", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    d.set_defaults(fn=cmd_demo)
    i = sub.add_parser("info", help="versions, threads, SIMD level and BLAS")
    i.set_defaults(fn=cmd_info)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # exits with code 2 and a message on bad arguments
    try:
        return args.fn(args)
    except (ValueError, TypeError, OSError) as e:
        print(f"llmc: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
