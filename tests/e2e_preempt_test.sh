#!/usr/bin/env bash
# Preemption at a step through the real binaries: one worker trains a run
# of priority 0; an admin's sweep of priority 10 arrives; the coordinator
# asks the run to give way (its heartbeat), the worker hands it back at its
# next step with a resume point and goes on serving: it trains the urgent
# sweep, then the preempted run again, which resumes mid-epoch, loses no
# step and ends with the same top-1 as the same run never interrupted.
# Usage: e2e_preempt_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"

start_coordinator --preempt_after=0s --preempt_every=0s --heartbeat_seconds=1
distill="$build/client/distill"
start_worker only

cat >"$work/low.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 9600, test_limit: 256}
teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
optimizer: {lr: 0.001}
epochs: 2
batch_size: 32
metrics_every_steps: 4
evaluation: {tsne_points: 0}
SPEC
cat >"$work/urgent.yaml" <<'SPEC'
name: urgent
priority: 10
base:
  dataset: {name: fashion-mnist, train_limit: 128, test_limit: 64}
  student: {arch: resnet18, width: 4}
  epochs: 1
  batch_size: 32
  evaluation: {tsne_points: 0}
teacher:
  train:
    teacher:
      vit: {patch_size: 7, width: 32, depth: 1, heads: 2}
    epochs: 1
members:
  - name: D
    losses: {ce: 1}
SPEC
low=$("$distill" submit "$work/low.yaml" | awk '{print $2}')
# Into its first epoch: some steps reported.
for _ in $(seq 600); do
  "$distill" runs show "$low" | grep -q 'RUNNING  attempt 1' &&
    "$distill" runs show "$low" | grep -q 'train/loss' && break
  sleep 0.1
done
"$distill" runs show "$low" | grep -q 'train/loss' || fail "the low run did not start: $("$distill" runs show "$low")"
"$distill" sweep "$work/urgent.yaml" >"$work/urgent.out" || fail "urgent sweep: $(cat "$work/urgent.out")"
urgent=$(sed -n 's/.*run \([0-9]*\) .*teacher.*/\1/p' "$work/urgent.out" | head -1)
[ -n "$urgent" ] || urgent=$((low + 1))
"$distill" watch "$low" >/dev/null || fail "the preempted run did not succeed: $("$distill" runs show "$low")"
"$distill" runs show "$low" >"$work/low.out"
grep -q 'SUCCEEDED  attempt 2' "$work/low.out" || fail "$(cat "$work/low.out")"
grep -q "preempted: .* attempt 1 on worker .* gave way to run $urgent: priority 10 above 0" "$work/low.out" ||
  fail "no preemption in its history: $(cat "$work/low.out")"
grep -q 'handed back: preempted for run' "$work/low.out" || true
# The urgent sweep ran in between, on the same worker, which never stopped.
"$distill" runs show "$urgent" | grep -q 'SUCCEEDED' || fail "urgent: $("$distill" runs show "$urgent")"
grep -q 'handed back with a resume point' "$work/only.log" || fail "$(tail -5 "$work/only.log")"
"$distill" workers list | grep -q ' idle ' || fail "the worker stopped: $("$distill" workers list)"
# Resumed mid-epoch (300 steps an epoch), no step lost.
resumed=$(sed -n 's/.*train\/resumed_from_epoch = \([0-9.]*\).*/\1/p' "$work/low.out")
[ -n "$resumed" ] || fail "attempt 2 did not resume: $(cat "$work/low.out")"
lost=$(steps_lost "$low" "$resumed" 300)
[ "$lost" = 0 ] || fail "attempt 2 went on $lost steps before attempt 1's last"
# The same run, never interrupted: the same top-1.
again=$("$distill" submit "$work/low.yaml" | awk '{print $2}')
"$distill" watch "$again" >/dev/null || fail "the uninterrupted run failed"
top1() { "$distill" runs show "$1" --format=json | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["results"]["eval/top1"])'; }
a=$(top1 "$low") b=$(top1 "$again")
[ "$a" = "$b" ] || fail "preempted top-1 $a, uninterrupted $b"
printf 'preemption: the low run resumed from epoch %s, %d steps lost, top-1 %s as uninterrupted\n' "$resumed" "$lost" "$a"
echo "e2e preempt: 1 passed, 0 failed"
