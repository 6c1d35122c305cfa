"""llmc vs llama.cpp on the same GGUF files: load time, prompt processing, decode, resident memory.

    python benchmarks/bench_gguf.py [--threads 2] [--prompt 512] [--new 128] [--repeats 2] [--types f32,q8_0,q4_0,q4_k]
                                    [--out benchmarks/results/gguf.json]

The model: a ~110 M-parameter Llama shape (d_model 768, 12 layers, 12 heads, d_ff 2048, vocab 32000, tied
embeddings) with random weights, saved by transformers, converted to an F32 GGUF by llama.cpp's convert_hf_to_gguf.py
and quantized by llama.cpp itself (llama_model_quantize, `pure`: every matrix in the named type, so each row of the
table is one type). Each (engine, type) runs in a fresh process, so load time and peak RSS are its own.

Prompt processing: one 512-token prompt in one call (llmc: Model.session().append(prompt); llama.cpp: Llama.eval
with n_batch = 512). Decode: 128 more tokens one at a time through the KV cache (greedy argmax of the returned
logits, so both engines also produce the next-token distribution). Needs llama-cpp-python (benchmarks/README.md
says how to build it) and the llama.cpp sources (for the converter) in $LLMC_LLAMA_CPP.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(os.environ.get("LLMC_GGUF_CACHE") or os.path.expanduser("~/.cache/llmc/gguf-fixtures")) / "bench"
CFG = dict(vocab_size=32000, hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
           num_key_value_heads=12, max_position_embeddings=1024, tie_word_embeddings=True)


def _llama_cpp_dir() -> Path:
    """llama.cpp's sources (for convert_hf_to_gguf.py): $LLMC_LLAMA_CPP or an unpacked llama-cpp-python sdist."""
    import glob

    cands = [os.environ.get("LLMC_LLAMA_CPP", "")]
    for base in (os.path.expanduser("~/.cache/llmc"), "/work/cache/llama-build"):
        cands += sorted(glob.glob(os.path.join(base, "llama_cpp_python-*", "vendor", "llama.cpp")), reverse=True)
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "convert_hf_to_gguf.py")):
            return Path(c)
    sys.exit("llama.cpp sources not found: set LLMC_LLAMA_CPP (see benchmarks/README.md)")


