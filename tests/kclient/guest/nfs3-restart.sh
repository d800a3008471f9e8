#!/bin/sh
# Guest side of the server-restart test (hard NFSv3 or NFSv4.x mount). Writes f0001, f0002, ...
# (1 MiB random each, then `sync FILE`, then "name md5" into /tmp/restart.log) while the
# host driver kills the server with SIGKILL and starts it again. Handshake over /host
# (TAG = $KC_RESTART_TAG, default "restart"; run-nfs4.sh uses one tag per NFS version):
#   guest: /host/TAG.writing    after the first file is on the server
#   host:  /host/TAG.restarted  once the server was killed and is listening again
# The writer stops when it has run KC_RESTART_SECS (20) seconds and has written 3 files
# after the restart, or after KC_RESTART_MAX (120) seconds. Then: every logged file is read
# back after dropping the caches, a file opened before the kill is read through that open
# descriptor (its filehandle predates the restart), and no command may have failed
# (ESTALE in particular: filehandles must survive the restart).
# Prints PASS:/FAIL: lines; exits with the number of failures.
fail=0
ok() { echo "PASS: $*"; }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
check() { if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi; }
up() { cut -d' ' -f1 /proc/uptime; }
# opcount OP: NFS calls of that procedure sent on this mount so far (mountstats)
opcount() { awk -v op="$1:" '$1=="device" {m=($5==ENVIRON["NFS_MNT"])} m && $1==op {print $2; exit}' /proc/self/mountstats; }
elapsed() { awk -v a="$1" -v b="$(up)" 'BEGIN {printf "%d", b-a}'; }
minsecs=${KC_RESTART_SECS:-20}; maxsecs=${KC_RESTART_MAX:-120}
tag=/host/${KC_RESTART_TAG:-restart}

d=$PWD/restart.$$; mkdir "$d" || { echo "FAIL: mkdir $d"; exit 1; }
log=/tmp/restart.log; errs=/tmp/restart.err; : > $log; : > $errs
rm -f "$tag.writing"
echo "early file, opened before the restart" > "$d/early"
exec 3< "$d/early"

w0=$(opcount WRITE); c0=$(opcount COMMIT)
t0=$(up); n=0; after=0; werr=0; maxlat=0; maxname=
while :; do
  n=$((n+1)); name=$(printf 'f%04d' $n)
  dd if=/dev/urandom of=/tmp/blk bs=1M count=1 2>/dev/null
  sum=$(md5sum < /tmp/blk | cut -d' ' -f1)
  [ -e "$tag.restarted" ] && restarted=1 || restarted=
  t=$(up)
  if dd if=/tmp/blk of="$d/$name" bs=1M status=none 2>>$errs && sync "$d/$name" 2>>$errs; then
    echo "$name $sum" >> $log
  else
    werr=$((werr+1)); echo "$name: write or sync failed" >> $errs
  fi
  lat=$(awk -v a="$t" -v b="$(up)" 'BEGIN {printf "%.2f", b-a}')
  if awk -v l="$lat" -v m="$maxlat" 'BEGIN {exit !(l > m)}'; then maxlat=$lat; maxname=$name; fi
  [ $n = 1 ] && touch "$tag.writing"
  # count only files begun after the restart flag was seen
  [ -n "$restarted" ] && after=$((after+1))
  e=$(elapsed "$t0")
  [ "$e" -ge "$minsecs" ] && [ $after -ge 3 ] && break
  [ "$e" -ge "$maxsecs" ] && break
done
echo "writer: $n files in $(elapsed "$t0")s, $after after the restart; slowest write+sync ${maxlat}s ($maxname)"
# informational: with wsize < 1 MiB a file is several UNSTABLE WRITEs + COMMIT; a restart in
# between changes the write verifier and the client sends the uncommitted WRITEs again
echo "writer: WRITE calls $(( $(opcount WRITE) - w0 )), COMMIT calls $(( $(opcount COMMIT) - c0 )), mount: $(grep " $NFS_MNT " /proc/mounts | grep -o 'wsize=[0-9]*')"

[ -e "$tag.restarted" ] && ok "host restarted the server while we wrote" || bad "no restart flag from the host within ${maxsecs}s"
check "writes that failed" 0 "$werr"
[ -s $errs ] && { echo "errors:"; cat $errs; }
check "commands that failed with ESTALE (writing)" 0 "$(grep -ci 'stale' $errs)"
# a 2 s outage must have held up at least one write: else the test did not test anything
awk -v l="$maxlat" 'BEGIN {exit !(l >= 1.5)}' && ok "a write waited for the server (${maxlat}s)" \
  || bad "no write waited for the server (slowest ${maxlat}s): did the outage happen?"

sync; echo 3 > /proc/sys/vm/drop_caches
check "read through a descriptor opened before the restart" "early file, opened before the restart" "$(cat <&3 2>&1)"
exec 3<&-
check "directory listing after restart" "$n" "$(ls "$d" | grep -c '^f[0-9]')"
nbad=0; good=0
while read -r name sum; do
  got=$(md5sum < "$d/$name" 2>>$errs | cut -d' ' -f1)
  if [ "$got" = "$sum" ]; then good=$((good+1)); else nbad=$((nbad+1)); echo "mismatch: $name: logged $sum, read ${got:-error}"; fi
done < $log
check "files with the logged checksum after restart" "$(wc -l < $log)" "$good"
check "commands that failed with ESTALE (reading back)" 0 "$(grep -ci 'stale' $errs)"
dmesg | grep -E 'nfs: server .* (not responding|OK)'

rm -r "$d" && ok "cleanup" || bad "cleanup"
echo "failures: $fail"
exit $fail
