#!/usr/bin/env bash
# Graceful drain through the real binaries: a worker that gets SIGTERM in
# the middle of an epoch hands its run back at once with a resume point of
# that step and exits 0; another worker goes on from that very step; an
# idle worker exits within a second of SIGTERM, and one told to drain by
# `distill workers drain` stops. Prints the drain figures.
# Usage: e2e_drain_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"

start_coordinator  # Leases of 60 s: a hand-back must not wait for expiry.
distill="$build/client/distill"
start_worker() {
  "$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" --scratch_dir="$work/$1" "${@:2}" \
    >"$work/$1.log" 2>&1 &
  pids+=("$!")
  worker_pid=$!
}
now() { date +%s.%N; }
seconds_since() { awk -v a="$(now)" -v b="$1" 'BEGIN {printf "%.2f", a - b}'; }
# Seconds since $sent until run $1 is QUEUED again, asked every 50 ms at
# most $2 times; nothing when it never is.
seconds_until_queued() {
  for _ in $(seq "$2"); do
    if "$distill" runs show "$1" | grep -q 'QUEUED'; then seconds_since "$sent"; return; fi
    sleep 0.05
  done
}

cat >"$work/teacher.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 9600, test_limit: 256}
teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
optimizer: {lr: 0.001}
epochs: 3
batch_size: 32
metrics_every_steps: 4
SPEC
start_worker first --metrics_listen=127.0.0.1:0
first_pid=$worker_pid
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
# Into the second epoch, between its steps (the first epoch's resume point
# is there); on a loaded machine the first epoch takes minutes.
into_second=
for _ in $(seq 3000); do
  if "$distill" runs show "$run" | grep -q 'file resume.pt'; then into_second=1; break; fi
  sleep 0.1
done
[ -n "$into_second" ] || fail "no resume point after the first epoch: $("$distill" runs show "$run")"
# Then a step of the second epoch reported: the drain comes mid-epoch.
stepped=
for _ in $(seq 3000); do
  if "$distill" runs metrics "$run" | awk -F, '$2 == 2 && $4 == "train/loss" {found = 1} END {exit !found}'; then
    stepped=1; break
  fi
  sleep 0.1
done
[ -n "$stepped" ] || fail "no step of the second epoch: $("$distill" runs show "$run")"
"$distill" runs show "$run" | grep -q 'RUNNING  attempt 1' || fail "not running"
# The worker's /metrics while it trains: its run, step and speed.
metrics_port=$(sed -n 's/.*metrics on 127\.0\.0\.1:\([0-9]*\)\/metrics.*/\1/p' "$work/first.log")
/usr/bin/python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' \
  "http://127.0.0.1:$metrics_port/metrics" >"$work/worker.metrics" || fail "no worker /metrics"
grep -qx "distill_worker_run $run" "$work/worker.metrics" || fail "$(cat "$work/worker.metrics")"
awk '$1 == "distill_worker_step" && $2 > 0 {found = 1} END {exit !found}' "$work/worker.metrics" ||
  fail "no step: $(cat "$work/worker.metrics")"
if command -v promtool >/dev/null; then
  promtool check metrics <"$work/worker.metrics" || fail "promtool: worker /metrics"
fi
sent=$(now)
kill -TERM "$first_pid"
queued=$(seconds_until_queued "$run" 300)
[ -n "$queued" ] || fail "the run was not queued again after SIGTERM: $("$distill" runs show "$run")"
queued_training=$queued
set +e
wait "$first_pid"; rc=$?
set -e
exited=$(seconds_since "$sent")
[ "$rc" = 0 ] || fail "the drained worker exited $rc"
grep -q 'handed back with a resume point' "$work/first.log" || fail "$(tail -5 "$work/first.log")"
"$distill" runs show "$run" >"$work/handed.out"
grep -q 'handed back: the worker was stopped' "$work/handed.out" || fail "$(cat "$work/handed.out")"
"$distill" workers list | grep -q ' stopped ' || fail "workers list: $("$distill" workers list)"

