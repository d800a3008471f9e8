#!/bin/sh
# Guest side, export options (NFSv3, or NFSv4.x with KC_EXPORTS_V4=1). Mounts two more
# exports of $KC_SERVER itself, with the options KC_EXPORT_OPTS (default vers=3,nolock):
#   KC_RO_EXPORT  read-only export holding ro-file (1 MiB, md5 KC_RO_MD5, made on the host)
#   KC_SQ_EXPORT  read-write root_squash export (root -> KC_ANON_UID:KC_ANON_GID, default
#                 65534), whose root directory is mode 1777; the host made in it:
#                 root-only (0:0, mode 600) and anon-only (anon uid, mode 600, content "anon")
# Also checks the rpcbind registrations and the MOUNT export list (NFSv3 only: an NFSv4
# client uses neither; KC_EXPORTS_V4=1 leaves them out and the export paths are paths in
# the server's NFSv4 pseudo file system), and that a path that is not exported cannot be
# mounted. For the host-side half of the squash check, the name of the file root creates
# in KC_SQ_EXPORT is left in KC_SQUASH_PROBE (/host/squash-probe): the host driver checks
# its owner on the server's disk after this run.
# Prints PASS:/FAIL: lines; exits with the number of failures.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
# fails_with NAME ERRTEXT CMD...: CMD must fail and say ERRTEXT (e.g. "Read-only file system")
fails_with() {
  n=$1 e=$2; shift 2
  if out=$("$@" 2>&1); then bad "$n: succeeded, should fail with '$e'"
  elif echo "$out" | grep -q "$e"; then ok "$n: $e"
  else bad "$n: expected '$e', got: $out"; fi
}
: "${KC_RO_EXPORT:?}" "${KC_SQ_EXPORT:?}" "${KC_RO_MD5:?}"
anon=${KC_ANON_UID:-65534}:${KC_ANON_GID:-65534}
opts=${KC_EXPORT_OPTS:-vers=3,nolock}
mnt() { mkdir -p "$2" && mount.nfs "$KC_SERVER:$1" "$2" -o "${3:-$opts}"; }   # mnt EXPORT DIR [OPTS]

# --- rpcbind + MOUNT (NFSv3 only)
if [ -z "${KC_EXPORTS_V4:-}" ]; then
rpcinfo -p "$KC_SERVER" > /tmp/rpcinfo 2>&1; cat /tmp/rpcinfo
check "rpcbind: nfs v3 tcp registered" 1 "$(awk '$1==100003 && $2==3 && $3=="tcp" {n++} END {print n+0}' /tmp/rpcinfo)"
check "rpcbind: mountd v3 tcp registered" 1 "$(awk '$1==100005 && $2==3 && $3=="tcp" {n++} END {print n+0}' /tmp/rpcinfo)"
showmount -e "$KC_SERVER" > /tmp/showmount 2>&1; cat /tmp/showmount
for e in "$KC_EXPORT" "$KC_RO_EXPORT" "$KC_SQ_EXPORT"; do
  check "MOUNT export list has $e" 1 "$(awk -v e="$e" '$1==e {n++} END {print n+0}' /tmp/showmount)"
done
fi
if mnt /no/such/export /mnt/bad "$opts,retry=0" 2>/tmp/err; then bad "mount of a path that is not exported succeeded"; umount /mnt/bad
else ok "mount of a path that is not exported fails: $(tail -1 /tmp/err)"; fi

# --- read-only export
if mnt "$KC_RO_EXPORT" /mnt/ro; then
  ok "mount read-only export $KC_RO_EXPORT"
  grep " /mnt/ro " /proc/mounts
  drop
  check "ro: read pre-made file" "$KC_RO_MD5" "$(md5sum < /mnt/ro/ro-file | cut -d' ' -f1)"
  check "ro: ls" ro-file "$(ls /mnt/ro)"
  fails_with "ro: create (touch new)" "Read-only file system" touch /mnt/ro/new
  fails_with "ro: mkdir" "Read-only file system" mkdir /mnt/ro/newdir
  fails_with "ro: setattr (touch existing)" "Read-only file system" touch /mnt/ro/ro-file
  fails_with "ro: chmod" "Read-only file system" chmod 600 /mnt/ro/ro-file
  fails_with "ro: remove" "Read-only file system" rm -f /mnt/ro/ro-file
  fails_with "ro: rename" "Read-only file system" mv /mnt/ro/ro-file /mnt/ro/moved
  fails_with "ro: symlink" "Read-only file system" ln -s x /mnt/ro/sl
  # opening an existing file for writing: the client asks ACCESS first, and an ro export
  # grants no MODIFY/EXTEND, so this is EACCES (Linux knfsd and Ganesha alike)
  fails_with "ro: write to existing file" "Permission denied\|Read-only file system" \
    dd if=/dev/zero of=/mnt/ro/ro-file bs=1k count=1 conv=notrunc
  drop
  check "ro: file unchanged" "$KC_RO_MD5" "$(md5sum < /mnt/ro/ro-file | cut -d' ' -f1)"
  check "ro: nothing created" ro-file "$(ls /mnt/ro)"
  umount /mnt/ro && ok "umount ro" || bad "umount ro"
else bad "mount read-only export $KC_RO_EXPORT"; fi

# --- root_squash export
if mnt "$KC_SQ_EXPORT" /mnt/sq; then
  ok "mount root_squash export $KC_SQ_EXPORT"
  grep " /mnt/sq " /proc/mounts
  f=root-created.$$
  echo data > "/mnt/sq/$f" && ok "sq: root creates a file" || bad "sq: root creates a file"
  drop
  check "sq: new file owned by anon (guest view)" "$anon" "$(stat -c %u:%g "/mnt/sq/$f")"
  echo "$f" > "${KC_SQUASH_PROBE:-/host/squash-probe}"
  mkdir "/mnt/sq/dir.$$" && check "sq: new directory owned by anon" "$anon" "$(stat -c %u:%g "/mnt/sq/dir.$$")"
  fails_with "sq: chown by squashed root" "Operation not permitted" chown 1234:5678 "/mnt/sq/$f"
  drop
  check "sq: owner unchanged after failed chown" "$anon" "$(stat -c %u:%g "/mnt/sq/$f")"
  check "sq: root-only file is owned by 0" 0:0 "$(stat -c %u:%g /mnt/sq/root-only)"
  fails_with "sq: squashed root cannot read a root-only (600) file" "Permission denied" cat /mnt/sq/root-only
  check "sq: squashed root reads the anon-owned (600) file" anon "$(cat /mnt/sq/anon-only 2>&1)"
  umount /mnt/sq && ok "umount sq" || bad "umount sq"
else bad "mount root_squash export $KC_SQ_EXPORT"; fi

echo "failures: $fail"
exit $fail
