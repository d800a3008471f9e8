#!/bin/sh
# Guest side of run-nlm.sh: NFSv3 byte-range locking through NLM (mounted WITHOUT nolock).
# Runs in the mount; a second mount with nosharecache gives separate inodes, so conflicts
# between the two must be found by the server. The host holds a local fcntl lock on
# $KC_LOCAL_FILE (export root) between /host/local.held and /host/local.release.
# With KC_NLM_GRACE (the server's grace period in seconds) set:
#   - first waits for /host/nlm.ready (the host creates it once the server's first grace
#     period is over, so the lock checks below do not wait it out);
#   - 5. restart and reclaim: a process (nfstool holdlock) keeps a descriptor with a write
#     lock; the guest creates /host/nlm-reclaim.writing, the host kills peernfsd with
#     SIGKILL, starts it again and creates /host/nlm-reclaim.restarted; the server's
#     rpc.statd (told by the new peernfsd, SM_SIMU_CRASH) sends SM_NOTIFY to this guest,
#     whose lockd reclaims the lock in the grace period. Then: the second mount's F_SETLK,
#     sent during the grace period, fails with EAGAIN (the client waits out
#     DENIED_GRACE_PERIOD, then the reclaimed lock conflicts); after the grace period it
#     still fails; the holder writes and fsyncs through its old descriptor; after it
#     unlocks the second mount gets the lock; the data reads back; the kernel logged no
#     lockd reclaim failure.
# Exits with the number of failed checks.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
up() { cut -d' ' -f1 /proc/uptime; }
# wait_for FILE SECS: wait until FILE exists
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ]; }
# wait_out FILE PATTERN PID SECS: wait until FILE has PATTERN (or PID ended)
wait_out() {
  i=0; while ! grep -q "$2" "$1" && kill -0 "$3" 2>/dev/null && [ $i -lt $(($4 * 10)) ]; do sleep 0.1; i=$((i+1)); done
  grep -q "$2" "$1"
}
if [ -n "${KC_NLM_GRACE:-}" ]; then
  wait_for /host/nlm.ready 120 && ok "server's first grace period over" || bad "no /host/nlm.ready from the host within 120 s"
fi
d=nlm.$$; mkdir "$d" && cd "$d" || { echo "FAIL: mkdir"; exit 1; }
grep " $NFS_MNT " /proc/mounts
if kc-mount "$KC_OPTS,nosharecache" /mnt/nfs2 >/dev/null; then m2=/mnt/nfs2/$d/; else bad "2nd mount"; m2=; fi

# 1. fcntl: write lock, child F_GETLK sees the holder, F_SETLK conflicts, F_SETLKW is
#    granted when the parent unlocks (the server's GRANTED callback)
nfstool lock "$PWD/lk" "$m2"lk > /tmp/lock.out 2>&1; rc=$?; cat /tmp/lock.out
[ $rc = 0 ] && ok "fcntl locks: conflict, F_GETLK holder, blocking lock granted" || bad "fcntl locks (rc $rc)"
grep -q "child F_GETLK sees conflict" /tmp/lock.out && ok "F_GETLK reports the conflicting lock" || bad "F_GETLK did not see the lock"
g=$(sed -n 's/.*granted after \([0-9.]*\)s.*/\1/p' /tmp/lock.out)
[ -n "$g" ] && awk -v g="$g" 'BEGIN {exit !(g >= 1.5 && g < 10)}' && ok "blocked F_SETLKW granted ${g}s later (GRANTED callback, not a poll)" \
  || bad "blocked F_SETLKW: granted after '${g}' s"

# 2. flock (sent as a whole-file NLM lock)
nfstool flock "$PWD/fl" "$m2"fl && ok "flock conflict across mounts" || bad "flock"

# 3. a blocked waiter killed by a signal leaves no stale lock (CANCEL)
: > /tmp/hold.out
nfstool waitlock "$PWD/kw" 6 > /tmp/hold.out 2>&1 &   # holder (gets it at once, holds 6 s)
hp=$!; sleep 1
: > /tmp/wait.out
nfstool waitlock "${m2}kw" 30 > /tmp/wait.out 2>&1 &  # waiter: blocks on the server
wp=$!; sleep 2
kill -9 $wp; wait $wp 2>/dev/null
wait $hp
sleep 1
nfstool trylock "${m2}kw" > /tmp/try.out 2>&1; rc=$?; cat /tmp/try.out
[ $rc = 0 ] && ok "killed waiter left no lock behind" || bad "lock still held after the killed waiter (rc $rc)"
cat /tmp/wait.out

