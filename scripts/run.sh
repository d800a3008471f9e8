#!/bin/bash
# Build peernfsd and serve DIR (default ./export, created if missing) over NFSv3 + MOUNT,
# with rpcbind running and the server registered. Stop with Ctrl-C.
#   scripts/run.sh [DIR] [peernfsd options...]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
"$TOP/scripts/install-deps.sh" run
cmake -S "$TOP" -B "$TOP/build" -DCMAKE_BUILD_TYPE=Release -DPEERNFS_TESTS=OFF >/dev/null
cmake --build "$TOP/build" -j"$(nproc)" --target peernfsd
DIR=${1:-./export}; shift || true
mkdir -p "$DIR"
# rpcbind: start it unless one answers already (clients find MOUNT through it)
if ! rpcinfo -p localhost >/dev/null 2>&1; then
  mkdir -p /run/rpcbind; rpcbind -w || rpcbind
fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
echo "peernfsd: exporting $(realpath "$DIR"); mount with: mount -t nfs -o vers=3 $(hostname):$(realpath "$DIR") /mnt" >&2
exec $SUDO "$TOP/build/bin/peernfsd" --state-dir "${PEERNFSD_STATE:-$TOP/state}" "$@" "$DIR"
