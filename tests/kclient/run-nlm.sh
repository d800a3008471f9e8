#!/bin/bash
# NLM (NFSv3 byte-range locking) with the Linux kernel client (qemu guest) against peernfsd.
#   run-nlm.sh [PEERNFSD]        binary: $1, else $PEERNFSD, else build/bin/peernfsd
# Needs root (exits 77, "skipped", otherwise) and the packages in README.md.
# Makes its own network namespace (KC_NETNS, default kc-nlm-PID), an export directory and
# starts peernfsd (short grace period, --grace 3) with its own rpcbind there; boots one
# guest that mounts vers=3 WITH locking and runs guest/nlm.sh, while this script plays a
# local process on the server holding an fcntl lock on the exported file nlm-local-lk
# (coordinated through the guest's 9p share). Then: clean SIGTERM exit, no sanitizer
# reports. Exits 0 only if every check passed; logs stay in the printed directory on
# failure (or with KC_KEEP=1).
# Env: KC_GUEST_TIMEOUT (300), KC_DEADLINE (600), KC_VERBOSE=1, KC_CAPTURE=1.
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
FAILS=(); NPASS=0; GUEST_PID= LOCAL_PID=
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
ctl start --exports "$T/exports" --grace 3 || { bad "server start"; exit 1; }
for ((i = 0; i < 50; i++)); do
  n=$(ctl rpcinfo 2>/dev/null | awk '$1 == 100021 && $2 == 4 && $3 == "tcp"' | wc -l); [ "$n" -ge 1 ] && break; sleep 0.1
done
[ "$n" -ge 1 ] && ok "rpcbind: NLM v4 registered" || bad "rpcbind: NLM v4 not registered"

G=$T/guest; mkdir -p "$G/share"
export KC_LOCAL_FILE=nlm-local-lk KC_ENV_EXTRA="KC_LOCAL_FILE"
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
grep -E "nlm|nsm" "$S/peernfsd.log" | tail -5

log "SIGTERM server"
ctl term && ok "server exited within 10 s of SIGTERM" || bad "server did not exit within 10 s of SIGTERM"
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$S/peernfsd.log" 2>/dev/null; then
  bad "sanitizer reports in $S/peernfsd.log: $(grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$S/peernfsd.log")"
fi
echo
echo "=== summary: $NPASS passed, ${#FAILS[@]} failed (server: peernfsd)"
for f in "${FAILS[@]}"; do echo "  FAIL: $f"; done
[ ${#FAILS[@]} = 0 ]
