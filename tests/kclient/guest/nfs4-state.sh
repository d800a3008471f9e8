#!/bin/sh
# Guest side, NFSv4-only state (4.0, 4.1, 4.2). Runs in the root of a read-write,
# no_root_squash NFSv4 mount A ($NFS_MNT, made with KC_V4_OPTS) and makes two more mounts
# of the same export:
#   B  /mnt/nfs2  KC_V4_OPTS,nosharecache: separate inodes and lock owners, but the same
#                 NFSv4 client (clientid) as A
#   C  /mnt/nfs3  another NFSv4 client: mounted through the server's second address
#                 KC_SERVER2 (a new nfs_client in the kernel) from a UTS namespace with
#                 another host name (the client owner string of 4.1+ is built from it; 4.0's
#                 holds the server address), so the server sees a different clientid
# Every conflict below must then be found by the server, not by the client's local checks.
#   (a) byte-range locks: a write lock (LOCK) conflicts with mount B: F_GETLK (LOCKT) names
#       a holder, F_SETLK is refused, a blocking F_SETLKW is granted after the holder
#       unlocks; flock() (a whole-file NFSv4 lock) conflicts too; client C is refused too
#   (b) delegation: mount A opens a file for reading and keeps it open; another user's
#       open for reading on A sends no OPEN (served from a read delegation); client C opens it for
#       writing, the server recalls the delegation, A answers with DELEGRETURN (per-op
#       counter in /proc/self/mountstats); C's data is then seen through A. (Mount B could
#       not show a recall: a delegation belongs to a client, and B is A's client.)
#   (c) reclaim after a server restart: a process keeps one descriptor with a write lock
#       (nfstool holdlock); the host kills the server with SIGKILL and starts it again
#       (handshake: guest /host/TAG.writing, host /host/TAG.restarted; TAG =
#       $KC_STATE_TAG, default "state"); then the process writes and fsyncs through the
#       same descriptor (its open and lock must have been reclaimed: a lost lock makes the
#       Linux client fail such I/O with EIO), the lock still excludes mount B and client
#       C, the data reads back intact, and the kernel logged no failed reclaim.
#       KC_STATE_RESTART=0 leaves (c) out (no host to restart the server).
#   (d) NFSv4 against NFSv3+NLM (KC_V3_EXPORT: the export's MOUNT path; the mount uses
#       vers=3 with NLM locking; lockd and rpc.statd run in the guest): the v4 mount holds
#       a write lock -> the v3 mount's F_GETLK (NLM TEST) reports it, F_SETLK (NLM LOCK)
#       gets EAGAIN, a blocking F_SETLKW is granted once v4 unlocks, then a trylock gets
#       it; the same with v3 holding and v4 asking (LOCKT/LOCK, the blocked v4 lock
#       granted after the NLM UNLOCK); an NLM lock also excludes client C. Runs before (c):
#       after a restart NLM locks wait out the server's grace period.
#   (e) a local process on the server (KC_HOSTLOCK=1; the host runs lib/hostlock.py on
#       the request files TAG-hold.hostlock / TAG-tryN.hosttry, see run-nfs4.sh): while
#       it holds an fcntl lock on a file, the v4 mount's (and mount B's) F_SETLK gets
#       EAGAIN and a F_SETLKW waits, and is granted after the host unlocks; the reverse:
#       while the v4 mount holds a lock, the host's non-blocking lock fails (EAGAIN), and
#       succeeds after the v4 holder unlocked.
#   (f) NFSv4.2 user extended attributes (KC_XATTR=1, vers=4.2 only): set, read, list,
#       remove across mounts A and B, EEXIST and ENODATA.
# Prints PASS:/FAIL: lines; exits with the number of failures.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# opcount OP [MOUNTPOINT]: calls of that NFSv4 operation sent on that mount (mountstats;
# each superblock, nosharecache ones too, has counters of its own)
opcount() {
  awk -v op="$1:" -v mp="${2:-$NFS_MNT}" '$1=="device" {m=($5==mp)} m && $1==op {print $2; exit}' /proc/self/mountstats
}
# opens [MOUNTPOINT]: OPEN calls of both kinds: by name (OPEN) and, in 4.1+, by filehandle
# (CLAIM_FH, counted as OPEN_NOATTR)
opens() { a=$(opcount OPEN "$@"); b=$(opcount OPEN_NOATTR "$@"); echo $(( ${a:-0} + ${b:-0} )); }
# wait_for FILE SECS: wait until FILE exists
wait_for() { i=0; while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i+1)); done; [ -e "$1" ]; }
opts=${KC_V4_OPTS:-$KC_OPTS}
mnt=${NFS_MNT:-$PWD}
grep " $mnt " /proc/mounts
case $(grep " $mnt " /proc/mounts) in
  *" nfs4 "*) ;;
  *) bad "$mnt is not an NFSv4 mount"; echo "failures: $fail"; exit $fail;;
