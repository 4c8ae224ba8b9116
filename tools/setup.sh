#!/usr/bin/env bash
# setup.sh - set up arb on a fresh machine, then train on the default data.
#
#   bash tools/setup.sh             install what is missing, build, fetch the
#                                   Brown corpus, train `small` on the CPU
#   bash tools/setup.sh --no-train  the same without the training run
#   bash tools/setup.sh --deps-only install what is missing, nothing else
#
# Needs the CUDA 13 toolkit (NVRTC and headers) in /usr/local/cuda; a GPU and
# its driver are optional (without them arb runs on the CPU backend).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=all
case "${1:-}" in
  "") ;;
  --deps-only) mode=deps ;;
  --no-train) mode=build ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) echo "setup.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
esac

say() { printf 'setup: %s\n' "$*" >&2; }

# ---- packages ---------------------------------------------------------------
missing=()
command -v cmake >/dev/null || missing+=(cmake)
command -v gcc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
[ -f /usr/include/criterion/criterion.h ] || missing+=(libcriterion-dev)
command -v npm >/dev/null || missing+=(npm)
command -v clang >/dev/null || missing+=(clang)
dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  say "installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cuda=${CUDA_HOME:-/usr/local/cuda}
if [ ! -f "$cuda/include/nvrtc.h" ]; then
  say "the CUDA toolkit (NVRTC) is not in $cuda: install CUDA 13 or set CUDA_HOME"
  exit 1
fi
[ "$mode" = deps ] && exit 0

# ---- build ------------------------------------------------------------------
say "building in $root/build"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build" -j"$(nproc)"
[ "$mode" = build ] && exit 0

# ---- data and the main job ----------------------------------------------------
bash "$root/tools/fetch-corpus.sh"
say "training the small model on the CPU (arb-train --backend cpu); this takes a few minutes"
cd "$root"
exec "$root/build/train/arb-train" --backend cpu --data "$root/data/brown.txt"
