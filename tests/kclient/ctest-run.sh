#!/bin/bash
# ctest wrapper for the kernel client tests: runs the test script with its output in a file
# and prints it afterwards, the failed checks FIRST when the test fails, so the head of the
# output (what a CI summary usually shows of a long test) says what broke.
#   ctest-run.sh SCRIPT [ARGS...]; exit status: the script's.
set -u
out=$(mktemp /tmp/kclient-ctest.XXXXXX)
trap 'rm -f "$out"' EXIT
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
"$@" > "$out" 2>&1 &
pid=$!
wait "$pid"; rc=$?
# a TERM/INT (ctest's timeout) interrupts the first wait: wait again for the script's cleanup
while kill -0 "$pid" 2>/dev/null; do wait "$pid"; rc=$?; done
if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
  echo "=== $(basename "$1") failed (exit $rc); the failed checks, then the whole output:"
  grep -E '^(  )?FAIL:|deadline|timed out|=== summary' "$out" | head -40
  echo "=== whole output"
fi
cat "$out"
exit "$rc"
