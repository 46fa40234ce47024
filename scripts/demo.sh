#!/usr/bin/env bash
# README command 1: set up and build, start a coordinator and one worker on
# loopback, run the Table 1 sweep on Fashion-MNIST
# (examples/table1-fashion-mnist.yaml) with live progress, print the table,
# and stop the services. The data directory (demo-data/) is kept.
#
#   scripts/demo.sh                 run the sweep
#   scripts/demo.sh results [NAME]  print a sweep's table again (default:
#                                   table1-fashion-mnist)
#   scripts/demo.sh FILE.yaml       run another sweep file the same way
#
# DISTILL_DEMO_PORT (default 50051) and DISTILL_DEMO_DATA (default
# demo-data) change where it listens and keeps its data.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
port=${DISTILL_DEMO_PORT:-50051}
data=${DISTILL_DEMO_DATA:-$root/demo-data}
what=${1:-examples/table1-fashion-mnist.yaml}

scripts/setup.sh build
mkdir -p "$data"
export DISTILL_COORDINATOR=127.0.0.1:$port
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT

# Tokens on, as everywhere: the coordinator makes the admin token
# ($data/admin.token) and the worker's ($data/worker.token) on first start;
# the sweep is submitted with a researcher token made from the admin's.
build/server/distill-coordinator --listen="$DISTILL_COORDINATOR" --data_dir="$data" \
  --worker_token_file="$data/worker.token" >>"$data/coordinator.log" 2>&1 &
pids+=("$!")
for _ in $(seq 50); do
  DISTILL_TOKEN_FILE="$data/admin.token" build/client/distill tokens list >/dev/null 2>&1 && break
  sleep 0.2
done
if [ ! -s "$data/researcher.token" ]; then
  rm -f "$data/researcher.token"
  # A token's name is one owner: the lost file's token goes first.
  DISTILL_TOKEN_FILE="$data/admin.token" build/client/distill tokens revoke demo \
    >/dev/null 2>&1 || true
  DISTILL_TOKEN_FILE="$data/admin.token" build/client/distill tokens create \
    --role=researcher --name=demo --out="$data/researcher.token"
fi
export DISTILL_TOKEN_FILE=$data/researcher.token

if [ "$what" = results ]; then
  build/client/distill results "${2:-table1-fashion-mnist}"
  exit 0
fi

build/worker/distill-worker --coordinator="$DISTILL_COORDINATOR" \
  --token_file="$data/worker.token" --scratch_dir="$data/worker" >>"$data/worker.log" 2>&1 &
pids+=("$!")
sleep 1
grep -m1 'distill-worker: LibTorch' "$data/worker.log" || true

sweep_name=$(sed -n 's/^name: *//p' "$what" | head -1)
# A sweep's name is its own until it ends: an interrupted earlier demo's
# sweep of this name is cancelled first (nothing happens to an ended one).
build/client/distill sweep cancel "$sweep_name" 2>/dev/null | grep -v 'no run left' || true

start=$(date +%s)
build/client/distill sweep "$what" --wait
echo "wall time: $(( $(date +%s) - start )) s; data kept in $data"
build/client/distill report "$sweep_name" -o "$data/report.html" >/dev/null &&
  echo "report (table, curves, t-SNE maps): $data/report.html"
echo "print the table again with: scripts/demo.sh results $sweep_name"
