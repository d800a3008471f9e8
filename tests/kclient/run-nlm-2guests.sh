#!/bin/bash
# NLM locking between TWO Linux NFS clients at once (two qemu guests) against peernfsd.
#   run-nlm-2guests.sh [PEERNFSD]    binary: $1, else $PEERNFSD, else build/bin/peernfsd
# Needs root (exits 77, "skipped", otherwise) and the packages in README.md.
# Makes its own network namespace (KC_NETNS, default kc-nlm2-PID) and export directory,
# starts peernfsd (grace period KC_NLM_GRACE, 10 s) with its own rpcbind and rpc.statd
# (lib/peernfsd-netns.sh), and boots two guests in parallel: A on kctap0 (10.99.0.2,
# hostname kclient-0) and B on kctap1 (10.99.0.3, kclient-1), each mounting the export
# vers=3 with locking (its own lockd and rpc.statd) and running guest/nlm-2g.sh (see there
# for the checks: fcntl write and read locks, F_GETLK, blocked F_SETLKW granted by the
# GRANTED callback, flock, a holder exiting without unlocking, and with KC_2G_CRASH=1 the
# crash of A while it holds a lock and its reboot with sm-notify).
# The host relays the guests' handshake files (share/sig.*) between their 9p shares,
# creates sig.go in both once both are up and the server's first grace period is over,
# kills A's qemu (SIGKILL) on sig.A.killme, tells B (sig.A.killed), and boots A again
# (role A2, mount "none", /host/sm-notify = the host's binary, /host/sm-save = A's NSM
# state) once B waits for the crashed lock (sig.B.waiting5).
# Host checks: both guests monitored by the server (SM_MON of 10.99.0.2 and 10.99.0.3), no
# failed or unanswered GRANTED callback in the server log; with KC_2G_CRASH: the server's
# statd got A's SM_NOTIFY and peernfsd released A's locks ("nsm: 10.99.0.2 rebooted");
# clean SIGTERM exit; no sanitizer reports.
# Exits 0 only if every check passed; logs stay in the printed directory on failure (or
# with KC_KEEP=1): server/{peernfsd,statd}.log, guest-{a,b,a2}/{console.log,share/dmesg}.
# Env: KC_NLM_GRACE (10), KC_2G_CRASH (1; 0: skip part 5), KC_GUEST_TIMEOUT (240 per
#      guest), KC_DEADLINE (330), KC_SMP (1 vCPU per guest: two guests share the cores),
#      KC_VERBOSE=1, KC_CAPTURE=1, KC_KEEP=1.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ME=run-nlm-2guests.sh
PEERNFSD=${1:-${PEERNFSD:-$HERE/../../build/bin/peernfsd}}
[ -x "$PEERNFSD" ] || { echo "$ME: no peernfsd binary at $PEERNFSD" >&2; exit 2; }
export PEERNFSD=$(realpath "$PEERNFSD")
[ "$(id -u)" = 0 ] || { echo "$ME: SKIP: needs root (netns, tap, qemu)" >&2; exit 77; }
for c in qemu-system-x86_64 busybox mount.nfs rpcbind rpcinfo rpc.statd sm-notify cpio depmod gcc nsenter unshare ss; do
  command -v "$c" >/dev/null || { echo "$ME: $c missing: see README.md for the packages" >&2; exit 2; }
done
export KC_NETNS=${KC_NETNS:-kc-nlm2-$$}
export KC_TIMEOUT=${KC_GUEST_TIMEOUT:-240} KC_SMP=${KC_SMP:-1}
export KC_2G_CRASH=${KC_2G_CRASH:-1}
SRV=10.99.0.1 IP_A=10.99.0.2 IP_B=10.99.0.3
T=$(mktemp -d /tmp/kclient-nlm2.XXXXXX); chmod 755 "$T"
S=$T/server EXP_DIR=$T/export
GA=$T/guest-a GB=$T/guest-b GA2=$T/guest-a2
GRACE=${KC_NLM_GRACE:-10}
FAILS=(); NPASS=0; PID_A= PID_B= PID_A2= KILLED= GO=
(
  exec </dev/null >/dev/null 2>&1
  trap 'kill "$s"; exit 0' TERM
  sleep "${KC_DEADLINE:-330}" & s=$!; wait "$s" && kill -ALRM $$
) &
WATCHDOG=$!
ok() { echo "PASS: host: $*"; NPASS=$((NPASS + 1)); }
bad() { echo "FAIL: host: $*"; FAILS+=("host: $*"); }
log() { echo "=== $(date +%T) $*"; }
ctl() { "$HERE/lib/peernfsd-netns.sh" "$1" "$S" "${@:2}"; }

