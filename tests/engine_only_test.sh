#!/usr/bin/env bash
# The engine built alone (DISTILL_ENGINE_ONLY: LibTorch, abseil and zlib;
# no gRPC, protobuf, SQLite, yaml-cpp) and without libturbojpeg, as
# bench/gpu.sh builds it on a GPU machine (there in Release): it configures,
# compiles, and its tests pass, JPEG data sets refused with a clear error.
#   engine_only_test.sh BINARY_DIR SOURCE_DIR
set -euo pipefail
build=$1/engine-only
src=$2
# Unoptimised (build type None, no flags; asserts on): what is checked is
# the configuration, not the code's speed, and it compiles in 57 s instead
# of Release's 95 s here.
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS_NONE= \
  -DDISTILL_ENGINE_ONLY=ON -DDISTILL_WITH_TURBOJPEG=OFF >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
grep -q "distill: engine only, LibTorch .*, libturbojpeg: no" "$build.configure.log" ||
  { echo "configure did not report an engine-only build without libturbojpeg:"; cat "$build.configure.log"; exit 1; }
# Nothing of the service is in that build.
for target in distill_proto distill_common distill_server distill-worker; do
  if ninja -C "$build" -t targets all | grep -q "^$target:"; then
    echo "the engine-only build has $target"; exit 1
  fi
done
cmake --build "$build" -j 2 --target distill_engine engine_test table1_local
"$build/tests/engine_test" --gtest_filter='SplitsTest.*:PrecisionTest.*'
echo "engine-only build: ok"
