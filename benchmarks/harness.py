"""What every benchmark in this folder shares: timing a call, the --out option, writing the JSON result.

The benchmarks import it as a sibling module (`from harness import best_time, ...`): Python puts a script's own
folder first on sys.path, so `python benchmarks/bench_x.py` finds it from any directory, while llmc itself comes
from the installed package."""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path


def best_time(fn, repeats: int, min_time: float = 0.05, max_calls: int = 1 << 16) -> float:
    """Best wall time of one call of fn, in seconds: one warm-up call, then `repeats` samples, each averaging enough
    calls (doubling up to max_calls) to last min_time, so a microsecond kernel is not timed by the clock's grain."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - t0 >= min_time or n >= max_calls:
            break
        n *= 2
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def best_call(fn, repeats: int, warmup: bool = True, clock=time.perf_counter) -> float:
    """Best time of single calls of fn, in seconds, for calls long enough to time one at a time (a generation, a
    model load): a warm-up call unless warmup=False, then `repeats` timed calls. clock=time.process_time gives the
    CPU time of the process instead of wall time: for single-threaded work on a busy shared machine, where wall
    time mostly measures waiting for a core."""
    if warmup:
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def add_out_arg(ap, name: str) -> None:
    """--out: the JSON file to write; a temporary folder by default, benchmarks/results/<name>.json to refresh the
    committed one."""
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", f"{name}.json"),
                    help=f"the JSON file to write (benchmarks/results/{name}.json to refresh the committed one)")


def write_json(path, obj) -> None:
    """Write obj as indented JSON to path (folders made as needed) and say where."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(obj, indent=1))
    print(f"wrote {p}")


def load_average() -> str:
    """The 1/5/15-minute load average ("2.10 1.85 1.40"), to print next to the numbers: on a shared machine other
    processes' load changes every timing."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover (not on this platform)
        return "n/a"


# The two model shapes the decode benchmarks (bench_quant.py, bench_decode.py) run: GPT-2 small and a ~112M Llama.
DECODE_CONFIGS = {
    "gpt2": dict(model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024),
    "llama": dict(model_type="llama", vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=14,
                  num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=1024,
                  tie_word_embeddings=True, rope_theta=10000.0, rms_norm_eps=1e-5),
}
