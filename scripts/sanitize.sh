#!/usr/bin/env bash
# The coordinator side (common, server, CLI; no LibTorch) built with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, in build-sanitize/: runs
# its unit tests and each libFuzzer target for DISTILL_FUZZ_SECONDS (30)
# from its committed corpus. The main suite runs this as ctest `sanitizers`
# (label sanitize); alone: scripts/sanitize.sh [CTEST_ARGS...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DISTILL_SANITIZE_DIR:-build-sanitize}
# -O0 with line tables: a fresh build of what runs here 158 s instead of
# -O1's 300 s (ASan's docs advise -O1 for speed; the unit tests then take
# 28 s instead of 35 s, and the fuzzers' fixed time covers fewer inputs);
# stacks name file:line either way.
CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
  -DCMAKE_CXX_FLAGS="-O0 -gline-tables-only" \
  -DDISTILL_BUILD_WORKER=OFF -DDISTILL_SANITIZE=address,undefined \
  -DDISTILL_FUZZ=ON -DDISTILL_FUZZ_SECONDS="${DISTILL_FUZZ_SECONDS:-30}" >/dev/null
# Only what runs here: the unit tests and the fuzzers.
cmake --build "$dir" -j2 --target unit_tests fuzzers
cd "$dir"
# Leaks are checked (LeakSanitizer reports any at each test's exit).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --output-on-failure -j2 -L 'unit|fuzz' "$@"