esac

n=st.$$; d=$mnt/$n
mkdir "$d" || { echo "FAIL: mkdir $d"; exit 1; }
if kc-mount "$opts,nosharecache" /mnt/nfs2 > /tmp/m2.out 2>&1; then
  d2=/mnt/nfs2/$n; ok "second mount (nosharecache): $(grep ' /mnt/nfs2 ' /proc/mounts | cut -d' ' -f1-3)"
else
  cat /tmp/m2.out; bad "second mount with nosharecache"; rmdir "$d"; echo "failures: $fail"; exit $fail
fi
check "second mount sees the test directory" directory "$(stat -c %F "$d2" 2>&1)"
# client C: its own server address and host name, so its own nfs_client and clientid
mkdir -p /mnt/nfs3
if unshare -u sh -c 'hostname "$1" && exec mount.nfs "$2" /mnt/nfs3 -o "$3"' sh \
     "$(hostname)-c" "${KC_SERVER2:?}:$KC_EXPORT" "$opts" > /tmp/m3.out 2>&1; then
  d3=/mnt/nfs3/$n; ok "second client mounted: $(grep ' /mnt/nfs3 ' /proc/mounts | cut -d' ' -f1-3)"
else
  cat /tmp/m3.out; bad "mount of $KC_SERVER2:$KC_EXPORT as a second client"; d3=/nonexistent
fi
check "second client sees the test directory" directory "$(stat -c %F "$d3" 2>&1)"
dmesg > /tmp/dmesg.before

# --- (a) byte-range locks between the two mounts
nfstool lock "$d/lk" "$d2/lk" > /tmp/lock.out 2>&1; rc=$?; cat /tmp/lock.out
[ $rc = 0 ] && ok "fcntl locks: conflict across mounts, F_GETLK holder, blocking lock granted" || bad "fcntl locks (nfstool rc $rc)"
grep -q "child F_GETLK sees conflict" /tmp/lock.out && ok "F_GETLK (LOCKT) reports the other mount's lock" \
  || bad "F_GETLK (LOCKT) did not see the other mount's lock"
grep -q "child F_SETLK conflicts as expected" /tmp/lock.out && ok "F_SETLK (LOCK) refused while the other mount holds the lock" \
  || bad "F_SETLK (LOCK) not refused while the other mount holds the lock"
# the parent unlocks 2 s after the child found the conflict; the client polls a denied
# blocking lock (1 s, 2 s, ... in 4.0; 4.1 may be woken by CB_NOTIFY_LOCK), so the grant
# comes 1.5 s to a few seconds later: earlier means it never waited
g=$(sed -n 's/.*granted after \([0-9.]*\)s.*/\1/p' /tmp/lock.out)
[ -n "$g" ] && awk -v g="$g" 'BEGIN {exit !(g >= 1.5 && g < 15)}' && ok "blocked F_SETLKW granted ${g}s later, after the unlock" \
  || bad "blocked F_SETLKW: granted after '${g}' s (want 1.5 to 15)"
# a server that sends CB_NOTIFY_LOCK (KC_NOTIFY_LOCK=1) wakes a 4.1+ waiter at the unlock
# (2 s); polling would retry at 3 s
case ${KC_NOTIFY_LOCK:-0}:${KC_STATE_TAG:-} in
  1:*-4.0|0:*) ;;
  *) [ -n "$g" ] && awk -v g="$g" 'BEGIN {exit !(g < 2.7)}' && ok "CB_NOTIFY_LOCK: the waiter was granted ${g}s later, at the unlock" \
       || bad "CB_NOTIFY_LOCK: the waiter was granted after '${g}' s, want < 2.7 (the unlock is at 2 s; polling retries at 3 s)";;
