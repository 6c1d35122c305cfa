"""Loading a shipped encoding: llmc.get_encoding(name) against tiktoken.get_encoding(name), both offline.

    python benchmarks/bench_encodings.py [--repeats 5] [--out benchmarks/results/encodings.json]

What a new user waits for on the first call. tiktoken reads the same rank files (llmc's, put in a temporary
tiktoken cache under the names tiktoken downloads them to, so its hash check passes and nothing is downloaded) and
builds its CoreBPE; llmc parses the file in C and builds its tables. Each load is a fresh object (llmc's per-process
cache and tiktoken's registry are bypassed), best of --repeats, the two libraries timed in turns. Prints a table and
writes JSON to --out (default: llmc-bench/encodings.json in the temporary folder).
"""
import argparse
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import llmc
from llmc.encodings import ENCODINGS_DIR, encoding_rank_bytes

URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
NAMES = {"r50k_base": "r50k_base", "cl100k_base": "cl100k_base", "o200k_base": "o200k_base"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="loads per library and encoding (best is kept)")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "encodings.json"),
                    help="the JSON file to write (benchmarks/results/encodings.json to refresh the committed one)")
    args = ap.parse_args()

    cache = tempfile.mkdtemp(prefix="tiktoken-cache-")
    for name in NAMES:
        Path(cache, hashlib.sha1(URL.format(name).encode()).hexdigest()).write_bytes(encoding_rank_bytes(name))
    os.environ["TIKTOKEN_CACHE_DIR"] = cache
    import tiktoken
    import tiktoken.registry
    from tiktoken_ext import openai_public

    def load_tiktoken(name):
        return tiktoken.Encoding(**openai_public.ENCODING_CONSTRUCTORS[name]())  # not the registry's cached one

    def load_llmc(name):
        meta = json.loads((ENCODINGS_DIR / f"{name}.json").read_text())
        return llmc.Tokenizer.from_tiktoken(ENCODINGS_DIR / f"{name}.tiktoken", pattern=meta["pat_str"],
                                            special_tokens=meta["special_tokens"])

    rows = []
    for name in NAMES:
        best = {"llmc": float("inf"), "tiktoken": float("inf")}
        for _ in range(args.repeats):
            for lib, fn in (("llmc", load_llmc), ("tiktoken", load_tiktoken)):
                t0 = time.perf_counter()
                enc = fn(name)
                best[lib] = min(best[lib], time.perf_counter() - t0)
                del enc
        text = "hello world, the same ids"
        assert load_llmc(name).encode(text) == load_tiktoken(name).encode(text)
        rows.append(dict(encoding=name, llmc_ms=best["llmc"] * 1e3, tiktoken_ms=best["tiktoken"] * 1e3,
                         speedup=best["tiktoken"] / best["llmc"]))
    t0 = time.perf_counter()
    llmc.get_encoding("cl100k_base")
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    llmc.get_encoding("cl100k_base")
    again = time.perf_counter() - t0

    lines = ["| encoding | llmc load ms | tiktoken load ms | llmc speed-up |", "|---|---:|---:|---:|"]
    lines += [f"| {r['encoding']} | {r['llmc_ms']:.0f} | {r['tiktoken_ms']:.0f} | {r['speedup']:.2f}x |" for r in rows]
    table = "\n".join(lines)
    print(table)
    print(f"llmc.get_encoding('cl100k_base'): first call {first * 1e3:.0f} ms, then {again * 1e6:.1f} us (cached)")
    meta = dict(cpu=platform.processor() or platform.machine(), cores=os.cpu_count(), threads=llmc.get_num_threads(),
                tiktoken=tiktoken.__version__, python=platform.python_version(), repeats=args.repeats,
                command="python benchmarks/bench_encodings.py " + " ".join(f"--repeats {args.repeats}".split()),
                date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), loadavg=open("/proc/loadavg").read().split()[:3])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": rows, "cached_call_us": again * 1e6,
                               "table_markdown": table}, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
