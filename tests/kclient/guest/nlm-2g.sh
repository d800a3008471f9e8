#!/bin/sh
# Guest side of run-nlm-2guests.sh: NLM locking between TWO Linux NFS clients (two qemu
# guests, kclient-0 = 10.99.0.2 = role A and kclient-1 = 10.99.0.3 = role B) that mount
# the same export with vers=3 and locking (each runs its own lockd and rpc.statd).
# KC_ROLE: A, B, or A2 (guest A booted again after the host killed it).
# The guests cannot see each other: each creates /host/sig.NAME in its own 9p share and
# the host copies every sig.* file to the other guest's share (the host's own signals:
# sig.go once both guests are up and the server's grace period is over, sig.A.killed).
# /bin/lk2g (the host compiles it, /host/lk2g): try | getlk | hold | wait, see the host
# script. The files live in $NFS_MNT/2g (made by the host).
#   1. fcntl: A holds a write lock; B's F_SETLK (write and read) fails with EAGAIN, F_GETLK
#      reports a whole-file write lock, B's F_SETLKW blocks and is granted (the server's
#      GRANTED callback to B's lockd) within seconds of A's unlock; then A's F_SETLK fails
#      while B holds it.
#   2. B holds a read lock: A's read lock succeeds (shared), A's write lock fails with
#      EAGAIN, A's F_GETLK for a write lock reports B's read lock and for a read lock none;
#      after B's unlock A's write lock succeeds.
#   3. flock: A holds LOCK_EX; B's LOCK_EX|LOCK_NB and LOCK_SH|LOCK_NB fail with
#      EWOULDBLOCK; B's blocking LOCK_EX is granted after A's LOCK_UN.
#   4. A's process holding a write lock exits without unlocking: B's blocked F_SETLKW is
#      granted (the client's close releases the lock on the server).
#   5. (KC_2G_CRASH=1) A holds a write lock and saves its statd monitor list to
#      /host/sm-save; the host kills A's qemu (SIGKILL). B's F_SETLK still fails (the
#      server cannot know), B's F_SETLKW blocks; the host boots A again (A2), which restores
#      the monitor list and runs sm-notify (/host/sm-notify, the host's binary): the
#      server's statd tells peernfsd, which drops A's locks, and B is granted.
# Every wait is bounded; a guest whose peer ended (sig.PEER.end) stops waiting.
# Exits with the number of failed checks.
fail=0
ROLE=${KC_ROLE:?KC_ROLE not set}
case $ROLE in A|A2) PEER=B;; B) PEER=A;; *) echo "FAIL: bad KC_ROLE $ROLE"; exit 1;; esac
ok() { echo "PASS: $ROLE: $*"; }
bad() { echo "FAIL: $ROLE: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
up() { cut -d' ' -f1 /proc/uptime; }
sig() { : > "/host/sig.$1"; echo "[$(up)] $ROLE: signal $1"; }
# await NAME SECS: the peer's (or host's) signal; gives up at once if the peer ended
await() {
  i=0
  while [ ! -e "/host/sig.$1" ] && [ ! -e "/host/sig.$PEER.end" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i+1)); done
  [ -e "/host/sig.$1" ] && { echo "[$(up)] $ROLE: got $1"; return 0; }
  if [ -e "/host/sig.$PEER.end" ]; then bad "no '$1' from $PEER: it ended"; else bad "no '$1' within $2 s"; fi
  return 1
}
# wait_out FILE PATTERN PID SECS: until FILE has PATTERN (or PID ended, or SECS passed)
wait_out() {
  i=0; while ! grep -q "$2" "$1" && running "$3" && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i+1)); done
  grep -q "$2" "$1"
}
# running PID: the job has not exited (kill -0 also succeeds on a zombie nobody waited for)
running() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
# reap PID SECS: wait for a background job to exit (SIGKILL after SECS); its exit status
# in RC (not printed: a $(...) subshell cannot wait for this shell's children)
reap() {
  i=0
  while running "$1"; do
    [ $i -lt $(($2 * 10)) ] || { kill -9 "$1"; echo "[reap: $1 still running after $2 s: killed]"; break; }
    sleep 0.1; i=$((i+1))
  done
  wait "$1"; RC=$?
}
JOBS=
finish() {
  for p in $JOBS; do kill -9 "$p" 2>/dev/null; done
  sig "$ROLE.end"
  echo "failures: $fail"
  [ $fail -gt 99 ] && fail=99
  exit $fail
}
# blocked_waiter OUT PID WHAT: the blocking-lock job waits in the kernel's nlmclnt_block
# (the server answered LOCK with NLM4_BLOCKED; the client now waits for GRANTED); at most 10 s
blocked_waiter() {
  i=0; wc=
  while running "$2" && [ $i -lt 100 ]; do
    wc=$(cat "/proc/$2/wchan" 2>/dev/null); [ "$wc" = nlmclnt_block ] && break; sleep 0.1; i=$((i+1))
  done
  if running "$2" && [ "$wc" = nlmclnt_block ] && ! grep -q granted "$1"; then
    ok "$3 blocks: it waits for the server's GRANTED callback (wchan nlmclnt_block)"
  else bad "$3 is not blocked in nlmclnt_block (wchan '$wc'): $(cat "$1")"; fi
}
# granted OUT PID WHAT: the blocked waiter was granted within 15 s of the unlock we were
# told of, and within 15 s of its start (the Linux client re-polls a blocked NLM lock only
# every 30 s: so this is the GRANTED callback)
granted() {
  t0=$(up)
  if wait_out "$1" "granted after" "$2" 15; then
    g=$(sed -n 's/.*granted after \([0-9.]*\)s.*/\1/p' "$1")
    d=$(awk -v a="$(up)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
    awk -v g="$g" 'BEGIN {exit !(g < 15)}' && ok "$3 granted ${g}s after it started (${d}s after the unlock signal reached us)" \
      || bad "$3 granted only after ${g}s: the client's re-poll, not the GRANTED callback?"
  else bad "$3 not granted within 15 s of the unlock: $(cat "$1")"; fi
}

cp /host/lk2g /bin/lk2g && chmod 755 /bin/lk2g || { echo "FAIL: $ROLE: no /host/lk2g"; exit 1; }
D=$NFS_MNT/2g
echo "$ROLE: hostname $(hostname), $(ip -4 -o addr show eth0 | awk '{print $4}')"

if [ "$ROLE" = A2 ]; then
  # 5, second half: the rebooted client A tells the server it rebooted
  cp /host/sm-notify /sbin/sm-notify && chmod 755 /sbin/sm-notify || bad "no /host/sm-notify"
  cp /host/sm-save/sm/* /var/lib/nfs/sm/ 2>/dev/null
  [ -f /host/sm-save/state ] && cp /host/sm-save/state /var/lib/nfs/state
  chown -R 101:65534 /var/lib/nfs
  check "the monitor list saved before the crash names the server" 10.99.0.1 "$(ls /var/lib/nfs/sm | tr '\n' ' ' | sed 's/ $//')"
  timeout 60 sm-notify -f -d > /tmp/smn.out 2>&1; rc=$?
  cat /tmp/smn.out
  check "sm-notify exit status" 0 $rc
  ls /var/lib/nfs/sm.bak /var/lib/nfs/sm
  [ -z "$(ls /var/lib/nfs/sm)" ] && ok "sm-notify notified the server (monitor list emptied)" \
    || bad "sm-notify left $(ls /var/lib/nfs/sm) unnotified"
  sig A2.notified
  finish
fi

sig "$ROLE.up"
await go 180 || finish
grep " $NFS_MNT " /proc/mounts

if [ "$ROLE" = A ]; then
  # 1. A holds a write lock
  : > /tmp/h1.out; rm -f /tmp/go1
  lk2g hold "$D/wlk" wr /tmp/go1 > /tmp/h1.out 2>&1 & h=$!; JOBS="$JOBS $h"
  wait_out /tmp/h1.out "hold: locked" $h 30 && ok "1: fcntl write lock taken" || bad "1: write lock: $(cat /tmp/h1.out)"
  sig A.held1
  await B.waiting1 60 || finish
  : > /tmp/go1
  reap $h 15; check "1: holder unlocked (exit status)" 0 $RC
  sig A.unlocked1
  await B.granted1 60 || finish
  lk2g try "$D/wlk" wr; check "1: while B holds the lock, A's F_SETLK write lock fails with EAGAIN (rc 3)" 3 $?
  sig A.tried1

  # 2. B holds a read lock
  await B.held2 60 || finish
  lk2g try "$D/rlk" rd; check "2: A's read lock while B holds a read lock succeeds: shared (rc 0)" 0 $?
  lk2g try "$D/rlk" wr; check "2: A's write lock while B holds a read lock fails with EAGAIN (rc 3)" 3 $?
  check "2: A's F_GETLK (write) reports B's whole-file read lock" "getlk: read start=0 len=0" \
    "$(lk2g getlk "$D/rlk" wr | cut -d' ' -f1-4)"
  check "2: A's F_GETLK (read) reports no conflict" "getlk: none" "$(lk2g getlk "$D/rlk" rd)"
  sig A.done2
  await B.released2 60 || finish
  lk2g try "$D/rlk" wr; check "2: after B's unlock, A's write lock succeeds (rc 0)" 0 $?

  # 3. flock: A holds LOCK_EX
  : > /tmp/h3.out; rm -f /tmp/go3
  lk2g hold "$D/fl" flex /tmp/go3 > /tmp/h3.out 2>&1 & h=$!; JOBS="$JOBS $h"
  wait_out /tmp/h3.out "hold: locked" $h 30 && ok "3: flock LOCK_EX taken" || bad "3: flock: $(cat /tmp/h3.out)"
  sig A.held3
  await B.waiting3 60 || finish
  : > /tmp/go3
  reap $h 15; check "3: flock holder unlocked (exit status)" 0 $RC
  sig A.unlocked3
  await B.granted3 60 || finish

  # 4. the holder exits without unlocking
  : > /tmp/h4.out; rm -f /tmp/go4
  lk2g hold "$D/xlk" wr /tmp/go4 exit > /tmp/h4.out 2>&1 & h=$!; JOBS="$JOBS $h"
  wait_out /tmp/h4.out "hold: locked" $h 30 && ok "4: fcntl write lock taken" || bad "4: write lock: $(cat /tmp/h4.out)"
  sig A.held4
  await B.waiting4 60 || finish
  : > /tmp/go4
  reap $h 15; check "4: holder exited without unlocking (exit status)" 0 $RC
  grep -q "exiting without unlocking" /tmp/h4.out || bad "4: holder output: $(cat /tmp/h4.out)"
  sig A.exited4
  await B.granted4 60 || finish

  # 5. crash: hold a lock, save statd's monitor list, ask the host to kill this guest
  if [ "${KC_2G_CRASH:-0}" = 1 ]; then
    : > /tmp/h5.out
    lk2g hold "$D/klk" wr /tmp/never > /tmp/h5.out 2>&1 & h=$!; JOBS="$JOBS $h"
    wait_out /tmp/h5.out "hold: locked" $h 30 && ok "5: fcntl write lock taken before the crash" || bad "5: write lock: $(cat /tmp/h5.out)"
    mkdir -p /host/sm-save/sm && cp /var/lib/nfs/sm/* /host/sm-save/sm/ && cp /var/lib/nfs/state /host/sm-save/state
    echo "5: statd monitors: $(ls /var/lib/nfs/sm | tr '\n' ' ')"
    sync
    # the output so far must reach the host before it kills the guest
    echo "failures before the crash: $fail"
    sig A.killme
    sleep 120
    bad "5: the host did not kill this guest within 120 s"
  fi
  finish
fi

# --- role B
# 1. A holds a write lock
await A.held1 60 || finish
lk2g try "$D/wlk" wr; check "1: B's F_SETLK write lock fails with EAGAIN while A holds a write lock (rc 3)" 3 $?
lk2g try "$D/wlk" rd; check "1: B's F_SETLK read lock fails with EAGAIN (rc 3)" 3 $?
check "1: B's F_GETLK reports A's whole-file write lock" "getlk: write start=0 len=0" "$(lk2g getlk "$D/wlk" rd | cut -d' ' -f1-4)"
: > /tmp/w1.out; rm -f /tmp/wgo1
lk2g wait "$D/wlk" wr /tmp/wgo1 > /tmp/w1.out 2>&1 & w=$!; JOBS="$JOBS $w"
blocked_waiter /tmp/w1.out $w "1: B's F_SETLKW"
sig B.waiting1
await A.unlocked1 60 || finish
granted /tmp/w1.out $w "1: B's F_SETLKW (GRANTED callback to B's lockd)"
sig B.granted1
await A.tried1 60 || finish
: > /tmp/wgo1
reap $w 15; check "1: B's waiter unlocked (exit status)" 0 $RC

# 2. B holds a read lock
: > /tmp/h2.out; rm -f /tmp/go2
lk2g hold "$D/rlk" rd /tmp/go2 > /tmp/h2.out 2>&1 & h=$!; JOBS="$JOBS $h"
wait_out /tmp/h2.out "hold: locked" $h 30 && ok "2: fcntl read lock taken" || bad "2: read lock: $(cat /tmp/h2.out)"
sig B.held2
await A.done2 60 || finish
: > /tmp/go2
reap $h 15; check "2: read lock holder unlocked (exit status)" 0 $RC
sig B.released2

# 3. flock: A holds LOCK_EX
await A.held3 60 || finish
lk2g try "$D/fl" flex; check "3: B's flock LOCK_EX|LOCK_NB fails with EWOULDBLOCK (rc 3)" 3 $?
lk2g try "$D/fl" flsh; check "3: B's flock LOCK_SH|LOCK_NB fails with EWOULDBLOCK (rc 3)" 3 $?
: > /tmp/w3.out; rm -f /tmp/wgo3
lk2g wait "$D/fl" flex /tmp/wgo3 > /tmp/w3.out 2>&1 & w=$!; JOBS="$JOBS $w"
blocked_waiter /tmp/w3.out $w "3: B's blocking flock LOCK_EX"
sig B.waiting3
await A.unlocked3 60 || finish
granted /tmp/w3.out $w "3: B's blocking flock LOCK_EX"
: > /tmp/wgo3
reap $w 15; check "3: B's flock waiter unlocked (exit status)" 0 $RC
sig B.granted3

# 4. A's holder exits without unlocking
await A.held4 60 || finish
lk2g try "$D/xlk" wr; check "4: B's F_SETLK fails with EAGAIN while A's process holds the lock (rc 3)" 3 $?
: > /tmp/w4.out; rm -f /tmp/wgo4
lk2g wait "$D/xlk" wr /tmp/wgo4 > /tmp/w4.out 2>&1 & w=$!; JOBS="$JOBS $w"
blocked_waiter /tmp/w4.out $w "4: B's F_SETLKW"
sig B.waiting4
await A.exited4 60 || finish
granted /tmp/w4.out $w "4: B's F_SETLKW, after A's holder exited,"
: > /tmp/wgo4
reap $w 15; check "4: B's waiter unlocked (exit status)" 0 $RC
sig B.granted4

# 5. A crashes while holding a lock, then reboots and notifies the server
if [ "${KC_2G_CRASH:-0}" = 1 ]; then
  PEER=A2   # A's end no longer stops the waits: the host kills it on purpose
  await A.killed 150 || finish
  lk2g try "$D/klk" wr; check "5: after A's crash its lock still holds: B's F_SETLK fails with EAGAIN (rc 3)" 3 $?
  : > /tmp/w5.out; rm -f /tmp/wgo5
  lk2g wait "$D/klk" wr /tmp/wgo5 > /tmp/w5.out 2>&1 & w=$!; JOBS="$JOBS $w"
  blocked_waiter /tmp/w5.out $w "5: B's F_SETLKW"
  sig B.waiting5
  t0=$(up)
  if wait_out /tmp/w5.out "granted after" $w 150; then
    d=$(awk -v a="$(up)" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
    if [ -e /host/sig.A2.notified ] || await A2.notified 10; then
      ok "5: B's F_SETLKW granted once the rebooted A notified the server (${d}s, A's reboot included): $(cat /tmp/w5.out)"
    else bad "5: B's F_SETLKW granted without A2's notification"; fi
  else bad "5: B's F_SETLKW not granted within 150 s of A's reboot: $(cat /tmp/w5.out)"; fi
  : > /tmp/wgo5
  reap $w 15; check "5: B's waiter unlocked (exit status)" 0 $RC
  sig B.done5
fi
cd / && rm -rf "$D"/* && ok "cleanup" || bad "cleanup"
finish
