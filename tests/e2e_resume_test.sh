#!/usr/bin/env bash
# A worker that dies mid-run loses nothing but the epoch it was in: through
# the real binaries, a run's first worker is killed after its first resume
# point, and a second worker goes on from that point to the same end.
# Usage: e2e_resume_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"

start_coordinator --lease_seconds=3 --heartbeat_seconds=1
distill="$build/client/distill"
start_worker() {
  "$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
    --scratch_dir="$work/$1" >"$work/$1.log" 2>&1 &
  pids+=("$!")
  worker_pid=$!
}

cat >"$work/teacher.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 1024, test_limit: 256}
teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
optimizer: {lr: 0.001}
epochs: 6
batch_size: 64
SPEC
start_worker first
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
for _ in $(seq 600); do
  "$distill" runs show "$run" | grep -q 'file resume.pt' && break
  sleep 0.1
done
"$distill" runs show "$run" >"$work/before.out"
grep -q 'file resume.pt' "$work/before.out" || fail "no resume point: $(cat "$work/before.out")"
grep -q 'RUNNING  attempt 1' "$work/before.out" || fail "not running: $(cat "$work/before.out")"
kill -9 "$worker_pid"  # Lost: no FailRun, no more heartbeats.
wait "$worker_pid" 2>/dev/null || true

start_worker second
"$distill" watch "$run" >/dev/null || fail "the resumed run did not succeed"
"$distill" runs show "$run" >"$work/after.out"
grep -q 'SUCCEEDED  attempt 2' "$work/after.out" || fail "$(cat "$work/after.out")"
grep -Eq 'train/resumed_from_epoch = [1-5]\.0000' "$work/after.out" ||
  fail "attempt 2 did not resume: $(cat "$work/after.out")"
grep -q 'goes on from resume point' "$work/second.log" || fail "second worker log"
! grep -q 'file resume.pt' "$work/after.out" || fail "the resume point outlived the run"
# One top-1 per epoch: what the lost attempt measured after its resume point
# was measured again and replaced.
epochs=$(sed -n 's/.*eval\/top1 by epoch://p' "$work/after.out" | wc -w)
[ "$epochs" = 6 ] || fail "$epochs top-1 values: $(cat "$work/after.out")"
ls "$work/data/run-files" | grep -vc '^\.' | grep -qx 1 ||
  fail "run files left: $(ls "$work/data/run-files")"
cat "$work/after.out"
echo "e2e resume: 1 passed, 0 failed"
