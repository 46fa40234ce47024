#!/usr/bin/env bash
# distill on a real Slurm cluster: a single-node Slurm (Debian's slurm-wlm
# and munge, as root, no systemd, no cgroups) on its own loopback ports in
# a temporary directory; workers are Slurm jobs of
# deploy/slurm/distill-worker.sbatch. A small sweep runs on an array job;
# then `scancel --signal=TERM` of the job that holds a run hands the run
# back and another job finishes it. Prints the times.
# Usage: slurm_test.sh BUILD_DIR SOURCE_DIR   (exit 77: skipped, saying why)
set -euo pipefail
build=$1
src=$2
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "the Slurm daemons need root here"
for c in munged slurmctld slurmd sbatch squeue scancel srun sinfo; do
  command -v "$c" >/dev/null || skip "no $c: apt-get install slurm-wlm munge"
done
source "$src/tests/e2e_lib.sh"
start=$(date +%s)
distill="$build/client/distill"
slurm=$work/slurm
mkdir -p "$slurm/state" "$slurm/spool"
# Cancels jobs only on this test's own cluster: before SLURM_CONF names its
# slurm.conf, scancel would reach the host's default cluster.
slurm_cleanup() {
  if [ "${SLURM_CONF:-}" = "$slurm/slurm.conf" ]; then
    scancel --full --signal=KILL --user=root >/dev/null 2>&1 || true
    sleep 0.5
  fi
  [ -f "$slurm/munged.pid" ] && kill "$(cat "$slurm/munged.pid")" 2>/dev/null || true
  cleanup
}
trap slurm_cleanup EXIT

# Munge with its own key and socket.
head -c 1024 /dev/urandom >"$slurm/munge.key"
chmod 400 "$slurm/munge.key"
munged --force --socket="$slurm/munge.sock" --key-file="$slurm/munge.key" \
  --log-file="$slurm/munged.log" --pid-file="$slurm/munged.pid" \
  --seed-file="$slurm/munged.seed" || fail "munged did not start"
