#!/bin/sh
# Guest side, NFSv3 basics. Runs in the root of a read-write, no_root_squash mount
# (uid 0 stays 0, so chown and mknod work); works in a fresh subdirectory and removes it.
# Every check reads the value back through the client and compares it with what was set;
# caches are dropped first where the answer could otherwise come from the client alone.
# Prints PASS:/FAIL: lines; exits with the number of failures.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
# check NAME EXPECTED ACTUAL
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
up() { cut -d' ' -f1 /proc/uptime; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN {printf "%.1fs", b-a}'; }

d=$PWD/b.$$; mkdir "$d" && cd "$d" || { echo "FAIL: mkdir $d"; exit 1; }
grep " ${NFS_MNT:-$PWD} " /proc/mounts

# --- data: 20 MB random, written with fsync, read back after dropping the page cache
dd if=/dev/urandom of=/tmp/src bs=1M count=20 2>/dev/null; sum=$(md5sum < /tmp/src)
t=$(up)
if dd if=/tmp/src of=f20 bs=1M conv=fsync 2>/tmp/err; then ok "20 MB write+fsync in $(since "$t")"
else bad "20 MB write: $(cat /tmp/err)"; fi
drop
check "20 MB size" 20971520 "$(stat -c %s f20)"
t=$(up); rsum=$(md5sum < f20); echo "20 MB read in $(since "$t")"
check "20 MB checksum" "$sum" "$rsum"
# unaligned write into the middle of the file, then read the region around it
printf 'PEERNFS' | dd of=f20 bs=1 seek=1048573 conv=notrunc 2>/dev/null
drop
# (compared as checksums: the bytes are binary) expected = src[..1048573] PEERNFS src[1048580..]
check "unaligned overwrite" \
  "$({ dd if=/tmp/src bs=1 skip=1048570 count=3; printf PEERNFS; dd if=/tmp/src bs=1 skip=1048580 count=3; } 2>/dev/null | md5sum)" \
  "$(dd if=f20 bs=1 skip=1048570 count=13 2>/dev/null | md5sum)"
check "size unchanged by overwrite" 20971520 "$(stat -c %s f20)"

# --- create / mkdir / rename
echo hello > c1 && ok "create" || bad "create"
check "create: content" hello "$(cat c1)"
check "create: type" "regular file" "$(stat -c %F c1)"
mkdir d1 d2 && ok "mkdir" || bad "mkdir"
check "mkdir: type" directory "$(stat -c %F d1)"
check "mkdir existing fails with EEXIST" "File exists" "$(mkdir d1 2>&1 | grep -o 'File exists')"
check "open missing fails with ENOENT" "No such file or directory" "$(cat nosuch 2>&1 | grep -o 'No such file or directory')"
mv c1 c2 && ok "rename" || bad "rename"
check "rename: old name gone" no "$([ -e c1 ] && echo yes || echo no)"
check "rename: new name content" hello "$(cat c2)"
mv c2 d1/c3 && ok "rename across directories" || bad "rename across directories"
check "rename across dirs: old name gone" no "$([ -e c2 ] && echo yes || echo no)"
check "rename across dirs: content" hello "$(cat d1/c3)"
mv d2 d1/d2 && ok "rename directory into another" || bad "rename directory"
check "renamed directory is there" directory "$(stat -c %F d1/d2 2>&1)"
echo one > r1; echo two > r2
mv r1 r2 && ok "rename over existing file" || bad "rename over existing file"
drop
check "rename over existing: target content" one "$(cat r2)"
check "rename over existing: source gone" no "$([ -e r1 ] && echo yes || echo no)"
check "rmdir non-empty fails with ENOTEMPTY" "Directory not empty" "$(rmdir d1 2>&1 | grep -o 'Directory not empty')"

# --- hard link
ln d1/c3 hl && ok "hard link" || bad "hard link"
drop
check "hard link: link count of original" 2 "$(stat -c %h d1/c3)"
check "hard link: link count of link" 2 "$(stat -c %h hl)"
check "hard link: same inode" "$(stat -c %i d1/c3)" "$(stat -c %i hl)"
check "hard link: content" hello "$(cat hl)"
rm hl; drop
check "unlink of a link: count back to 1" 1 "$(stat -c %h d1/c3)"

# --- symlinks
ln -s some/where/../target sl && ok "symlink" || bad "symlink"
drop
check "symlink: readlink" some/where/../target "$(readlink sl)"
check "symlink: type" "symbolic link" "$(stat -c %F sl)"
ln -s d1/c3 sl2
check "symlink: followed" hello "$(cat sl2)"

# --- special files
mknod ff p && ok "mknod fifo" || bad "mknod fifo"
drop
check "fifo: test -p" yes "$([ -p ff ] && echo yes || echo no)"
check "fifo: type" fifo "$(stat -c %F ff)"
mknod cd c 1 3 && ok "mknod char device" || bad "mknod char device"
check "char device: type" "character special file" "$(stat -c %F cd)"
check "char device: major minor" "1 3" "$(stat -c '%t %T' cd)"

# --- attributes
echo x > a1
chmod 751 a1 && ok "chmod" || bad "chmod"
drop
check "chmod: mode" 751 "$(stat -c %a a1)"
chmod 600 a1; drop
check "chmod again: mode" 600 "$(stat -c %a a1)"
chown 1234:5678 a1 && ok "chown" || bad "chown"
drop
check "chown: uid:gid" 1234:5678 "$(stat -c %u:%g a1)"

# truncate: shrink keeps the prefix, extending adds zeros
printf '0123456789abcdefghijklmnopqrstuvwxyz' > t1
truncate -s 10 t1 && ok "truncate" || bad "truncate"
drop
check "truncate: size" 10 "$(stat -c %s t1)"
check "truncate: prefix kept" 0123456789 "$(cat t1)"
truncate -s 4096 t1; drop
check "extend: size" 4096 "$(stat -c %s t1)"
check "extend: prefix kept" 0123456789 "$(head -c 10 t1)"
check "extend: non-zero bytes past the old end" 0 "$(tail -c 4086 t1 | tr -d '\000' | wc -c)"
# shrink to just before the overwritten bytes, so the prefix equals /tmp/src
truncate -s 1000000 f20; drop
check "truncate 20 MB file: size" 1000000 "$(stat -c %s f20)"
check "truncate 20 MB file: checksum of the prefix" "$(head -c 1000000 /tmp/src | md5sum)" "$(md5sum < f20)"

# times: touch -d (seconds), nfstool utimes (nanoseconds), and a write moves mtime
touch -d '2021-03-04 05:06:07' a1 && ok "touch -d" || bad "touch -d"
drop
check "touch -d: mtime" 1614834367 "$(stat -c %Y a1)"
check "touch -d: atime" 1614834367 "$(stat -c %X a1)"
nfstool utimes a1 1600000000 123456789 && ok "utimensat" || bad "utimensat"
drop
check "utimensat: mtime with nanoseconds" "2020-09-13 12:26:40.123456789" "$(stat -c %y a1 | cut -c1-29)"
echo more >> a1; drop
m=$(stat -c %Y a1)
[ "$m" -gt 1600000000 ] && ok "write updates mtime ($m)" || bad "write did not update mtime ($m)"

# --- a big directory: several READDIR(PLUS) replies, cookies and verifiers
mkdir big
awk 'BEGIN {for (i = 1; i <= 5000; i++) printf "entry-with-a-fairly-long-name-%05d\n", i}' > /tmp/names
t=$(up)
(cd big && xargs touch < /tmp/names) && ok "create 5000 entries in $(since "$t")" || bad "create 5000 entries"
want=$(md5sum < /tmp/names)
check "ls | wc -l" 5000 "$(ls big | wc -l)"
drop
check "readdir (directory order) after drop_caches: count" 5000 "$(nfstool readdir big | wc -l)"
check "readdir (directory order): names" "$want" "$(nfstool readdir big | sort | md5sum)"
drop
check "ls -l (READDIRPLUS) after drop_caches: files" 5000 "$(ls -l big | grep -c '^-')"
check "ls: names" "$want" "$(ls big | md5sum)"
t=$(up)
rm -r big && ok "rm -r 5000 entries in $(since "$t")" || bad "rm -r big"
drop
check "big directory gone" no "$([ -e big ] && echo yes || echo no)"
check "big directory not listed" 0 "$(ls | grep -c '^big$')"

# --- statfs
# df puts a long source name on a line of its own: take the numbers from the end
set -- $(df -k . | tail -n +2 | awk '{for (i = 1; i <= NF; i++) f[++n] = $i} END {print f[n-4], f[n-3], f[n-2]}')
echo "df: total $1 used $2 avail $3 KiB"
[ "$1" -gt 0 ] 2>/dev/null && ok "df: total $1 KiB > 0" || bad "df: total '$1'"
[ "$2" -le "$1" ] 2>/dev/null && ok "df: used $2 <= total" || bad "df: used '$2' > total '$1'"
[ "$3" -le "$1" ] 2>/dev/null && ok "df: avail $3 <= total" || bad "df: avail '$3' > total '$1'"
set -- $(stat -f -c '%b %f %a %c %d' .)
echo "statfs: blocks $1 free $2 avail $3 files $4 ffree $5"
[ "$3" -le "$2" ] 2>/dev/null && ok "statfs: avail <= free" || bad "statfs: avail '$3' > free '$2'"
[ "$5" -le "$4" ] 2>/dev/null && ok "statfs: free inodes <= inodes" || bad "statfs: ffree '$5' > files '$4'"

cd .. && rm -r "$d" && ok "cleanup" || bad "cleanup"
check "test directory gone" no "$([ -e "$d" ] && echo yes || echo no)"
echo "failures: $fail"
exit $fail