# stop_guest PID: run-guest.sh stops its qemu on TERM (qemu runs under timeout in a
# process group of its own, so the signal goes to run-guest.sh's group)
stop_guest() { [ -n "$1" ] && { kill -- "-$1" 2>/dev/null; wait "$1" 2>/dev/null; }; }
cleanup() {
  local rc=$?
  trap - EXIT INT TERM ALRM
  kill "$WATCHDOG" 2>/dev/null
  stop_guest "$PID_A"; stop_guest "$PID_B"; stop_guest "$PID_A2"
  ctl stop >/dev/null 2>&1
  "$HERE/netns.sh" down
  if [ ${#FAILS[@]} = 0 ] && [ $rc = 0 ] && [ -z "${KC_KEEP:-}" ]; then rm -rf "$T"
  else echo "logs kept in $T (server: $S/{peernfsd,statd}.log; guests: $T/guest-*/{console.log,share/dmesg})"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
trap 'echo "$ME: deadline reached" >&2; exit 124' ALRM

log "netns $KC_NETNS, work dir $T, server $PEERNFSD"
"$HERE/netns.sh" up || exit 1
"$HERE/build-initramfs.sh" >/dev/null || exit 1
mkdir -p "$EXP_DIR/2g" "$GA/share" "$GB/share" "$GA2/share"; chmod 777 "$EXP_DIR/2g"
printf '%s *(rw,no_root_squash)\n' "$EXP_DIR" > "$T/exports"

# lk2g: the guests' lock tool (static, handed over in the shares; nfstool has no read
# locks, F_GETLK report or flock without a fork)
cat > "$T/lk2g.c" <<'EOF'
/* lk2g try FILE KIND            F_SETLK / flock(LOCK_NB): exit 0 got it (then unlocks),
 *                               3 EAGAIN/EWOULDBLOCK, 4 EACCES, 1 other error
 * lk2g getlk FILE KIND          F_GETLK: "getlk: none" | "getlk: read|write start=S len=L pid=P"
 * lk2g hold FILE KIND GO [exit] non-blocking lock, "hold: locked", waits (at most 300 s)
 *                               for the local file GO, then unlocks ("hold: unlocked") or,
 *                               with "exit", exits with the lock held (the close drops it)
 * lk2g wait FILE KIND GO        blocking lock, "wait: granted after S.SSs", waits for GO,
 *                               unlocks
 * KIND: rd | wr (fcntl POSIX locks on the whole file), flsh | flex (flock) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
static double now(void) { struct timeval t; gettimeofday(&t, 0); return t.tv_sec + t.tv_usec / 1e6; }
static int is_flock(const char *k) { return k[0] == 'f'; }
static int lk(int fd, const char *kind, int block) {
	if (is_flock(kind)) return flock(fd, (strcmp(kind, "flsh") ? LOCK_EX : LOCK_SH) | (block ? 0 : LOCK_NB));
	struct flock fl = { .l_type = strcmp(kind, "rd") ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
	return fcntl(fd, block ? F_SETLKW : F_SETLK, &fl);
}
static int unlk(int fd, const char *kind) {
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
	return is_flock(kind) ? flock(fd, LOCK_UN) : fcntl(fd, F_SETLK, &fl);
}
static int fail(const char *what) {
	int e = errno;
	printf("%s: %s\n", what, strerror(e));
	return e == EAGAIN ? 3 : e == EACCES ? 4 : 1;
}
static int await_file(const char *go) {
	struct stat st;
	for (int i = 0; i < 3000; i++) { if (!stat(go, &st)) return 0; usleep(100000); }
	printf("%s never appeared\n", go);
	return 1;
}
int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4) { fprintf(stderr, "usage: lk2g try|getlk|hold|wait FILE KIND [GO [exit]]\n"); return 2; }
	const char *op = argv[1], *kind = argv[3];
	int fd = open(argv[2], O_RDWR | O_CREAT, 0666);
	if (fd < 0) return fail(argv[2]);
	if (!strcmp(op, "try")) {
		if (lk(fd, kind, 0)) return fail("try");
		printf("try: got the lock\n");
		return unlk(fd, kind) ? fail("try: unlock") : 0;
	}
	if (!strcmp(op, "getlk")) {
		struct flock fl = { .l_type = strcmp(kind, "rd") ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET };
		if (fcntl(fd, F_GETLK, &fl)) return fail("getlk");
		if (fl.l_type == F_UNLCK) printf("getlk: none\n");
		else printf("getlk: %s start=%lld len=%lld pid=%d\n", fl.l_type == F_RDLCK ? "read" : "write",
		            (long long)fl.l_start, (long long)fl.l_len, (int)fl.l_pid);
		return 0;
	}
	if (argc < 5) return 2;
	double t0 = now();
	if (!strcmp(op, "hold")) {
		if (lk(fd, kind, 0)) return fail("hold");
		printf("hold: locked\n");
	} else if (!strcmp(op, "wait")) {
		if (lk(fd, kind, 1)) return fail("wait");
		printf("wait: granted after %.2fs\n", now() - t0);
	} else return 2;
	if (await_file(argv[4])) return 1;
	if (argc > 5 && !strcmp(argv[5], "exit")) { printf("hold: exiting without unlocking\n"); return 0; }
	if (unlk(fd, kind)) return fail("unlock");
	printf("%s: unlocked\n", op);
	return 0;
}
EOF
gcc -O2 -static -Wall -Werror -o "$T/lk2g" "$T/lk2g.c" || { bad "compiling lk2g"; exit 1; }
for g in "$GA" "$GB" "$GA2"; do cp "$T/lk2g" "$g/share/"; done
cp "$(command -v sm-notify)" "$GA2/share/sm-notify"

ctl start --exports "$T/exports" --grace "$GRACE" || { bad "server start"; exit 1; }
READY_AT=$((SECONDS + GRACE + 1))  # the first grace period is over then
for ((i = 0; i < 50; i++)); do
  n=$(ctl rpcinfo 2>/dev/null | awk '$1 == 100021 && $2 == 4 && $3 == "tcp"' | wc -l); [ "$n" -ge 1 ] && break; sleep 0.1
done
[ "$n" -ge 1 ] && ok "rpcbind: NLM v4 registered" || bad "rpcbind: NLM v4 not registered"
n=$(ctl rpcinfo 2>/dev/null | awk '$1 == 100024 && $2 == 1' | wc -l)
[ "$n" -ge 1 ] && ok "rpcbind: rpc.statd registered" || bad "rpcbind: no rpc.statd (100024)"

# boot_guest DIR TAP ROLE OPTS: run-guest.sh in a session of its own (pid in BOOTED)
boot_guest() {
  : > "$1.out"; : > "$1.err"   # truncated before the job starts
  # stderr apart: the console tail run-guest.sh prints on failure repeats PASS/FAIL lines
  KC_RUNDIR=$1 KC_TAP=$2 KC_ROLE=$3 KC_ENV_EXTRA="KC_ROLE KC_2G_CRASH" \
    setsid "$HERE/run-guest.sh" "$SRV:$EXP_DIR" "$4" "$HERE/guest/nlm-2g.sh" > "$1.out" 2> "$1.err" < /dev/null &
  BOOTED=$!
}
# relay SRC DST: copy the guest's handshake files to the other guest's share
relay() {
  local f
  for f in "$1"/share/sig.*; do
    [ -e "$f" ] && [ ! -e "$2/share/${f##*/}" ] && : > "$2/share/${f##*/}"
  done
}
# kill_a: SIGKILL A's qemu (run-guest.sh -> timeout -> qemu), as a power failure
kill_a() {
  local t q
  t=$(ps -o pid= --ppid "$PID_A" -o comm= | awk '$2 == "timeout" {print $1}')
  q=$([ -n "$t" ] && ps -o pid= --ppid "$t" -o comm= | awk '$2 ~ /^qemu/ {print $1}')
  if [ -n "$q" ] && kill -KILL "$q"; then
    log "killed guest A's qemu (pid $q)"
    wait "$PID_A"; RC_A=$?; PID_A=; KILLED=1
    ok "5: guest A's qemu killed with SIGKILL while it held a lock"
  else bad "5: no qemu process of guest A to kill (timeout pid '$t')"; KILLED=0; fi
  : > "$GB/share/sig.A.killed"   # also after a failure: B then reports what broke
}

log "booting guest A ($IP_A, kctap0) and guest B ($IP_B, kctap1): guest/nlm-2g.sh, mount vers=3 with locking"
boot_guest "$GA" kctap0 A vers=3; PID_A=$BOOTED
boot_guest "$GB" kctap1 B vers=3; PID_B=$BOOTED
RC_A= RC_B= RC_A2=
while [ -n "$PID_A$PID_B$PID_A2" ]; do
  relay "$GA" "$GB"; relay "$GB" "$GA"; relay "$GA2" "$GB"; relay "$GB" "$GA2"
  if [ -z "$GO" ] && [ -e "$GA/share/sig.A.up" ] && [ -e "$GB/share/sig.B.up" ] && [ "$SECONDS" -ge "$READY_AT" ]; then
    : > "$GA/share/sig.go"; : > "$GB/share/sig.go"; GO=1; log "both guests up: go"
  fi
  [ -z "$KILLED" ] && [ -n "$PID_A" ] && [ -e "$GA/share/sig.A.killme" ] && kill_a
  if [ "$KILLED" = 1 ] && [ -z "$RC_A2" ] && [ -z "$PID_A2" ] && [ -e "$GB/share/sig.B.waiting5" ]; then
    log "booting guest A again (role A2, $IP_A): sm-notify"
    cp -r "$GA/share/sm-save" "$GA2/share/" 2>/dev/null || bad "5: A saved no NSM state (share/sm-save)"
    boot_guest "$GA2" kctap0 A2 none; PID_A2=$BOOTED
  fi
  # a guest that ended: the other one stops waiting for it (sig.X.end)
  if [ -n "$PID_A" ] && ! kill -0 "$PID_A" 2>/dev/null; then
    wait "$PID_A"; RC_A=$?; PID_A=; : > "$GB/share/sig.A.end"; log "guest A ended (rc $RC_A)"
  fi
  if [ -n "$PID_B" ] && ! kill -0 "$PID_B" 2>/dev/null; then
    wait "$PID_B"; RC_B=$?; PID_B=; : > "$GA/share/sig.B.end"; : > "$GA2/share/sig.B.end"; log "guest B ended (rc $RC_B)"
  fi
  if [ -n "$PID_A2" ] && ! kill -0 "$PID_A2" 2>/dev/null; then
    wait "$PID_A2"; RC_A2=$?; PID_A2=; : > "$GB/share/sig.A2.end"; log "guest A2 ended (rc $RC_A2)"
  fi
  sleep 0.2
done

# guest results: their PASS/FAIL lines, and an exit status that agrees
guest_result() {   # NAME OUT RC [RC_EXPECTED_IF_KILLED]
  echo "--- guest $1"; cat "$2"; sed 's/^/  [stderr] /' "${2%.out}.err"
  NPASS=$((NPASS + $(grep -c '^PASS:' "$2")))
  while IFS= read -r l; do FAILS+=("guest $1: ${l#FAIL: }"); done < <(grep '^FAIL:' "$2")
  case $3 in
    0) ;;
    100) bad "guest $1 could not mount $SRV:$EXP_DIR";;
    124) bad "guest $1 timed out (${KC_TIMEOUT}s)";;
    125) [ "$1" = A ] && [ "$KILLED" = 1 ] || bad "guest $1 died without a result";;
    *) grep -q '^FAIL:' "$2" || bad "guest $1 exit status $3 without a FAIL line";;
  esac
}
guest_result A "$GA.out" "$RC_A"
guest_result B "$GB.out" "$RC_B"
if [ "$KC_2G_CRASH" = 1 ]; then
  if [ "$KILLED" = 1 ]; then
    [ -n "$RC_A2" ] && guest_result A2 "$GA2.out" "$RC_A2" || bad "5: guest A was never booted again"
  else bad "5: guest A was not killed (no sig.A.killme, or the kill failed)"; fi