node=$(hostname -s)
cat >"$slurm/slurm.conf" <<CONF
ClusterName=distilltest
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$slurm/munge.sock
CredType=cred/munge
StateSaveLocation=$slurm/state
SlurmdSpoolDir=$slurm/spool
SlurmctldPidFile=$slurm/slurmctld.pid
SlurmdPidFile=$slurm/slurmd.pid
SlurmctldLogFile=$slurm/slurmctld.log
SlurmdLogFile=$slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
KillWait=10
NodeName=$node NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$slurm/slurm.conf
slurmctld -D -f "$SLURM_CONF" >"$slurm/slurmctld.out" 2>&1 &
pids+=("$!")
slurmd -D -f "$SLURM_CONF" >"$slurm/slurmd.out" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do
  [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && break
  sleep 0.2
done
[ "$(sinfo -h -o %t 2>/dev/null)" = idle ] ||
  fail "the Slurm node is not idle: $(sinfo 2>&1; tail -5 "$slurm"/*.log)"
echo "slurm: a single-node cluster up in $(( $(date +%s) - start )) s"

start_coordinator --lease_seconds=60
worker_pids_of_job() {  # worker_pids_of_job JOB: its distill-worker PIDs
  local pid
  for pid in $(pgrep -x distill-worker); do
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_JOB_ID=$1" &&
      echo "$pid"
  done
  return 0
}
submit_workers() {  # submit_workers SBATCH_ARGS...: prints the job id
  DISTILL_WORKER="$build/worker/distill-worker" DISTILL_TOKEN_FILE="$work/worker.token" \
  DISTILL_SCRATCH="$work/scratch" DISTILL_IDLE_SECONDS=4 \
    sbatch --parsable --ntasks=1 --cpus-per-task=1 --output="$work/job-%j.out" \
      "$@" "$src/deploy/slurm/distill-worker.sbatch"
}

# 1. A small sweep on an array job of two workers.
sweep_start=$(date +%s)
cat >"$work/sweep.yaml" <<'SPEC'
name: slurm
base:
  dataset: {name: fashion-mnist, train_limit: 256, test_limit: 128}
  student: {arch: resnet18, width: 8}
  epochs: 1
  batch_size: 64
  evaluation: {tsne_points: 0}
teacher:
  train:
    teacher: {vit: {patch_size: 7, width: 16, depth: 1, heads: 2}}
members:
  - {name: D, losses: {ce: 1}}
  - {name: H, losses: {ce: 1, mse: 1, ikd: {weight: 1}, rkd: {distance_weight: 1, angle_weight: 2}}}
SPEC
"$distill" sweep "$work/sweep.yaml" >/dev/null
array=$(submit_workers --array=1-2)
for run in 1 2 3; do
  "$distill" watch "$run" >/dev/null ||
    fail "run $run: $("$distill" runs show "$run"; cat "$work"/job-*.out)"
done
"$distill" results slurm >"$work/results.out"
grep -c SUCCEEDED "$work/results.out" | grep -qx 3 || fail "$(cat "$work/results.out")"
# Idle, the workers exit and the jobs end by themselves.
for _ in $(seq 150); do
  [ -z "$(squeue -h -o %i)" ] && break
  sleep 0.2
done
[ -z "$(squeue -h -o %i)" ] || fail "the worker jobs did not end when idle: $(squeue)"
grep -q 'idle for' "$work/job-${array}_1.out" "$work/job-${array}_2.out" 2>/dev/null ||
  grep -rq 'idle for' "$work"/job-*.out || fail "no idle exit: $(cat "$work"/job-*.out)"
sweep_seconds=$(( $(date +%s) - sweep_start ))

# 2. scancel --signal=TERM of the job holding a run: handed back, finished
#    by another job from the step it stopped at.
cat >"$work/teacher.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 20000, test_limit: 256}
teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
optimizer: {lr: 0.001}
epochs: 2
batch_size: 32
SPEC
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
first=$(submit_workers --cpus-per-task=2)
for _ in $(seq 1200); do
  "$distill" runs show "$run" | grep -q 'file resume.pt' && break
  sleep 0.1
done
sleep 1
"$distill" runs show "$run" | grep -q 'RUNNING  attempt 1' || fail "not running: $("$distill" runs show "$run")"
sent=$(date +%s.%N)
scancel --signal=TERM "$first"
queued=
for _ in $(seq 300); do
  if "$distill" runs show "$run" | grep -q QUEUED; then
    queued=$(awk -v a="$(date +%s.%N)" -v b="$sent" 'BEGIN {printf "%.2f", a - b}')
    break
  fi
  sleep 0.05
done
[ -n "$queued" ] || fail "not handed back: $("$distill" runs show "$run"; cat "$work/job-$first.out")"
submit_workers --cpus-per-task=2 >/dev/null
"$distill" watch "$run" >/dev/null || fail "the handed-back run failed: $("$distill" runs show "$run")"
"$distill" runs show "$run" >"$work/after.out"
grep -q 'SUCCEEDED  attempt 2' "$work/after.out" || fail "$(cat "$work/after.out")"
resumed=$(sed -n 's/.*train\/resumed_from_epoch = \([0-9.]*\).*/\1/p' "$work/after.out")
echo "$resumed" | grep -Eq '^[12]\.[0-9]*[1-9]' || fail "resumed from '$resumed', not mid-epoch"
lost=$(steps_lost "$run" "$resumed" 625)
[ "$lost" = 0 ] || fail "attempt 2 went on $lost steps before attempt 1's last"
grep -q 'handed back with a resume point' "$work/job-$first.out" || fail "$(cat "$work/job-$first.out")"

# 3. The coordinator's launcher: jobs only while runs are queued; a job
#    that ends with its run (the worker killed, no drain) is seen and the
#    run queued again at once, not after the 60-s lease.
for _ in $(seq 150); do  # The earlier jobs end once idle.
  [ -z "$(squeue -h -o %i)" ] && break
  sleep 0.2
done
[ -z "$(squeue -h -o %i)" ] || fail "the worker jobs did not end when idle: $(squeue)"
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" 2>/dev/null || true
fixed=$(free_port)
export DISTILL_COORDINATOR=127.0.0.1:$fixed DISTILL_WORKER="$build/worker/distill-worker" \
  DISTILL_TOKEN_FILE="$work/worker.token" DISTILL_SCRATCH="$work/scratch" DISTILL_IDLE_SECONDS=4
start_coordinator --listen="127.0.0.1:$fixed" --launcher=slurm --slurm_max_workers=2 \
  --slurm_script="$src/deploy/slurm/distill-worker.sbatch" --launcher_period_seconds=1 \
  --slurm_sbatch_args="--ntasks=1 --cpus-per-task=1 --output=$work/launched-%j.out"
sleep 3
[ -z "$(squeue -h -o %i)" ] || fail "jobs submitted while nothing is queued: $(squeue)"
sed -e 's/name: slurm/name: launched/' "$work/sweep.yaml" >"$work/launched.yaml"
launch_start=$(date +%s)
"$distill" sweep "$work/launched.yaml" | grep -q '3 runs' || fail "sweep"
for run in 5 6 7; do
  "$distill" watch "$run" >/dev/null || fail "launched run $run: $("$distill" runs show "$run")"
done
launched=$(grep -c 'submitted Slurm job' "$work/coordinator.log")
[ "$launched" -ge 1 ] && [ "$launched" -le 3 ] || fail "$launched jobs submitted"
launch_seconds=$(( $(date +%s) - launch_start ))
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
for _ in $(seq 600); do
  "$distill" runs show "$run" | grep -q 'RUNNING  attempt 1' && break
  sleep 0.1
done
"$distill" runs show "$run" | grep -q 'RUNNING  attempt 1' || fail "no launched worker took run $run"
sleep 2
# The job whose worker holds the run (workers are named slurm-JOB-N@host).
job=$("$distill" workers list | awk -v r="$run" '$4 == r {print $1}' |
  sed -n 's/^slurm-\([0-9]*\)-.*/\1/p')
[ -n "$job" ] || fail "no job holds run $run: $("$distill" workers list)"
killed=$(date +%s.%N)
# The worker dies without a word (as on a node failure; scancel's signals
# would let it drain); its step and the job end. Only that job's worker:
# the distill-worker whose environment names the job.
victims=$(worker_pids_of_job "$job")
[ -n "$victims" ] || fail "no worker process of job $job"
kill -9 $victims
requeued=
for _ in $(seq 200); do
  if "$distill" runs show "$run" | grep -Eq 'QUEUED|RUNNING  attempt 2'; then
    requeued=$(awk -v a="$(date +%s.%N)" -v b="$killed" 'BEGIN {printf "%.2f", a - b}')
    break
  fi
  sleep 0.1
done
[ -n "$requeued" ] || fail "the killed job's run was not queued again: $("$distill" runs show "$run"; tail -5 "$work/coordinator.log")"
# A job the launcher submits for it takes it up within seconds, not after
# the 60-s lease (part 2 saw a handed-back run through to the end; this one
# is cancelled once it trains again).
for _ in $(seq 200); do
  "$distill" runs show "$run" | grep -q 'RUNNING  attempt 2' && break
  sleep 0.1
done
"$distill" runs show "$run" | grep -q 'RUNNING  attempt 2' ||
  fail "no launched job took run $run up again: $("$distill" runs show "$run"; squeue)"
"$distill" cancel "$run" | grep -q CANCELLED || fail "cancel run $run"
grep -q "Slurm job $job ended; 1 of its runs queued again" "$work/coordinator.log" ||
  fail "job $job: $(grep -E "Slurm|expired|lease" "$work/coordinator.log"; "$distill" workers list)"
echo "slurm: launcher sweep of 3 runs $launch_seconds s ($launched jobs); a killed job's run queued again in $requeued s and taken up by a new job"

printf 'slurm: sweep of 3 runs on an array job %d s; scancel --signal=TERM -> run queued again %.2f s, resumed from epoch %s (%d steps lost); whole test %d s\n' \
  "$sweep_seconds" "$queued" "$resumed" "$lost" "$(( $(date +%s) - start ))"
echo "slurm: 1 passed, 0 failed"
