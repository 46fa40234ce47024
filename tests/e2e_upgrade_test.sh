#!/usr/bin/env bash
# An upgrade under a running sweep: the coordinator of the previous release
# (distill-coordinator-previous: this code with the schema one migration
# older and a version of its own, the nearest one build makes) serves a
# sweep; while a student trains it is stopped and this build started on the
# same directory, which migrates the database at start. The worker keeps
# its run through the swap: no run is lost, none runs twice (every run
# SUCCEEDED at attempt 1 with all its epochs), and runs leased after the
# swap name the new coordinator in their provenance.
# Usage: e2e_upgrade_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
fixed_port=$(free_port)
coordinator_binary=$build/server/distill-coordinator-previous \
  start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
start_worker worker
cat >"$work/sweep.yaml" <<'SPEC'
name: upgrade
base:
  dataset: {name: fashion-mnist, train_limit: 2048, test_limit: 256}
  student: {arch: resnet18, width: 8}
  epochs: 2
  batch_size: 64
  metrics_every_steps: 2
teacher:
  train:
    teacher: {vit: {patch_size: 7, width: 32, depth: 1, heads: 2}}
members:
  - {name: D, losses: {ce: 1}}
  - {name: G, losses: {ce: 1, ikd: {weight: 1}}}
  - {name: H, losses: {ce: 1, mse: 1, ikd: {weight: 1}, rkd: {distance_weight: 1, angle_weight: 2}}}
SPEC
"$distill" sweep "$work/sweep.yaml" >/dev/null
# Wait for student D (run 2) to be training, some of its metrics in.
for _ in $(seq 1200); do
  "$distill" runs metrics 2 2>/dev/null | grep -q ',1,train/loss,' && break
  sleep 0.1
done
"$distill" runs show 2 | grep -q 'RUNNING  attempt 1' ||
  fail "student D is not training: $("$distill" runs show 2)"
old_version=$("$distill" runs show 1 | sed -n 's/.*(coordinator \([^)]*\)).*/\1/p')
case "$old_version" in *-previous) ;; *) fail "run 1 was not leased by the previous build: $old_version" ;; esac
kill -TERM "$coordinator_pid"
wait "$coordinator_pid" 2>/dev/null || true
start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
grep -q "database schema migrated from version" "$work/coordinator.log" ||
  fail "the new build did not migrate: $(cat "$work/coordinator.log")"
for run in 1 2 3 4; do
  "$distill" watch "$run" >/dev/null 2>&1 || true
  "$distill" runs show "$run" >"$work/run$run.out"
  grep -q 'SUCCEEDED  attempt 1' "$work/run$run.out" ||
    fail "run $run after the upgrade: $(cat "$work/run$run.out"; tail -20 "$work/worker.log")"
  epochs=$(sed -n 's/.*eval\/top1 by epoch://p' "$work/run$run.out" | wc -w)
  [ "$epochs" = 2 ] || fail "run $run has $epochs top-1 values: $(cat "$work/run$run.out")"
  # Every metric point of attempt 1, none of another.
  "$distill" runs metrics "$run" | awk -F, 'NR > 1 && $3 != 1 {bad = 1} END {exit bad}' ||
    fail "run $run reported from another attempt"
done
new_version=$("$distill" runs show 4 | sed -n 's/.*(coordinator \([^)]*\)).*/\1/p')
[ -n "$new_version" ] && [ "$new_version" != "$old_version" ] ||
  fail "run 4 was leased by $new_version, not the new build"
echo "e2e upgrade: $old_version -> $new_version under a running sweep: 4 runs SUCCEEDED at attempt 1, student D trained through the swap"
