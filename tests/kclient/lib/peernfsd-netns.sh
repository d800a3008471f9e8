#!/bin/bash
# Run peernfsd inside the kclient netns, with its own rpcbind, for kernel-client tests.
#   peernfsd-netns.sh start RUNDIR [peernfsd args...]
#   peernfsd-netns.sh stop|term|kill9|restart|rpcinfo RUNDIR
# start: in netns KC_NETNS (kclient) and a private mount namespace whose /run is a fresh
#   tmpfs (so rpcbind's unix socket is not the host's), runs `rpcbind -f`, then
#   $PEERNFSD --state-dir RUNDIR/state --pidfile RUNDIR/peernfsd.pidfile -d info ARGS
#   with stderr appended to RUNDIR/peernfsd.log; returns once port PEERNFSD_PORT (2049)
#   listens (at most PEERNFSD_START_TIMEOUT=30 s). The arguments are kept in RUNDIR.
# term:    SIGTERM peernfsd, KILL it after 10 s (exit 3 then: no clean shutdown).
# stop:    term, then stop rpcbind; the mount namespace goes with it.
# kill9:   SIGKILL peernfsd and wait until it is gone (rpcbind keeps running).
# restart: term peernfsd if it runs, then start it again with the same arguments in the
#   same mount + net namespace (nsenter into rpcbind's), so it registers with the same
#   rpcbind, as after a crash or an upgrade.
# rpcinfo: `rpcinfo -p` against that rpcbind.
# Env: PEERNFSD (binary; default build/bin/peernfsd of this checkout), KC_NETNS,
#      PEERNFSD_PORT, PEERNFSD_START_TIMEOUT. Processes are only ever signalled by pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NS=${KC_NETNS:-kclient}
PEERNFSD=${PEERNFSD:-$HERE/../../../build/bin/peernfsd}
PORT=${PEERNFSD_PORT:-2049}
[ $# -ge 2 ] || { sed -n '2,20p' "$0" >&2; exit 2; }
verb=$1; D=$2; shift 2
mkdir -p "$D"; D=$(cd "$D" && pwd)

# a pid counts as alive unless it is gone or a zombie nobody has reaped yet
alive() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  local st; st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
pidof_file() { cat "$D/$1.pid" 2>/dev/null || true; }
listening() { [ -n "$(ip netns exec "$NS" ss -Hltn "sport = :$PORT" 2>/dev/null)" ]; }
# wait_gone PID SECONDS
wait_gone() { local i; for ((i = 0; i < $2 * 10; i++)); do alive "$1" || return 0; sleep 0.1; done; ! alive "$1"; }

# the command line, from the arguments saved at start
load_args() {
  [ -f "$D/peernfsd.args" ] || { echo "$0: no $D/peernfsd.args: not started" >&2; exit 1; }
  eval "args=($(cat "$D/peernfsd.args"))"
  cmd=("$PEERNFSD" --state-dir "$D/state" --pidfile "$D/peernfsd.pidfile" -d info "${args[@]}")
}

# after launching: wait until the port listens while the process lives
await_listen() {
  local pid=$1 i
  for ((i = 0; i < ${PEERNFSD_START_TIMEOUT:-30} * 10; i++)); do
    listening && { echo "peernfsd pid $pid listening on :$PORT in netns $NS (log $D/peernfsd.log)"; return 0; }
    alive "$pid" || { echo "peernfsd exited during start-up; $D/peernfsd.log:" >&2; tail -20 "$D/peernfsd.log" >&2; return 1; }
    sleep 0.1
  done
  echo "peernfsd (pid $pid) not listening on :$PORT after ${PEERNFSD_START_TIMEOUT:-30} s; log:" >&2
  tail -20 "$D/peernfsd.log" >&2; return 1
}

term_server() {
  local pid rc=0; pid=$(pidof_file peernfsd)
  alive "$pid" || { rm -f "$D/peernfsd.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 10; then
    echo "peernfsd pid $pid still running 10 s after SIGTERM: SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; rc=3
  fi
  rm -f "$D/peernfsd.pid"; return $rc
}

case $verb in
start)
  [ -x "$PEERNFSD" ] || { echo "$0: no executable PEERNFSD=$PEERNFSD" >&2; exit 1; }
  alive "$(pidof_file rpcbind)" && { echo "$0: already running in $D (stop it first)" >&2; exit 1; }
  ip netns list | grep -qw "^$NS" || { echo "$0: no netns $NS: run netns.sh up" >&2; exit 1; }
  listening && { echo "$0: port $PORT already in use in netns $NS" >&2; exit 1; }
  mkdir -p "$D/state"; : > "$D/peernfsd.args"
  [ $# -gt 0 ] && printf '%q ' "$@" > "$D/peernfsd.args"
  load_args
  rm -f "$D/rpcbind.pid" "$D/peernfsd.pidfile"
  # The shell becomes peernfsd (exec), so $! is peernfsd's pid; rpcbind's pid is written
  # from inside, it is the handle on the namespaces for restart.
  ip netns exec "$NS" unshare -m --propagation private sh -c '
    D=$1; shift
    mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind || exit 1
    rpcbind -f </dev/null >>"$D/rpcbind.log" 2>&1 & echo $! > "$D/rpcbind.pid"
    i=0; while [ ! -S /run/rpcbind.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    [ -S /run/rpcbind.sock ] || { echo "rpcbind did not start" >&2; exit 1; }
    exec "$@"' sh "$D" "${cmd[@]}" </dev/null >>"$D/peernfsd.out" 2>>"$D/peernfsd.log" &
  echo $! > "$D/peernfsd.pid"
  if ! await_listen "$(pidof_file peernfsd)"; then   # leave nothing running behind
    term_server || true; rb=$(pidof_file rpcbind)
    alive "$rb" && { kill -TERM "$rb"; wait_gone "$rb" 5 || kill -KILL "$rb"; }
    rm -f "$D/rpcbind.pid"; exit 1
  fi;;
restart)
  load_args
  rb=$(pidof_file rpcbind); alive "$rb" || { echo "$0: rpcbind not running (start first)" >&2; exit 1; }
  term_server || true
  echo "--- restart $(date +%T.%N)" >> "$D/peernfsd.log"
  nsenter --target "$rb" -m -n -- "${cmd[@]}" </dev/null >>"$D/peernfsd.out" 2>>"$D/peernfsd.log" &
  echo $! > "$D/peernfsd.pid"
  await_listen "$!";;
kill9)
  pid=$(pidof_file peernfsd)
  alive "$pid" || { echo "$0: peernfsd not running" >&2; exit 1; }
  echo "--- kill -9 $(date +%T.%N)" >> "$D/peernfsd.log"
  kill -KILL "$pid"; wait_gone "$pid" 10; rm -f "$D/peernfsd.pid"
  echo "peernfsd pid $pid killed";;
term) term_server;;
stop)  # by pid: peernfsd (TERM, then KILL), then rpcbind
  rc=0; term_server || rc=$?
  rb=$(pidof_file rpcbind)
  if alive "$rb"; then kill -TERM "$rb" 2>/dev/null || true; wait_gone "$rb" 10 || kill -KILL "$rb" 2>/dev/null || true; fi
  rm -f "$D/rpcbind.pid"; exit $rc;;
rpcinfo)
  rb=$(pidof_file rpcbind); alive "$rb" || { echo "$0: rpcbind not running" >&2; exit 1; }
  nsenter --target "$rb" -m -n -- rpcinfo -p 127.0.0.1;;
*) sed -n '2,20p' "$0" >&2; exit 2;;
esac
