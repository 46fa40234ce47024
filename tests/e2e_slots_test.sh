#!/usr/bin/env bash
# Several runs on one device (distill-worker --slots=2): two runs leased and
# trained at once, each by a slot of its own, with the same results as one
# slot gives them; SIGTERM drains both slots (both runs handed back,
# queued again); kill -9 of the worker takes both slots with it (both
# leases expire, both runs queued again).
# Usage: e2e_slots_test.sh BUILD_DIR
set -euo pipefail
build=$1
source "$(dirname "$0")/e2e_lib.sh"
distill="$build/client/distill"
start_coordinator --lease_seconds=4 --heartbeat_seconds=1
# Each worker in turn on one scratch directory (the slots' teacher cache).
worker() { start_worker "$1" --scratch_dir="$work/scratch" --name=gpu "${@:2}"; }
teacher() {  # teacher SEED EPOCHS TRAIN_LIMIT: submits; prints the run id
  printf 'kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, train_limit: %s, test_limit: 128}\nteacher: {vit: {patch_size: 7, width: 16, depth: 1, heads: 2}}\nepochs: %s\nbatch_size: 32\nseed: %s\nmetrics_every_steps: 2\n' \
    "$3" "$2" "$1" >"$work/t$1.yaml"
  "$distill" submit "$work/t$1.yaml" | awk '{print $2}'
}
top1() { "$distill" runs show "$1" | sed -n 's/.*eval\/top1 = //p'; }
running() { "$distill" runs list --format=csv | awk -F, 'NR > 1 && $5 == "RUNNING"' | wc -l; }
wait_for() {  # wait_for SECONDS CONDITION...
  local until=$(( $(date +%s) + $1 )); shift
  until "$@"; do
    [ "$(date +%s)" -lt "$until" ] || return 1
    sleep 0.2
  done
}
two_running() { [ "$(running)" = 2 ]; }

# Two slots: both runs train at once.
a=$(teacher 1 2 512); b=$(teacher 2 2 512)
worker slots --slots=2 --threads=2
wait_for 60 two_running || fail "the two slots did not train two runs at once: $("$distill" runs list)"
"$distill" workers list >"$work/workers.out"
[ "$(grep -c 'gpu-slot[12]-.* running' "$work/workers.out")" = 2 ] ||
  fail "workers list: $(cat "$work/workers.out")"
"$distill" watch "$a" >/dev/null && "$distill" watch "$b" >/dev/null || fail "a slot's run failed"
slots_a=$(top1 "$a"); slots_b=$(top1 "$b")
kill -TERM "$worker_pid"; wait "$worker_pid" || fail "the two-slot worker exited $?"

# One slot with the same threads a slot had: the same results.
c=$(teacher 1 2 512); d=$(teacher 2 2 512)
worker one --threads=1
"$distill" watch "$c" >/dev/null && "$distill" watch "$d" >/dev/null || fail "one slot's run failed"
[ "$(top1 "$c")" = "$slots_a" ] && [ "$(top1 "$d")" = "$slots_b" ] ||
  fail "two slots gave $slots_a $slots_b, one slot $(top1 "$c") $(top1 "$d")"
kill -TERM "$worker_pid"; wait "$worker_pid" || true

# SIGTERM drains both slots: both runs handed back, queued again.
e=$(teacher 3 20 4096); f=$(teacher 4 20 4096)
worker drain --slots=2 --threads=2
wait_for 60 two_running || fail "no two runs at once before the drain"
kill -TERM "$worker_pid"
wait "$worker_pid" || fail "the draining two-slot worker exited $?"
for run in "$e" "$f"; do
  "$distill" runs show "$run" | grep -q 'QUEUED' || fail "run $run after the drain: $("$distill" runs show "$run")"
done

# kill -9 of the worker: both slots go with it; both leases expire.
worker killed --slots=2 --threads=2
wait_for 60 two_running || fail "no two runs at once before kill -9"
slot_pids=$(pgrep -P "$worker_pid" | tr '\n' ' ')
[ "$(wc -w <<<"$slot_pids")" = 2 ] || fail "the worker has slots $slot_pids"
kill -9 "$worker_pid"; wait "$worker_pid" 2>/dev/null || true
slots_gone() { for pid in $slot_pids; do kill -0 "$pid" 2>/dev/null && return 1; done; return 0; }
wait_for 10 slots_gone || fail "a slot outlived its worker: $slot_pids"
all_queued() { [ "$(running)" = 0 ]; }
wait_for 30 all_queued || fail "the killed slots' runs were not queued again: $("$distill" runs list)"
"$distill" runs show "$e" | grep -Eq 'QUEUED  attempt 2' || fail "run $e: $("$distill" runs show "$e")"
echo "e2e slots: 2 runs at once on 2 slots (top-1 $slots_a, $slots_b: as one slot gives them); drain handed both back; kill -9 requeued both"
