#!/usr/bin/env bash
# Installs every Debian package distill needs (only when one is missing, so
# it is idempotent and quick the second time) and builds in Release.
# Usage: scripts/setup.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

packages=(
  cmake ninja-build g++ pkg-config
  # A compiler cache: the tests' second build of the engine, and every
  # rebuild, compile only what changed.
  ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libsqlite3-dev libyaml-cpp-dev libssl-dev zlib1g-dev
  # The TLS tests make their own CA and certificates with it.
  openssl
  libgtest-dev libgmock-dev
  # Student's t quantiles at any degrees of freedom (Boost.Math, header-only).
  libboost-dev
  # The CLI's grammar: subcommands, both flag forms, generated help.
  libcli11-dev
  # LibTorch (CPU) and an optimised BLAS: without it LibTorch runs its matrix
  # products on the reference BLAS, ~30x slower.
  libtorch-dev libopenblas0-openmp
  # JPEG decoding for CUB-200-2011 and class-per-folder image trees.
  libturbojpeg0-dev
  # The embedded default data set (IDX, gzip, in /usr/share/datasets).
  dataset-fashion-mnist
  # PyTorch's Python API: tools/ export torchvision weights and TorchScript
  # teachers, and the tests run those tools to check the engine against it.
  python3-torchvision
  # A client nobody here wrote: the tests call the coordinator from Python
  # stubs generated from proto/ (protoc + grpc_python_plugin).
  python3-grpcio python3-protobuf python3-yaml
  # /metrics for Prometheus, and promtool to check it in the tests.
  prometheus-cpp-dev prometheus libcpp-httplib-dev
  # A single-node Slurm cluster for tests/slurm_test.sh.
  slurm-wlm munge
  # ASan/UBSan and libFuzzer for the coordinator side (scripts/sanitize.sh).
  clang libclang-rt-14-dev
  # A real browser loads `distill report`'s pages in the tests (headless).
  chromium
)
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
