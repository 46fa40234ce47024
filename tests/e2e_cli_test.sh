#!/usr/bin/env bash
# End to end through the real binaries: coordinator, worker and the CLI on
# loopback. Usage: e2e_cli_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1
src=$2
source "$src/tests/e2e_lib.sh"

# Each program tells the build it is, and the daemons list their own flags.
# One line each, ended by a newline.
[ "$("$build/client/distill" --version | wc -l)" = 1 ] ||
  fail "distill --version is not one line: $("$build/client/distill" --version | od -c | tail -3)"
"$build/client/distill" --version | grep -Eq '^distill [0-9]+\.[0-9]+\.[0-9]+.*, (release|debug) build' ||
  fail "distill --version: $("$build/client/distill" --version 2>&1)"
"$build/server/distill-coordinator" --version | grep -Eq '^distill-coordinator [0-9].*, (release|debug) build' ||
  fail "distill-coordinator --version: $("$build/server/distill-coordinator" --version 2>&1)"
"$build/worker/distill-worker" --version | grep -Eq '^distill-worker [0-9].*, LibTorch [0-9]' ||
  fail "distill-worker --version: $("$build/worker/distill-worker" --version 2>&1)"
{ "$build/server/distill-coordinator" --help || true; } | grep -q -- '--fair_share_half_life' ||
  fail "distill-coordinator --help lists no flag of its own"
{ "$build/worker/distill-worker" --help || true; } | grep -q -- '--labels' ||
  fail "distill-worker --help lists no flag of its own"

start_coordinator
"$build/worker/distill-worker" --coordinator="$DISTILL_COORDINATOR" --threads=2 \
    --token_file="$work/worker.token" \
  --scratch_dir="$work/worker" >"$work/worker.log" 2>&1 &
pids+=("$!")
distill="$build/client/distill"

# A small Table 1 sweep: the example's shape at 256 images, one epoch.
sed -e 's/train_limit: [0-9]*/train_limit: 256/' -e 's/test_limit: [0-9]*/test_limit: 256/' \
    -e 's/epochs: [0-9]*/epochs: 1/' -e 's/batch_size: 128/batch_size: 64/' \
    -e 's/name: table1-fashion-mnist/name: e2e/' \
    "$src/examples/table1-fashion-mnist.yaml" >"$work/sweep.yaml"
"$distill" sweep "$work/sweep.yaml" --wait >"$work/sweep.out" 2>&1 ||
  fail "sweep --wait exited $?: $(cat "$work/sweep.out")"
grep -q '^\[9/9\] ' "$work/sweep.out" || fail "no progress for run 9: $(cat "$work/sweep.out")"
for row in A B C D E F G H O; do
  grep -q "^ $row .*SUCCEEDED" "$work/sweep.out" || fail "row $row missing: $(cat "$work/sweep.out")"
done
grep -q 'teacher ViT' "$work/sweep.out" || fail "no teacher row"
"$distill" results e2e >"$work/results.before"

# A finished run: watch returns at once and succeeds; show plots the loss.
"$distill" watch 2 >/dev/null || fail "watch of a succeeded run exited $?"
"$distill" runs show 2 >"$work/show.out"
grep -q 'train/loss' "$work/show.out" || fail "runs show: $(cat "$work/show.out")"
grep -q 'file tsne.csv' "$work/show.out" || fail "runs show lists no t-SNE map"
# The whole metric history as CSV, in pages.
"$distill" runs metrics 2 --out="$work/metrics.csv" | grep -q "wrote $work/metrics.csv" ||
  fail "runs metrics --out"
head -1 "$work/metrics.csv" | grep -qx 'step,epoch,attempt,key,value,time_ms' ||
  fail "runs metrics header: $(head -1 "$work/metrics.csv")"
grep -q ',train/loss,' "$work/metrics.csv" && [ "$(wc -l <"$work/metrics.csv")" -gt 10 ] ||
  fail "runs metrics: $(head "$work/metrics.csv")"
"$distill" runs metrics 2 | cmp -s - "$work/metrics.csv" || fail "runs metrics to stdout differs"
"$distill" tsne 2 >"$work/tsne.out"
grep -q '^student (256 test images' "$work/tsne.out" || fail "tsne: $(cat "$work/tsne.out")"
"$distill" download 2 tsne.csv "$work/tsne.csv" >/dev/null
head -1 "$work/tsne.csv" | grep -qx 'model,x,y,label' || fail "download tsne.csv"
"$distill" runs list --sweep=1 | grep -c SUCCEEDED | grep -qx 9 || fail "runs list"

