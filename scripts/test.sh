#!/bin/bash
# Install what is missing, build, and run every test:
#  1. the whole suite (unit, interop, kernel client) built with ASan + UBSan;
#  2. the libFuzzer targets (clang), each for a short run.
#   scripts/test.sh [ctest args...]   e.g. -L unit, -R kclient
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
"$TOP/scripts/install-deps.sh" test
J=$(nproc)
cmake -S "$TOP" -B "$TOP/build-asan" -DCMAKE_BUILD_TYPE=Debug -DPEERNFS_SANITIZE=ON >/dev/null
cmake --build "$TOP/build-asan" -j"$J"
CC=clang cmake -S "$TOP" -B "$TOP/build-fuzz" -DCMAKE_BUILD_TYPE=Debug -DPEERNFS_FUZZ=ON \
  -DPEERNFS_KCLIENT_TESTS=OFF >/dev/null
cmake --build "$TOP/build-fuzz" -j"$J"
rc=0
(cd "$TOP/build-asan" && ctest --output-on-failure -LE fuzz "$@") || rc=1
(cd "$TOP/build-fuzz" && ctest --output-on-failure -L fuzz "$@") || rc=1
[ $rc = 0 ] && echo "ALL TESTS PASSED" || echo "SOME TESTS FAILED" >&2
exit $rc
