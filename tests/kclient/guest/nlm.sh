#!/bin/sh
# Guest side of run-nlm.sh: NFSv3 byte-range locking through NLM (mounted WITHOUT nolock).
# Runs in the mount; a second mount with nosharecache gives separate inodes, so conflicts
# between the two must be found by the server. The host holds a local fcntl lock on
# $KC_LOCAL_FILE (export root) between /host/local.held and /host/local.release.
# Exits with the number of failed checks.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
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

[ -n "$m2" ] && umount /mnt/nfs2
cd .. && rm -rf "$d" && ok "cleanup" || bad "cleanup"
echo "failures: $fail"
[ $fail -gt 99 ] && fail=99
exit $fail
