"""Tokenizer throughput (MB/s) of llmc vs tiktoken vs HF tokenizers, and BPE training time vs HF's BpeTrainer.

    python benchmarks/bench_tokenizer.py [--repeat 5] [--quick] [--only-general | --only-spm]
                                         [--out benchmarks/results/tokenizer.json]

Inputs: ../shared/corpora/kjv.txt (4.1 MB) as one string ("whole") and as its 31,102 lines ("lines"), and the
same 10 times over ("x10"). "1 thread": llmc.set_num_threads(1), tiktoken's single-threaded encode_ordinary,
HF with RAYON_NUM_THREADS=1. "all threads": llmc encode_batch, tiktoken encode_ordinary_batch, HF encode_batch
(each with every core). Best of --repeat runs, llmc and tiktoken timed in turns so that other load on a shared
machine hits both alike. Outputs are checked to be identical before timing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LLMC_SHARED", ROOT.parent / "shared"))  # Hugging Face tokenizer.json files
KJV = Path(importlib.util.find_spec("llmc").origin).parent / "data" / "kjv.txt"  # shipped with llmc (not imported yet)
os.environ.setdefault("TIKTOKEN_CACHE_DIR", tempfile.mkdtemp(prefix="tiktoken-cache-"))


def best(fn, repeat):
    t = float("inf")
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        t = min(t, time.perf_counter() - t0)
    return t, out


def load_tiktoken(name):
    import tiktoken
    import tiktoken.load

    d = SHARED / "tokenizers" / "tiktoken"
    meta = json.loads((d / f"{name}.json").read_text())
    ref = tiktoken.Encoding(name, pat_str=meta["pat_str"],
                            mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(d / f"{name}.tiktoken")),
                            special_tokens=meta["special_tokens"])
    return ref, meta


def hf_child(args):
    """Run in a subprocess so RAYON_NUM_THREADS takes effect before tokenizers starts its pool."""
    import tokenizers

    text = KJV.read_text(encoding="utf-8")
    lines = text.split("\n")
    path = args.hf_child if args.hf_child.endswith(".json") else SHARED / "tokenizers" / "hf" / args.hf_child / "tokenizer.json"
    tok = tokenizers.Tokenizer.from_file(str(path))
    res = {}
    t, _ = best(lambda: tok.encode_batch(lines, add_special_tokens=False), args.repeat)
    res["lines"] = t
    if args.hf_lines_only:
        print(json.dumps(res))
        return
    t, _ = best(lambda: tok.encode_batch(lines * 10, add_special_tokens=False), max(1, args.repeat - 1))
    res["lines_x10"] = t
    if not args.quick:
        t, _ = best(lambda: tok.encode(text, add_special_tokens=False), 1)
        res["whole"] = t
    print(json.dumps(res))


def hf_times(name, threads, args, lines_only=False):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
    cmd = [sys.executable, __file__, "--hf-child", name, "--repeat", str(args.repeat)] + (["--quick"] if args.quick else [])
    cmd += ["--hf-lines-only"] if lines_only else []
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def interleaved(fns: dict, repeat: int) -> dict:
    """Best time of each callable, running them in turns (A B A B ...) so that load from other processes on a shared
    machine hits every contender alike."""
    best_t = {k: float("inf") for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            best_t[k] = min(best_t[k], time.perf_counter() - t0)
    return best_t


def bench_encode(args):
    import llmc

    text = KJV.read_text(encoding="utf-8")
    lines = text.split("\n")
    lines10 = lines * 10
    mb = len(text.encode("utf-8")) / 1e6
    ncpu = os.cpu_count() or 1
    rows = []
    for name, hf in [("gpt2", None), ("cl100k_base", None), ("o200k_base", None), ("llama3", "llama3")]:
        if hf:
            tok = llmc.Tokenizer.from_file(SHARED / "tokenizers" / "hf" / hf / "tokenizer.json")
            ref = None  # Llama 3 is not a tiktoken encoding: no tiktoken column
        else:
            ref, meta = load_tiktoken(name)
            tok = llmc.Tokenizer.from_tiktoken(SHARED / "tokenizers" / "tiktoken" / f"{name}.tiktoken",
                                               pattern=meta["pat_str"], special_tokens=meta["special_tokens"])
        r = {"encoding": name, "MB": round(mb, 3)}
        # correctness first: the timed outputs must be identical
        llmc.set_num_threads(1)
        ids = tok.encode(text)
        if ref is not None:
            assert ref.encode_ordinary(text) == ids, f"{name}: llmc and tiktoken differ"
            assert [ref.encode_ordinary(s) for s in lines] == tok.encode_batch(lines), name
        # --- 1 thread (llmc.set_num_threads(1); tiktoken's encode_ordinary runs on the calling thread)
        fns = {"llmc_whole_1t": lambda: tok.encode(text), "llmc_lines_1t": lambda: tok.encode_batch(lines),
               "llmc_lines_x10_1t": lambda: tok.encode_batch(lines10)}
        if ref is not None:
            fns.update({"tiktoken_whole_1t": lambda: ref.encode_ordinary(text),
                        "tiktoken_lines_1t": lambda: [ref.encode_ordinary(s) for s in lines],
                        "tiktoken_lines_x10_1t": lambda: [ref.encode_ordinary(s) for s in lines10]})
        for k, t in interleaved(fns, args.repeat).items():
            r[k] = (10 if "x10" in k else 1) * mb / t
        if hf:
            h1 = hf_times(hf, 1, args)
            r["hf_lines_1t"] = mb / h1["lines"]
            r["hf_lines_x10_1t"] = 10 * mb / h1["lines_x10"]
            if "whole" in h1:
                r["hf_whole_1t"] = mb / h1["whole"]
        # --- all threads
        llmc.set_num_threads(ncpu)
        assert tok.encode(text) == ids  # long texts are cut after newlines and encoded on all threads
        fns = {"llmc_whole_all": lambda: tok.encode(text), "llmc_lines_all": lambda: tok.encode_batch(lines),
               "llmc_lines_x10_all": lambda: tok.encode_batch(lines10)}
        if ref is not None:
            fns.update({"tiktoken_lines_all": lambda: ref.encode_ordinary_batch(lines, num_threads=ncpu),
                        "tiktoken_lines_x10_all": lambda: ref.encode_ordinary_batch(lines10, num_threads=ncpu)})
        for k, t in interleaved(fns, args.repeat).items():
            r[k] = (10 if "x10" in k else 1) * mb / t
        if hf:
            ha = hf_times(hf, ncpu, args)
            r["hf_lines_all"] = mb / ha["lines"]
            r["hf_lines_x10_all"] = 10 * mb / ha["lines_x10"]
        r = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
        print(json.dumps(r), flush=True)
        rows.append(r)
    return rows


def bench_train(args):
    import llmc

    text = KJV.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows = []
    for vocab in ([8192] if args.quick else [8192, 32768]):
        llmc.set_num_threads(os.cpu_count() or 1)
        t0 = time.perf_counter()
        tok = llmc.Tokenizer.train(lines, vocab, pattern="gpt4", min_frequency=2, progress=False)
        t_llmc = time.perf_counter() - t0
        env = dict(os.environ, TOKENIZERS_PARALLELISM="true")
        code = (
            "import time,tokenizers as T\n"
            "from tokenizers import pre_tokenizers as P, models, trainers, Regex\n"
            f"lines=open({str(KJV)!r},encoding='utf-8').read().split('\\n')\n"
            "tk=T.Tokenizer(models.BPE())\n"
            "pat=\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"\n"
            "tk.pre_tokenizer=P.Sequence([P.Split(Regex(pat),'isolated'),P.ByteLevel(add_prefix_space=False,use_regex=False)])\n"
            f"tr=trainers.BpeTrainer(vocab_size={vocab},min_frequency=2,show_progress=False,"
            "initial_alphabet=P.ByteLevel.alphabet())\n"
            "t=time.perf_counter(); tk.train_from_iterator(lines,tr); print(time.perf_counter()-t, tk.get_vocab_size())\n"
        )
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
        t_hf, hf_vocab = out.strip().splitlines()[-1].split()
        r = {"vocab_size": vocab, "llmc_s": round(t_llmc, 2), "hf_s": round(float(t_hf), 2), "llmc_vocab": tok.n_vocab,
             "hf_vocab": int(hf_vocab)}
        print(json.dumps(r), flush=True)
        rows.append(r)
    return rows


def general_tokenizers(tmp: Path) -> list[tuple[str, Path]]:
    """tokenizer.json files for the general pre-tokenizer rows: Qwen 3 (a known regex: its scanner), Llama 3 with
    its regex written so that only the regex engine can run it, and a Split/Sequence-based pre-tokenizer on Llama
    3's vocabulary (individual digits, punctuation split off by a regex, then ByteLevel with its regex)."""
    hf = SHARED / "tokenizers" / "hf"
    out = [("qwen3 (scanner)", hf / "qwen3" / "tokenizer.json")]
    j = json.loads((hf / "llama3" / "tokenizer.json").read_text(encoding="utf-8"))
    pre = j["pre_tokenizer"]
    split = next(p for p in pre["pretokenizers"] if p["type"] == "Split")
    split["pattern"]["Regex"] = "(?:" + split["pattern"]["Regex"] + ")"  # not byte-identical: the engine runs it
    (tmp / "llama3_engine.json").write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    out.append(("llama3 (regex engine)", tmp / "llama3_engine.json"))
    j["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True},
        {"type": "Split", "pattern": {"Regex": r"[\p{P}\p{S}]+"}, "behavior": "MergedWithNext", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}]}
    (tmp / "split_sequence.json").write_text(json.dumps(j, ensure_ascii=False), encoding="utf-8")
    out.append(("Split/Sequence (engine)", tmp / "split_sequence.json"))
    return out