esac
nfstool flock "$d/fl" "$d2/fl" > /tmp/flock.out 2>&1 && ok "flock conflict across mounts" || { cat /tmp/flock.out; bad "flock conflict across mounts"; }
nfstool trylock "$d2/lk" > /dev/null 2>&1; check "lock free again after both released it (trylock rc)" 0 $?
: > /tmp/hold2.out   # no stale output of the previous version's run
nfstool waitlock "$d/lk2" 4 > /tmp/hold2.out 2>&1 &      # A holds a lock for 4 s
hp=$!; i=0; while ! grep -q granted /tmp/hold2.out && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
nfstool trylock "$d3/lk2" > /dev/null 2>&1; check "client C's F_SETLK refused while A holds the lock (rc 3 = EAGAIN)" 3 $?
wait $hp
nfstool trylock "$d3/lk2" > /dev/null 2>&1; check "client C gets the lock after A's holder exited (rc)" 0 $?

# --- (f) NFSv4.2 user extended attributes (RFC 8276), when the server has them
# (KC_XATTR=1): set through A, read and listed through B (the server's copy), removed,
# then ENODATA; an existing name is not created again (EEXIST)
case ${KC_XATTR:-0}:${KC_STATE_TAG:-} in
  1:*-4.2)
    echo xattr > "$d/xa"
    nfstool xattr set "$d/xa" user.peernfs "hello from A" > /tmp/xa.out 2>&1; check "xattr: setxattr through A (rc)" 0 $?
    check "xattr: getxattr through B" "hello from A" "$(nfstool xattr get "$d2/xa" user.peernfs 2>&1)"
    nfstool xattr list "$d2/xa" > /tmp/xa.out 2>&1
    grep -qx user.peernfs /tmp/xa.out && ok "xattr: listxattr through B names user.peernfs" \
      || bad "xattr: listxattr through B: $(tr '\n' ' ' < /tmp/xa.out)"
    nfstool xattr set "$d2/xa" user.peernfs again > /dev/null 2>&1; check "xattr: creating it again fails with EEXIST (rc 6)" 6 $?
    nfstool xattr remove "$d/xa" user.peernfs > /dev/null 2>&1; check "xattr: removexattr through A (rc)" 0 $?
    drop
    nfstool xattr get "$d2/xa" user.peernfs > /dev/null 2>&1; check "xattr: gone for B too (rc 4 = ENODATA)" 4 $?
    rm -f "$d/xa";;
esac

# --- (b) a read delegation, granted and recalled
# The second open through A comes from another user (nfstool cat-as): another open owner,
# whose open needs an OPEN of its own unless A holds a delegation (an open owner's earlier
# open state is not a way around that: the client reuses it only in recovery).
f=deleg; other=4321
echo "written by A" > "$d/$f"; chmod 644 "$d/$f"
drop
o0=$(opcount OPEN); r0=$(opcount DELEGRETURN); [ -n "$o0" ] && o0=$(opens)
if [ -z "$o0" ] || [ -z "$r0" ]; then
  bad "no OPEN/DELEGRETURN counters for $mnt in /proc/self/mountstats"