# Placement: the CPU worker (idle now) never leases a run that requires
# CUDA; the run waits, saying why, until cancelled.
cat >"$work/cuda.yaml" <<'SPEC'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 64, test_limit: 64}
teacher: {vit: {preset: small-28}}
epochs: 1
batch_size: 32
requirements: {device_kind: cuda, min_device_memory_gib: 40}
SPEC
cuda_run=$("$distill" submit "$work/cuda.yaml" | awk '{print $2}')
# A submit wakes the idle worker's long-poll at once, and the coordinator
# weighs its offer then: watch the run for 3 s that it stays queued.
for _ in $(seq 15); do
  "$distill" runs show "$cuda_run" >"$work/cuda.out"
  grep -q 'QUEUED  attempt 0' "$work/cuda.out" || fail "the CPU worker took a CUDA run: $(cat "$work/cuda.out")"
  sleep 0.2
done
grep -q 'requires device_kind cuda, >= 40 GiB' "$work/cuda.out" || fail "no requires: $(cat "$work/cuda.out")"
grep -q 'waiting: no registered worker meets its requirements (device_kind cuda, >= 40 GiB)' \
  "$work/cuda.out" || fail "no reason: $(cat "$work/cuda.out")"
"$distill" workers list | grep -q 'device_kind=cpu' || fail "workers list: $("$distill" workers list)"
"$distill" cancel "$cuda_run" >/dev/null || fail "cancel the CUDA run"

# Fair share: an admin sets an owner's shares and cap; everyone reads them.
"$distill" owners set alice --shares=2 --max_running=3 | grep -qx 'owner alice: shares 2, max running 3' ||
  fail "owners set"
"$distill" owners >"$work/owners.out"
grep -q '^alice  *2 3  ' "$work/owners.out" || fail "owners: $(cat "$work/owners.out")"
grep -q '^admin  *1 none ' "$work/owners.out" || fail "owners (admin's runs): $(cat "$work/owners.out")"

# Bad input: the file, line and field; the gRPC code and the value.
printf 'kind: DISTILL\nepochs: 1\nlosses: {ce: lots}\n' >"$work/bad.yaml"
set +e
"$distill" submit "$work/bad.yaml" 2>"$work/bad.err"; rc=$?
set -e
[ "$rc" = 2 ] || fail "bad spec file exited $rc"
grep -q "bad.yaml:3: losses.ce: expected a number, got \"lots\"" "$work/bad.err" ||
  fail "bad spec message: $(cat "$work/bad.err")"
printf 'kind: DISTILL\ndataset: {name: mnist-3d}\nepochs: 1\nbatch_size: 8\n' >"$work/invalid.yaml"
set +e
"$distill" submit "$work/invalid.yaml" 2>"$work/invalid.err"; rc=$?
set -e
[ "$rc" = 3 ] || fail "invalid spec exited $rc"
grep -q 'INVALID_ARGUMENT: dataset.name must be one of \[cifar-10, cub-200-2011, fashion-mnist, image-folder\], got "mnist-3d"' \
  "$work/invalid.err" || fail "invalid spec message: $(cat "$work/invalid.err")"

# A waiting run can be cancelled; its teacher (run 1) succeeded, so submit
# against a teacher that is itself cancelled first.
printf 'kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, train_limit: 64}\nteacher: {vit: {preset: small-28}}\nepochs: 50\nbatch_size: 32\n' >"$work/teacher.yaml"
run=$("$distill" submit "$work/teacher.yaml" | awk '{print $2}')
"$distill" cancel "$run" | grep -q CANCELLED || fail "cancel"
# What is stored and shown is the resolved spec: the preset's sizes and
# every default (lr, image size, restarts), not zeros.
"$distill" runs show "$run" >"$work/preset.out"
grep -q 'ViT small-28 patch 7 width 96 depth 4 heads 4 mlp ratio 4' "$work/preset.out" ||
  fail "preset teacher: $(cat "$work/preset.out")"
grep -q 'image 28 px' "$work/preset.out" || fail "image size: $(cat "$work/preset.out")"
grep -q 'optimizer SGD lr 0.1 .* max restarts 2' "$work/preset.out" ||
  fail "optimizer defaults: $(cat "$work/preset.out")"
