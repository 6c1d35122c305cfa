"""Tokenizer speed by corpus, threads and input kind: llmc vs tiktoken, in one run.

    python benchmarks/bench_tokenizer_corpora.py [--mb 1] [--repeat 5] [--out FILE]

Corpora: the shipped KJV text, and seeded synthetic Chinese prose and mixed web-like text (benchmarks/corpora.py),
each cut to --mb megabytes (whole-text rows) or 4x that (long-text rows). Encodings gpt2 (r50k), cl100k_base and
o200k_base from llmc's shipped rank files; tiktoken builds its encoder from the same files (no download).

- encode (1 thread): one whole text, llmc.set_num_threads(1) vs tiktoken's encode_ordinary (single-threaded).
  "first" is llmc's first call on a freshly loaded tokenizer (its memo of BPE pair checks still empty; the other
  columns are the best of --repeat calls, as for tiktoken).
- long text (1 vs 2 threads): llmc encode of a text of 4 x --mb MB at 1 and at 2 threads (llmc cuts a long text at
  line starts into chunks that its threads take in turn); the ratio is the 2-thread speed over the 1-thread one
  (wall clock). On a machine busier than its cores the wall clock cannot show the scaling, so "cpu 2/1" gives it
  from CPU time: the 1-thread call's CPU time over the busiest thread's CPU time in the 2-thread call (Linux
  schedstat), i.e. the speed-up the split and the duplicated work allow when each thread has a core.
- decode: 250k ids (list, and int64 NumPy array) to str and to bytes, llmc vs tiktoken's decode / decode_bytes.
Outputs are checked to be identical before timing. Every sample times the libraries in turn (interleaved), so load
from other processes hits them alike; each number is the best of --repeat. Prints tables and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc
import llmc.data
from llmc.encodings import ENCODINGS_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import corpora  # noqa: E402  (the synthetic corpora beside this script)

NAMES = {"gpt2": "r50k_base", "cl100k_base": "cl100k_base", "o200k_base": "o200k_base"}


def load_tiktoken(name):
    import tiktoken
    import tiktoken.load

    stem = NAMES[name]
    meta = json.loads((Path(ENCODINGS_DIR) / f"{stem}.json").read_text())
    ranks = tiktoken.load.load_tiktoken_bpe(str(Path(ENCODINGS_DIR) / f"{stem}.tiktoken"))
    return tiktoken.Encoding(name, pat_str=meta["pat_str"], mergeable_ranks=ranks,
                             special_tokens=meta.get("special_tokens", {}))


def interleaved(fns: dict, repeat: int) -> dict:
    best = {k: float("inf") for k in fns}
    for f in fns.values():
        f()  # warm up
    for _ in range(repeat):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t0)
    return best


def cut(text: str, n_bytes: int) -> str:
    return text.encode()[:n_bytes].decode("utf-8", "ignore")


def thread_cpu() -> dict:
    """{thread id: CPU nanoseconds so far} for this process's threads (Linux schedstat; {} elsewhere)."""
    out = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
    except OSError:
        return {}
    return out