fi

LOG=$S/peernfsd.log
grep -E "nlm|nsm" "$LOG" | tail -15
for ip in "$IP_A" "$IP_B"; do
  grep -q "nsm: monitoring $ip" "$LOG" && ok "statd: the server monitors $ip (SM_MON)" || bad "statd: no 'nsm: monitoring $ip' in $LOG"
done
if grep -qE 'nlm: (GRANTED callback (unanswered|refused)|callback .* failed)' "$LOG"; then
  bad "GRANTED callbacks: $(grep -m1 -E 'nlm: (GRANTED callback|callback .* failed)' "$LOG")"
else ok "no failed or unanswered GRANTED callback in the server log"; fi
if [ "$KILLED" = 1 ]; then
  grep -q "Received SM_NOTIFY from .*" "$S/statd.log" \
    && ok "5: the server's statd received the rebooted guest's SM_NOTIFY: $(grep -m1 'Received SM_NOTIFY' "$S/statd.log")" \
    || bad "5: no 'Received SM_NOTIFY' in $S/statd.log"
  grep -q "nsm: $IP_A rebooted: releasing its locks" "$LOG" \
    && ok "5: peernfsd released the rebooted guest's locks (nsm: $IP_A rebooted)" \
    || bad "5: no 'nsm: $IP_A rebooted: releasing its locks' in $LOG"
fi
left=$(find "$EXP_DIR/2g" -mindepth 1 | wc -l)
[ "$left" = 0 ] && ok "export: the test files were removed" || bad "export: $left files left in $EXP_DIR/2g"

log "SIGTERM server"
ctl term && ok "server exited within 10 s of SIGTERM" || bad "server did not exit within 10 s of SIGTERM"
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$LOG" 2>/dev/null; then
  bad "sanitizer reports in $LOG: $(grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$LOG")"
fi
echo
echo "=== summary: $NPASS passed, ${#FAILS[@]} failed (server: peernfsd, two guests)"
for f in "${FAILS[@]}"; do echo "  FAIL: $f"; done
[ ${#FAILS[@]} = 0 ]
