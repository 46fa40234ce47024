#!/usr/bin/env bash
# The engine on a GPU machine that has LibTorch (CUDA PyTorch's) and
# nothing of the service: one script, idempotent, every figure printed with
# the GPU's name and written to $OUT/gpu-figures.txt (logs beside it).
#
#   bench/gpu.sh bundle   here (Debian): gather what that machine lacks into
#                         .gpu/ (abseil's headers and libraries, googletest's
#                         sources, zlib's headers, Fashion-MNIST); carry .gpu
#   bench/gpu.sh          there: build the engine alone against python3's
#                         LibTorch (DISTILL_ENGINE_ONLY), run its unit tests
#                         on $DEVICE, the distillation step and the student
#                         step in lockstep against PyTorch's Python API on the
#                         same device, the convolution peak, a small Table 1
#                         sweep (bench/table1_local), the paper's size (row
#                         H's step at 224 px, a ViT-S/16 teacher into a
#                         width-64 ResNet-18, against PyTorch, with the
#                         device's measured bf16 matrix peak) and the slots
#                         table (the sweep's rows as 1, 2, 4, 8 processes
#                         sharing the device, as distill-worker --slots)
#
# DEVICE (cuda:0; cpu rehearses it all here), PAIRS (20 lockstep steps a
# figure), THREADS (2 CPU threads a program), JOBS (build jobs: the cores),
# OUT (where figures go: ./gpu-out),
# SWEEP_TRAIN/SWEEP_TEST/SWEEP_EPOCHS (10000/2000/3: the demo's size),
# PAPER_BATCH (64; the CPU: 4), SLOTS (1 2 4 8),
# STEPS (all, or a comma list of tests,distill,student,peak,table1,paper,loader,slots; the
# build always runs), PRECISIONS (fp32 bf16 fp16; the CPU: fp32), TEACHERS
# (online cached) and WIDTHS (96 192) of the distillation-step figures. Each step's log is in build-gpu/logs/, all of them packed into
# $OUT/gpu-logs.tar.gz.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bundle=$root/.gpu

