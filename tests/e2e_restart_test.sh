#!/usr/bin/env bash
# The coordinator killed (-9) and restarted while runs are in flight: the
# worker keeps the runs it holds — downloads, metrics, uploads, completions
# and failures wait for the coordinator and are retried — so every run ends
# as it would have, at attempt 1, with all its metrics. First at random
# moments of a sweep; then once right before each stage of a run (a worker
# built with a pausing StageHook, tests/paused_worker_main.cc, waits there
# while the test takes the coordinator down, and makes its call once told). The random moments come from $DISTILL_E2E_SEED (else
# the clock), printed so that a failure can be replayed; each kill lands
# while a run is RUNNING, and that run is still its first attempt after.
# Usage: e2e_restart_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
fixed_port=$(free_port)
start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
start_worker worker

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
  - {name: I, losses: {ce: 1, ikd: {weight: 1}}}
SPEC
"$distill" sweep "$work/sweep.yaml" >/dev/null
seed=${DISTILL_E2E_SEED:-$(( $(date +%s) % 32768 ))}
RANDOM=$seed
echo "e2e restart: kill moments from seed $seed (DISTILL_E2E_SEED=$seed replays them)"
# The sweep's runs as "id status" lines, from one listing (empty while the
# coordinator does not answer).
statuses() {
  "$distill" runs list --sweep=1 --format=csv 2>/dev/null |
    awk -F, 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == "status") c = i; next}
             {print $1, $c}'
}
kills=0 done=
while [ "$kills" -lt 10 ]; do
  run=
  for _ in $(seq 600); do
    listing=$(statuses)
    run=$(awk '$2 == "RUNNING" {print $1; exit}' <<<"$listing")
    [ -n "$run" ] && break
    # Done only when that same listing has nothing left to run.
    if [ -n "$listing" ] && ! grep -q 'QUEUED\|WAITING' <<<"$listing"; then
      done=1; break
    fi
    sleep 0.1
  done
  [ -z "$done" ] || break
  [ -n "$run" ] || fail "no run of the sweep started in 60 s (seed $seed)"
  sleep "$(( RANDOM % 2 )).$(( RANDOM % 5 ))"  # 0 to 1.4 s into its training.
  # A run that ended meanwhile: no kill this time, wait for the next.
  "$distill" runs show "$run" | grep -q 'RUNNING  attempt 1' || continue
  kill -9 "$coordinator_pid"
  wait "$coordinator_pid" 2>/dev/null || true
  kills=$((kills + 1))
  sleep "0.$(( RANDOM % 10 ))"
  start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
  "$distill" runs show "$run" | grep -Eq '(RUNNING|SUCCEEDED)  attempt 1' ||
    fail "run $run after kill $kills (seed $seed): $("$distill" runs show "$run")"
done
[ "$kills" -ge 3 ] || fail "only $kills kills landed while a run was RUNNING (seed $seed)"
for run in 1 2 3 4; do
  "$distill" watch "$run" >/dev/null || true
  "$distill" runs show "$run" >"$work/run$run.out"
  grep -q 'SUCCEEDED  attempt 1' "$work/run$run.out" ||
    fail "run $run after $kills restarts: $(cat "$work/run$run.out"; tail -20 "$work/worker.log")"
  epochs=$(sed -n 's/.*eval\/top1 by epoch://p' "$work/run$run.out" | wc -w)
  [ "$epochs" = 2 ] || fail "run $run has $epochs top-1 values: $(cat "$work/run$run.out")"
done
retried=$(grep -c 'again in\|retrying in\|will retry' "$work/worker.log" || true)
echo "e2e restart: $kills kill -9 + restarts during the sweep, each while a run was RUNNING; every run SUCCEEDED at attempt 1 ($retried calls retried)"

# Stage by stage: a second worker pauses before each stage; each pause takes
# the coordinator down until the worker's call is already waiting on it.
kill -TERM "${pids[1]}" 2>/dev/null || true  # The first worker drains away.
wait "${pids[1]}" 2>/dev/null || true
stages=fetch,resume_upload,upload,complete,fail
mkdir -p "$work/pauses"
"$build/tests/paused_worker" --pause_before=$stages --pause_dir="$work/pauses" \
  --coordinator="$DISTILL_COORDINATOR" --threads=2 --token_file="$work/worker.token" \
  --scratch_dir="$work/staged" >"$work/staged.log" 2>&1 &
pids+=("$!")
sed -e 's/name: restart/name: staged/' -e '/name: I,/d' "$work/sweep.yaml" >"$work/staged.yaml"
"$distill" sweep "$work/staged.yaml" >/dev/null
# A run that fails (a path outside the worker's data roots): its FailRun.
printf 'kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, root: /etc, train_limit: 64}\nteacher: {vit: {patch_size: 7, width: 16, depth: 1, heads: 2}}\nepochs: 1\nbatch_size: 32\n' >"$work/bad.yaml"
bad=$("$distill" submit "$work/bad.yaml" | awk '{print $2}')
# What the worker logs when a stage's call finds no coordinator and waits.
declare -A retried=([fetch]='fetching' [resume_upload]='uploading resume'
                    [upload]='uploading' [complete]='CompleteRun' [fail]='FailRun')
seen=0
give_up=$(( $(date +%s) + 420 ))
while [ "$(date +%s)" -lt "$give_up" ]; do
  pause=$(grep -o 'pausing before [a-z_]* ([0-9]*)' "$work/staged.log" | tail -1 || true)
  n=$(sed 's/.*(\([0-9]*\))/\1/' <<<"$pause")
  if [ -n "$n" ] && [ "$n" -gt "$seen" ]; then
    seen=$n
    stage=$(awk '{print $3}' <<<"$pause")
    kill -9 "$coordinator_pid"; wait "$coordinator_pid" 2>/dev/null || true
    before=$(grep -c "${retried[$stage]}.*again in" "$work/staged.log" || true)
    touch "$work/pauses/go-$n"
    # The stage's call has found the coordinator down and waits to retry.
    for _ in $(seq 300); do
      [ "$(grep -c "${retried[$stage]}.*again in" "$work/staged.log" || true)" -gt "$before" ] && break
      sleep 0.1
    done
    [ "$(grep -c "${retried[$stage]}.*again in" "$work/staged.log" || true)" -gt "$before" ] ||
      fail "pause $n: the worker's $stage call did not retry on a coordinator down: $(tail -5 "$work/staged.log")"
    start_coordinator --listen="127.0.0.1:$fixed_port" --lease_seconds=60
  fi
  [ -z "$("$distill" runs list 2>/dev/null | grep -E 'RUNNING|QUEUED|WAITING')" ] &&
    [ "$("$distill" runs list 2>/dev/null | wc -l)" -gt 5 ] && break
  sleep 0.2
done
for stage in ${stages//,/ }; do
  grep -q "pausing before $stage" "$work/staged.log" || fail "no pause before $stage"
done
for run in 5 6 7; do
  "$distill" runs show "$run" | grep -q 'SUCCEEDED  attempt 1' ||
    fail "run $run: $("$distill" runs show "$run"; tail -20 "$work/staged.log")"
done
"$distill" runs show "$bad" | grep -q 'FAILED  attempt 1' ||
  fail "run $bad: $("$distill" runs show "$bad")"
echo "e2e restart: the coordinator down before each of ${stages//,/, } ($seen times); every run ended as it should at attempt 1"
echo "e2e restart: 1 passed, 0 failed"
