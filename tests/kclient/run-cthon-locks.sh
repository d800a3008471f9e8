#!/bin/bash
# The Connectathon lock tests (cthon04 lock/tlock.c, built by you: it is not packaged and
# not part of this repository) through the Linux kernel NFS client against peernfsd, over
# NFSv3 + NLM, 4.0, 4.1 and 4.2, as lock/runtests -t runs them ("tlock -r DIR").
#
#   CTHON_BIN=/path/to/dir/with/tlock+tlocklfs tests/kclient/run-cthon-locks.sh build/bin/peernfsd
#
# Build the binaries statically (the guest is a busybox initramfs), from cthon04's lock/:
#   gcc -w -std=gnu89 -DSTDARG -DMMAP -D_LARGEFILE64_SOURCE -static -o tlock tlock.c -lm
#   gcc -w -std=gnu89 -DSTDARG -DMMAP -D_LARGEFILE64_SOURCE -DLF_SUMMIT -static -o tlocklfs tlock.c -lm
# Env: CTHON_VERSIONS ("3 4.0 4.1 4.2"), CTHON_TESTS ("tlock tlocklfs"), CTHON_TIMEOUT
# (240 s per run), PN_ARGS (extra peernfsd options, e.g. --no-delegations so that NFSv4
# locks reach the server instead of being kept under a delegation), KC_CAPTURE=1.
# Exit status 1 when any run reports a failure or does not finish.
set -uo pipefail
K=$(cd "$(dirname "$0")" && pwd)
PEERNFSD=$(realpath "${1:?usage: CTHON_BIN=DIR $0 path/to/peernfsd}")
: "${CTHON_BIN:?set CTHON_BIN to the directory holding tlock and tlocklfs}"
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 1; }
for t in ${CTHON_TESTS:-tlock tlocklfs}; do
  [ -x "$CTHON_BIN/$t" ] || { echo "no $CTHON_BIN/$t" >&2; exit 1; }
done
export PEERNFSD KC_NETNS=kc-cthon-$$ KC_TIMEOUT=${KC_TIMEOUT:-1500}
T=$(mktemp -d /tmp/kc-cthon.XXXXXX); chmod 755 "$T"; mkdir -p "$T/guest/share"
S=$T/server GRACE=10
cleanup() {
  trap - EXIT INT TERM
  [ -n "${RDY:-}" ] && kill "$RDY" 2>/dev/null
  "$K/lib/peernfsd-netns.sh" stop "$S" >/dev/null 2>&1
  "$K/netns.sh" down
  echo "logs in $T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$K/netns.sh" up >/dev/null || exit 1
EXP=$T/export; mkdir -p "$EXP"; chmod 777 "$EXP"
printf '%s *(rw,no_root_squash)\n' "$EXP" > "$T/exports"
"$K/lib/peernfsd-netns.sh" start "$S" --exports "$T/exports" --grace $GRACE ${PN_ARGS:-} || exit 1
# the guest starts once the grace period is over (share/ready)
( sleep $((GRACE + 2)); : > "$T/guest/share/ready" ) & RDY=$!
for t in ${CTHON_TESTS:-tlock tlocklfs}; do cp "$CTHON_BIN/$t" "$T/guest/share/"; done
KC_ENV_EXTRA="CTHON_VERSIONS CTHON_TESTS CTHON_TIMEOUT" KC_RUNDIR=$T/guest \
  "$K/run-guest.sh" "10.99.0.1:$(realpath "$EXP")" none "$K/guest/cthon-locks.sh" > "$T/guest.out" 2> "$T/guest.err"
grep -E '^(RESULT|    )' "$T/guest.out"
n=$(grep -c '^RESULT' "$T/guest.out")
# clean: exit 0, both parent and child reported, and no nonzero fail count
bad=$(grep '^RESULT' "$T/guest.out" | awk '!/ rc=0 / || / [1-9][0-9]*\/[0-9]+ fail/ || gsub(/results:/, "&") != 2' | wc -l)
echo "cthon lock runs: $n, not clean: $bad"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]
