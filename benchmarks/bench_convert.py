"""Conversion and loading speed: K-quant quantization next to ggml's own quantizer, a whole GPT-2 small converted
to Q4_K, and tokenizers rebuilt from GGUF metadata next to loading the tokenizer.json they came from.

- quantize: Mvalues/s of llmc.quantize on a (768, 3072) fp32 matrix per type, 1 thread, next to ggml's
  quantize_row_*_ref (the function llama.cpp's llama_model_quantize runs when no importance matrix is given; from
  llama-cpp-python's libraries, or $LLMC_GGML_LIB) on the same rows. Both produce the same bytes (checked here,
  and in tests/test_quant.py).
- model: seconds for llmc.Model.load(GPT-2 small folder, dtype="q4_k"), the whole 124M-parameter model (random
  weights, written once by llmc into a temporary folder), at 1 and 2 threads.
- gguf tokenizer: seconds for llmc.gguf_tokenizer.load_tokenizer on the GGUF files the GGUF tests make from the real
  Llama 2, Llama 3 and Qwen 3 tokenizers (llama.cpp's converter; cached under ~/.cache/llmc/gguf-fixtures, skipped
  when absent), next to llmc.Tokenizer.from_file and tokenizers.Tokenizer.from_file on the original tokenizer.json.

Each number is the best of --repeats. Prints tables and writes a JSON file.

    python benchmarks/bench_convert.py [--repeats 3] [--parts quantize,model,tokenizer] [--out FILE]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc
from harness import add_out_arg, best_call, load_average, write_json

TYPES = ["q4_k", "q5_k", "q6_k", "q2_k", "q3_k", "q8_0"]
GGML_NAMES = {"q4_k": "q4_K", "q5_k": "q5_K", "q6_k": "q6_K", "q2_k": "q2_K", "q3_k": "q3_K", "q8_0": "q8_0"}
FIXTURES = Path(os.environ.get("LLMC_GGUF_CACHE") or os.path.expanduser("~/.cache/llmc/gguf-fixtures"))
SHARED = Path(os.environ.get("LLMC_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def ggml_lib():
    """ggml's library as llama-cpp-python loaded it (libllama links libggml-base, whose quantize_row_*_ref it
    exports), or $LLMC_GGML_LIB; None without either."""
    if os.environ.get("LLMC_GGML_LIB"):
        return ctypes.CDLL(os.environ["LLMC_GGML_LIB"], mode=os.RTLD_LAZY)
    try:
        from llama_cpp import llama_cpp
    except ImportError:
        return None
    return llama_cpp._lib


def quantize_rows(repeats: int) -> list[dict]:
    lib = ggml_lib()
    w = np.random.default_rng(0).standard_normal((768, 3072)).astype(np.float32) * 0.02
    llmc.set_num_threads(1)
    rows = []
    for t in TYPES:
        got = llmc.quantize(w, t)
        r = {"type": t, "llmc_Mval_s": w.size / best_call(lambda: llmc.quantize(w, t), repeats, warmup=False) / 1e6}
        if lib is not None:
            fn = getattr(lib, f"quantize_row_{GGML_NAMES[t]}_ref")
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            want = np.zeros_like(got)

            def ggml():
                for i in range(w.shape[0]):
                    fn(w[i].ctypes.data, want[i].ctypes.data, w.shape[1])

            r["ggml_Mval_s"] = w.size / best_call(ggml, repeats, warmup=False) / 1e6
            r["identical"] = bool((got == want).all())
        rows.append(r)
    return rows


def convert_model(repeats: int) -> list[dict]:
    cfg = dict(model_type="gpt2", vocab_size=50257, n_embd=768, n_layer=12, n_head=12, n_positions=1024)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        llmc.Model.init(cfg, seed=0).save(d)
        for threads in (1, 2):
            llmc.set_num_threads(threads)
            rows.append({"threads": threads, "q4_k_load_s": best_call(lambda: llmc.Model.load(d, dtype="q4_k"), repeats, warmup=False),
                         "f32_load_s": best_call(lambda: llmc.Model.load(d), repeats, warmup=False)})
    return rows


def gguf_tokenizers(repeats: int) -> list[dict]:
    from llmc.gguf_tokenizer import load_tokenizer

    try:
        import tokenizers
    except ImportError:
        tokenizers = None
    rows = []
    for name in ("llama2", "llama3", "qwen3"):
        files = sorted(FIXTURES.glob(f"tok-{name}-*/*.gguf"))
        tj = SHARED / "tokenizers" / "hf" / name / "tokenizer.json"
        if not files:
            print(f"gguf tokenizer {name}: no fixture under {FIXTURES} (run tests/test_gguf_tokenizer.py once)")
            continue
        loads = {"gguf": lambda: load_tokenizer(files[0])}
        if tj.is_file():
            loads["llmc_json"] = lambda: llmc.Tokenizer.from_file(tj)
            if tokenizers is not None:
                loads["hf_json"] = lambda: tokenizers.Tokenizer.from_file(str(tj))
        r = {"tokenizer": name}
        for k, fn in loads.items():
            r[f"{k}_load_s"] = best_call(fn, repeats)
            r[f"{k}_cpu_s"] = best_call(fn, repeats, clock=time.process_time)
        rows.append(r)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default="quantize,model,tokenizer", help="which tables to measure")
    add_out_arg(ap, "convert")
    args = ap.parse_args()
    print(f"llmc {llmc.__version__} | simd {llmc.simd_info()['active']} | {platform.processor() or platform.machine()}"
          f" | load average {load_average()}")

    parts = args.parts.split(",")
    quant = quantize_rows(args.repeats) if "quantize" in parts else []
    if quant:
        print("\nquantize a (768, 3072) matrix, 1 thread (Mvalues/s)")
        print(f"{'type':<5} {'llmc':>8} {'ggml ref':>9} {'llmc/ggml':>9} {'same bytes':>10}")
    for r in quant:
        g = r.get("ggml_Mval_s")
        print(f"{r['type']:<5} {r['llmc_Mval_s']:>8.1f} " + (f"{g:>9.1f} {r['llmc_Mval_s'] / g:>8.2f}x "
                                                            f"{str(r['identical']):>10}" if g else f"{'-':>9}"))

    model = convert_model(args.repeats) if "model" in parts else []
    if model:
        print("\nGPT-2 small (124M) folder -> Model.load (seconds)")
        print(f"{'threads':>7} {'dtype=q4_k':>10} {'fp32 (mapped)':>6}")
        for r in model:
            print(f"{r['threads']:>7} {r['q4_k_load_s']:>10.2f} {r['f32_load_s']:>6.3f}")

    toks = gguf_tokenizers(args.repeats) if "tokenizer" in parts else []
    if toks:
        print("\ntokenizer load, wall / CPU seconds (1 thread): from GGUF metadata vs from the tokenizer.json it was "
              "converted from")
        print(f"{'tokenizer':<9} {'llmc gguf':>13} {'llmc json':>13} {'HF json':>13}")
        nan = float("nan")
        for r in toks:
            print(f"{r['tokenizer']:<9} " + " ".join(f"{r.get(k + '_load_s', nan):>6.3f}/{r.get(k + '_cpu_s', nan):<6.3f}"
                                                     for k in ("gguf", "llmc_json", "hf_json")))
    write_json(args.out, {"machine": platform.processor() or platform.machine(), "simd": llmc.simd_info(),
                          "load_average": load_average(), "repeats": args.repeats, "quantize": quant,
                          "model": model, "gguf_tokenizer": toks})


if __name__ == "__main__":
    main()