printf 'kind: DISTILL\ndataset: {name: fashion-mnist, train_limit: 64, test_limit: 64}\nteacher: {run_id: 1}\nlosses: {ikd: {weight: 1}}\nepochs: 1\nbatch_size: 32\n' >"$work/student.yaml"
student=$("$distill" submit "$work/student.yaml" | awk '{print $2}')
"$distill" cancel "$student" >/dev/null || true
"$distill" runs show "$student" >"$work/student.out"
grep -q 'student resnet18 width 64 stem SMALL embedding pooled' "$work/student.out" ||
  fail "default student: $(cat "$work/student.out")"
grep -q 'losses IKD 1 (T 4, x T^2)' "$work/student.out" ||
  fail "default temperature: $(cat "$work/student.out")"
set +e
"$distill" runs show 999 2>"$work/missing.err"; rc=$?
set -e
[ "$rc" = 3 ] || fail "runs show of a missing run exited $rc"
grep -q 'runs show: NOT_FOUND: .*999' "$work/missing.err" ||
  fail "missing run: $(cat "$work/missing.err")"
set +e
"$distill" watch "$run" >/dev/null; rc=$?
set -e
[ "$rc" = 1 ] || fail "watch of a cancelled run exited $rc"

# Tokens: a viewer reads but may not submit; no token, and a revoked one,
# are not let in.
viewer=$("$distill" tokens create --role=viewer --name=e2e-viewer 2>/dev/null)
as_viewer() { DISTILL_TOKEN_FILE= DISTILL_TOKEN=$viewer "$distill" "$@"; }
as_viewer runs list >/dev/null || fail "a viewer cannot list runs"
set +e
as_viewer submit "$work/teacher.yaml" 2>"$work/viewer.err"; rc=$?
DISTILL_TOKEN_FILE= "$distill" runs list 2>"$work/anonymous.err"; anonymous_rc=$?
set -e
[ "$rc" = 3 ] || fail "a viewer's submit exited $rc"
grep -q 'PERMISSION_DENIED: token "e2e-viewer" (role viewer) may not submit' "$work/viewer.err" ||
  fail "viewer submit: $(cat "$work/viewer.err")"
set +e
as_viewer gc --dry-run 2>"$work/viewer-gc.err"
set -e
grep -q 'may not administer this coordinator: tokens, backups, garbage collection' "$work/viewer-gc.err" ||
  fail "viewer gc: $(cat "$work/viewer-gc.err")"
[ "$anonymous_rc" = 3 ] || fail "a call without a token exited $anonymous_rc"
grep -q 'UNAUTHENTICATED: this coordinator requires a token' "$work/anonymous.err" ||
  fail "no token: $(cat "$work/anonymous.err")"
viewer_id=$("$distill" tokens list | awk '$2 == "e2e-viewer" {print $1}')
"$distill" tokens revoke "$viewer_id" | grep -q "revoked token $viewer_id" || fail "revoke"
set +e
"$distill" tokens revoke "$viewer_id" >"$work/revoke2.out" 2>&1; rc=$?
set -e
[ "$rc" != 0 ] && grep -q "token $viewer_id (e2e-viewer) was already revoked at " "$work/revoke2.out" ||
  fail "a second revoke ($rc): $(cat "$work/revoke2.out")"
as_viewer runs list >"$work/revoked.out" 2>&1 && fail "a revoked token still works"
grep -q 'UNAUTHENTICATED: the token is not known' "$work/revoked.out" ||
  fail "revoked token: $(cat "$work/revoked.out")"

# Restart the coordinator on the same data directory: everything is there.
kill -TERM "$coordinator_pid"
wait "$coordinator_pid" || true
start_coordinator --backup_dir="$work/backups"
"$distill" results e2e >"$work/results.after"
diff "$work/results.before" "$work/results.after" || fail "results changed across a restart"
"$distill" runs show "$run" | grep -q CANCELLED || fail "cancelled run lost across a restart"

as_viewer runs list >/dev/null 2>&1 && fail "a revoked token works again after a restart"
"$distill" tokens list | grep -c ' worker \| admin ' | grep -qx 2 ||
  fail "the restart made new tokens: $("$distill" tokens list)"

