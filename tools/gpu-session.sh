#!/usr/bin/env bash
# gpu-session.sh - everything that belongs together on a GPU machine, in one
# run: build here, `../shared/device/bundle-libs.sh build`, then on the GPU
# machine (where $OUT is a folder whose files come back):
#
#   bash tools/gpu-session.sh PHASE...
#
# phases: info staged sass tests memcheck gemm step train strict sweep multi
# Each phase writes <phase>.log into $OUT/logs.tgz; a summary goes to stdout.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Logs gather in one folder and leave as one archive ($OUT/logs.tgz): the
# device tool brings back only a few files.
out=/tmp/arb-gpu-logs
mkdir -p "$out"
trap 'tar czf "${OUT:-/tmp}/logs.tgz" -C "$out" . 2>/dev/null' EXIT
export LD_LIBRARY_PATH=$root/build/devlibs:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export ARB_CACHE=${ARB_CACHE:-/tmp/arb-gpu-cache/kernels.sqlite}
export NCCL_NVLS_ENABLE=0
bin=$root/build
data=$root/data/brown.txt

run() { # name command...: run, log, report
  local name=$1; shift
  local t0=$(date +%s)
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  echo "== $name: rc=$rc in $(( $(date +%s) - t0 )) s"
  return $rc
}

for phase in "$@"; do
  case $phase in
  info)
    nvidia-smi -L | tee "$out/info.log"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem --format=csv >>"$out/info.log" 2>&1
    ;;
  staged)
    # The staged tensor-core path (sm_90a) on its own: kernels vs references, ops.
    run staged "$bin/tests/test_gpu_staged" --jobs 1
    grep -E "FAIL|Synthesis|arb-skip" "$out/staged.log" | head -20
    ;;
  sass)
    # SASS of cubins compiled on the CPU machine (build/sass/*.cubin, the same
    # NVRTC): tensor-core instructions and local-memory traffic per kernel.
    for f in "$bin"/sass/*.cubin; do
      [ -e "$f" ] || continue
      name=$(basename "$f" .cubin)
      cuobjdump -sass "$f" >"$out/sass-$name.txt" 2>&1
      echo "$name: HGMMA $(grep -c HGMMA "$out/sass-$name.txt") HMMA $(grep -c 'HMMA' "$out/sass-$name.txt") LDL/STL $(grep -cE '\b(LDL|STL)\b' "$out/sass-$name.txt") LDGSTS $(grep -c LDGSTS "$out/sass-$name.txt") instructions $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$out/sass-$name.txt")"
    done
    ;;
  tests)
    run tests ctest --test-dir "$bin" -L gpu --output-on-failure -j1
    grep -E "tests passed|tests failed|Failed|\(Failed\)" "$out/tests.log" | tail -15
    ;;
  memcheck)
    # Every GPU op test under memcheck, and racecheck on the kernels with
    # shared memory (GEMMs, updates, rows): one process tree each.
    run memcheck compute-sanitizer --tool memcheck --target-processes all --error-exitcode 9 \
      "$bin/tests/test_gpu_ops" --jobs 1
    tail -3 "$out/memcheck.log"
    for t in ternary_fwd ternary_grad_x update_direct_equals_two_pass rmsnorm_fwd_bwd xent \
             precision_modes; do
      run racecheck-$t compute-sanitizer --tool racecheck --target-processes all \
        --error-exitcode 9 "$bin/tests/test_gpu_ops" --jobs 1 --filter "gpu_ops/$t"
      grep -E "RACECHECK SUMMARY|ERROR SUMMARY|Synthesis" "$out/racecheck-$t.log" | tail -2
    done
    ;;
  gemm)
    for p in ${ARB_GEMM_PRECISIONS:-fp32 tf32 bf16 bf16x2 bf16x3}; do
      run gemm-$p "$bin/bench/arb-bench" --precision $p ${ARB_GEMM_ARGS:---gemm 1024 4096 4096 64 \
        --gemm 8192 4096 4096 64 --gemm 16 4096 4096 64 --gemm 1 16384 16384 64} \
        --json "$out/gemm-$p.json"
      grep -E "ternary_fwd|ternary_grad_x|cublas" "$out/gemm-$p.log" | head -40
    done
    ;;
  step)
    for p in fp32 bf16x2; do
      run step-$p "$bin/bench/arb-bench" --step --config base --precision $p --json "$out/step-$p.json"
      sed -n '/step (batch/,$p' "$out/step-$p.log" | head -40
    done
    ;;
  train)
    for p in ${ARB_TRAIN_PRECISIONS:-bf16x2}; do
      run train-$p "$bin/train/arb-train" --backend jit --config base --data "$data" \
        --precision $p --steps ${ARB_TRAIN_STEPS:-1500} --log "$out/train-$p.jsonl" --log-every 10 \
        --eval-every 250
      grep -E "^step +([1-9]|[1-4][0-9]|50)/|final:|jit:|backend" "$out/train-$p.log" | head -20
      tail -2 "$out/train-$p.log"
    done
    ;;
  strict)
    # Prewarm the base shapes, then a run that may not compile anything.
    rm -rf /tmp/arb-strict && mkdir -p /tmp/arb-strict
    export ARB_CACHE=/tmp/arb-strict/kernels.sqlite
    "$bin/train/arb-train" --dump-shapes --config base --precision ${ARB_STRICT_PRECISION:-bf16x2} \
      >"$out/strict-shapes.txt"
    run prewarm-cold "$bin/prewarm/arb-prewarm" "$out/strict-shapes.txt"
    tail -1 "$out/prewarm-cold.log"
    run prewarm-warm "$bin/prewarm/arb-prewarm" "$out/strict-shapes.txt"
    tail -1 "$out/prewarm-warm.log"
    ARB_CACHE_MODE=strict run strict-train "$bin/train/arb-train" --backend jit --config base \
      --data "$data" --precision ${ARB_STRICT_PRECISION:-bf16x2} --steps 30 --eval-every 30
    grep -E "jit:|final:|error" "$out/strict-train.log"
    "$bin/tools/arb-cache" stats >"$out/strict-stats.log" 2>&1
    head -30 "$out/strict-stats.log"
    ;;
  sweep)
    run sweep "$bin/bench/arb-bench" --sweep-blocks prewarm/shapes/base.txt --precision ${ARB_SWEEP_PRECISION:-bf16x2} \
      --json "$out/sweep.json" --csv "$out/sweep.csv" --plot "$out/sweep.svg"
    sed -n '/winner/,$p' "$out/sweep.log" | head -60
    run sweep-prewarm "$bin/prewarm/arb-prewarm" --dry-run prewarm/shapes/base.txt
    head -30 "$out/sweep-prewarm.log"
    ;;
  multi)
    n=$(nvidia-smi -L | wc -l)
    run multi-1 "$bin/train/arb-train" --backend jit --config base --data "$data" \
      --precision ${ARB_MULTI_PRECISION:-bf16x2} --steps ${ARB_MULTI_STEPS:-300} --eval-every 100 --log-every 50
    grep -E "final:|state" "$out/multi-1.log"
    run multi-$n "$bin/train/arb-train" --gpus "$n" --config base --data "$data" \
      --precision ${ARB_MULTI_PRECISION:-bf16x2} --steps ${ARB_MULTI_STEPS:-300} --eval-every 100 --log-every 50
    grep -E "final:|state sha256|data-parallel|error" "$out/multi-$n.log"
    ;;
  *) echo "unknown phase $phase" >&2; exit 2 ;;
  esac
done
