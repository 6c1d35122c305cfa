#!/usr/bin/env bash
# Run every fuzz target for a fixed time each, under ASan + UBSan, starting from the committed seed corpus.
#   fuzz/run.sh [seconds per target] [build dir]       (CI: 45 s each; a longer local run: fuzz/run.sh 3600)
# New coverage goes to a scratch corpus (the committed one is not modified). A crash stops with a non-zero status
# and leaves crash-* / leak-* / timeout-* in the working directory: copy it into fuzz/corpus/<target>/ as a
# regression file once fixed (every CI run replays the whole corpus).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${1:-45}
BUILD=${2:-build}
[ -x "$BUILD/fuzz_json" ] || ./build.sh "$BUILD"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
total=0
for target in json safetensors config tokenizer_json tiktoken gguf spm; do
    mkdir -p "$WORK/$target"
    log="$WORK/$target.log"
    if ! "$BUILD/fuzz_$target" "$WORK/$target" "corpus/$target" -max_total_time="$SECS" -timeout=10 \
        -rss_limit_mb=3072 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        tail -60 "$log"
        echo "fuzz_$target FAILED (reproducer above; see crash-* in $(pwd))"
        exit 1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    total=$((total + runs))
    echo "fuzz_$target: $runs executions in ${SECS}s, $cov, corpus $(ls "$WORK/$target" | wc -l) new inputs"
done
echo "fuzzing: $total executions, no crash"
