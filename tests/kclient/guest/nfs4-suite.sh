#!/bin/sh
# Guest side of run-nfs4.sh: the NFSv4 suite, every minor version in one boot (the guest
# is started with mount options "none" and mounts $KC_SERVER:$KC_EXPORT itself; with
# NFSv4 that is a path in the server's pseudo file system). For each version V in
# KC_V4_VERSIONS ("4.0 4.1 4.2"), with the options vers=V[,KC_V4_EXTRA_OPTS]:
#   nfs3-basic.sh    data, metadata ops, 5000-entry directory, statfs (the NFSv3 script,
#                    unchanged: it only needs a no_root_squash mount as its cwd)
#   nfs3-exports.sh  ro export (EROFS), root_squash export (KC_EXPORTS_V4=1: no rpcbind or
#                    MOUNT checks; the squash probe goes to /host/squash-probe.V)
#   nfs4-state.sh    locks, delegation, reclaim after a restart (handshake tag state-V)
#   nfs3-restart.sh  kill -9 + restart under a writer (mounted with wsize=262144; tag
#                    restart-V)
# The scripts are read from /host (the 9p share). A version in KC_V4_OPTIONAL that cannot
# be mounted is skipped with a SKIP line (a server that lacks it); for any other version a
# failed mount is a failure. KC_V4_PARTS (default "basic exports state restart") picks the
# scripts. Every PASS/FAIL/SKIP line is tagged with the version: "FAIL: [v4.1] ...".
# Exits with the total number of failures (at most 99).
total=0
say() { echo "$1: [v$v] $2"; }
# tag_lines: "PASS: x" -> "PASS: [vV] x", line by line (sed would hold lines back in a pipe)
tag_lines() {
  while IFS= read -r l; do
    case $l in PASS:*|FAIL:*|SKIP:*) echo "${l%%:*}: [v$v]${l#*:}";; *) echo "$l";; esac
  done
}
# run_part SCRIPT [VAR=VALUE...]: runs /host/SCRIPT in /mnt/nfs, tags its lines, adds its
# exit status to the total
run_part() {
  s=$1; shift
  echo "--- v$v $s"
  { (cd /mnt/nfs && env "$@" NFS_MNT=/mnt/nfs sh "/host/$s"); echo $? > /tmp/part.rc; } 2>&1 | tag_lines
  rc=$(cat /tmp/part.rc)
  echo "--- v$v $s: $rc failures"
  total=$((total + rc))
}
# mount_v OPTS: mount the main export on /mnt/nfs
mount_v() {
  if kc-mount "$1" /mnt/nfs > /tmp/mount.out 2>&1; then cat /tmp/mount.out; return 0; fi
  cat /tmp/mount.out; return 1
}
parts=${KC_V4_PARTS:-basic exports state restart}
has() { case " $parts " in *" $1 "*) return 0;; esac; return 1; }

for v in ${KC_V4_VERSIONS:-4.0 4.1 4.2}; do
  opts=vers=$v${KC_V4_EXTRA_OPTS:+,$KC_V4_EXTRA_OPTS}
  echo "=== NFS v$v: $KC_SERVER:$KC_EXPORT -o $opts"
  if ! mount_v "$opts"; then
    case " ${KC_V4_OPTIONAL:-} " in
      *" $v "*) say SKIP "NFSv$v not served (mount -o $opts failed: $(tail -1 /tmp/mount.out)); this server is allowed to lack it";;
      *) say FAIL "mount $KC_SERVER:$KC_EXPORT -o $opts: $(tail -1 /tmp/mount.out)"; total=$((total + 1));;
    esac
    continue
  fi
  # the client must not have fallen back to another version
  got=$(grep " /mnt/nfs " /proc/mounts | grep -o 'vers=[0-9.]*')
  if [ "$got" = "vers=$v" ]; then say PASS "mounted with $got"
  else say FAIL "mounted with '$got', asked for vers=$v"; total=$((total + 1)); fi
  has basic && run_part nfs3-basic.sh
  has exports && run_part nfs3-exports.sh KC_EXPORTS_V4=1 KC_EXPORT_OPTS="$opts" KC_SQUASH_PROBE="/host/squash-probe.$v"
  has state && run_part nfs4-state.sh KC_V4_OPTS="$opts" KC_STATE_TAG="state-$v"
  umount /mnt/nfs || { say FAIL "umount /mnt/nfs"; total=$((total + 1)); }
  if has restart; then
    if mount_v "$opts,wsize=262144"; then
      run_part nfs3-restart.sh KC_RESTART_TAG="restart-$v"
      umount /mnt/nfs || { say FAIL "umount /mnt/nfs"; total=$((total + 1)); }
    else say FAIL "mount -o $opts,wsize=262144 for the restart test"; total=$((total + 1)); fi
  fi
done
echo "=== total: $total failures"
[ $total -gt 99 ] && total=99     # 100 and up are the harness's own codes
exit $total
