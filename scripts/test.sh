#!/usr/bin/env bash
# README command 2: set up, build, and run every test (unit, integration,
# end-to-end). Extra arguments go to ctest, e.g. `scripts/test.sh -L unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure -j2 --timeout 900 "$@"
