#!/usr/bin/env bash
# The coordinator killed (-9) and restarted again and again while a sweep
# runs: the worker keeps the runs it holds — downloads, metrics, uploads,
# completions wait for the coordinator and are retried — so every run ends
# SUCCEEDED at attempt 1 with all its metrics. Usage: e2e_restart_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
fixed_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
"$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
  --token_file="$work/worker.token" --scratch_dir="$work/worker" \
  >"$work/worker.log" 2>&1 &
pids+=("$!")

cat >"$work/sweep.yaml" <<'SPEC'
name: restart
base:
  dataset: {name: fashion-mnist, train_limit: 2048, test_limit: 256}
  student: {arch: resnet18, width: 8}
  epochs: 2
  batch_size: 64
  metrics_every_steps: 2
  evaluation: {tsne_points: 50}
teacher:
  train:
    teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
members:
  - {name: D, losses: {ce: 1}}
  - {name: H, losses: {ce: 1, mse: 1, ikd: {weight: 1}, rkd: {distance_weight: 1, angle_weight: 2}}}
SPEC
"$distill" sweep "$work/sweep.yaml" >/dev/null
kills=0
for delay in 1.5 2 1 2.5 1.5 2 1 2; do
  sleep "$delay"
  kill -9 "$coordinator_pid"
  wait "$coordinator_pid" 2>/dev/null || true
  kills=$((kills + 1))
  sleep 1
  start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
  "$distill" runs list --sweep=1 | grep -q 'RUNNING\|QUEUED\|WAITING' || break
done
for run in 1 2 3; do
  "$distill" watch "$run" >/dev/null || true
  "$distill" runs show "$run" >"$work/run$run.out"
  grep -q 'SUCCEEDED  attempt 1' "$work/run$run.out" ||
    fail "run $run after $kills restarts: $(cat "$work/run$run.out"; tail -20 "$work/worker.log")"
  epochs=$(sed -n 's/.*eval\/top1 by epoch://p' "$work/run$run.out" | wc -w)
  [ "$epochs" = 2 ] || fail "run $run has $epochs top-1 values: $(cat "$work/run$run.out")"
done
retried=$(grep -c 'again in\|retrying in\|will retry' "$work/worker.log" || true)
echo "e2e restart: $kills kill -9 + restarts during the sweep; every run SUCCEEDED at attempt 1 ($retried calls retried)"
echo "e2e restart: 1 passed, 0 failed"
