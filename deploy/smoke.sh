#!/usr/bin/env bash
# Builds both images, deploys them with Docker Compose on this host's
# loopback, trains a small teacher and distils a student through the CLI in
# the coordinator's container, then takes the deployment down.
#   deploy/smoke.sh            (BASE=local/bookworm deploy/smoke.sh offline)
set -euo pipefail
cd "$(dirname "$0")/.."
base=${BASE:-debian:bookworm-slim}
# The classic builder: --target and --network host without the buildx plugin.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}
export DISTILL_SMOKE_PORT=${DISTILL_SMOKE_PORT:-50071}
compose="docker-compose -p distill-smoke -f deploy/docker-compose.smoke.yml"
for target in coordinator worker; do
  docker build --network host --build-arg BASE="$base" -f deploy/Dockerfile \
    --target "$target" -t "distill-$target" .
done
trap 'rc=$?; [ $rc = 0 ] || $compose logs --tail=20 >&2 || true
      $compose down -v >/dev/null 2>&1 || true' EXIT
$compose up -d
# The CLI in the coordinator's container: TLS (the deployment's CA) and the
# admin token, from the container's environment.
distill() { $compose exec -T coordinator distill "$@"; }
for _ in $(seq 50); do distill runs list >/dev/null 2>&1 && break; sleep 0.2; done
cat >/tmp/distill-smoke.yaml <<'SPEC'
name: smoke
base:
  dataset: {name: fashion-mnist, train_limit: 512, test_limit: 256}
  student: {arch: resnet18, width: 8}
  optimizer: {kind: SGD, lr: 0.05, momentum: 0.9}
  epochs: 2
  batch_size: 64
  evaluation: {tsne_points: 100}
teacher:
  train:
    teacher:
      vit: {patch_size: 7, width: 32, depth: 2, heads: 2}
    optimizer: {kind: ADAMW, lr: 0.002}
members:
  - name: D
    losses: {ce: 1}
  - name: H
    losses: {ce: 1, mse: 1, ikd: {weight: 1, temperature: 4}, rkd: {distance_weight: 1, angle_weight: 2}}
SPEC
$compose exec -T coordinator sh -c 'cat >/tmp/smoke.yaml' </tmp/distill-smoke.yaml
distill sweep /tmp/smoke.yaml --wait
distill results smoke
# Without the token, or in plaintext, the coordinator lets nobody in.
if $compose exec -T -e DISTILL_TOKEN_FILE= coordinator distill runs list >/dev/null 2>&1; then
  echo "smoke: a CLI without a token got in" >&2; exit 1
fi
if $compose exec -T -e DISTILL_TLS_CA= coordinator distill runs list >/dev/null 2>&1; then
  echo "smoke: a plaintext CLI got in" >&2; exit 1
fi
echo "smoke: the deployment trained and distilled over TLS with tokens"
