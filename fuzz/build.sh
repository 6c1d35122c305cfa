#!/usr/bin/env bash
# Build the libFuzzer targets with clang under AddressSanitizer + UndefinedBehaviorSanitizer.
#   fuzz/build.sh [outdir]          (default: fuzz/build)
# Needs clang, libclang-rt-dev (libFuzzer) and libomp-dev: Debian's `clang libclang-rt-14-dev libomp-14-dev`.
# Each target links the parser sources it exercises plus stubs.c (one thread, no BLAS).
set -euo pipefail
cd "$(dirname "$0")"
OUT=${1:-build}
mkdir -p "$OUT"
CC=${CC:-clang}
CFLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fopenmp -D_DEFAULT_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I../csrc"
PARSERS="../csrc/json.c ../csrc/error.c ../csrc/file.c ../csrc/interrupt.c stubs.c"
TOKENIZER="../csrc/tokenizer.c ../csrc/tokenizer_hf.c ../csrc/pretokenize.c ../csrc/wordpiece.c ../csrc/nfc.c ../csrc/unicode_tables.c ../csrc/regex.c ../csrc/pretok_split.c ../csrc/normalize.c ../csrc/grapheme.c ../csrc/spm_charsmap.c ../csrc/unigram.c ../csrc/tokenizer_spm.c ../csrc/spm_proto.c ../csrc/dat.c ../csrc/bpe_backtrack.c"
# the SIMD table (safetensors' bf16/f16 conversion does not use it, but headers reference it)
SIMD="../csrc/simd.c ../csrc/simd_scalar.c ../csrc/simd_avx2.c ../csrc/simd_avx512.c"
build() { # name sources...
    local name=$1; shift
    $CC $CFLAGS -o "$OUT/$name" "$name.c" "$@" -lm
}
build fuzz_json $PARSERS
build fuzz_safetensors $PARSERS ../csrc/safetensors.c
build fuzz_config $PARSERS ../csrc/model_config.c
build fuzz_tokenizer_json $PARSERS $TOKENIZER
build fuzz_tiktoken $PARSERS $TOKENIZER
build fuzz_gguf $PARSERS ../csrc/gguf.c ../csrc/gguf_arch.c
build fuzz_spm $PARSERS $TOKENIZER
echo "built: $(ls "$OUT" | tr '\n' ' ')"
