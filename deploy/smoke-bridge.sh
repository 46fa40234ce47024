#!/usr/bin/env bash
# The default deployment as users run it: deploy/docker-compose.yml on its
# own bridge network (worker -> coordinator:50051, TLS with the
# certificate the `secrets` service made, tokens the coordinator made),
# waits for the coordinator's healthcheck, trains a teacher and distils a
# student through the CLI in the coordinator's container, stops the worker
# mid-run to see it hand the run back, then takes everything down.
#   deploy/smoke-bridge.sh       (BASE=local/bookworm deploy/smoke-bridge.sh offline)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
base=${BASE:-debian:bookworm-slim}
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
export DISTILL_PORT=${DISTILL_PORT:-50072}
compose="docker-compose -p distill-bridge -f deploy/docker-compose.yml"
# DISTILL_SMOKE_NO_BUILD=1 reuses the images already built.
if [ -z "${DISTILL_SMOKE_NO_BUILD:-}" ]; then
  for target in coordinator worker; do
    docker build -q --network host --build-arg BASE="$base" -f deploy/Dockerfile \
      --target "$target" -t "distill-$target" . >/dev/null
  done
fi
built=$(date +%s)
trap 'rc=$?; [ $rc = 0 ] || $compose logs --tail=20 >&2 || true
      $compose down -v >/dev/null 2>&1 || true' EXIT
$compose up -d --no-build
distill() { $compose exec -T coordinator distill "$@"; }
id=$($compose ps -q coordinator)
for _ in $(seq 60); do
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] && break
  sleep 1
done
[ "$(docker inspect -f '{{.State.Health.Status}}' "$id")" = healthy ] ||
  { echo "smoke-bridge: the coordinator never became healthy" >&2; exit 1; }
network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}}{{end}}' \
  "$($compose ps -q worker)")
echo "smoke-bridge: worker on network $network, coordinator healthy"
case "$network" in *default*) ;; *) echo "not the bridge network: $network" >&2; exit 1;; esac

cat <<'SPEC' | $compose exec -T coordinator sh -c 'cat >/tmp/smoke.yaml'
name: bridge
base:
  dataset: {name: fashion-mnist, train_limit: 512, test_limit: 256}
  student: {arch: resnet18, width: 8}
  epochs: 2
  batch_size: 64
  evaluation: {tsne_points: 100}
teacher:
  train:
    teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
    optimizer: {kind: ADAMW, lr: 0.002}
members:
  - {name: D, losses: {ce: 1}}
  - {name: H, losses: {ce: 1, mse: 1, ikd: {weight: 1}, rkd: {distance_weight: 1, angle_weight: 2}}}
SPEC
distill sweep /tmp/smoke.yaml --wait
distill results bridge | grep -c SUCCEEDED | grep -qx 3

# docker-compose stop sends SIGTERM: the worker lets the run go on for its
# --drain_seconds (5), hands it back with a resume point, deregisters and
# exits 0. The run is long enough not to finish within those 5 s.
cat <<'SPEC' | $compose exec -T coordinator sh -c 'cat >/tmp/long.yaml'
kind: TRAIN_TEACHER
dataset: {name: fashion-mnist, train_limit: 20000, test_limit: 256}
teacher: {vit: {patch_size: 7, width: 32, depth: 2, heads: 2}}
epochs: 20
batch_size: 32
SPEC
run=$(distill submit /tmp/long.yaml | awk '{print $2}')
for _ in $(seq 300); do distill runs show "$run" | grep -q RUNNING && break; sleep 0.2; done
sleep 3
$compose stop -t 30 worker
distill runs show "$run" | grep -q 'handed back' ||
  { echo "smoke-bridge: the stopped worker did not hand its run back" >&2; exit 1; }
[ "$(docker inspect -f '{{.State.ExitCode}}' "$($compose ps -q worker)")" = 0 ] ||
  { echo "smoke-bridge: the drained worker exited non-zero" >&2; exit 1; }
distill workers list
echo "smoke-bridge: bridge network, TLS and tokens, healthcheck, drain on stop: passed" \
  "(images $(( built - start )) s, deployment and runs $(( $(date +%s) - built )) s)"
