#!/usr/bin/env bash
# run-fuzz.sh - build the shapes.txt parser's libFuzzer target with clang
# (-fsanitize=fuzzer,address,undefined) in its own folder, replay the seed
# corpus, then fuzz for a bounded time. Exits nonzero on a crash, a leak, a
# sanitizer report or a broken parser promise (the crashing input is saved
# in the build folder as crash-<sha1>; replay it with `<target> <file>`).
#
#   bash tests/fuzz/run-fuzz.sh [SECONDS]     default 30; 0 = replay only
#
# Standalone: compiles the few sources the parser needs directly (no CMake,
# no CUDA, no SQLite). Environment: CC (default clang), ARB_FUZZ_BUILD (the
# build folder, default build-fuzz/ at the repository root).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-30}
case "$seconds" in
  ''|*[!0-9]*) echo "run-fuzz.sh: expected a number of seconds, got '$seconds'" >&2; exit 2 ;;
esac
build=${ARB_FUZZ_BUILD:-$root/build-fuzz}
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "run-fuzz.sh: $cc not found (install clang and libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$build/corpus-shapes"

# The parser and what it calls: the kernel registry and plans, the group-size
# check, precision names, status messages. Nothing of CUDA, NVRTC or SQLite.
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$root/common/include" -I"$root/cache/include" -I"$root/engine/include"
       -I"$root/engine/src" -Wall -Wextra)
sources=("$here/shapes_fuzz.c" "$root/engine/src/shapes.c" "$root/engine/src/jit/kernels.c"
         "$root/engine/src/ternary.c" "$root/engine/src/precision.c" "$root/common/src/status.c")
target=$build/shapes_fuzz
echo "run-fuzz: building $target" >&2
"$cc" "${flags[@]}" "${sources[@]}" -lm -o "$target"

# Tokens worth splicing in (libFuzzer -dict format).
dict=$build/shapes.dict
{
  for t in linear rmsnorm embed kernel= M= N= K= gs= V= D= update= precision= variant= \
           bm= bn= bk= tm= tn= warps= stages= grad sign step none fp32 tf32 bf16 bf16x2 \
           bf16x3 ternary_fwd ternary_grad_x ternary_update_direct update_E update_E_apply \
           rmsnorm_fwd embed_fwd add 2147483647 2147483648 9223372036854775808 '#'; do
    printf '"%s"\n' "$t"
  done
  printf '"\\x0d\\x0a"\n"\\x00"\n"\\x09"\n'
} > "$dict"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
common=(-max_len=8192 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$build/")

echo "run-fuzz: replaying the seed corpus" >&2
"$target" "${common[@]}" -runs=0 "$here/corpus/shapes"

if [ "$seconds" -gt 0 ]; then
  echo "run-fuzz: fuzzing for $seconds s (new inputs go to $build/corpus-shapes)" >&2
  "$target" "${common[@]}" -dict="$dict" -max_total_time="$seconds" -print_final_stats=1 \
    "$build/corpus-shapes" "$here/corpus/shapes"
fi
echo "run-fuzz: ok" >&2
