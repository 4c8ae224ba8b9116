#!/usr/bin/env bash
# test.sh - build (if needed) and run the whole test suite, as the README says.
# GPU tests skip with a printed reason where no GPU is present.
#   bash tools/test.sh [ctest arguments...]     e.g. -L cpu, -R engine
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ARB_BUILD_DIR:-$root/build}
[ -f "$build/CMakeCache.txt" ] || cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)"
exec ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