else
  exec 4< "$d/$f"                       # A: OPEN for reading, kept open
  o1=$(opens)
  [ "$o1" -gt "$o0" ] && ok "A's open for reading sent OPEN ($o0 -> $o1)" || bad "A's open sent no OPEN ($o0 -> $o1)"
  check "A reads the file" "written by A" "$(cat <&4)"
  check "A, as uid $other: reads the file" "written by A" "$(nfstool cat-as $other "$d/$f" 2>&1)"
  o2=$(opens)
  # a read delegation lets the client open for reading locally (can_open_delegated)
  [ "$o2" = "$o1" ] && ok "delegation granted: uid $other's open on A sent no OPEN" \
    || bad "no read delegation: uid $other's open on A sent OPEN ($o1 -> $o2)"
  t0=$(cut -d' ' -f1 /proc/uptime)
  if echo "written by C" > "$d3/$f"; then   # the server must recall A's delegation first
    ok "client C opened the file for writing in $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN {printf "%.1fs", b-a}')"
  else bad "client C could not write the file"; fi
  i=0; while [ "$(opcount DELEGRETURN)" = "$r0" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
  r1=$(opcount DELEGRETURN)
  [ "$r1" -gt "$r0" ] && ok "delegation recalled: A sent DELEGRETURN ($r0 -> $r1)" \
    || bad "no DELEGRETURN from A after client C opened for writing ($r0 -> $r1)"
  o3=$(opens)
  check "A, as uid $other: sees C's data after the recall" "written by C" "$(nfstool cat-as $other "$d/$f" 2>&1)"
  [ "$(opens)" -gt "$o3" ] && ok "uid $other's open on A after the recall sent OPEN" \
    || bad "uid $other's open on A after the recall sent no OPEN: delegation still used"
  exec 4<&-
fi
grep -E '^[[:space:]]*(OPEN|OPEN_NOATTR|CLOSE|DELEGRETURN|LOCK|LOCKT|LOCKU):' /proc/self/mountstats | head -14

# lock_pair WHAT FILE1 FILE2: nfstool lock (a process on FILE1 holds a write lock; a child
# on FILE2, another mount, must see it with F_GETLK, be refused F_SETLK, and get a blocking
# F_SETLKW once the holder unlocks 2 s later) and a PASS/FAIL line per step
lock_pair() {
  nfstool lock "$2" "$3" > /tmp/lp.out 2>&1; rc=$?; sed 's/^/  /' /tmp/lp.out
  grep -q "child F_GETLK sees conflict" /tmp/lp.out && ok "$1: F_GETLK reports the holder's lock" \
    || bad "$1: F_GETLK did not report the holder's lock"
  grep -q "child F_SETLK conflicts as expected" /tmp/lp.out && ok "$1: F_SETLK refused (EAGAIN) while the holder has the lock" \
    || bad "$1: F_SETLK not refused while the holder has the lock"
  g=$(sed -n 's/.*granted after \([0-9.]*\)s.*/\1/p' /tmp/lp.out)
  [ $rc = 0 ] && [ -n "$g" ] && awk -v g="$g" 'BEGIN {exit !(g >= 1.5 && g < 15)}' \
    && ok "$1: blocked F_SETLKW granted ${g}s later, after the holder's unlock" \
    || bad "$1: blocked F_SETLKW: rc $rc, granted after '${g}' s (want 1.5 to 15)"
}
# host_ask KIND TAG RELPATH: a request to the host (run-nfs4.sh) through the share: KIND
# hostlock (the host takes an fcntl lock on RELPATH, relative to the export root, answers
# TAG.hostlocked, unlocks when TAG.hostunlock appears and answers TAG.hostunlocked) or
# hosttry (a non-blocking lock attempt, answered in TAG.hosttried: "EAGAIN ..." or "got ...")
host_ask() {
  rm -f "/host/$2".host*
  echo "$3" > "/host/$2.tmp" && mv "/host/$2.tmp" "/host/$2.$1"
}

# --- (d) NFSv4 and NFSv3+NLM locks on the same file (one lock space on the server)
if [ -n "${KC_V3_EXPORT:-}" ]; then
  mkdir -p /mnt/nfsv3
  if mount.nfs "$KC_SERVER:$KC_V3_EXPORT" /mnt/nfsv3 -o vers=3 > /tmp/m4.out 2>&1; then
    v3d=/mnt/nfsv3/$n; ok "NFSv3 mount with NLM locking: $(grep ' /mnt/nfsv3 ' /proc/mounts | cut -d' ' -f1-4)"
    case $(grep ' /mnt/nfsv3 ' /proc/mounts) in
      *nolock*|*local_lock=all*|*local_lock=posix*) bad "the NFSv3 mount locks locally: $(grep ' /mnt/nfsv3 ' /proc/mounts)";;
    esac
    echo v3v4 > "$d/x34"; echo v3v4 > "$d/x43"
    lock_pair "v4 holds, v3 (NLM) asks" "$d/x34" "$v3d/x34"
    nfstool trylock "$v3d/x34" > /dev/null 2>&1; check "v3 gets the lock after the v4 holder released it (trylock rc)" 0 $?
    lock_pair "v3 (NLM) holds, v4 asks" "$v3d/x43" "$d/x43"
    nfstool trylock "$d/x43" > /dev/null 2>&1; check "v4 gets the lock after the v3 holder released it (trylock rc)" 0 $?
    # a held NLM lock also stops the other NFSv4 client, and flock too
    : > /tmp/hold3.out   # no stale output of the previous version's run
    nfstool waitlock "$v3d/x43" 4 > /tmp/hold3.out 2>&1 &
    hp=$!; i=0; while ! grep -q granted /tmp/hold3.out && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
    nfstool trylock "$d3/x43" > /dev/null 2>&1; check "client C's F_SETLK refused while the v3 mount holds the lock (rc 3 = EAGAIN)" 3 $?
    wait $hp
    umount /mnt/nfsv3 && ok "umount the NFSv3 mount" || bad "umount the NFSv3 mount"
  else
    cat /tmp/m4.out; bad "mount -o vers=3 $KC_SERVER:$KC_V3_EXPORT (with NLM locking)"
  fi
