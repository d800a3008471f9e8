#!/bin/bash
# Start a guest that serves NFS with the Linux kernel server (knfsd) at 10.99.0.(N+2)
# (KC_TAP=kctapN, default kctap0 -> 10.99.0.2), export /srv/export (= NFSv4 root, a tmpfs).
#   knfsd-run.sh start          -> prints the run dir once the server is ready
#   knfsd-run.sh stop RUNDIR
#   knfsd-run.sh nfsd RUNDIR N  -> rpc.nfsd N in the server guest (0 stops the server and
#                                  discards its NFSv4 state; N > 0 starts it again, with a
#                                  grace period for reclaims), returns rpc.nfsd's status
# Env: KC_KNFSD_ADDR2=IP/24 gives the server guest a second address (another client
# identity for the kernel client, see guest/nfs4-state.sh). The guest's qemu process group
# id is in RUNDIR/guest.pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
case ${1:-} in
start)
  export KC_EXTRA_MODULES=nfsd KC_EXTRA_BINS="/usr/sbin/rpc.nfsd /usr/sbin/exportfs /usr/sbin/rpc.mountd"
  export KC_CACHE=${KC_CACHE:-/tmp/peernfs-kclient-cache-knfsd} KC_TIMEOUT=${KC_TIMEOUT:-3600}
  export KC_ENV_EXTRA="${KC_ENV_EXTRA:-} KC_KNFSD_ADDR2" KC_KNFSD_ADDR2=${KC_KNFSD_ADDR2:-}
  mkdir -p /tmp/kclient-runs; export KC_RUNDIR=$(mktemp -d /tmp/kclient-runs/knfsd.XXXXXX)
  mkdir -p "$KC_RUNDIR/share"
  setsid "$HERE/run-guest.sh" 10.99.0.1 none "$HERE/guest/knfsd-serve.sh" >"$KC_RUNDIR/guest.out" 2>&1 </dev/null &
  echo $! > "$KC_RUNDIR/guest.pid"
  for _ in $(seq 120); do [ -e "$KC_RUNDIR/share/ready" ] && { echo "$KC_RUNDIR"; exit 0; }; sleep 1; done
  echo "knfsd guest not ready; see $KC_RUNDIR" >&2; exit 1;;
stop)
  touch "$2/share/stop"; for _ in $(seq 60); do [ -e "$2/share/rc" ] && exit 0; sleep 1; done; exit 1;;
nfsd)
  rm -f "$2/share/nfsd.done"; echo "$3" > "$2/share/nfsd.req.tmp"; mv "$2/share/nfsd.req.tmp" "$2/share/nfsd.req"
  for _ in $(seq 600); do [ -e "$2/share/nfsd.done" ] && exit "$(cat "$2/share/nfsd.done")"; sleep 0.1; done
  echo "knfsd guest did not answer nfsd $3" >&2; exit 1;;
*) echo "usage: $0 start | stop RUNDIR | nfsd RUNDIR THREADS" >&2; exit 2;;
esac
