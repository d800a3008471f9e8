#!/bin/bash
# NLM (NFSv3 byte-range locking) with the Linux kernel client (qemu guest) against peernfsd.
#   run-nlm.sh [PEERNFSD]        binary: $1, else $PEERNFSD, else build/bin/peernfsd
# Needs root (exits 77, "skipped", otherwise) and the packages in README.md.
# Makes its own network namespace (KC_NETNS, default kc-nlm-PID), an export directory and
# starts peernfsd (grace period KC_NLM_GRACE, 10 s) with its own rpcbind and the host's
# rpc.statd (private state directory, lib/peernfsd-netns.sh) there; boots one guest that
# mounts vers=3 WITH locking (lockd + rpc.statd in the guest) and runs guest/nlm.sh, while
# this script
#   - tells the guest when the server's first grace period is over (share file nlm.ready);
#   - plays a local process on the server holding an fcntl lock on the exported file
#     nlm-local-lk (coordinated through the guest's 9p share);
#   - serves the guest's restart request: on nlm-reclaim.writing it kills peernfsd with
#     SIGKILL (statd keeps running), starts it again 2 s later (the restart runs
#     sm-notify, which sends SM_NOTIFY to the guest: its lockd reclaims its lock in the
#     grace period) and answers nlm-reclaim.restarted.
# Host checks: statd registered (100024) next to NLM v4; statd survives the kill and
# serves both peernfsd instances (SM_SIMU_CRASH from each, SM_MON of the guest by each,
# no "retrying" in the server log); sm-notify notified the guest after the restart; the
# restarted server logged the reclaim within its grace period; clean SIGTERM exit; no
# sanitizer reports.
# Exits 0 only if every check passed; logs stay in the printed directory on failure (or
# with KC_KEEP=1).
# Env: KC_NLM_GRACE (10), KC_GUEST_TIMEOUT (300), KC_DEADLINE (600), KC_VERBOSE=1,
#      KC_CAPTURE=1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PEERNFSD=${1:-${PEERNFSD:-$HERE/../../build/bin/peernfsd}}
[ -x "$PEERNFSD" ] || { echo "run-nlm.sh: no peernfsd binary at $PEERNFSD" >&2; exit 2; }
export PEERNFSD=$(realpath "$PEERNFSD")
[ "$(id -u)" = 0 ] || { echo "run-nlm.sh: SKIP: needs root (netns, tap, qemu)" >&2; exit 77; }
for c in qemu-system-x86_64 busybox mount.nfs rpcbind rpcinfo cpio depmod gcc nsenter unshare ss python3; do
  command -v "$c" >/dev/null || { echo "run-nlm.sh: $c missing: see README.md for the packages" >&2; exit 2; }