# 4. a local process on the server holds an fcntl lock on $KC_LOCAL_FILE
if [ -n "${KC_LOCAL_FILE:-}" ]; then
  : > /host/local.want
  i=0; while [ ! -e /host/local.held ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  if [ -e /host/local.held ]; then
    nfstool trylock "$NFS_MNT/$KC_LOCAL_FILE"; rc=$?
    [ $rc = 3 ] && ok "local lock on the server: F_SETLK fails with EAGAIN" || bad "local lock on the server: trylock rc $rc (want 3, EAGAIN)"
    : > /tmp/lw.out
    nfstool waitlock "$NFS_MNT/$KC_LOCAL_FILE" > /tmp/lw.out 2>&1 &
    lw=$!; sleep 2
    kill -0 $lw 2>/dev/null && ok "blocking lock waits while the local process holds its lock" || bad "blocking lock did not wait"
    : > /host/local.release
    i=0; while kill -0 $lw 2>/dev/null && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done
    if kill -0 $lw 2>/dev/null; then kill -9 $lw; bad "blocking lock not granted within 15 s of the local unlock"
    else wait $lw && ok "blocking lock granted after the local unlock: $(cat /tmp/lw.out)" || bad "waitlock failed: $(cat /tmp/lw.out)"; fi
  else bad "host never took the local lock"; fi
fi

# 5. kill -9 + restart of the server: the lock is reclaimed (statd's SM_NOTIFY) and
#    still excludes the other mount during and after the grace period
if [ -n "${KC_NLM_GRACE:-}" ] && [ -n "$m2" ]; then
  g=$KC_NLM_GRACE tag=/host/nlm-reclaim
  rm -f "$tag.writing" "$tag.restarted" /tmp/go1 /tmp/go2
  dmesg > /tmp/dmesg.before
  : > /tmp/rhold.out   # truncated before the job starts: the wait below polls it
  nfstool holdlock "$PWD/rc" /tmp/go1 /tmp/go2 > /tmp/rhold.out 2>&1 &
  hp=$!
  if wait_out /tmp/rhold.out "holdlock: locked" $hp 60; then
    ok "reclaim: holder took the write lock, block 1 written+synced"
    nfstool trylock "${m2}rc" > /dev/null 2>&1; check "reclaim: before the restart, mount B's F_SETLK fails (rc 3 = EAGAIN)" 3 $?
    : > "$tag.writing"
    if wait_for "$tag.restarted" 120; then
      tr=$(up)
      ok "reclaim: host killed peernfsd (SIGKILL) and restarted it"
      t0=$(up); nfstool trylock "${m2}rc" > /tmp/rtry.out 2>&1; rc=$?; t1=$(up)
      sent=$(awk -v a="$t0" -v b="$tr" 'BEGIN {printf "%.1f", a - b}')
      took=$(awk -v a="$t1" -v b="$t0" 'BEGIN {printf "%.1f", a - b}')
      if awk -v s="$sent" -v g="$g" 'BEGIN {exit !(s + 1 < g)}'; then
        check "reclaim: during the grace period (F_SETLK sent ${sent}s after the restart, answered ${took}s later), mount B's F_SETLK fails (rc 3 = EAGAIN)" 3 $rc
      else bad "reclaim: mount B's F_SETLK was sent ${sent}s after the restart, not within the ${g}s grace period (rc $rc)"; fi
      cat /tmp/rtry.out
      # past the grace period (counted from when the guest saw the restart: later than
      # the server's start)
      while awk -v n="$(up)" -v r="$tr" -v g="$g" 'BEGIN {exit !(n < r + g + 1)}'; do sleep 0.5; done
      nfstool trylock "${m2}rc" > /tmp/rtry.out 2>&1; rc=$?
      check "reclaim: after the grace period, mount B's F_SETLK still fails: the lock was reclaimed (rc 3 = EAGAIN)" 3 $rc
      : > /tmp/go1
      if wait_out /tmp/rhold.out "holdlock: written" $hp 60; then
        ok "reclaim: holder wrote+fsynced block 2 through its old descriptor and read both back"
      else bad "reclaim: write through the old descriptor: $(tail -1 /tmp/rhold.out)"; fi
      nfstool trylock "${m2}rc" > /dev/null 2>&1; check "reclaim: while the holder keeps it, mount B's F_SETLK fails (rc 3 = EAGAIN)" 3 $?
    else bad "reclaim: no /host/nlm-reclaim.restarted from the host within 120 s"; fi
  else bad "reclaim: holder did not take the lock: $(cat /tmp/rhold.out)"; fi
  : > /tmp/go1; : > /tmp/go2
  i=0; while kill -0 $hp 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  kill -0 $hp 2>/dev/null && { kill -9 $hp; bad "reclaim: holder still running 60 s after its go-ahead"; }
  wait $hp; rc=$?; cat /tmp/rhold.out
  check "reclaim: holder exit status (unlocked and closed)" 0 $rc
  nfstool trylock "${m2}rc" > /dev/null 2>&1; check "reclaim: after the holder unlocked, mount B gets the lock (rc)" 0 $?
  sync; echo 3 > /proc/sys/vm/drop_caches
  check "reclaim: file content through mount B" "$(nfstool pattern 131072 | md5sum)" "$(md5sum < "${m2}rc")"
  # the kernel's lockd says so when a reclaim fails ("failed to reclaim lock", "spurious
  # grace period reject")
  dmesg | tail -n +$(($(wc -l < /tmp/dmesg.before) + 1)) > /tmp/dmesg.new
  grep -iE 'lockd.*(reclaim|spurious|lost)' /tmp/dmesg.new > /tmp/dmesg.bad
  check "reclaim: kernel log has no lockd reclaim failure" 0 "$(wc -l < /tmp/dmesg.bad)"
  cat /tmp/dmesg.bad
fi

[ -n "$m2" ] && umount /mnt/nfs2
cd .. && rm -rf "$d" && ok "cleanup" || bad "cleanup"
echo "failures: $fail"
[ $fail -gt 99 ] && fail=99
exit $fail