if [ "${1:-}" = bundle ]; then
  set -e
  rm -rf "$bundle"
  mkdir -p "$bundle/prefix/include" "$bundle/prefix/lib" "$bundle/data/fashion-mnist"
  multiarch=$(gcc -print-multiarch)
  cp -a /usr/include/absl "$bundle/prefix/include/"
  cp -a /usr/include/zlib.h /usr/include/zconf.h "$bundle/prefix/include/"
  mkdir -p "$bundle/prefix/lib/$multiarch/cmake"
  cp -a /usr/lib/"$multiarch"/libabsl_*.so* "$bundle/prefix/lib/$multiarch/"
  cp -a /usr/lib/"$multiarch"/cmake/absl "$bundle/prefix/lib/$multiarch/cmake/"
  # libturbojpeg (the JPEG data sets, jpeg_test and bench/loader), found
  # through a pkg-config file that points into the bundle, and pkgconf
  # itself for a machine without one.
  cp -a /usr/include/turbojpeg.h "$bundle/prefix/include/"
  cp -a /usr/lib/"$multiarch"/libturbojpeg.so* "$bundle/prefix/lib/$multiarch/"
  mkdir -p "$bundle/prefix/lib/$multiarch/pkgconfig" "$bundle/bin"
  sed -e 's|^prefix=.*|prefix=${pcfiledir}/../../..|' -e 's|^exec_prefix=.*|exec_prefix=${prefix}|' \
      -e "s|^libdir=.*|libdir=\${prefix}/lib/$multiarch|" -e 's|^includedir=.*|includedir=${prefix}/include|' \
      /usr/lib/"$multiarch"/pkgconfig/libturbojpeg.pc >"$bundle/prefix/lib/$multiarch/pkgconfig/libturbojpeg.pc"
  cp -a /usr/bin/pkgconf "$bundle/bin/pkg-config"
  cp -a /usr/lib/"$multiarch"/libpkgconf.so* "$bundle/prefix/lib/$multiarch/"
  cp -L /usr/lib/"$multiarch"/libz.so "$bundle/prefix/lib/libz.so"
  cp -a /usr/src/googletest "$bundle/googletest"
  cp /usr/share/datasets/fashion-mnist/*-ubyte.gz "$bundle/data/fashion-mnist/"
  du -sh "$bundle"
  exit 0
fi

device=${DEVICE:-cuda:0}
pairs=${PAIRS:-20}
jobs=${JOBS:-$(nproc)}
out=${OUT:-$root/gpu-out}
mkdir -p "$out"
figures=$out/gpu-figures.txt
: >"$figures"
build=$root/build-gpu
logs=$build/logs
mkdir -p "$logs"
steps=,${STEPS:-all},
want() { [ "$steps" = ,all, ] || [[ "$steps" == *",$1,"* ]]; }
say() { echo "$*" | tee -a "$figures"; }
# Each step runs on its own; a failing one is reported and the rest go on.
failures=()
step() {
  local name=$1 limit=$2
  shift 2
  say ""
  say "== $name"
  local start=$SECONDS rc=0
  timeout "$limit" "$@" >"$logs/$name.log" 2>&1 || rc=$?
  grep -v '^\s*$' "$logs/$name.log" | tail -n "${SHOW:-40}" | tee -a "$figures"
  say "-- $name: exit $rc, $((SECONDS - start)) s"
  [ "$rc" = 0 ] || failures+=("$name")
  return "$rc"
}
[ -d "$bundle/prefix" ] || { echo "no .gpu/: run 'bench/gpu.sh bundle' here first and carry .gpu" >&2; exit 2; }
multiarch=$(ls "$bundle/prefix/lib" | grep -- -linux-gnu | head -1)
export LD_LIBRARY_PATH=$bundle/prefix/lib/$multiarch${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$bundle/prefix/lib/$multiarch/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
command -v pkg-config >/dev/null || export PATH=$bundle/bin:$PATH
python=${PYTHON:-python3}
[ "$device" = cpu ] && python=${PYTHON:-/usr/bin/python3}
torch_prefix=${TORCH_PREFIX:-$($python -c 'import torch; print(torch.utils.cmake_prefix_path)')}
[ -d "$torch_prefix" ] || torch_prefix=""  # Debian: its own place
started=$SECONDS

gpu=$($python -c "import torch; d='$device'; print(torch.cuda.get_device_name(0) if d.startswith('cuda') else 'CPU: ' + [l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')][0])")
say "device: $device = $gpu"
say "PyTorch $($python -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), $(nproc) cores, $(date -u +%FT%TZ)"
say "LibTorch CMake prefix: $torch_prefix, C++11 ABI $($python -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))'), $(${CXX:-c++} --version | head -1)"

# 1. The engine alone, against this machine's LibTorch.
cmake_args=(-S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
  -DDISTILL_ENGINE_ONLY=ON "-DCMAKE_PREFIX_PATH=$torch_prefix;$bundle/prefix"
  -DDISTILL_GTEST_SOURCE_DIR="$bundle/googletest"
  -DZLIB_INCLUDE_DIR="$bundle/prefix/include" -DZLIB_LIBRARY="$bundle/prefix/lib/libz.so"
  # Debian's abseil (2022) predates GCC 13's leaner headers.
  "-DCMAKE_CXX_FLAGS=-include cstdint")
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
step configure 300 cmake "${cmake_args[@]}"
SHOW=60 step build 900 cmake --build "$build" -j "$jobs" -- -k 0
built=$?

if [ "$built" = 0 ]; then
  # 2. The engine's unit tests on the device.
  if want tests && ! SHOW=30 step unit_tests 600 env DISTILL_TEST_DEVICE="$device" \
      DISTILL_TEST_PYTHON="$python" ctest --test-dir "$build" -j "$(( jobs > 8 ? 8 : jobs ))" \
      --output-on-failure --timeout 300; then
    # The first failing test again, under a debugger where there is one
    # (cuda-gdb on NVIDIA's images), for its backtrace.
    first=$(grep -m1 -o 'Test *#[0-9]*: [A-Za-z0-9_]*\.[A-Za-z0-9_]* \.*\*\*\*\(Failed\|Exception\)' "$logs/unit_tests.log" |
            awk '{print $3}')
    binary=$(grep -l "${first%%.*}" "$build"/tests/*_test 2>/dev/null | head -1)
    debugger=$(command -v cuda-gdb || command -v gdb || true)
    if [ -n "$first" ] && [ -n "$binary" ] && [ -n "$debugger" ]; then
      SHOW=40 step "backtrace" 120 env DISTILL_TEST_DEVICE="$device" \
        DISTILL_TEST_PYTHON="$python" "$debugger" -batch -ex run -ex bt \
        --args "$binary" --gtest_filter="$first"
    fi
    # The stack the first test that crashed printed (tests/crash_handler.cc).
    if grep -q '^\*\*\* crashed with' "$logs/unit_tests.log"; then
      say ""
      say "== the first crash's stack"
      demangle=cat
      command -v c++filt >/dev/null && demangle=c++filt
      grep -m1 -B12 -A36 '^\*\*\* crashed with' "$logs/unit_tests.log" | $demangle |
        cut -c1-240 | tee -a "$figures"
    fi
  fi

  # 3. The steps in lockstep with PyTorch's Python API on the same device.
  threads=${THREADS:-2}
  default_precisions="fp32 bf16 fp16"
  [ "$device" = cpu ] && default_precisions=fp32
  want distill || PRECISIONS=""
  for precision in ${PRECISIONS-$default_precisions}; do
    for teacher in ${TEACHERS:-online cached}; do
      for width in ${WIDTHS:-96 192}; do
        args=(--teacher "$teacher" --teacher_width "$width" --device "$device"
              --precision "$precision" --threads "$threads" --lockstep 1)
        SHOW=3 step "distill_${teacher}_${width}_${precision}" 300 \
          "$python" bench/lockstep.py "$pairs" "$build/bench/distill_step" "${args[@]}" -- \
          "$python" bench/distill_step.py "${args[@]}"
      done
    done
  done
  want student && SHOW=3 step student_step 300 "$python" bench/lockstep.py "$pairs" \
    "$build/bench/student_step" --threads "$threads" --device "$device" --lockstep 1 -- \
    "$python" bench/student_step.py --threads "$threads" --device "$device" --lockstep 1
  for width in 16 64; do
    want peak || continue
    SHOW=3 step "peak_w$width" 300 "$build/bench/distill_step" --peak 1 \
      --student_width "$width" --device "$device" --threads "$threads" --steps 10
  done

  # 4. A small Table 1 sweep through the engine alone.
  sweep_args=(--device "$device" --data_root "$bundle/data/fashion-mnist"
    --train_limit "${SWEEP_TRAIN:-10000}" --test_limit "${SWEEP_TEST:-2000}"
    --epochs "${SWEEP_EPOCHS:-3}" --threads "$threads")
  want table1 && SHOW=16 step table1 900 "$build/bench/table1_local" \
    --work_dir "$build/sweep" "${sweep_args[@]}"

  # 5. The paper's size: row H's step at 224 px, a ViT-S/16 teacher (patch
  # 16, width 384, depth 12, 6 heads) into a width-64 ResNet-18 (ImageNet
  # stem), 200 classes, online and cached, in lockstep against PyTorch; and
  # the device's bf16 (CPU: fp32) matrix peak the step's share is taken of.
  if want paper; then
    paper_batch=${PAPER_BATCH:-64}
    paper_precisions="bf16 fp32"
    [ "$device" = cpu ] && paper_batch=${PAPER_BATCH:-4} && paper_precisions=fp32
    SHOW=3 step matrix_peak 120 "$python" -c "
import time, torch
d = torch.device('$device'); t = torch.bfloat16 if d.type == 'cuda' else torch.float32
n = 8192 if d.type == 'cuda' else 1024
a, b = torch.randn(n, n, device=d, dtype=t), torch.randn(n, n, device=d, dtype=t)
def run():
    for _ in range(10): a @ b
    if d.type == 'cuda': torch.cuda.synchronize()
run(); s = time.perf_counter(); run(); s = time.perf_counter() - s
print('matrix peak %s %dx%d: %.1f TFLOP/s' % (t, n, n, 10 * 2 * n ** 3 / s / 1e12))"
    paper=(--size 224 --channels 3 --classes 200 --teacher_patch 16 --teacher_width 384
           --teacher_depth 12 --teacher_heads 6 --student_width 64 --batch "$paper_batch")
    for precision in $paper_precisions; do
      for teacher in online cached; do
        args=("${paper[@]}" --teacher "$teacher" --device "$device"
              --precision "$precision" --threads "$threads" --lockstep 1)
        SHOW=3 step "paper224_${teacher}_${precision}" 600 \
          "$python" bench/lockstep.py "${PAPER_PAIRS:-$pairs}" "$build/bench/distill_step" "${args[@]}" -- \
          "$python" bench/distill_step.py "${args[@]}"
      done
    done
  fi

  # The JPEG loader at 224 px with every core of the machine (decoding and
  # the training view), to set against the 224-px step's images/s above:
  # which bounds a run, data or compute.
  if want paper || want loader; then
    if [ -x "$build/bench/loader" ]; then
      SHOW=3 step loader224 300 "$build/bench/loader" --threads "$(nproc)" \
        --images "${LOADER_IMAGES:-512}" --batch 64
    else
      say "== loader224: not built (no libturbojpeg found)"
    fi
  fi

  # 6. Several runs on one device: the sweep's eight rows split over N
  # processes at once (as distill-worker --slots=N runs them), one teacher
  # trained first, the teacher cache shared; the wall time of the rows.
  if want slots; then
    slots_dir=$build/slots
    rm -rf "$slots_dir"; mkdir -p "$slots_dir"
    step slots_teacher 900 "$build/bench/table1_local" --work_dir "$slots_dir" \
      --rows none "${sweep_args[@]}"
    say ""
    say "== slots: rows A-H over N processes on $device (teacher trained once)"
    for n in ${SLOTS:-1 2 4 8}; do
      all=(A B C D E F G H)
      slot_start=$SECONDS
      slot_pids=()
      for ((k = 0; k < n; k++)); do
        rows=""
        for ((r = k; r < 8; r += n)); do rows+="${rows:+,}${all[r]}"; done
        timeout 1800 "$build/bench/table1_local" --work_dir "$slots_dir/n$n-$k" \
          --cache_dir "$slots_dir/cache" --teacher_checkpoint "$slots_dir/teacher.pt" \
          --rows "$rows" "${sweep_args[@]}" >"$logs/slots_n${n}_$k.log" 2>&1 &
        slot_pids+=("$!")
      done
      rc=0
      for pid in "${slot_pids[@]}"; do wait "$pid" || rc=$?; done
      say "slots $n: rows A-H in $((SECONDS - slot_start)) s (exit $rc)"
      [ "$rc" = 0 ] || failures+=("slots_$n")
    done
  fi
fi

say ""
say "total $((SECONDS - started)) s on $gpu; failed: ${failures[*]:-none}"
tar -C "$logs" -czf "$out/gpu-logs.tar.gz" .
[ "${#failures[@]}" = 0 ]
