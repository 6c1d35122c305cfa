"""Held-out KJV perplexity and weight memory of the default model for every dtype recipe (the README table).

    python scripts/quant_ppl_table.py [--tokens N]    (writes benchmarks/results/quant_ppl.json)

Held-out text: the last 5% of kjv.txt's lines (the split rule of scripts/train_default.py), sliding windows of the
training context with stride context/2, as tests/test_default_model.py measures the fp32 record."""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import llmc

ROOT = Path(__file__).resolve().parent.parent
TYPES = ["f32", "bf16", "f16", "q8_0", "q6_k", "q5_k", "q5_1", "q5_0", "q4_k", "q4_1", "q4_0"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=0, help="only the first N held-out tokens (0: all)")
    args = ap.parse_args()
    shared = Path(os.environ.get("LLMC_SHARED", ROOT.parent / "shared"))
    lines = (shared / "corpora" / "kjv.txt").read_text(encoding="utf-8").splitlines()
    held = "\n".join(lines[int(len(lines) * 0.95):]) + "\n"
    base = llmc.load_default()
    rec = json.loads((base.path / "training.json").read_text())
    ids = base.tokenizer.encode(held)
    if args.tokens:
        ids = ids[: args.tokens]
    rows = []
    for dt in TYPES:
        m = llmc.Model.load(base.path, dtype=dt)
        t0 = time.perf_counter()
        r = llmc.perplexity(m, ids, context_length=rec["seq_len"], stride=rec["seq_len"] // 2, progress=False)
        rows.append(dict(dtype=dt, ppl=r.ppl, weight_bytes=m.weight_bytes(), seconds=time.perf_counter() - t0,
                         types=sorted(set(m.weight_types().values()))))
        print(f"{dt:6s} ppl {r.ppl:8.4f}  weights {m.weight_bytes() / 2**20:6.2f} MiB  "
              f"({time.perf_counter() - t0:.1f} s)", flush=True)
    f32 = rows[0]["ppl"]
    print(f"\n| dtype | held-out ppl | vs f32 | weights (MiB) | tensor types |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dtype']} | {r['ppl']:.3f} | {100 * (r['ppl'] / f32 - 1):+.2f}% | "
              f"{r['weight_bytes'] / 2**20:.2f} | {', '.join(r['types'])} |")
    out = ROOT / "benchmarks" / "results" / "quant_ppl.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(tokens=len(ids), context=rec["seq_len"], rows=rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