else echo "SKIP: NFSv4 vs NFSv3+NLM locks (no KC_V3_EXPORT)"; fi

# --- (e) a local process on the server holds a lock on the exported file, and the reverse
if [ "${KC_HOSTLOCK:-0}" = 1 ]; then
  t=${KC_STATE_TAG:-state}
  echo hostlock > "$d/hl"
  host_ask hostlock "$t-hold" "$n/hl"
  if wait_for "/host/$t-hold.hostlocked" 60 && [ "$(cat "/host/$t-hold.hostlocked")" = locked ]; then
    ok "host process locked $n/hl (fcntl) on the server"
    nfstool trylock "$d/hl" > /dev/null 2>&1; check "host holds the lock: v4 F_SETLK refused (rc 3 = EAGAIN)" 3 $?
    nfstool trylock "$d2/hl" > /dev/null 2>&1; check "host holds the lock: mount B's F_SETLK refused (rc 3)" 3 $?
    : > /tmp/hw.out   # no stale output of the previous version's run
    nfstool waitlock "$d/hl" > /tmp/hw.out 2>&1 &
    wp=$!; sleep 2
    kill -0 $wp 2>/dev/null && ok "host holds the lock: a v4 F_SETLKW waits" || bad "host holds the lock: F_SETLKW did not wait: $(cat /tmp/hw.out)"
    touch "/host/$t-hold.hostunlock"
    wait_for "/host/$t-hold.hostunlocked" 60 && ok "host released its lock" || bad "host never reported the unlock"
    i=0; while kill -0 $wp 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
    if kill -0 $wp 2>/dev/null; then kill -9 $wp; bad "v4 F_SETLKW not granted within 30 s of the host's unlock"
    else wait $wp && ok "v4 F_SETLKW granted after the host's unlock: $(cat /tmp/hw.out)" || bad "v4 F_SETLKW failed: $(cat /tmp/hw.out)"; fi
    nfstool trylock "$d/hl" > /dev/null 2>&1; check "host released: v4 F_SETLK gets the lock (rc)" 0 $?
  else
    touch "/host/$t-hold.hostunlock"
    bad "host lock on $n/hl: $(cat "/host/$t-hold.hostlocked" 2>&1)"
  fi
  # the reverse: the v4 mount holds a lock, the host's non-blocking attempt fails
  rm -f /tmp/go1 /tmp/go2
  : > /tmp/hl2.out   # no stale output of the previous version's run
  nfstool holdlock "$d/hl2" /tmp/go1 /tmp/go2 > /tmp/hl2.out 2>&1 &
  hp=$!; i=0; while ! grep -q "holdlock: locked" /tmp/hl2.out && kill -0 $hp 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  if grep -q "holdlock: locked" /tmp/hl2.out; then
    host_ask hosttry "$t-try1" "$n/hl2"
    wait_for "/host/$t-try1.hosttried" 60; r=$(cat "/host/$t-try1.hosttried" 2>&1)
    case $r in EAGAIN*) ok "v4 holds the lock: the host's F_SETLK is refused ($r)";;
               *) bad "v4 holds the lock: the host's F_SETLK: '$r', want EAGAIN";; esac
  else bad "v4 holder did not take its lock: $(cat /tmp/hl2.out)"; fi
  : > /tmp/go1; : > /tmp/go2
  i=0; while kill -0 $hp 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
  kill -0 $hp 2>/dev/null && kill -9 $hp
  wait $hp; check "v4 holder unlocked and exited (rc)" 0 $?
  host_ask hosttry "$t-try2" "$n/hl2"
  wait_for "/host/$t-try2.hosttried" 60; r=$(cat "/host/$t-try2.hosttried" 2>&1)
  case $r in got*) ok "v4 released the lock: the host's F_SETLK succeeds ($r)";;
             *) bad "v4 released the lock: the host's F_SETLK: '$r', want got";; esac
  rm -f /host/"$t"-hold.host* /host/"$t"-try[12].host*
