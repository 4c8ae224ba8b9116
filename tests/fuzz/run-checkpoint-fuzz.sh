#!/usr/bin/env bash
# run-checkpoint-fuzz.sh - build the checkpoint loader's libFuzzer target
# (tests/fuzz/checkpoint_fuzz.c) with clang (-fsanitize=fuzzer,address,
# undefined), replay the seed corpus, then fuzz for a bounded time. Exits
# nonzero on a crash, a leak, a sanitizer report or a broken loader promise
# (the input is saved in the build folder as crash-<sha1>; replay it with
# `<build>/cmake/tests/fuzz/checkpoint_fuzz <file>`, ARB_FUZZ_VERBOSE=1 to
# see what the loader said).
#
#   bash tests/fuzz/run-checkpoint-fuzz.sh [SECONDS]   default 30; 0 = replay only
#
# Built through CMake, not by listing sources as run-fuzz.sh does: applying
# a checkpoint needs a model on the cpu backend, and libarb's backend code
# also holds the jit backend (NVRTC, the embedded kernel templates that the
# arb-embed tool generates at build time), which only the project's own
# build knows how to put together. So this configures the whole project with
# clang in its own folder (-DARB_FUZZ=ON -DARB_SANITIZE=ON: libarb and the
# trainer's core are built with ASan+UBSan too; no tests) and builds just the
# checkpoint_fuzz target: the same needs as the normal build (CMake, the CUDA
# toolkit's headers and NVRTC, SQLite, OpenMP - libomp comes with clang),
# about 30 s on 2 cores the first time, incremental after. Environment: CC
# (default clang), ARB_FUZZ_BUILD (the build folder, default build-fuzz/ at
# the repository root; this target uses its checkpoint/ subfolder).
#
# The seeds (tests/fuzz/corpus/checkpoint/): checkpoints written by
# `arb-train --backend cpu --config tiny` (tiny-step2; tiny-schedule with a
# theta schedule, --e-score sign, --e-layers emb,out, --batch 32), a bit-flipped
# one, truncated ones, a wrong magic and a future version; and "micro-*"
# checkpoints of a configuration too small for arb-train to name (ctx 1, D 1,
# H 1, L 1, gs 1: about 3 KB, so mutations are cheap), written from
# docs/checkpoint-format.md: a valid one, an L 3 one with extreme seed and
# step, and one for each refusal of the format page's validation list (bad
# magic, versions 0 and 2, header size, size field past int64, truncation,
# trailing bytes, a flipped bit, invalid configuration and rule fields,
# tensor counts, entry size, element type, dimensions, offsets, lengths past
# int64, unterminated and wrong names, trits > 242, nonzero padding trits,
# E out of range, accumulators of -128), plus an empty file, NUL bytes and a
# bare header.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-30}
case "$seconds" in
  ''|*[!0-9]*) echo "run-checkpoint-fuzz.sh: expected a number of seconds, got '$seconds'" >&2; exit 2 ;;
esac
build=${ARB_FUZZ_BUILD:-$root/build-fuzz}/checkpoint
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "run-checkpoint-fuzz.sh: $cc not found (install clang and libclang-rt-14-dev)" >&2; exit 2; }
command -v cmake >/dev/null || { echo "run-checkpoint-fuzz.sh: cmake not found" >&2; exit 2; }
mkdir -p "$build/corpus"

# -O1 (not Debug's -O0): the fuzzer runs several times more inputs a second,
# and the sanitizers still see everything.
echo "run-checkpoint-fuzz: configuring $build/cmake with $cc" >&2
cmake -S "$root" -B "$build/cmake" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-g -O1" -DARB_FUZZ=ON -DARB_SANITIZE=ON -DARB_BUILD_TESTS=OFF >/dev/null
echo "run-checkpoint-fuzz: building checkpoint_fuzz" >&2
cmake --build "$build/cmake" --target checkpoint_fuzz -j"$(nproc)" >/dev/null
target=$build/cmake/tests/fuzz/checkpoint_fuzz

# Format tokens worth splicing in (libFuzzer -dict format): the magic, the
# tensor names, configuration names, and the u32/u64 values the checks test.
dict=$build/checkpoint.dict
{
  for t in embed. norm. linear. norm_out. out. .T .E .T_accum .E_accum tiny small base; do
    printf '"%s"\n' "$t"
  done
  printf '"ARBCKPT\\x00"\n'
  printf '"\\x01\\x00\\x00\\x00"\n"\\x02\\x00\\x00\\x00"\n"\\xa0\\x00\\x00\\x00"\n"\\x48\\x00\\x00\\x00"\n'
  printf '"\\x00\\x01\\x00\\x00"\n"\\x7f\\x00\\x00\\x00"\n"\\x80\\x00\\x00\\x00"\n"\\xff\\xff\\xff\\xff"\n'
  printf '"\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x7f"\n"\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x80"\n'
  printf '"\\xf2"\n"\\xf3"\n"\\x80"\n"\\x1f"\n"\\xe0"\n"\\x00"\n'
} > "$dict"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# The seeds written by arb-train are 40 KB; -max_len leaves room to grow.
common=(-max_len=65536 -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$build/")

echo "run-checkpoint-fuzz: replaying the seed corpus" >&2
"$target" "${common[@]}" -runs=0 "$here/corpus/checkpoint"

if [ "$seconds" -gt 0 ]; then
  echo "run-checkpoint-fuzz: fuzzing for $seconds s (new inputs go to $build/corpus)" >&2
  "$target" "${common[@]}" -dict="$dict" -max_total_time="$seconds" -print_final_stats=1 \
    "$build/corpus" "$here/corpus/checkpoint"
fi
echo "run-checkpoint-fuzz: ok" >&2
