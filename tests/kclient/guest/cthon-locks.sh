#!/bin/sh
# Guest side of run-cthon-locks.sh: per NFS version, mount the export and run each cthon
# lock test binary from /host as lock/runtests -t does ("$t -r DIR"), bounded by timeout.
# Output per run in /host/out.vV.TEST; one RESULT line per run on stdout.
umask 0
i=0; while [ ! -f /host/ready ] && [ $i -lt 120 ]; do sleep 1; i=$((i+1)); done
for t in ${CTHON_TESTS:-tlock tlocklfs}; do cp /host/$t /tmp/$t; chmod 755 /tmp/$t; done
for v in ${CTHON_VERSIONS:-3 4.0 4.1 4.2}; do
  d=/mnt/v$v
  if ! kc-mount "vers=$v" "$d"; then echo "RESULT v$v MOUNT-FAILED"; continue; fi
  dir=$d/cthon.$v.$$; mkdir -p "$dir"
  for t in ${CTHON_TESTS:-tlock tlocklfs}; do
    timeout ${CTHON_TIMEOUT:-240} /tmp/$t -r "$dir" > /host/out.v$v.$t 2>&1
    rc=$?
    echo "RESULT v$v $t rc=$rc $(grep 'results:' /host/out.v$v.$t | tr '\n' ' ')"
    grep -A3 'WARNING!\|FAILED!' /host/out.v$v.$t | grep -v '^--$' | sed 's/^/    /'
  done
  rm -rf "$dir"
  umount "$d" || umount -f "$d"
done
exit 0
