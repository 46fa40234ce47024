#!/usr/bin/env bash
# The benchmark ratios, each measured side by side in one run on this
# machine (2 threads each). Usage:
# bench/run.sh [student|distill|loader|sweep|earlystop|coordinator|backup|query|report|lab|evaluation|all]
#   student  the student's training step (ResNet-18, small stem, batch 128,
#            28x28) in the engine against PyTorch's Python API: images/s of
#            the median step over PAIRS (default 30) steps taken in lockstep,
#            and the ratio; then the engine against itself with LibTorch's
#            defaults, and with every stage channels-last
#   distill  the distillation step of Table 1's row H (all four losses,
#            teacher online and cached, ViT width 96 and 192) in the engine
#            against PyTorch's Python API as it comes and with the engine's
#            allocator settings, in lockstep; and the CE student step's
#            share of the measured 3x3-convolution rate (width 16 and 64)
#   sweep    the eight distillation runs of the Table 1 sweep (a small size)
#            with the worker's teacher cache against without it: wall time
#   earlystop  examples/kd-temperature-grid.yaml (12 members) with its
#            median rule against the same sweep without early stopping, one
#            after the other on one worker (2 threads), both from one
#            teacher trained first: wall time, the best member (mean top-1
#            of its seeds, every seed completed) and the best single run;
#            then bench/early_stopping_replay.py: other settings of the
#            rule replayed on the arm without it
#   loader   JPEG decoding + training view (224 px) on 2 threads against what
#            the student step (ResNet-18, ImageNet stem, 224 px) consumes
#   coordinator  one coordinator under bench/coordinator_load's fake workers
#            and researchers on loopback: metric ingestion with 1/4/16/32
#            workers against SQLite's own insert rate for the same rows on
#            the same disk, bytes per stored point (schema 5 -> 6), LeaseRun
#            latency, GetRun under listing and reporting load, 10,000 open
#            watches, runs show and a history page of a 10^7-point run,
#            listings at 100,000 runs, and the query figures below.
#            SECONDS_PER_FIGURE (5).
#   report   `distill report` (and a live sweep page) of a 100-member sweep
#            with 10^5 metric points: render time and size
#   backup   one coordinator (its own) holding 1,000 runs and 10^6 metric
#            points, backed up back to back while 16 fake workers report
#            and 4 lease: the backup's time, and LeaseRun / GetRun p50 and
#            p99 during backups against without, in alternating rounds of
#            SECONDS_PER_FIGURE (5)
#   lab      a lab simulated against the real coordinator (bench/lab.cc):
#            10 owners, 24 workers in 3 pools, owner-0's 500-run sweep
#            first, the others' over the hour, requirements mixed; per owner
#            the wait for a lease and its part of the worker time, Jain's
#            index, idle-while-runnable and misplaced runs, under
#            --queue_policy=fifo (before) and fair, same seed. LAB_FLAGS
#            passes flags on (--ms_per_minute=200, --minutes=180). Then at
#            scale (1,000 workers, 100,000 queued, 50 owners; SCALE_FLAGS):
#            LeaseRun p50/p99; and bench/fair_share_decision: one choice's
#            cost at 10^3..10^5 queued runs against reading the queue.
#   evaluation  a run's evaluation phase at the defaults: the exact t-SNE
#            of 1,000 points (192- and 512-d) against the version before
#            issue 32 (kept in bench/evaluation_phase.cc), alternating,
#            median of 3: seconds, bytes allocated, neighbours kept; then
#            k-means, k-NN, CKA and overlap at 10,000 test embeddings
#   query    `distill runs list` with filters (spec fields, member glob,
#            kind, sort by a result, limit) over 10,000 runs in a database
#            that also holds a run of 10^7 metric points: p50 / p95 ms
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
pairs=${PAIRS:-30}
scripts/setup.sh build >/dev/null
# A coordinator on $DISTILL_COORDINATOR with its data in $1, and a
# researcher's token for the CLI; workers take --token_file="$1/worker.token".
start_coordinator() {
  build/server/distill-coordinator --listen="$DISTILL_COORDINATOR" --data_dir="$1/data" \
    --worker_token_file="$1/worker.token" 2>"$1/coordinator.log" &
  for _ in $(seq 50); do
    DISTILL_TOKEN_FILE="$1/data/admin.token" build/client/distill tokens list >/dev/null 2>&1 && break
    sleep 0.2
  done
  DISTILL_TOKEN_FILE="$1/data/admin.token" build/client/distill tokens create \
    --role=researcher --name=bench --out="$1/researcher.token" >/dev/null
  export DISTILL_TOKEN_FILE=$1/researcher.token
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if [ "$what" = student ] || [ "$what" = all ]; then
  # In lockstep (bench/lockstep.py): one engine step, one PyTorch step, in
  # turn, so both see the same moment of this shared machine.
  echo "student step, A = engine, B = PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)'):"
  bench/lockstep.py "$pairs" build/bench/student_step --threads 2 --lockstep 1 -- \
    /usr/bin/python3 bench/student_step.py --threads 2 --lockstep 1
  echo "what the engine's runtime settings are worth, A = engine, B = engine with LibTorch's defaults:"
  bench/lockstep.py "$pairs" build/bench/student_step --threads 2 --lockstep 1 -- \
    build/bench/student_step --threads 2 --lockstep 1 --defaults 1
  echo "what the last stage in NCHW is worth, A = engine, B = engine with every stage channels-last:"
  bench/lockstep.py "$pairs" build/bench/student_step --threads 2 --lockstep 1 -- \
    build/bench/student_step --threads 2 --lockstep 1 --nhwc_only 1
fi

if [ "$what" = distill ] || [ "$what" = all ]; then
  # Row H's step (all four losses) with the teacher online and cached, a
  # small (width 96) and a larger (192) ViT, in lockstep against PyTorch as
  # it comes and against PyTorch given the allocator settings the engine
  # makes (engine::ConfigureRuntime's mallopt calls as glibc tunables).
  tunables=glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1073741824
  for teacher in online cached; do
    for width in 96 192; do
      args=(--teacher "$teacher" --teacher_width "$width" --threads 2 --lockstep 1)
      echo "distill step, teacher $teacher, width $width; A = engine, B = PyTorch as it comes:"
      bench/lockstep.py "$pairs" build/bench/distill_step "${args[@]}" -- \
        /usr/bin/python3 bench/distill_step.py "${args[@]}"
      echo "distill step, teacher $teacher, width $width; A = engine, B = PyTorch with the same allocator settings:"
      bench/lockstep.py "$pairs" build/bench/distill_step "${args[@]}" -- \
        env GLIBC_TUNABLES=$tunables /usr/bin/python3 bench/distill_step.py "${args[@]}"
    done
  done
  # The student step's share of the machine's 3x3-convolution rate, both
  # measured here, now.
  for width in 16 64; do
    build/bench/distill_step --peak 1 --student_width "$width" --threads 2 --steps 20
  done
fi

if [ "$what" = evaluation ] || [ "$what" = all ]; then
  build/bench/evaluation_phase --points 1000 --repeats 3 --threads 2
fi

if [ "$what" = loader ] || [ "$what" = all ]; then
  loaded=() consumed=()
  for _ in $(seq 3); do
    loaded+=("$(build/bench/loader --threads 2 --images 256 | awk '{print $3}')")
    consumed+=("$(build/bench/student_step --threads 2 --size 224 --batch 32 --steps 2 --warmup 1 |
                  awk '{print $3}')")
  done
  l=$(printf '%s\n' "${loaded[@]}" | median)
  c=$(printf '%s\n' "${consumed[@]}" | median)
  echo "JPEG decode + augmentation, images/s on 2 threads (median of 3): $l [${loaded[*]}]"
  echo "student step at 224 px consumes, images/s (median of 3):         $c [${consumed[*]}]"
  awk -v l="$l" -v c="$c" 'BEGIN {printf "ratio loader / student step: %.1f\n", l / c}'
fi

if [ "$what" = lab ] || [ "$what" = all ]; then
  # The same simulated lab (bench/lab.cc, one seed) under the scheduler of
  # before (first in first out) and fair share, one after the other, each
  # against a coordinator of its own. A simulated minute is 200 ms, so the
  # default half-life of a week is 2016 s here.
  # Before: first in first out, no preemption. Now: fair share, and
  # preemption for owners below their share (after 10 simulated minutes'
  # hold, a worker at most once in 10: 2 s here).
  for policy in fifo fair; do
    lwork=$(mktemp -d /tmp/distill-bench-lab.XXXXXX)
    port=${BENCH_PORT:-50094}
    if [ "$policy" = fifo ]; then
      flags=(--queue_policy=fifo --preemption=off)
    else
      flags=(--queue_policy=fair --preemption=fair --preempt_after=2s --preempt_every=2s)
    fi
    build/server/distill-coordinator --listen="127.0.0.1:$port" --data_dir="$lwork/data" \
      --worker_token_file="$lwork/worker.token" "${flags[@]}" \
      --fair_share_half_life=2016s 2>"$lwork/coordinator.log" &
    coordinator=$!
    for _ in $(seq 100); do [ -s "$lwork/data/admin.token" ] && break; sleep 0.1; done
    echo "a lab of 10 owners and 24 workers (8 large GPUs, 8 small, 8 CPU), --queue_policy=$policy:"
    status=0
    build/bench/lab --target="127.0.0.1:$port" --label="$policy" \
      --admin_token_file="$lwork/data/admin.token" --worker_token_file="$lwork/worker.token" \
      ${LAB_FLAGS:-} || status=$?
    # At scale: 1,000 workers, 100,000 queued runs, 50 owners.
    [ "$status" = 0 ] && build/bench/lab --scale --target="127.0.0.1:$port" --label="$policy" \
      --owners=50 --admin_token_file="$lwork/data/admin.token" \
      --worker_token_file="$lwork/worker.token" ${SCALE_FLAGS:-} || status=$?
    kill "$coordinator"; wait "$coordinator" 2>/dev/null || true
    [ "$status" = 0 ] || tail -20 "$lwork/coordinator.log" >&2
    rm -rf "$lwork"
    [ "$status" = 0 ] || exit "$status"
  done
  echo "the cost of one scheduling decision (in-process, the coordinator's store on disk):"
  build/bench/fair_share_decision --dir="${TMPDIR:-/tmp}"
fi

if [ "$what" = backup ] || [ "$what" = all ]; then
  bwork=$(mktemp -d /tmp/distill-bench-backup.XXXXXX)
  port=${BENCH_PORT:-50093}
  build/server/distill-coordinator --listen="127.0.0.1:$port" --data_dir="$bwork/data" \
    --worker_token_file="$bwork/worker.token" --backup_dir="$bwork/backups" \
    --backup_keep=2 2>"$bwork/coordinator.log" &
  coordinator=$!
  for _ in $(seq 100); do [ -s "$bwork/data/admin.token" ] && break; sleep 0.1; done
  echo "online backup under load, $(nproc) cores, data on $(df --output=fstype "$bwork" | tail -1):"
  status=0
  build/bench/coordinator_load --target="127.0.0.1:$port" --coordinator_pid="$coordinator" \
    --admin_token_file="$bwork/data/admin.token" --worker_token_file="$bwork/worker.token" \
    --scratch_dir="$bwork" --seconds="${SECONDS_PER_FIGURE:-5}" --phases=backup || status=$?
  kill "$coordinator"; wait "$coordinator" 2>/dev/null || true
  [ "$status" = 0 ] || tail -20 "$bwork/coordinator.log" >&2
  rm -rf "$bwork"
  [ "$status" = 0 ] || exit "$status"
fi

if [ "$what" = coordinator ] || [ "$what" = query ] || [ "$what" = all ]; then
  cwork=$(mktemp -d /tmp/distill-bench-coordinator.XXXXXX)
  port=${BENCH_PORT:-50092}
  build/server/distill-coordinator --listen="127.0.0.1:$port" --data_dir="$cwork/data" \
    --worker_token_file="$cwork/worker.token" --watches_per_caller=20000 \
    2>"$cwork/coordinator.log" &
  coordinator=$!
  for _ in $(seq 100); do [ -s "$cwork/data/admin.token" ] && break; sleep 0.1; done
  echo "coordinator under load, $(nproc) cores, data on $(df --output=fstype "$cwork" | tail -1):"
  load=(build/bench/coordinator_load --target="127.0.0.1:$port" --coordinator_pid="$coordinator"
        --admin_token_file="$cwork/data/admin.token" --worker_token_file="$cwork/worker.token"
        --scratch_dir="$cwork" --seconds="${SECONDS_PER_FIGURE:-5}")
  status=0
  if [ "$what" = query ]; then
    "${load[@]}" --phases=history,query || status=$?
  else
    "${load[@]}" || status=$?
  fi
  # LeaseRun at saturation: runs handed back at once (a closed loop; a
  # lab's workers lease once a run). GetRun with the listing clients paging
  # every 50 ms instead of back to back (which saturates both cores).
  if [ "$what" != query ]; then
    [ "$status" = 0 ] && { "${load[@]}" --phases=lease --hold_ms=0 || status=$?; }
    [ "$status" = 0 ] && { "${load[@]}" --phases=getrun --list_every_ms=50 || status=$?; }
  fi
  kill "$coordinator"; wait "$coordinator" 2>/dev/null || true
  [ "$status" = 0 ] || tail -20 "$cwork/coordinator.log" >&2
  rm -rf "$cwork"
  [ "$status" = 0 ] || exit "$status"
fi

if [ "$what" = sweep ] || [ "$what" = all ]; then
  work=$(mktemp -d /tmp/distill-bench.XXXXXX)
  trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
  export DISTILL_COORDINATOR=127.0.0.1:${BENCH_PORT:-50091}
  start_coordinator "$work"
  distill=build/client/distill
  sed -e 's/train_limit: [0-9]*/train_limit: 5000/' -e 's/epochs: [0-9]*/epochs: 1/' \
      examples/table1-fashion-mnist.yaml >"$work/sweep.yaml"
  # Train the teacher once; both arms distil from that run.
  build/worker/distill-worker --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
    --scratch_dir="$work/teacher-worker" 2>"$work/teacher-worker.log" &
  teacher_worker=$!
  "$distill" sweep "$work/sweep.yaml" >/dev/null  # Queues the teacher, then the students.
  for id in $("$distill" runs list --sweep=1 | awk '$3 == "DISTILL" {print $1}'); do
    "$distill" cancel "$id" >/dev/null
  done
  "$distill" watch 1 >/dev/null
  kill "$teacher_worker"; wait "$teacher_worker" 2>/dev/null || true
  sed -i -e '/^teacher:/,/^members:/{/^members:/!d}' "$work/sweep.yaml"
  sed -i 's/^members:/teacher:\n  run_id: 1\nmembers:/' "$work/sweep.yaml"
  for arm in cache no-cache; do
    flag=true
    [ "$arm" = no-cache ] && flag=false
    build/worker/distill-worker --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
      --teacher_cache=$flag --scratch_dir="$work/$arm" 2>"$work/$arm.log" &
    worker=$!
    start=$(date +%s.%N)
    if ! "$distill" sweep "$work/sweep.yaml" --wait >"$work/$arm.out" 2>&1; then
      echo "the $arm sweep failed; its output and worker log:" >&2
      tail -n 20 "$work/$arm.out" "$work/$arm.log" >&2
      exit 1
    fi
    end=$(date +%s.%N)
    kill "$worker"; wait "$worker" 2>/dev/null || true
    seconds=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", e - s}')
    eval "t_${arm//-/_}=$seconds"
    echo "eight distillation runs, teacher cache $flag: $seconds s"
  done
  awk -v a="$t_cache" -v b="$t_no_cache" \
    'BEGIN {printf "ratio with cache / without: %.3f\n", a / b}'
fi

if [ "$what" = earlystop ] || [ "$what" = all ]; then
  work=$(mktemp -d /tmp/distill-bench.XXXXXX)
  # KEEP=1 keeps the coordinator's data (both arms' metric history).
  trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
        if [ "${KEEP:-0}" = 1 ]; then echo "data kept in $work" >&2; else rm -rf "$work"; fi' EXIT
  export DISTILL_COORDINATOR=127.0.0.1:${BENCH_PORT:-50092}
  start_coordinator "$work"
  distill=build/client/distill
  grid=examples/kd-temperature-grid.yaml
  # Train the teacher once (a sweep whose members are cancelled); both arms
  # distil from that run.
  cp "$grid" "$work/teacher.yaml"
  build/worker/distill-worker --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
    --scratch_dir="$work/teacher-worker" 2>"$work/teacher-worker.log" &
  teacher_worker=$!
  "$distill" sweep "$work/teacher.yaml" >/dev/null
  for id in $("$distill" runs list --sweep=1 | awk '$3 == "DISTILL" {print $1}'); do
    "$distill" cancel "$id" >/dev/null
  done
  "$distill" watch 1 >/dev/null
  kill "$teacher_worker"; wait "$teacher_worker" 2>/dev/null || true
  # The arms: the grid from teacher run 1, with its rule and without.
  sed -e '/^teacher:/,/^members:/{/^members:/!d}' \
      -e 's/^members:/teacher:\n  run_id: 1\nmembers:/' \
      -e 's/^name: .*/name: grid-median/' "$grid" >"$work/median.yaml"
  sed -e '/^early_stopping:/,$d' -e 's/^name: .*/name: grid-off/' \
      "$work/median.yaml" >"$work/off.yaml"
  grep -q '^early_stopping:' "$work/median.yaml"
  for arm in median off; do
    build/worker/distill-worker --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
      --scratch_dir="$work/$arm" 2>"$work/$arm.log" &
    worker=$!
    start=$(date +%s.%N)
    if ! "$distill" sweep "$work/$arm.yaml" --wait >"$work/$arm.out" 2>&1; then
      echo "the $arm sweep failed; its output and worker log:" >&2
      tail -n 20 "$work/$arm.out" "$work/$arm.log" >&2
      exit 1
    fi
    end=$(date +%s.%N)
    kill "$worker"; wait "$worker" 2>/dev/null || true
    seconds=$(awk -v s="$start" -v e="$end" 'BEGIN {printf "%.1f", e - s}')
    eval "t_$arm=$seconds"
    "$distill" results "grid-$arm" >"$work/$arm.table"
    "$distill" results "grid-$arm" --columns=top1 --format=csv >"$work/$arm.csv"
    # The best run, and the best member as the table's seed summary judges
    # one: the mean top-1 of its seeds, among members whose every seed
    # completed (a member stopped early has no result of its own).
    best=$(awk -F, '$2 == "member" && $11 != "" {print $11, $1}' \
           "$work/$arm.csv" | sort -g | tail -1)
    best_mean=$(awk -F, '$2 == "member" {
        m = $1; sub(/\/seed=[0-9]+$/, "", m); n[m]++
        if ($5 == "SUCCEEDED" && $11 != "") {done[m]++; sum[m] += $11}
      } END {for (m in n) if (done[m] == n[m]) printf "%.6f %s\n", sum[m] / n[m], m}' \
      "$work/$arm.csv" | sort -g | tail -1)
    pruned=$(grep -c 'PRUNED' "$work/$arm.csv" || true)
    eval "best_$arm=\"$best\""
    eval "best_mean_$arm=\"$best_mean\""
    awk -v s="$seconds" -v arm="$arm" -v best="$best" -v mean="$best_mean" -v p="$pruned" '
      BEGIN {split(best, b, " "); split(mean, m, " ")
        printf "kd-temperature-grid, early stopping %s: %s s, %d pruned; best run %s at %.2f %% top-1; best member %s at %.3f %% (mean over its seeds)\n",
          arm, s, p, b[2], 100 * b[1], m[2], 100 * m[1]}'
    cat "$work/$arm.table"
  done
  awk -v a="$t_median" -v b="$t_off" \
    'BEGIN {printf "time with the median rule / without: %.3f (%.0f %% less)\n", a / b, 100 * (1 - a / b)}'
  if [ "${best_mean_median#* }" = "${best_mean_off#* }" ]; then
    echo "same best member: ${best_mean_off#* }"
  else
    echo "best member differs: ${best_mean_median#* } with the rule, ${best_mean_off#* } without"
  fi
  if [ "${best_median#* }" = "${best_off#* }" ]; then
    echo "same best run: ${best_off#* }"
  else
    echo "best run differs: ${best_median#* } with the rule, ${best_off#* } without"
  fi
  # The coordinator's database is read once it has stopped (its WAL index
  # lives in its own memory).
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  echo "the median rule replayed on the arm without it, other settings:"
  bench/early_stopping_replay.py "$work/data/distill.db" grid-off
fi

if [ "$what" = report ] || [ "$what" = all ]; then
  page=$(mktemp /tmp/distill-report.XXXXXX.html)
  build/bench/report_render "$page"
  if command -v chromium >/dev/null; then
    start=$(date +%s.%N)
    chromium --headless --no-sandbox --disable-gpu --no-first-run \
      --user-data-dir="$page.profile" --dump-dom "file://$page" >/dev/null 2>&1
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" \
      'BEGIN {printf "headless Chromium loads and lays it out in %.2f s (its start included)\n", e - s}'
  fi
  rm -rf "$page" "$page.profile"
fi