start_worker second
"$distill" watch "$run" >/dev/null || fail "the handed-back run did not succeed"
"$distill" runs show "$run" >"$work/after.out"
grep -q 'SUCCEEDED  attempt 2' "$work/after.out" || fail "$(cat "$work/after.out")"
# Resumed mid-epoch: epochs done plus a fraction (300 steps an epoch).
resumed=$(sed -n 's/.*train\/resumed_from_epoch = \([0-9.]*\).*/\1/p' "$work/after.out")
[ -n "$resumed" ] || fail "attempt 2 did not resume: $(cat "$work/after.out")"
echo "$resumed" | grep -Eq '^1\.[0-9]*[1-9]' || fail "resumed from $resumed, not mid-epoch 2"
epochs=$(sed -n 's/.*eval\/top1 by epoch://p' "$work/after.out" | wc -w)
[ "$epochs" = 3 ] || fail "$epochs top-1 values: $(cat "$work/after.out")"
lost=$(steps_lost "$run" "$resumed" 300)
[ "$lost" = 0 ] || fail "attempt 2 went on $lost steps before attempt 1's last"

# An idle worker exits within a second of SIGTERM.
sent=$(now)
kill -TERM "$worker_pid"
set +e
wait "$worker_pid"; rc=$?
set -e
idle=$(seconds_since "$sent")
[ "$rc" = 0 ] || fail "the idle worker exited $rc"
awk -v t="$idle" 'BEGIN {exit !(t < 1.5)}' || fail "the idle worker took $idle s to exit"

# A drain while a student evaluates after its last step (k-means, k-NN,
# t-SNE maps of 2,000 points): handed back within seconds with the point of
# its steps, and the next attempt evaluates again without training.
cat >"$work/evaluated.yaml" <<SPEC
kind: DISTILL
dataset: {name: fashion-mnist, train_limit: 640, test_limit: 2000}
teacher: {run_id: $run}
student: {width: 8}
losses: {ce: 1}
evaluation: {tsne_points: 2000}
epochs: 1
batch_size: 32
SPEC
start_worker fourth
fourth_pid=$worker_pid
evaluated=$("$distill" submit "$work/evaluated.yaml" | awk '{print $2}')
stage=
for _ in $(seq 3000); do
  stage=$("$distill" runs metrics "$evaluated" 2>/dev/null |
    awk -F, '$4 ~ /^evaluating\// && $2 == 1 {print $4; exit}')
  [ -n "$stage" ] && break
  sleep 0.1
done
[ -n "$stage" ] || fail "no evaluation stage reported: $("$distill" runs show "$evaluated")"
sent=$(now)
kill -TERM "$fourth_pid"
queued=$(seconds_until_queued "$evaluated" 600)
[ -n "$queued" ] || fail "not handed back while it evaluated: $(tail -5 "$work/fourth.log")"
wait "$fourth_pid" || fail "the worker drained while evaluating exited $?"
start_worker fifth
"$distill" watch "$evaluated" >"$work/evaluated.watch" || fail "$(cat "$work/evaluated.watch")"
grep -q 'evaluating: ' "$work/evaluated.watch" || fail "watch showed no stage: $(cat "$work/evaluated.watch")"
"$distill" runs show "$evaluated" >"$work/evaluated.out"
grep -q 'SUCCEEDED  attempt 2' "$work/evaluated.out" || fail "$(cat "$work/evaluated.out")"
grep -q 'train/resumed_from_epoch = 1\.0000' "$work/evaluated.out" || fail "$(cat "$work/evaluated.out")"
trained=$("$distill" runs metrics "$evaluated" | awk -F, '$3 == 2 && $4 == "train/loss"' | wc -l)
[ "$trained" = 0 ] || fail "attempt 2 trained $trained steps again"
kill -TERM "$worker_pid"; wait "$worker_pid" || fail "the fifth worker exited $?"

# `distill workers drain` stops an idle worker through its long-poll.
start_worker third
for _ in $(seq 100); do
  id=$("$distill" workers list | awk '$2 == "idle" {print $1; exit}')
  [ -n "$id" ] && break
  sleep 0.1
done
[ -n "$id" ] || fail "no idle worker: $("$distill" workers list)"
"$distill" workers drain "$id" | grep -q "worker $id drains" || fail "drain"
set +e
timeout 10 tail --pid="$worker_pid" -f /dev/null; rc=$?
set -e
[ "$rc" = 0 ] || fail "the drained idle worker did not stop"
"$distill" workers list | grep "^$id " | grep -q stopped || fail "$("$distill" workers list)"

printf 'drain: SIGTERM -> run queued again %.2f s, worker exited %.2f s, resumed from epoch %s (%d steps lost); idle worker exited %.2f s; while evaluating (%s) -> queued again %.2f s, evaluated again without training\n' \
  "$queued_training" "$exited" "$resumed" "$lost" "$idle" "$stage" "$queued"
echo "e2e drain: 1 passed, 0 failed"
