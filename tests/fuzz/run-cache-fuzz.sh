#!/usr/bin/env bash
# run-cache-fuzz.sh - build the cache-entry reader's libFuzzer target
# (tests/fuzz/cache_fuzz.c) with clang (-fsanitize=fuzzer,address,undefined),
# replay the seed corpus, then fuzz for a bounded time. Exits nonzero on a
# crash, a leak, a sanitizer report or a broken cache promise (the input is
# saved in the build folder as crash-<sha1>; replay it with
# `<build>/cache_fuzz <file>`).
#
#   bash tests/fuzz/run-cache-fuzz.sh [SECONDS]     default 30; 0 = replay only
#
# Standalone: compiles cache/src/*.c and common/src/*.c directly with the
# target (no CMake, no CUDA) and links the system SQLite. Environment: CC
# (default clang), ARB_FUZZ_BUILD (the build folder, default build-fuzz/ at
# the repository root; this target uses its cache/ subfolder).
#
# The seeds (tests/fuzz/corpus/cache/) are small cache files with 512-byte
# pages: valid ones in WAL and rollback mode, a flipped cubin byte, a wrong
# length, a newer schema, a foreign database, a missing table, odd values
# (NULLs, text for numbers, lengths past int64, NUL bytes, duplicate hashes),
# truncated, scribbled and random files, a bare header and an empty file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=${1:-30}
case "$seconds" in
  ''|*[!0-9]*) echo "run-cache-fuzz.sh: expected a number of seconds, got '$seconds'" >&2; exit 2 ;;
esac
build=${ARB_FUZZ_BUILD:-$root/build-fuzz}/cache
cc=${CC:-clang}
command -v "$cc" >/dev/null || { echo "run-cache-fuzz.sh: $cc not found (install clang and libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$build/corpus"

flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
       -I"$root/common/include" -I"$root/cache/include" -I"$root/cache/src" -Wall -Wextra)
sources=("$here/cache_fuzz.c" "$root"/cache/src/*.c "$root"/common/src/*.c)
target=$build/cache_fuzz
echo "run-cache-fuzz: building $target" >&2
objects=()
for src in "${sources[@]}"; do
  obj=$build/$(basename "${src%.c}").o
  # The library is instrumented for coverage and the sanitizers, not linked
  # with libFuzzer's main: -fsanitize=fuzzer-no-link for everything but the target.
  if [ "$src" = "$here/cache_fuzz.c" ]; then
    "$cc" "${flags[@]}" -c "$src" -o "$obj"
  else
    "$cc" "${flags[@]/-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer-no-link,address,undefined}" \
      -c "$src" -o "$obj"
  fi
  objects+=("$obj")
done
"$cc" "${flags[@]}" "${objects[@]}" -lsqlite3 -lpthread -lm -o "$target"

# SQL and format tokens worth splicing in (libFuzzer -dict format).
dict=$build/cache.dict
{
  for t in "SQLite format 3" entries quarantine tuning stats hash cubin cubin_len checksum \
           ternary_fwd fp32 sm_90 "CREATE TABLE" "PRIMARY KEY" "WITHOUT ROWID" "NOT NULL" \
           INTEGER TEXT BLOB REAL; do
    printf '"%s"\n' "$t"
  done
  printf '"\\x41\\x52\\x42\\x31"\n"\\x00\\x00\\x00\\x01"\n"\\x02\\x02"\n"\\x01\\x01"\n'
  printf '"\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x7f"\n"\\x00"\n'
} > "$dict"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
common=(-max_len=16384 -timeout=20 -rss_limit_mb=2048 -artifact_prefix="$build/")

echo "run-cache-fuzz: replaying the seed corpus" >&2
"$target" "${common[@]}" -runs=0 "$here/corpus/cache"

if [ "$seconds" -gt 0 ]; then
  echo "run-cache-fuzz: fuzzing for $seconds s (new inputs go to $build/corpus)" >&2
  "$target" "${common[@]}" -dict="$dict" -max_total_time="$seconds" -print_final_stats=1 \
    "$build/corpus" "$here/corpus/cache"
fi
echo "run-cache-fuzz: ok" >&2