def make_models(types: list[str]) -> dict[str, Path]:
    """The F32 GGUF from transformers via convert_hf_to_gguf.py, then llama.cpp's quantizer for the others."""
    CACHE.mkdir(parents=True, exist_ok=True)
    f32 = CACHE / "llama110m.f32.gguf"
    if not f32.is_file():
        import shutil

        import torch
        import transformers

        hf = CACHE / "llama110m-hf"
        torch.manual_seed(0)
        m = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CFG)).float().eval()
        m.save_pretrained(hf)
        tok = Path(os.environ.get("LLMC_SHARED", ROOT.parent / "shared")) / "tokenizers" / "hf" / "llama2"
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(tok / f, hf / f)
        lc = _llama_cpp_dir()
        subprocess.run([sys.executable, str(lc / "convert_hf_to_gguf.py"), str(hf), "--outfile", str(f32),
                        "--outtype", "f32"], check=True, capture_output=True)
    out = {"f32": f32}
    import llama_cpp

    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0,
              "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    for t in types:
        if t == "f32":
            continue
        p = CACHE / f"llama110m.{t}.gguf"
        if not p.is_file():
            params = llama_cpp.llama_model_quantize_default_params()
            params.ftype = ftypes[t]
            params.pure = True  # every matrix in this type (no Q6_K output / attn_v mix)
            params.nthread = 2
            rc = llama_cpp.llama_model_quantize(str(f32).encode(), str(p).encode(), params)
            if rc != 0:
                sys.exit(f"llama_model_quantize({t}) failed with {rc}")
        out[t] = p
    return out


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(engine: str, path: str, threads: int, n_prompt: int, n_new: int) -> dict:
    """One engine on one file (in this process). Returns load s, prompt tok/s, decode tok/s, peak RSS MiB."""
    import numpy as np

    rng = np.random.default_rng(0)
    prompt = rng.integers(100, 32000, n_prompt).tolist()
    if engine == "llmc":
        import llmc

        llmc.set_num_threads(threads)
        t0 = time.perf_counter()
        m = llmc.Model.load(path)
        t_load = time.perf_counter() - t0
        s = m.session(capacity=n_prompt + n_new + 1)
        t0 = time.perf_counter()
        logits = s.append(prompt)
        t_pp = time.perf_counter() - t0
        tok = int(np.argmax(logits))
        t0 = time.perf_counter()
        for _ in range(n_new):
            tok = int(np.argmax(s.append([tok])))
        t_dec = time.perf_counter() - t0
    else:
        import llama_cpp

        t0 = time.perf_counter()
        llm = llama_cpp.Llama(model_path=path, n_ctx=n_prompt + n_new + 8, n_batch=n_prompt, n_ubatch=n_prompt,
                              n_threads=threads, n_threads_batch=threads, verbose=False, use_mmap=True)
        t_load = time.perf_counter() - t0
        n_vocab = llm.n_vocab()

        def last_logits():  # the logits of the last token evaluated, straight from llama.cpp's context
            return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))

        t0 = time.perf_counter()
        llm.eval(prompt)
        t_pp = time.perf_counter() - t0
        tok = int(np.argmax(last_logits()))
        t0 = time.perf_counter()
        for _ in range(n_new):
            llm.eval([tok])
            tok = int(np.argmax(last_logits()))
        t_dec = time.perf_counter() - t0
    return {"load_s": t_load, "prompt_tok_s": n_prompt / t_pp, "decode_tok_s": n_new / t_dec, "rss_mib": _rss_mib()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--types", default="f32,q8_0,q4_0,q4_k")
    ap.add_argument("--out", default=None, help="write the results JSON here (default: a temporary file); "
                    "benchmarks/results/gguf.json refreshes the committed result")
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one[0], a.one[1], a.threads, a.prompt, a.new)))
        return
    types = a.types.split(",")
    files = make_models(types)
    rows = []
    for t in types:
        best = {}
        for engine in ("llmc", "llama.cpp"):
            runs = []
            for _ in range(a.repeats):
                r = subprocess.run([sys.executable, __file__, "--one", engine, str(files[t]), "--threads",
                                    str(a.threads), "--prompt", str(a.prompt), "--new", str(a.new)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    sys.exit(f"{engine} {t} failed:\n{r.stderr[-3000:]}")
                runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
            best[engine] = {"load_s": min(x["load_s"] for x in runs),
                            "prompt_tok_s": max(x["prompt_tok_s"] for x in runs),
                            "decode_tok_s": max(x["decode_tok_s"] for x in runs),
                            "rss_mib": min(x["rss_mib"] for x in runs)}
        rows.append({"type": t, "file_mib": files[t].stat().st_size / 2**20, **{
            f"{e}_{k}": v for e, d in best.items() for k, v in d.items()}})
    hdr = (f"{'type':<6} {'file MiB':>8} | {'pp tok/s llmc':>13} {'llama.cpp':>9} {'ratio':>6} | {'tg tok/s llmc':>13} "
           f"{'llama.cpp':>9} {'ratio':>6} | {'load s llmc':>11} {'llama.cpp':>9} | {'RSS MiB llmc':>12} {'llama.cpp':>9}")
    print(f"~110M Llama, {a.threads} threads, prompt {a.prompt}, decode {a.new}, best of {a.repeats}")
    print(hdr)
    for r in rows:
        print(f"{r['type']:<6} {r['file_mib']:>8.1f} | {r['llmc_prompt_tok_s']:>13.1f} {r['llama.cpp_prompt_tok_s']:>9.1f} "
              f"{r['llmc_prompt_tok_s'] / r['llama.cpp_prompt_tok_s']:>5.2f}x | {r['llmc_decode_tok_s']:>13.1f} "
              f"{r['llama.cpp_decode_tok_s']:>9.1f} {r['llmc_decode_tok_s'] / r['llama.cpp_decode_tok_s']:>5.2f}x | "
              f"{r['llmc_load_s']:>11.2f} {r['llama.cpp_load_s']:>9.2f} | {r['llmc_rss_mib']:>12.0f} "
              f"{r['llama.cpp_rss_mib']:>9.0f}")
    import tempfile

    out = Path(a.out) if a.out else Path(tempfile.mkdtemp()) / "gguf.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
