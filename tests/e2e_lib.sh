# Sourced by the end-to-end tests: a scratch folder removed at exit with
# every process started in $pids, fail, and the coordinator on a free
# loopback port. Needs $build.
work=$(mktemp -d /tmp/distill-e2e.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
# The scratch folder of a failed test is kept as $work-failed, logs and all.
fail() {
  echo "FAIL: $*" >&2
  tail -n 5 "$work"/*.log >&2 || true
  cp -a "$work" "$work-failed" 2>/dev/null && echo "kept in $work-failed" >&2
  exit 1
}

# A free loopback port (for a coordinator that must come back on the same).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_coordinator [FLAG...]: sets $coordinator_pid and DISTILL_COORDINATOR.
# Its data directory is $work/data, or $coordinator_data when set; its
# binary $coordinator_binary when set.
# With tokens (the default) the CLI gets the admin token the coordinator
# made (DISTILL_TOKEN_FILE) and workers $work/worker.token (--token_file).
start_coordinator() {
  # Emptied here, before the coordinator starts in the background: a log the
  # last coordinator left would name its port before the new one listens
  # (kept in coordinator.earlier.log).
  if [ -s "$work/coordinator.log" ]; then
    cat "$work/coordinator.log" >>"$work/coordinator.earlier.log"
    : >"$work/coordinator.log"
  fi
  "${coordinator_binary:-$build/server/distill-coordinator}" --listen=127.0.0.1:0 --data_dir="${coordinator_data:-$work/data}" \
    --worker_token_file="$work/worker.token" "$@" >"$work/coordinator.log" 2>&1 &
  coordinator_pid=$!
  pids+=("$coordinator_pid")
  port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$work/coordinator.log" 2>/dev/null || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || fail "coordinator did not start: $(cat "$work/coordinator.log")"
  export DISTILL_COORDINATOR=127.0.0.1:$port
  export DISTILL_TOKEN_FILE=$work/data/admin.token
}

# start_worker NAME [FLAG...]: a worker of $DISTILL_COORDINATOR with the
# worker token, 2 threads, scratch $work/NAME, log $work/NAME.log (a FLAG
# overrides these); sets $worker_pid and adds it to $pids.
start_worker() {
  local name=$1
  shift
  "$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" --scratch_dir="$work/$name" "$@" \
    >"$work/$name.log" 2>&1 &
  worker_pid=$!
  pids+=("$worker_pid")
}

# steps_lost RUN RESUMED_FROM_EPOCH STEPS_PER_EPOCH: the training steps a
# handed-back run's first attempt reported past the step its second attempt
# went on from (work the hand-back lost; 0 when none), from the run's metric
# history (`distill runs metrics`: step,epoch,attempt,key,...). Needs
# $distill.
steps_lost() {
  local last
  last=$("$distill" runs metrics "$1" |
    awk -F, '$3 == 1 && $4 == "train/loss" && $1 > s {s = $1} END {print s + 0}')
  [ "$last" -gt 0 ] || fail "run $1: attempt 1 reported no train/loss"
  awk -v last="$last" -v r="$2" -v spe="$3" \
    'BEGIN {lost = last - int(r * spe + 0.5); print (lost > 0 ? lost : 0)}'
}