done
export KC_NETNS=${KC_NETNS:-kc-nlm-$$}
export KC_TIMEOUT=${KC_GUEST_TIMEOUT:-300}
SRV=10.99.0.1
T=$(mktemp -d /tmp/kclient-nlm.XXXXXX); chmod 755 "$T"
S=$T/server EXP_DIR=$T/export
GRACE=${KC_NLM_GRACE:-10}
RTAG=nlm-reclaim                   # the guest's restart request: share/$RTAG.writing
FAILS=(); NPASS=0; GUEST_PID= LOCAL_PID= RESTARTED=
(
  exec </dev/null >/dev/null 2>&1
  trap 'kill "$s"; exit 0' TERM
  sleep "${KC_DEADLINE:-600}" & s=$!; wait "$s" && kill -ALRM $$
) &
WATCHDOG=$!
ok() { echo "PASS: host: $*"; NPASS=$((NPASS + 1)); }
bad() { echo "FAIL: host: $*"; FAILS+=("host: $*"); }
log() { echo "=== $(date +%T) $*"; }
ctl() { "$HERE/lib/peernfsd-netns.sh" "$1" "$S" "${@:2}"; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ALRM
  kill "$WATCHDOG" 2>/dev/null
  [ -n "$GUEST_PID" ] && { kill -- "-$GUEST_PID" 2>/dev/null; wait "$GUEST_PID" 2>/dev/null; }
  [ -n "$LOCAL_PID" ] && { kill "$LOCAL_PID" 2>/dev/null; wait "$LOCAL_PID" 2>/dev/null; }
  ctl stop >/dev/null 2>&1
  "$HERE/netns.sh" down
  if [ ${#FAILS[@]} = 0 ] && [ $rc = 0 ] && [ -z "${KC_KEEP:-}" ]; then rm -rf "$T"
  else echo "logs kept in $T (server: $S/peernfsd.log; guest: $T/guest/{console.log,share/dmesg})"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
trap 'echo "run-nlm.sh: deadline reached" >&2; exit 124' ALRM

log "netns $KC_NETNS, work dir $T, server $PEERNFSD"
"$HERE/netns.sh" up || exit 1
"$HERE/build-initramfs.sh" >/dev/null || exit 1
mkdir -p "$EXP_DIR"; : > "$EXP_DIR/nlm-local-lk"; chmod 666 "$EXP_DIR/nlm-local-lk"
printf '%s *(rw,no_root_squash)\n' "$EXP_DIR" > "$T/exports"
# --statd-idle 4: the guest is unmonitored (SM_UNMON) soon after its last lock is gone
ctl start --exports "$T/exports" --grace "$GRACE" --statd-idle 4 || { bad "server start"; exit 1; }
READY_AT=$((SECONDS + GRACE + 1))  # the first grace period is over then
for ((i = 0; i < 50; i++)); do
  n=$(ctl rpcinfo 2>/dev/null | awk '$1 == 100021 && $2 == 4 && $3 == "tcp"' | wc -l); [ "$n" -ge 1 ] && break; sleep 0.1
done
[ "$n" -ge 1 ] && ok "rpcbind: NLM v4 registered" || bad "rpcbind: NLM v4 not registered"
n=$(ctl rpcinfo 2>/dev/null | awk '$1 == 100024 && $2 == 1' | wc -l)
[ "$n" -ge 1 ] && ok "rpcbind: rpc.statd (status, 100024) registered next to peernfsd" \
  || bad "rpcbind: no rpc.statd (100024): $(ctl rpcinfo 2>&1 | tr -s ' \n' ' ')"
STATD_PID=$(cat "$S/statd.pid" 2>/dev/null)

# serve_restart: the guest asked for a server crash + restart (share/$RTAG.writing)
serve_restart() {
  sleep 1
  log "$RTAG: kill -9 peernfsd"
  if ctl kill9; then
    sleep 2
    log "$RTAG: restart peernfsd"
    ctl restart && ok "$RTAG: peernfsd killed with SIGKILL and restarted" || bad "$RTAG: peernfsd restart"
  else bad "$RTAG: kill -9 of peernfsd"; fi
  RESTARTED=1
  : > "$G/share/$RTAG.restarted"   # also after a failure: the guest then reports what broke
}

G=$T/guest; mkdir -p "$G/share"
export KC_LOCAL_FILE=nlm-local-lk KC_NLM_GRACE=$GRACE KC_ENV_EXTRA="KC_LOCAL_FILE KC_NLM_GRACE"
log "guest: guest/nlm.sh (mount vers=3 with locking)"
KC_RUNDIR=$G setsid "$HERE/run-guest.sh" "$SRV:$EXP_DIR" "vers=3" "$HERE/guest/nlm.sh" > "$T/guest.out" 2>&1 < /dev/null &
GUEST_PID=$!

# the local process: an fcntl (POSIX) lock on the exported file while the guest asks
(
  for ((i = 0; i < 6000; i++)); do [ -e "$G/share/local.want" ] && break; sleep 0.1; done
  [ -e "$G/share/local.want" ] || exit 1
  exec python3 -c '
import fcntl, os, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2] + "/local.held", "w").close()
for _ in range(600):
    if os.path.exists(sys.argv[2] + "/local.release"): break
    time.sleep(0.1)
fcntl.lockf(f, fcntl.LOCK_UN); print("local lock released")' "$EXP_DIR/nlm-local-lk" "$G/share"
) > "$T/local.out" 2>&1 &
LOCAL_PID=$!

while kill -0 "$GUEST_PID" 2>/dev/null; do
  [ -e "$G/share/nlm.ready" ] || [ "$SECONDS" -lt "$READY_AT" ] || : > "$G/share/nlm.ready"
  [ -e "$G/share/$RTAG.writing" ] && [ -z "$RESTARTED" ] && serve_restart
  sleep 0.2
done
wait "$GUEST_PID"; rc=$?; GUEST_PID=
cat "$T/guest.out"
NPASS=$((NPASS + $(grep -c '^PASS:' "$T/guest.out")))
while IFS= read -r l; do FAILS+=("guest: ${l#FAIL: }"); done < <(grep '^FAIL:' "$T/guest.out")
case $rc in
  0) ;;
  100) bad "guest could not mount $SRV:$EXP_DIR";;
  124) bad "guest timed out (${KC_TIMEOUT}s)";;
  125) bad "guest died without a result";;
  *) grep -q '^FAIL:' "$T/guest.out" || bad "guest exit status $rc without a FAIL line";;
esac
wait "$LOCAL_PID" 2>/dev/null; LOCAL_PID=
grep -q "local lock released" "$T/local.out" && ok "local process took and released its lock" || bad "local process: $(cat "$T/local.out")"
grep -E "nlm|nsm|grace" "$S/peernfsd.log" | tail -12