def cpu_profile(f, repeat: int):
    """(least total CPU s, least busiest-thread CPU s) of f() over repeat calls."""
    total = busiest = float("inf")
    for _ in range(repeat):
        a = thread_cpu()
        f()
        b = thread_cpu()
        used = [(b[k] - a.get(k, 0)) / 1e9 for k in b]
        if used:
            total, busiest = min(total, sum(used)), min(busiest, max(used))
    return total, busiest


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=1.0, help="megabytes per whole text (long texts: 4x)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "tokenizer_corpora.json"),
                    help="the JSON file to write (benchmarks/results/tokenizer_corpora.json to refresh the committed one)")
    args = ap.parse_args()
    n = int(args.mb * 1e6)
    kjv = llmc.data.kjv_text("all")
    kjv_long = kjv * (1 + 4 * n // len(kjv.encode()))
    texts = {"kjv": cut(kjv, n), "chinese": corpora.chinese(n), "web": corpora.web(n, english_lines=kjv.split("\n"))}
    long_texts = {"kjv": cut(kjv_long, 4 * n), "chinese": corpora.chinese(4 * n, seed=1),
                  "web": corpora.web(4 * n, seed=1, english_lines=kjv.split("\n"))}
    load0 = os.getloadavg()[0]
    enc_rows, thr_rows, dec_rows = [], [], []
    for name in NAMES:
        tok, ref = llmc.get_encoding(name), load_tiktoken(name)
        llmc.set_num_threads(1)
        for cname, text in texts.items():
            fresh = llmc.Tokenizer.from_tiktoken(Path(ENCODINGS_DIR) / f"{NAMES[name]}.tiktoken")
            t0 = time.perf_counter()
            mine = fresh.encode(text, disallowed_special=())
            first = time.perf_counter() - t0
            del fresh
            assert mine == ref.encode_ordinary(text), (name, cname)
            t = interleaved({"llmc": lambda: tok.encode(text, disallowed_special=()),
                             "tiktoken": lambda: ref.encode_ordinary(text)}, args.repeat)
            mb = len(text.encode()) / 1e6
            enc_rows.append({"encoding": name, "corpus": cname, "MB": round(mb, 2), "llmc_MBps": mb / t["llmc"],
                             "llmc_first_MBps": mb / first, "tiktoken_MBps": mb / t["tiktoken"],
                             "llmc/tiktoken": t["tiktoken"] / t["llmc"], "first/tiktoken": t["tiktoken"] / first})
            print(json.dumps(enc_rows[-1]), flush=True)
        for cname, text in long_texts.items():
            def at(nt, text=text):
                def f():
                    llmc.set_num_threads(nt)
                    return tok.encode(text, disallowed_special=())
                return f
            assert at(2)() == at(1)()
            t = interleaved({"1": at(1), "2": at(2)}, max(2, args.repeat // 2))
            cpu1, _ = cpu_profile(at(1), max(2, args.repeat // 2))
            cpu2, busiest2 = cpu_profile(at(2), max(2, args.repeat // 2))
            mb = len(text.encode()) / 1e6
            thr_rows.append({"encoding": name, "corpus": cname, "MB": round(mb, 2), "MBps_1": mb / t["1"],
                             "MBps_2": mb / t["2"], "2/1": t["1"] / t["2"], "cpu_1": cpu1, "cpu_2": cpu2,
                             "busiest_2": busiest2, "cpu 2/1": cpu1 / busiest2 if busiest2 > 0 else None})
            print(json.dumps(thr_rows[-1]), flush=True)
        llmc.set_num_threads(1)
        ids = tok.encode(cut(kjv, 1_000_000) + texts["chinese"][:20000])
        arr = np.array(ids, dtype=np.int64)
        assert tok.decode(ids) == ref.decode(ids) and tok.decode_bytes(arr) == ref.decode_bytes(ids)
        t = interleaved({"llmc list": lambda: tok.decode(ids), "tiktoken list": lambda: ref.decode(ids),
                         "llmc array": lambda: tok.decode(arr), "tiktoken array": lambda: ref.decode(arr),
                         "llmc bytes": lambda: tok.decode_bytes(ids), "tiktoken bytes": lambda: ref.decode_bytes(ids),
                         "llmc bytes array": lambda: tok.decode_bytes(arr),
                         "tiktoken bytes array": lambda: ref.decode_bytes(arr)}, args.repeat)
        for kind in ("list", "array", "bytes", "bytes array"):
            dec_rows.append({"encoding": name, "input": kind, "ids": len(ids),
                             "llmc_Mids_s": len(ids) / t[f"llmc {kind}"] / 1e6,
                             "tiktoken_Mids_s": len(ids) / t[f"tiktoken {kind}"] / 1e6,
                             "llmc/tiktoken": t[f"tiktoken {kind}"] / t[f"llmc {kind}"]})
            print(json.dumps(dec_rows[-1]), flush=True)
    load1 = os.getloadavg()[0]

    print("\nencode, whole text, 1 thread (MB/s)")
    print(f"{'encoding':12s} {'corpus':8s} {'llmc':>7s} {'first':>6s} {'tiktoken':>8s} {'ratio':>6s} {'first':>6s}")
    for r in enc_rows:
        print(f"{r['encoding']:12s} {r['corpus']:8s} {r['llmc_MBps']:7.1f} {r['llmc_first_MBps']:6.1f} "
              f"{r['tiktoken_MBps']:8.1f} {r['llmc/tiktoken']:5.2f}x {r['first/tiktoken']:5.2f}x")
    print("\nencode, long text, llmc at 1 and 2 threads (MB/s)")
    print(f"{'encoding':12s} {'corpus':8s} {'MB':>5s} {'1 thr':>7s} {'2 thr':>7s} {'2/1':>6s} {'cpu 2/1':>7s}")
    for r in thr_rows:
        c21 = f"{r['cpu 2/1']:6.2f}x" if r["cpu 2/1"] else "    n/a"
        print(f"{r['encoding']:12s} {r['corpus']:8s} {r['MB']:5.1f} {r['MBps_1']:7.1f} {r['MBps_2']:7.1f} "
              f"{r['2/1']:5.2f}x {c21}")
    print("\ndecode (million ids/s)")
    print(f"{'encoding':12s} {'input':12s} {'llmc':>7s} {'tiktoken':>8s} {'ratio':>6s}")
    for r in dec_rows:
        print(f"{r['encoding']:12s} {r['input']:12s} {r['llmc_Mids_s']:7.1f} {r['tiktoken_Mids_s']:8.2f} "
              f"{r['llmc/tiktoken']:5.2f}x")
    print(f"\nload average {load0:.1f} -> {load1:.1f}; {os.cpu_count()} cores; {llmc.simd_info()['active']}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                               "simd": llmc.simd_info(), "load_average": [load0, load1], "encode": enc_rows,
                               "threads": thr_rows, "decode": dec_rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