else echo "SKIP: locks against a local process on the server (no host access: KC_HOSTLOCK)"; fi

# --- (c) open + lock reclaimed after a server restart
if [ "${KC_STATE_RESTART:-1}" != 0 ]; then
  tag=/host/${KC_STATE_TAG:-state}; rm -f "$tag.writing" "$tag.restarted" /tmp/go1 /tmp/go2
  : > /tmp/hold.out   # no stale output of the previous version's run
  nfstool holdlock "$d/reclaim" /tmp/go1 /tmp/go2 > /tmp/hold.out 2>&1 &
  hp=$!
  i=0; while ! grep -q "holdlock: locked" /tmp/hold.out && kill -0 $hp 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  if grep -q "holdlock: locked" /tmp/hold.out; then
    ok "holder: lock taken, block 1 written"
    nfstool trylock "$d2/reclaim" > /dev/null 2>&1; check "before the restart: B's F_SETLK refused (rc 3 = EAGAIN)" 3 $?
    touch "$tag.writing"
    if wait_for "$tag.restarted" 240; then
      ok "host killed and restarted the server"
      : > /tmp/go1
      i=0; while ! grep -q "holdlock: written" /tmp/hold.out && kill -0 $hp 2>/dev/null && [ $i -lt 1800 ]; do sleep 0.1; i=$((i+1)); done
      grep -q "holdlock: written" /tmp/hold.out && ok "after the restart: write+fsync through the old descriptor, read back" \
        || bad "after the restart: write through the old descriptor: $(tail -1 /tmp/hold.out)"
      # the holder still holds its lock: reclaimed, so the other mount is still excluded
      nfstool trylock "$d2/reclaim" > /tmp/try.out 2>&1; rc=$?
      check "after the restart: B's F_SETLK refused, the lock was reclaimed (rc 3 = EAGAIN)" 3 $rc
      nfstool trylock "$d3/reclaim" > /dev/null 2>&1
      check "after the restart: client C's F_SETLK refused (rc 3 = EAGAIN)" 3 $?
    else bad "no restart flag from the host within 240 s"; fi
  else bad "holder did not take the lock: $(cat /tmp/hold.out)"; fi
  : > /tmp/go1; : > /tmp/go2
  i=0; while kill -0 $hp 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
  kill -0 $hp 2>/dev/null && { kill -9 $hp; bad "holder still running 60 s after its go-ahead"; }
  wait $hp; rc=$?; cat /tmp/hold.out
  check "holder: exit status" 0 $rc
  nfstool trylock "$d2/reclaim" > /dev/null 2>&1; check "after the holder unlocked: B gets the lock (rc)" 0 $?
  drop
  check "reclaimed file: content after drop_caches" "$(nfstool pattern 131072 | md5sum)" "$(md5sum < "$d/reclaim")"
  check "reclaimed file: same content through mount B" "$(nfstool pattern 131072 | md5sum)" "$(md5sum < "$d2/reclaim")"
fi

# the kernel says so when recovery goes wrong ("Lock reclaim failed", lost locks, ...)
dmesg | tail -n +$(($(wc -l < /tmp/dmesg.before) + 1)) > /tmp/dmesg.new
grep -iE 'reclaim|lost|NFS4ERR|unhandled|state manager|expired' /tmp/dmesg.new > /tmp/dmesg.bad
check "kernel log: no failed state recovery" 0 "$(wc -l < /tmp/dmesg.bad)"
[ -s /tmp/dmesg.bad ] && cat /tmp/dmesg.bad
grep -E 'nfs: server .* (not responding|OK)' /tmp/dmesg.new

umount /mnt/nfs2 && ok "umount second mount" || bad "umount second mount"
[ "$d3" != /nonexistent ] && { umount /mnt/nfs3 && ok "umount second client" || bad "umount second client"; }
rm -r "$d" && ok "cleanup" || bad "cleanup"
echo "failures: $fail"
[ $fail -gt 99 ] && fail=99
exit $fail
