#!/bin/sh
# The packages of the given roles in scripts/packages.txt, one line, each
# once (POSIX sh and sed: a bare Debian image runs it).
#   scripts/packages.sh ROLE [ROLE ...]      e.g. coordinator-build
set -eu
list=$(dirname "$0")/packages.txt
[ $# -gt 0 ] || { echo "usage: $0 ROLE [ROLE ...]" >&2; exit 2; }
out=""
for role in "$@"; do
  found=$(sed -n "s/^$role:[[:space:]]*//p" "$list")
  [ -n "$found" ] || { echo "$0: no role \"$role\" in $list" >&2; exit 2; }
  out="$out $found"
done
# Each package once, in first-seen order.
printf '%s\n' $out | awk '!seen[$0]++' | tr '\n' ' ' | sed 's/ $//'
echo
