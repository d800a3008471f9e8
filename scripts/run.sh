#!/bin/bash
# Build peernfsd and serve DIR (default ./export, created if missing) over NFSv3 + MOUNT
# + NLM, with rpcbind and rpc.statd running and the server registered. Stop with Ctrl-C.
#   scripts/run.sh [DIR] [peernfsd options...]
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
"$TOP/scripts/install-deps.sh" run
cmake -S "$TOP" -B "$TOP/build" -DCMAKE_BUILD_TYPE=Release -DPEERNFS_TESTS=OFF >/dev/null
cmake --build "$TOP/build" -j"$(nproc)" --target peernfsd
DIR=${1:-./export}; shift || true
mkdir -p "$DIR"
# rpcbind: start it unless one answers already (clients find MOUNT and NLM through it)
if ! rpcinfo -p localhost >/dev/null 2>&1; then
  mkdir -p /run/rpcbind; rpcbind -w || rpcbind
fi
# rpc.statd: NLM asks it to watch locking clients and it tells them when we restart
if ! rpcinfo -p localhost 2>/dev/null | grep -q " 100024 "; then
  rpc.statd || echo "warning: rpc.statd did not start; lock recovery after reboots is off" >&2
fi
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
echo "peernfsd: exporting $(realpath "$DIR"); mount with: mount -t nfs -o vers=3 $(hostname):$(realpath "$DIR") /mnt" >&2
exec $SUDO "$TOP/build/bin/peernfsd" --state-dir "${PEERNFSD_STATE:-$TOP/state}" "$@" "$DIR"