# A backup while it serves (admin only), restored into a new data
# directory by a second coordinator: the same runs, results and files.
researcher=$("$distill" tokens create --role=researcher --name=e2e-researcher 2>/dev/null)
set +e
DISTILL_TOKEN_FILE= DISTILL_TOKEN=$researcher "$distill" backup 2>"$work/backup.err"; rc=$?
set -e
[ "$rc" = 3 ] && grep -q PERMISSION_DENIED "$work/backup.err" ||
  fail "a researcher's backup exited $rc: $(cat "$work/backup.err")"
"$distill" backup >"$work/backup.out" || fail "backup: $(cat "$work/backup.out")"
grep -q "run files ([1-9][0-9]* new" "$work/backup.out" || fail "backup copied no run file: $(cat "$work/backup.out")"
snapshot=$(awk '{print $2; exit}' "$work/backup.out" | tr -d :)
"$distill" runs list >"$work/runs.before"
"$distill" runs metrics "$run" >"$work/metrics.before"
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" || true
# The admin token file stays $work/data's: its token is in the restored
# database.
coordinator_data=$work/restored start_coordinator --restore_from="$snapshot"
"$distill" runs list >"$work/runs.after"
diff "$work/runs.before" "$work/runs.after" || fail "the restore lists other runs"
"$distill" results e2e | diff "$work/results.after" - || fail "the restore's results differ"
"$distill" runs metrics "$run" | diff "$work/metrics.before" - || fail "the restore's metrics differ"
grep -q "run files, each checked" "$work/coordinator.log" || fail "$(cat "$work/coordinator.log")"
echo "e2e: backup and restore: $(cat "$work/backup.out")"

# Retention: the restored coordinator, started again with --keep_best=3
# (the sweep sets no policy of its own), keeps the checkpoints of the
# sweep's 3 best students and of its teacher; the other 5 go, each with its
# final training state (state.pt, what distill fork --continue needs).
kill -TERM "$coordinator_pid"; wait "$coordinator_pid" || true
coordinator_data=$work/restored start_coordinator --keep_best=3
"$distill" gc --dry-run >"$work/gc.plan" || fail "gc --dry-run: $(cat "$work/gc.plan")"
grep -q "^would drop 10 run files" "$work/gc.plan" || fail "gc --dry-run: $(cat "$work/gc.plan")"
"$distill" results e2e | grep '^run files:' >"$work/bytes.before"
"$distill" gc >"$work/gc.out" || fail "gc: $(cat "$work/gc.out")"
grep -q "^dropped 10 run files" "$work/gc.out" || fail "gc: $(cat "$work/gc.out")"
"$distill" results e2e | grep '^run files:' >"$work/bytes.after"
dropped=$(awk '/^dropped run/ {print $3; exit}' "$work/gc.out")
# The 3 best students' checkpoints (the runs not dropped) still download,
# and the teacher's.
kept=0
for run in $("$distill" runs list --sweep=1 --format=csv | awk -F, 'NR > 1 && $4 == "DISTILL" {print $1}'); do
  grep -q "^dropped run $run " "$work/gc.out" && continue
  "$distill" download "$run" checkpoint "$work/kept-$run.pt" >/dev/null || fail "kept run $run's checkpoint"
  kept=$((kept + 1))
done
[ "$kept" = 3 ] || fail "$kept checkpoints kept, not 3"
"$distill" download 1 checkpoint "$work/teacher.pt" >/dev/null || fail "the teacher's checkpoint went"
"$distill" runs show "$dropped" | grep -q "retention: checkpoint (.*) dropped at .*best by eval/top1" ||
  fail "runs show $dropped: $("$distill" runs show "$dropped")"
set +e
"$distill" download "$dropped" checkpoint "$work/gone.pt" 2>"$work/gone.err"; rc=$?
set -e
[ "$rc" = 3 ] || fail "download of a dropped checkpoint exited $rc: $(cat "$work/gone.err")"
"$distill" gc --dry-run | grep -q "^would drop 0 run files" || fail "a second gc finds more"
"$distill" results e2e | grep -q "^run files: .* held by the sweep's runs" || fail "results shows no bytes"
echo "e2e: retention: $(sed -n 1p "$work/gc.plan") ...; $(tail -1 "$work/gc.out"); before: $(cat "$work/bytes.before"); after: $(cat "$work/bytes.after"); the 3 best students' and the teacher's checkpoints download"

cat "$work/results.after"
echo "e2e: 1 passed, 0 failed"
