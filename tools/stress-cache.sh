#!/usr/bin/env bash
# stress-cache.sh - N processes x M keys hammering one kernel cache for a
# fixed time, with writers killed by kill -9 at random moments and
# restarted; then a check that the cache verifies and still holds every
# entry any writer was told was stored (see tools/arb_cache_stress.c).
#
#   bash tools/stress-cache.sh [--procs N] [--keys M] [--seconds S]
#        [--kill-ms MIN:MAX] [--bin PATH] [--tool PATH] [--dir DIR] [--keep]
#
# Defaults: 4 processes, 3000 keys, 10 s, a kill every 200..800 ms. The long
# run: --procs 8 --keys 20000 --seconds 120 (or 300). Prints one summary line:
#   stress-cache: ... entries_reported_stored=X entries_verified=Y kills=K
#   errors=E entries_lost=L ...
# and exits 1 when an entry was lost, a get returned wrong bytes, a call
# failed, or verify (arb_cache_verify, and arb-cache verify when the tool is
# found) did not pass; 2 on usage errors.
#
# The binaries come from --bin/--tool, else $ARB_BUILD_DIR/tools, else
# build/tools at the repository root.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
procs=4
keys=3000
seconds=10
kill_min=200
kill_max=800
bin=
tool=
work=
keep=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
need_num() { case "$2" in ''|*[!0-9]*) echo "stress-cache.sh: $1 needs a number, got '$2'" >&2; exit 2 ;; esac; }

while [ $# -gt 0 ]; do
  case "$1" in
    --procs) need_num "$1" "${2:-}"; procs=$2; shift 2 ;;
    --keys) need_num "$1" "${2:-}"; keys=$2; shift 2 ;;
    --seconds) need_num "$1" "${2:-}"; seconds=$2; shift 2 ;;
    --kill-ms)
      kill_min=${2%%:*}; kill_max=${2##*:}
      need_num "$1" "$kill_min"; need_num "$1" "$kill_max"; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --dir) work=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    *) echo "stress-cache.sh: unknown argument $1" >&2; usage ;;
  esac
done
[ "$procs" -ge 1 ] && [ "$keys" -ge 1 ] && [ "$kill_max" -ge "$kill_min" ] || usage

build=${ARB_BUILD_DIR:-$root/build}
bin=${bin:-$build/tools/arb-cache-stress}
tool=${tool:-$(dirname "$bin")/arb-cache}
[ -x "$bin" ] || { echo "stress-cache.sh: $bin not found: build it (cmake --build build --target arb-cache-stress) or pass --bin" >&2; exit 2; }

if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/arb-stress-cache-XXXXXX)
else
  mkdir -p "$work"
fi
cache=$work/kernels.sqlite
declare -a pid gen
kills=0
restarts=0

cleanup() {
  for p in "${pid[@]:-}"; do
    [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$keep" = 0 ] && [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

start() { # slot
  local s=$1
  gen[$s]=$(( ${gen[$s]:-0} + 1 ))
  "$bin" writer --cache "$cache" --log "$work/log.$s.${gen[$s]}" --keys "$keys" \
    --seed "$(( s * 1000 + ${gen[$s]} ))" 2>>"$work/stderr.$s" &
  pid[$s]=$!
}

sleep_ms() { sleep "$(awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }')"; }

echo "stress-cache: $procs processes x $keys keys for $seconds s on $cache (kill -9 every ${kill_min}-${kill_max} ms)" >&2
t0=$(date +%s)
for ((s = 0; s < procs; s++)); do start "$s"; done

end=$(( t0 + seconds ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep_ms $(( kill_min + RANDOM % (kill_max - kill_min + 1) ))
  s=$(( RANDOM % procs ))
  if kill -9 "${pid[$s]}" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "${pid[$s]}" 2>/dev/null || true
  if [ "$(date +%s)" -lt "$end" ]; then start "$s"; restarts=$((restarts + 1)); fi
done
# The end is a kill too: every writer dies mid-whatever it was doing.
for ((s = 0; s < procs; s++)); do
  if kill -9 "${pid[$s]}" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "${pid[$s]}" 2>/dev/null || true
  pid[$s]=
done
elapsed=$(( $(date +%s) - t0 ))

status=0
figures=$("$bin" check --cache "$cache" --keys "$keys" "$work"/log.*) || status=1
tool_verify=skipped
if [ -x "$tool" ]; then
  if "$tool" --cache "$cache" verify >"$work/verify.txt" 2>&1; then
    tool_verify=ok
  else
    tool_verify=FAILED; status=1
    cat "$work/verify.txt" >&2
  fi
fi
# Writers print nothing on stderr unless something is wrong (a sanitizer).
if cat "$work"/stderr.* 2>/dev/null | grep -q .; then
  echo "stress-cache: writers wrote to stderr:" >&2
  cat "$work"/stderr.* | head -40 >&2
  status=1
fi
echo "stress-cache: procs=$procs keys=$keys seconds=$elapsed kills=$kills restarts=$restarts $figures arb_cache_verify_tool=$tool_verify"
[ "$status" = 0 ] && echo "stress-cache: ok" >&2 || echo "stress-cache: FAILED (work folder kept: $work)" >&2
[ "$status" = 0 ] || keep=1
exit "$status"
