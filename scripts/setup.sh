#!/usr/bin/env bash
# Installs every Debian package distill needs (only when one is missing, so
# it is idempotent and quick the second time) and builds in Release.
# Usage: scripts/setup.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

# Every role of the one package list (scripts/packages.txt), which
# deploy/Dockerfile's stages install from too.
read -r -a packages <<<"$(scripts/packages.sh coordinator-build worker-build \
  coordinator-runtime worker-runtime test)"
# kubectl kustomize renders deploy/k8s in the tests; any kubectl will do
# (Debian's kubernetes-client clashes with one already installed).
command -v kubectl >/dev/null || packages+=(kubernetes-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build_dir"
