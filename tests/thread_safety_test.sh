#!/usr/bin/env bash
# The compiler checks the scheduler's lock: a file that touches what the
# lock guards without holding it does not compile under clang's
# -Wthread-safety -Werror=thread-safety (the flags the sanitizer build
# uses), naming the mutex; the same file holding the lock does.
#   thread_safety_test.sh SOURCE_DIR BINARY_DIR
set -uo pipefail
src=$1 build=$2
command -v clang++ >/dev/null || { echo "no clang++: skipped"; exit 77; }
compile() {
  clang++ -std=c++20 -fsyntax-only -Wthread-safety -Werror=thread-safety \
    -I"$src" -I"$build/proto" "$@" "$src/tests/thread_safety/unguarded.cc" 2>&1
}
if ! out=$(compile); then
  echo "the guarded file does not compile:"; echo "$out"; exit 1
fi
if out=$(compile -DUNGUARDED); then
  echo "an unguarded access to the scheduler's store compiled"; exit 1
fi
echo "$out" | grep -E "error: .*requires holding mutex 'core.mu_'" || {
  echo "refused, but not for the lock:"; echo "$out"; exit 1; }
echo "thread safety: the unguarded access is refused, the guarded one compiles"