def bench_general(args):
    """The general pre-tokenizer: kjv lines, one thread, llmc vs HF tokenizers (RAYON_NUM_THREADS=1)."""
    import llmc

    text = KJV.read_text(encoding="utf-8")
    lines = text.split("\n")
    mb = len(text.encode("utf-8")) / 1e6
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="llmc-bench-tok-"))
    import tokenizers

    for name, path in general_tokenizers(tmp):
        tok = llmc.Tokenizer.from_file(path)
        ref = tokenizers.Tokenizer.from_file(str(path))
        assert tok.encode_batch(lines[:3000]) == [e.ids for e in ref.encode_batch(lines[:3000], add_special_tokens=False)]
        llmc.set_num_threads(1)
        t = interleaved({"llmc": lambda: tok.encode_batch(lines, num_threads=1)}, args.repeat)["llmc"]
        hf = hf_times(str(path), 1, args, lines_only=True)["lines"]
        rows.append({"tokenizer": name, "MB": round(mb, 3), "llmc_MBps": round(mb / t, 2), "hf_MBps": round(mb / hf, 2),
                     "ratio": round(hf / t, 2)})
        print(rows[-1], flush=True)
    llmc.set_num_threads(os.cpu_count() or 1)
    return rows


def spm_files(tmp: Path, lines) -> list[tuple[str, Path, Path]]:
    """SentencePiece models trained here on KJV (Unigram and BPE, nmt_nfkc, 8000 pieces) and the Unigram one as a
    tokenizer.json in T5's layout (Precompiled charsmap, Strip, Replace, Metaspace): (name, .model, tokenizer.json)."""
    import sentencepiece as spm
    import sentencepiece.sentencepiece_model_pb2 as pb
    import tokenizers
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers

    out = []
    for mt in ("unigram", "bpe"):
        prefix = str(tmp / f"kjv_{mt}")
        spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=prefix, vocab_size=8000,
                                       model_type=mt, normalization_rule_name="nmt_nfkc", num_threads=1, minloglevel=2)
        m = pb.ModelProto()
        m.ParseFromString(Path(prefix + ".model").read_bytes())
        js = None
        if mt == "unigram":
            tok = tokenizers.Tokenizer(models.Unigram([(x.piece, x.score) for x in m.pieces], unk_id=m.trainer_spec.unk_id))
            tok.normalizer = normalizers.Sequence([normalizers.Precompiled(m.normalizer_spec.precompiled_charsmap),
                                                   normalizers.Strip(left=False, right=True),
                                                   normalizers.Replace(Regex(" {2,}"), "\u2581")])
            tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
            tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
            js = tmp / "kjv_unigram_t5.json"
            js.write_text(tok.to_str(), encoding="utf-8")
        out.append((mt, Path(prefix + ".model"), js))
    return out


