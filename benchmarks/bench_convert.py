"""Conversion and loading speed: K-quant quantization next to ggml's own quantizer, a whole GPT-2 small converted
to Q4_K, and tokenizers rebuilt from GGUF metadata next to loading the tokenizer.json they came from.

- quantize: Mvalues/s of llmc.quantize on a (768, 3072) fp32 matrix per type, 1 thread, next to ggml's
  quantize_row_*_ref (the function llama.cpp's llama_model_quantize runs when no importance matrix is given; from
  llama-cpp-python's libggml-base, or $LLMC_GGML_LIB) on the same rows. Both produce the same bytes (checked here,
  and in tests/test_quant.py).
- model: seconds for llmc.Model.load(GPT-2 small folder, dtype="q4_k"), the whole 124M-parameter model (random
  weights, written once by llmc into a temporary folder), at 1 and 2 threads.
- gguf tokenizer: seconds for llmc.gguf_tokenizer.load_tokenizer on the GGUF files the GGUF tests make from the real
  Llama 2, Llama 3 and Qwen 3 tokenizers (llama.cpp's converter; cached under ~/.cache/llmc/gguf-fixtures, skipped
  when absent), next to llmc.Tokenizer.from_file and tokenizers.Tokenizer.from_file on the original tokenizer.json.

Each number is the best of --repeats. Prints tables and writes a JSON file.

    python benchmarks/bench_convert.py [--repeats 3] [--skip-model] [--out benchmarks/results/convert.json]
"""
from __future__ import annotations

import argparse
import ctypes
import glob
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import llmc
from harness import add_out_arg, load_average, write_json

TYPES = ["q4_k", "q5_k", "q6_k", "q2_k", "q3_k", "q8_0"]
GGML_NAMES = {"q4_k": "q4_K", "q5_k": "q5_K", "q6_k": "q6_K", "q2_k": "q2_K", "q3_k": "q3_K", "q8_0": "q8_0"}
FIXTURES = Path(os.environ.get("LLMC_GGUF_CACHE") or os.path.expanduser("~/.cache/llmc/gguf-fixtures"))
SHARED = Path(os.environ.get("LLMC_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))


def best(fn, repeats: int) -> float:
    """Best wall time of one call (these calls last long enough to time one at a time)."""
    out = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def ggml_lib():
    path = os.environ.get("LLMC_GGML_LIB")
    if not path:
        try:
            import llama_cpp
        except ImportError:
            return None
        libs = sorted(glob.glob(os.path.join(os.path.dirname(llama_cpp.__file__), "**", "libggml-base.*"),
                              recursive=True))
        if not libs:
            return None
        path = libs[0]
    return ctypes.CDLL(path, mode=os.RTLD_LAZY)


def quantize_rows(repeats: int) -> list[dict]:
    lib = ggml_lib()
    w = np.random.default_rng(0).standard_normal((768, 3072)).astype(np.float32) * 0.02
    llmc.set_num_threads(1)
    rows = []
    for t in TYPES:
        got = llmc.quantize(w, t)
        r = {"type": t, "llmc_Mval_s": w.size / best(lambda: llmc.quantize(w, t), repeats) / 1e6}
        if lib is not None:
            fn = getattr(lib, f"quantize_row_{GGML_NAMES[t]}_ref")
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            want = np.zeros_like(got)

            def ggml():
                for i in range(w.shape[0]):
                    fn(w[i].ctypes.data, want[i].ctypes.data, w.shape[1])

            r["ggml_Mval_s"] = w.size / best(ggml, repeats) / 1e6
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
            rows.append({"threads": threads, "q4_k_load_s": best(lambda: llmc.Model.load(d, dtype="q4_k"), repeats),
                         "f32_load_s": best(lambda: llmc.Model.load(d), repeats)})
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
        r = {"tokenizer": name, "gguf_load_s": best(lambda: load_tokenizer(files[0]), repeats)}
        if tj.is_file():
            r["llmc_json_load_s"] = best(lambda: llmc.Tokenizer.from_file(tj), repeats)
            if tokenizers is not None:
                r["hf_json_load_s"] = best(lambda: tokenizers.Tokenizer.from_file(str(tj)), repeats)
        rows.append(r)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-model", action="store_true", help="leave out the 124M-parameter model conversion")
    add_out_arg(ap, "convert")
    args = ap.parse_args()
    print(f"llmc {llmc.__version__} | simd {llmc.simd_info()['active']} | {platform.processor() or platform.machine()}"
          f" | load average {load_average()}")

    quant = quantize_rows(args.repeats)
    print("\nquantize a (768, 3072) matrix, 1 thread (Mvalues/s)")
    print(f"{'type':<5} {'llmc':>8} {'ggml ref':>9} {'llmc/ggml':>9} {'same bytes':>10}")
    for r in quant:
        g = r.get("ggml_Mval_s")
        print(f"{r['type']:<5} {r['llmc_Mval_s']:>8.1f} " + (f"{g:>9.1f} {r['llmc_Mval_s'] / g:>8.2f}x "
                                                            f"{str(r['identical']):>10}" if g else f"{'-':>9}"))

    model = [] if args.skip_model else convert_model(args.repeats)
    if model:
        print("\nGPT-2 small (124M) folder -> Model.load (seconds)")
        print(f"{'threads':>7} {'dtype=q4_k':>10} {'fp32':>6}")
        for r in model:
            print(f"{r['threads']:>7} {r['q4_k_load_s']:>10.2f} {r['f32_load_s']:>6.2f}")

    toks = gguf_tokenizers(args.repeats)
    if toks:
        print("\ntokenizer load (seconds): from GGUF metadata vs from the tokenizer.json it was converted from")
        print(f"{'tokenizer':<9} {'llmc gguf':>9} {'llmc json':>9} {'HF json':>8}")
        for r in toks:
            print(f"{r['tokenizer']:<9} {r['gguf_load_s']:>9.3f} {r.get('llmc_json_load_s', float('nan')):>9.3f} "
                  f"{r.get('hf_json_load_s', float('nan')):>8.3f}")
    write_json(args.out, {"machine": platform.processor() or platform.machine(), "simd": llmc.simd_info(),
                          "load_average": load_average(), "repeats": args.repeats, "quantize": quant,
                          "model": model, "gguf_tokenizer": toks})


if __name__ == "__main__":
    main()
