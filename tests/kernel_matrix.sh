#!/usr/bin/env bash
# The engine's numeric tests under every CPU kernel set this machine can
# run, so that no test holds only for the kernels its author's CPU picked:
# LibTorch's own (ATEN_CPU_CAPABILITY: default, avx2, avx512) and
# OpenBLAS's (OPENBLAS_CORETYPE: Sandybridge, Haswell, Zen, SkylakeX).
# Prints a table (configuration, kernels the process reported, tests run,
# passed, seconds) and fails when any test fails in any configuration.
#   kernel_matrix.sh BINARY_DIR
set -uo pipefail
binary=$1/tests/engine_test
# The numeric suites: losses, evaluation (k-NN, k-means, CKA, t-SNE), the
# judgement, models, the objective, the trainer and its loop, the teacher's
# outputs and a student learning from one, mixed precision (~4 s each).
filter=${KERNEL_MATRIX_FILTER:-'LossesTest.*:StructureLossesTest.*:EvaluationTest.*:JudgeTest.*:ModelsTest.*:ObjectiveTest.*:TrainerTest.*:TrainingLoopTest.*:CosineLrTest.*:TeacherOutputsTest.*:TeacherTest.AStudentLearnsFromATeacherThatDoesNotMove:PrecisionTest.*:RuntimeTest.KernelsInUse'}

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }

# What the machine picks runs in the suite's own engine_test; here each
# kernel set by name.
configs=("ATEN_CPU_CAPABILITY=default")
has avx2 fma && configs+=("ATEN_CPU_CAPABILITY=avx2")
# ATen's AVX-512 kernels need F, BW, VL and DQ.
has avx512f avx512bw avx512vl avx512dq && configs+=("ATEN_CPU_CAPABILITY=avx512")
has avx && configs+=("OPENBLAS_CORETYPE=Sandybridge")
has avx2 fma && configs+=("OPENBLAS_CORETYPE=Haswell" "OPENBLAS_CORETYPE=Zen")
has avx512f avx512bw avx512vl avx512dq && configs+=("OPENBLAS_CORETYPE=SkylakeX")

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=0
printf '%-32s %-34s %5s %5s %6s\n' configuration kernels tests pass seconds
for i in "${!configs[@]}"; do
  config=${configs[$i]}
  log=$logs/$i.log
  start=$SECONDS
  # One thread: ctest runs two tests at once on CI's two cores; each
  # configuration alone in its process.
  env ${config:+"$config"} OMP_NUM_THREADS=1 "$binary" --gtest_filter="$filter" \
    --gtest_brief=1 >"$log" 2>&1
  rc=$?
  seconds=$((SECONDS - start))
  run=$(grep -oE '^\[==========\] [0-9]+ tests? from' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
  passed=$(grep -oE '^\[  PASSED  \] [0-9]+' "$log" | grep -oE '[0-9]+$')
  kernels=$(grep -m1 -oE 'kernels: .*' "$log" | cut -c10-)
  printf '%-32s %-34s %5s %5s %6s\n' "${config:-(what the machine picks)}" \
    "${kernels:-?}" "${run:-0}" "${passed:-0}" "$seconds"
  if [ "$rc" != 0 ] || [ -z "$run" ] || [ "${passed:-0}" != "$run" ]; then
    failed=1
    grep -E '^\[  FAILED  \]|Failure|Expected|Which is|actual' "$log" | head -40 | sed 's/^/    /'
  fi
done
[ "$failed" = 0 ] && echo "kernel matrix: every test passed under every configuration"
exit "$failed"