def bench_spm(args):
    """SentencePiece .model files (llmc vs the sentencepiece package) and a Unigram tokenizer.json (llmc vs HF
    tokenizers): kjv lines, one thread each."""
    import llmc
    import sentencepiece as spm

    text = KJV.read_text(encoding="utf-8")
    lines = text.split("\n")
    mb = len(text.encode("utf-8")) / 1e6
    tmp = Path(tempfile.mkdtemp(prefix="llmc-bench-spm-"))
    llmc.set_num_threads(1)
    rows = []
    for mt, model, js in spm_files(tmp, lines):
        tok = llmc.Tokenizer.from_sentencepiece(model)
        sp = spm.SentencePieceProcessor(model_file=str(model))
        assert tok.encode_batch(lines, num_threads=1) == sp.encode(lines, num_threads=1)
        ids = sp.encode(lines[:5000], num_threads=1)
        few = lines[:5000]
        t = interleaved({"llmc": lambda: tok.encode_batch(lines, num_threads=1),
                         "sp": lambda: sp.encode(lines, num_threads=1),
                         "llmc_line": lambda: [tok.encode(x) for x in few],
                         "sp_line": lambda: [sp.encode(x) for x in few],
                         "llmc_dec": lambda: [tok.decode(x) for x in ids],
                         "sp_dec": lambda: sp.decode(ids)}, args.repeat)
        rows.append({"tokenizer": f"{mt} .model (nmt_nfkc, 8000)", "reference": "sentencepiece " + spm.__version__,
                     "llmc_MBps": round(mb / t["llmc"], 2), "ref_MBps": round(mb / t["sp"], 2),
                     "ratio": round(t["sp"] / t["llmc"], 2), "line_ratio": round(t["sp_line"] / t["llmc_line"], 2),
                     "decode_ratio": round(t["sp_dec"] / t["llmc_dec"], 2)})
        print(rows[-1], flush=True)
        if js is not None:
            import tokenizers

            tj = llmc.Tokenizer.from_file(js)
            ref = tokenizers.Tokenizer.from_file(str(js))
            assert tj.encode_batch(lines[:5000]) == [e.ids for e in ref.encode_batch(lines[:5000], add_special_tokens=False)]
            t = interleaved({"llmc": lambda: tj.encode_batch(lines, num_threads=1)}, args.repeat)["llmc"]
            hf = hf_times(str(js), 1, args, lines_only=True)["lines"]
            rows.append({"tokenizer": "Unigram tokenizer.json (T5 layout, Precompiled)", "reference":
                         "tokenizers " + tokenizers.__version__, "llmc_MBps": round(mb / t, 2),
                         "ref_MBps": round(mb / hf, 2), "ratio": round(hf / t, 2), "decode_ratio": None})
            print(rows[-1], flush=True)
    llmc.set_num_threads(os.cpu_count() or 1)
    return rows