# --- statd: it served both peernfsd instances, notified the guest, and the lock came back
LOG=$S/peernfsd.log GUEST_IP=10.99.0.2
before=$(sed '/^--- restart/,$d' "$LOG"); after=$(sed -n '/^--- restart/,$p' "$LOG")
grep -q "nsm: monitoring $GUEST_IP" <<< "$before" && ok "statd: SM_MON of the guest ($GUEST_IP) succeeded" \
  || bad "statd: no 'nsm: monitoring $GUEST_IP' in $LOG"
grep -q "nsm: told rpc.statd we restarted" <<< "$before" && ok "statd: SM_SIMU_CRASH of the first peernfsd succeeded" \
  || bad "statd: the first peernfsd did not reach statd with SM_SIMU_CRASH"
if grep -qE 'nsm: SM_(MON|SIMU_CRASH).*retrying' "$LOG"; then
  bad "statd: peernfsd had to retry: $(grep -m1 -E 'nsm: SM_(MON|SIMU_CRASH).*retrying' "$LOG")"
else ok "statd: no SM_MON / SM_SIMU_CRASH retries in the server log"; fi
# statd acts on SM_SIMU_CRASH only from a reserved port (else: "call from unprivileged port")
n=$(grep -c "Received SM_SIMU_CRASH" "$S/statd.log"); want=1; [ -n "$RESTARTED" ] && want=2
if grep -q "unprivileged port" "$S/statd.log"; then
  bad "statd: refused a call from an unprivileged port: $(grep -m1 'unprivileged port' "$S/statd.log")"
elif [ "$n" = "$want" ]; then ok "statd: received SM_SIMU_CRASH from each peernfsd ($n), from a reserved port"
else bad "statd: received SM_SIMU_CRASH $n times, expected $want (once per peernfsd start)"; fi
if [ -n "$RESTARTED" ]; then
  [ -n "$STATD_PID" ] && [ "$(cat "$S/statd.pid" 2>/dev/null)" = "$STATD_PID" ] && [ -d "/proc/$STATD_PID" ] \
    && ok "statd: the same rpc.statd (pid $STATD_PID) ran across the peernfsd kill and restart" \
    || bad "statd: rpc.statd pid $STATD_PID did not survive the peernfsd restart"
  grep -q "nsm: told rpc.statd we restarted" <<< "$after" && ok "statd: SM_SIMU_CRASH of the restarted peernfsd succeeded" \
    || bad "statd: the restarted peernfsd did not reach statd with SM_SIMU_CRASH"
  grep -q "Host $GUEST_IP notified successfully" "$S/statd.log" \
    && ok "statd: sm-notify sent SM_NOTIFY to the guest: $(grep -m1 "Host $GUEST_IP notified" "$S/statd.log")" \
    || bad "statd: no 'Host $GUEST_IP notified successfully' in $S/statd.log"
  rl=$(grep -m1 "nlm: reclaimed write lock" <<< "$after")
  if [ -n "$rl" ]; then
    [[ $rl == *"after the grace period"* ]] && bad "reclaim came after the grace period: $rl" \
      || ok "server log: the guest reclaimed its lock in the grace period: ${rl#* }"
  else bad "server log: no 'nlm: reclaimed write lock' after the restart"; fi
  grep -q "nsm: monitoring $GUEST_IP" <<< "$after" && ok "statd: the restarted peernfsd monitors the guest again (SM_MON)" \
    || bad "statd: the restarted peernfsd did not SM_MON the guest"
else bad "the guest never asked for the restart ($RTAG.writing)"; fi
# the guest has let go of every lock (it unmounted): within a few idle periods peernfsd
# tells statd to stop watching it
i=0; while ! grep -q "nsm: $GUEST_IP holds no locks any more: unmonitored" "$S/peernfsd.log" && [ $i -lt 100 ]; do
  sleep 0.2; i=$((i+1)); done
grep -q "nsm: $GUEST_IP holds no locks any more: unmonitored" "$S/peernfsd.log" \
  && ok "statd: the guest, left without locks, was unmonitored (SM_UNMON)" \
  || bad "statd: no SM_UNMON of the guest 20 s after it let go of its locks: $(grep 'nsm:' "$S/peernfsd.log" | tail -3 | tr '\n' ' ')"

log "SIGTERM server"
ctl term && ok "server exited within 10 s of SIGTERM" || bad "server did not exit within 10 s of SIGTERM"
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$S/peernfsd.log" 2>/dev/null; then
  bad "sanitizer reports in $S/peernfsd.log: $(grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$S/peernfsd.log")"
fi
echo
echo "=== summary: $NPASS passed, ${#FAILS[@]} failed (server: peernfsd)"
for f in "${FAILS[@]}"; do echo "  FAIL: $f"; done
[ ${#FAILS[@]} = 0 ]
