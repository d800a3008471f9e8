#!/bin/bash
# Run peernfsd inside the kclient netns, with its own rpcbind and rpc.statd, for
# kernel-client tests.
#   peernfsd-netns.sh start RUNDIR [peernfsd args...]
#   peernfsd-netns.sh stop|term|kill9|restart|rpcinfo RUNDIR
# start: in netns KC_NETNS (kclient) and a private mount namespace whose /run is a fresh
#   tmpfs (so rpcbind's unix socket is not the host's), runs `rpcbind -f`, then (unless
#   KC_STATD=0) the host's rpc.statd, `rpc.statd -F -d -L -P RUNDIR/statd` (log
#   RUNDIR/statd.log), with RUNDIR/statd bind-mounted over /var/lib/nfs and a private
#   /etc/nfs.conf (state-directory-path; sm-notify lift-grace=n), so neither statd nor
#   sm-notify touches the host's NSM state; then
#   $PEERNFSD --state-dir RUNDIR/state --pidfile RUNDIR/peernfsd.pidfile -d info ARGS
#   with stderr appended to RUNDIR/peernfsd.log; returns once port PEERNFSD_PORT (2049)
#   listens (at most PEERNFSD_START_TIMEOUT=30 s). The arguments are kept in RUNDIR.
# term:    SIGTERM peernfsd, KILL it after 10 s (exit 3 then: no clean shutdown).
# stop:    term, then stop sm-notify (if still running), statd and rpcbind; the mount
#   namespace goes with them.
# kill9:   SIGKILL peernfsd only and wait until it is gone (rpcbind and statd keep
#   running, as on a host where only the NFS server crashed).
# restart: term peernfsd if it runs, then start it again with the same arguments in the
#   same mount + net namespace (nsenter into rpcbind's), so it registers with the same
#   rpcbind and talks to the same statd, as after a crash or an upgrade. The new
#   peernfsd tells statd (SM_SIMU_CRASH); once it listens, restart runs
#   `sm-notify -f -d -m 1 -P RUNDIR/statd` in the background (pid RUNDIR/sm-notify.pid,
#   output in statd.log), which sends SM_NOTIFY to every client peernfsd had monitored
#   (SM_MON), so their lock managers reclaim their locks in the grace period. As on a
#   booting host, where sm-notify runs once at boot: Debian 12's statd cannot do it on
#   SM_SIMU_CRASH (the sm-notify it execs then has no capabilities left, and fails with
#   "Unable to prune capability 0 from bounding set"), hence -L (no sm-notify by statd).
# rpcinfo: `rpcinfo -p` against that rpcbind.
# Env: PEERNFSD (binary; default build/bin/peernfsd of this checkout), KC_NETNS,
#      PEERNFSD_PORT, PEERNFSD_START_TIMEOUT, KC_STATD (1; 0: no statd or sm-notify).
#      Processes are only ever signalled by pid.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
NS=${KC_NETNS:-kclient}
PEERNFSD=${PEERNFSD:-$HERE/../../../build/bin/peernfsd}
PORT=${PEERNFSD_PORT:-2049}
[ $# -ge 2 ] || { sed -n '2,33p' "$0" >&2; exit 2; }
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

# sm-notify (restart's): it retries an unreachable host for a minute
stop_sm_notify() {
  local sn; sn=$(pidof_file sm-notify)
  if alive "$sn"; then kill -TERM "$sn" 2>/dev/null || true; wait_gone "$sn" 5 || kill -KILL "$sn" 2>/dev/null || true; fi
  rm -f "$D/sm-notify.pid"
}
# statd (TERM: it unregisters from rpcbind)
stop_statd() {
  local st; st=$(pidof_file statd)
  stop_sm_notify
  if alive "$st"; then
    kill -TERM "$st" 2>/dev/null || true
    wait_gone "$st" 10 || kill -KILL "$st" 2>/dev/null || true
  fi
  rm -f "$D/statd.pid"
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
  rm -f "$D/rpcbind.pid" "$D/statd.pid" "$D/sm-notify.pid" "$D/peernfsd.pidfile"
  STATD=${KC_STATD:-1}
  if [ "$STATD" != 0 ]; then
    command -v rpc.statd >/dev/null || { echo "$0: rpc.statd missing (nfs-common), or KC_STATD=0" >&2; exit 1; }
    mkdir -p "$D/statd/sm" "$D/statd/sm.bak"
    # root's: statd and sm-notify switch to the owner of the state directory (user statd
    # for Debian's /var/lib/nfs); here they simply stay root
    printf '[statd]\nstate-directory-path=%s\n[sm-notify]\nlift-grace=n\n' "$D/statd" > "$D/nfs.conf"
  fi
  # The shell becomes peernfsd (exec), so $! is peernfsd's pid; rpcbind's pid is written
  # from inside, it is the handle on the namespaces for restart. statd must be registered
  # before peernfsd starts, so its first SM_SIMU_CRASH finds it.
  ip netns exec "$NS" unshare -m --propagation private sh -c '
    D=$1 STATD=$2; shift 2
    mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind || exit 1
    rpcbind -f </dev/null >>"$D/rpcbind.log" 2>&1 & echo $! > "$D/rpcbind.pid"
    i=0; while [ ! -S /run/rpcbind.sock ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    [ -S /run/rpcbind.sock ] || { echo "rpcbind did not start" >&2; exit 1; }
    if [ "$STATD" != 0 ]; then
      # private NSM state: statd gets -P, restart'"'"'s sm-notify reads nfs.conf or the
      # default /var/lib/nfs; both lead to $D/statd in this mount namespace only
      if [ -d /var/lib/nfs ]; then mount --bind "$D/statd" /var/lib/nfs || exit 1; fi
      if [ -f /etc/nfs.conf ]; then mount --bind "$D/nfs.conf" /etc/nfs.conf || exit 1; fi
      if [ -d /etc/nfs.conf.d ]; then mount -t tmpfs tmpfs /etc/nfs.conf.d || exit 1; fi
      # nor the host kernel'"'"'s NSM state number (there when lockd is loaded)
      if [ -e /proc/sys/fs/nfs/nsm_local_state ]; then mount --bind /dev/null /proc/sys/fs/nfs/nsm_local_state || exit 1; fi
      rpc.statd -F -d -L -P "$D/statd" </dev/null >>"$D/statd.log" 2>&1 & echo $! > "$D/statd.pid"
      i=0; until rpcinfo -p 127.0.0.1 2>/dev/null | grep -q "^ *100024 "; do
        [ $i -lt 100 ] || { echo "rpc.statd did not register with rpcbind in 10 s; see $D/statd.log" >&2; exit 1; }
        sleep 0.1; i=$((i+1))
      done
    fi
    exec "$@"' sh "$D" "$STATD" "${cmd[@]}" </dev/null >>"$D/peernfsd.out" 2>>"$D/peernfsd.log" &
  echo $! > "$D/peernfsd.pid"
  if ! await_listen "$(pidof_file peernfsd)"; then   # leave nothing running behind
    term_server || true; stop_statd
    rb=$(pidof_file rpcbind)
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
  await_listen "$!"
  st=$(pidof_file statd)
  if [ -n "$st" ]; then   # the NFS service "booted": notify the clients it had monitored
    alive "$st" || echo "$0: warning: rpc.statd (pid $st) is gone; see $D/statd.log" >&2
    stop_sm_notify        # a previous restart's, still retrying
    echo "--- sm-notify after the restart $(date +%T.%N)" >> "$D/statd.log"
    nsenter --target "$rb" -m -n -- sm-notify -f -d -m 1 -P "$D/statd" </dev/null >>"$D/statd.log" 2>&1 &
    echo $! > "$D/sm-notify.pid"
  fi;;
kill9)
  pid=$(pidof_file peernfsd)
  alive "$pid" || { echo "$0: peernfsd not running" >&2; exit 1; }
  echo "--- kill -9 $(date +%T.%N)" >> "$D/peernfsd.log"
  kill -KILL "$pid"; wait_gone "$pid" 10; rm -f "$D/peernfsd.pid"
  echo "peernfsd pid $pid killed";;
term) term_server;;
stop)  # by pid: peernfsd (TERM, then KILL), then statd, then rpcbind
  rc=0; term_server || rc=$?
  stop_statd
  rb=$(pidof_file rpcbind)
  if alive "$rb"; then kill -TERM "$rb" 2>/dev/null || true; wait_gone "$rb" 10 || kill -KILL "$rb" 2>/dev/null || true; fi
  rm -f "$D/rpcbind.pid"; exit $rc;;
rpcinfo)
  rb=$(pidof_file rpcbind); alive "$rb" || { echo "$0: rpcbind not running" >&2; exit 1; }
  nsenter --target "$rb" -m -n -- rpcinfo -p 127.0.0.1;;
*) sed -n '2,33p' "$0" >&2; exit 2;;
esac