def table_spm(rows) -> str:
    out = ["| tokenizer (kjv lines, 1 thread) | reference | llmc MB/s | reference MB/s | llmc / reference (encode "
           "batch) | llmc / reference (encode, one call per line) | llmc / reference (decode) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        dec = f"{r['decode_ratio']:.2f}x" if r.get("decode_ratio") else "n/a"
        line = f"{r['line_ratio']:.2f}x" if r.get("line_ratio") else "n/a"
        out.append(f"| {r['tokenizer']} | {r['reference']} | {r['llmc_MBps']:.1f} | {r['ref_MBps']:.1f} | "
                   f"{r['ratio']:.2f}x | {line} | {dec} |")
    return "\n".join(out)


def table_general(rows) -> str:
    out = ["| tokenizer.json (kjv lines, 1 thread) | llmc MB/s | HF tokenizers MB/s | llmc / HF |", "|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['tokenizer']} | {r['llmc_MBps']:.1f} | {r['hf_MBps']:.1f} | {r['ratio']:.2f}x |")
    return "\n".join(out)


def table(enc, train) -> str:
    def f(r, k):
        return f"{r[k]:.1f}" if k in r else "n/a"

    out = ["| encoding | input | threads | llmc MB/s | tiktoken MB/s | HF MB/s | llmc / tiktoken |",
           "|---|---|---|---|---|---|---|"]
    for r in enc:
        for inp, th, suf in [("whole", "1", "whole_1t"), ("lines", "1", "lines_1t"), ("lines x10", "1", "lines_x10_1t"),
                             ("whole", "all", "whole_all"), ("lines", "all", "lines_all"),
                             ("lines x10", "all", "lines_x10_all")]:
            ratio = f"{r['llmc_' + suf] / r['tiktoken_' + suf]:.2f}x" if "tiktoken_" + suf in r else "n/a"
            out.append(f"| {r['encoding']} | {inp} | {th} | {f(r, 'llmc_' + suf)} | {f(r, 'tiktoken_' + suf)} | "
                       f"{f(r, 'hf_' + suf)} | {ratio} |")
    if train:
        out += ["", "| BPE training on kjv.txt lines (gpt4 regex, min_frequency=2) | llmc s | HF BpeTrainer s | "
                    "vocab reached (llmc / HF) |", "|---|---|---|---|"]
        for r in train:
            out.append(f"| vocab_size={r['vocab_size']} | {r['llmc_s']} | {r['hf_s']} | {r['llmc_vocab']} / {r['hf_vocab']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--only-general", action="store_true", help="only the general pre-tokenizer rows")
    ap.add_argument("--only-spm", action="store_true", help="only the SentencePiece / Unigram rows")
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "llmc-bench", "tokenizer.json"),
                    help="the JSON file to write (benchmarks/results/tokenizer.json to refresh the committed one)")
    ap.add_argument("--hf-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--hf-lines-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.hf_child:
        return hf_child(args)
    spm_rows = bench_spm(args) if not args.only_general else []
    only = args.only_general or args.only_spm
    general = bench_general(args) if not args.only_spm else []
    enc = [] if only else bench_encode(args)
    train = [] if args.no_train or only else bench_train(args)
    import tiktoken
    import tokenizers

    meta = {"command": "python benchmarks/bench_tokenizer.py " + " ".join(sys.argv[1:]), "cpu": platform.processor(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "tiktoken": tiktoken.__version__,
            "tokenizers": tokenizers.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"meta": meta, "encode": enc, "train": train, "general": general,
                                          "sentencepiece": spm_rows}, indent=1) + "\n")
    print(table(enc, train))
    print()
    print(table_general(general))
    print()
    print(table_spm(spm_rows))


if __name__ == "__main__":
    main()
