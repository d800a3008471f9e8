#!/bin/bash
# Boot the Debian kernel under qemu (TCG) in netns KC_NETNS, mount SERVER:EXPORT with
# the real Linux NFS client, run a test script in the guest, return its output + status.
#   run-guest.sh SERVER[:EXPORT] MOUNT_OPTS TEST_SCRIPT
#     MOUNT_OPTS: mount.nfs -o options, e.g. vers=4.2 | vers=3,nolock | vers=4.1,minorversion=1
#                 or "none" (no mount; the test calls `kc-mount OPTS [DIR]` itself)
#   The test runs with cwd = the mount (/mnt/nfs) and env KC_SERVER KC_EXPORT KC_OPTS NFS_MNT.
# Exit status: the test's; 100 mount failed; 124 timeout; 125 guest died without result.
# Env: KC_NETNS=kclient KC_TAP=kctapN (kctap0; guest IP 10.99.0.(N+2)/24, hostname
#      kclient-N, so guests on different taps can run at once) KC_MEM=1024 KC_SMP=2
#      KC_TIMEOUT=900 KC_CACHE=/tmp/peernfs-kclient-cache KC_RUNDIR=(new dir under /tmp/kclient-runs)
#      KC_ENV_EXTRA="NAME..." (host variables exported to the test with their values)
#      KC_VERBOSE=1 (stream guest console to stderr) KC_CAPTURE=1 (tshark -> RUNDIR/capture.pcap)
#      KC_APPEND="extra kernel args"
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,15p' "$0" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
SRV=${1%%:*}; EXP=/; [[ $1 == *:* ]] && EXP=${1#*:}
OPTS=$2; TEST=$3; [ -r "$TEST" ] || { echo "no test script $TEST" >&2; exit 2; }
NS=${KC_NETNS:-kclient}; TAP=${KC_TAP:-kctap0}; N=${TAP##*[!0-9]}; N=${N:-0}
CACHE=$("$HERE/build-initramfs.sh" "${KC_CACHE:-/tmp/peernfs-kclient-cache}")
mkdir -p /tmp/kclient-runs
RUN=${KC_RUNDIR:-$(mktemp -d /tmp/kclient-runs/run.XXXXXX)}; mkdir -p "$RUN/share"
ip -n "$NS" link show "$TAP" >/dev/null 2>&1 || { echo "no $TAP in netns $NS: run netns.sh up" >&2; exit 2; }

cp "$TEST" "$RUN/share/test.sh"
cat > "$RUN/share/env" <<EOF
KC_SERVER='$SRV'; KC_EXPORT='$EXP'; KC_OPTS='$OPTS'; KC_IP='${KC_GUEST_IP:-10.99.0.$((N + 2))/24}'; KC_HOSTNAME=kclient-$N
EOF
# extra variables for the test, single-quoted for the guest's POSIX sh (' becomes '\'')
sq="'\\''"
for v in ${KC_ENV_EXTRA:-}; do
  [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "KC_ENV_EXTRA: bad name '$v'" >&2; exit 2; }
  val=${!v-}; printf "export %s='%s'\n" "$v" "${val//\'/$sq}" >> "$RUN/share/env"
done

cap= tl= qpid=
# interrupted: stop qemu too (timeout runs it in a process group of its own, so a signal
# to ours does not reach it), then the capture and the console tail
trap 'for p in $qpid $cap $tl; do kill -TERM "$p" 2>/dev/null; done; exit 130' INT TERM
if [ -n "${KC_CAPTURE:-}" ]; then
  ip netns exec "$NS" tshark -q -i "$TAP" -w "$RUN/capture.pcap" 2>"$RUN/tshark.log" & cap=$!
  for _ in $(seq 50); do grep -q Capturing "$RUN/tshark.log" 2>/dev/null && break; sleep 0.2; done
fi
: > "$RUN/console.log"
[ -n "${KC_VERBOSE:-}" ] && { tail -f "$RUN/console.log" >&2 & tl=$!; }
t0=$(date +%s.%N); qrc=0
timeout -k 10 "${KC_TIMEOUT:-900}" ip netns exec "$NS" qemu-system-x86_64 \
  -nodefaults -no-reboot -display none -monitor none -serial "file:$RUN/console.log" \
  -accel tcg,thread=multi -smp "${KC_SMP:-2}" -m "${KC_MEM:-1024}" \
  -kernel "$CACHE/vmlinuz" -initrd "$CACHE/initramfs.cpio" \
  -append "console=ttyS0 quiet panic=-1 ${KC_APPEND:-}" \
  -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=52:54:00:99:00:$(printf %02x "$N")" \
  -fsdev "local,id=fs0,path=$RUN/share,security_model=none" -device virtio-9p-pci,fsdev=fs0,mount_tag=kchost &
qpid=$!; wait "$qpid" || qrc=$?; qpid=
t1=$(date +%s.%N)
[ -n "${tl:-}" ] && kill "$tl" 2>/dev/null
[ -n "$cap" ] && { kill -INT "$cap" 2>/dev/null; wait "$cap" 2>/dev/null || true; }

[ -f "$RUN/share/output" ] && cat "$RUN/share/output"
rc=$(cat "$RUN/share/rc" 2>/dev/null || echo 125); [ "$qrc" = 124 ] && rc=124
if [ "$rc" = 100 ] || [ "$rc" = 124 ] || [ "$rc" = 125 ]; then
  echo "kclient: guest failed (rc=$rc); console:" >&2; tail -30 "$RUN/console.log" >&2
fi
[ -f "$RUN/share/timing" ] && awk -v wall="$(awk "BEGIN{print $t1 - $t0}")" '{t[$1]=$2} END {
  printf "kclient: wall %.1fs | kernel->init %.1fs | modules %.1fs | net %.1fs | mount %s | test %s\n",
    wall, t["init_start"], t["modules_loaded"]-t["init_start"], t["network_up"]-t["modules_loaded"],
    ("mounted" in t) ? sprintf("%.1fs", t["mounted"]-t["network_up"]) : "-",
    ("test_done" in t) ? sprintf("%.1fs", t["test_done"]-(("mounted" in t) ? t["mounted"] : t["network_up"])) : "-" }' \
  "$RUN/share/timing" >&2 || true
echo "kclient: rc=$rc, logs in $RUN (console.log, share/dmesg${cap:+, capture.pcap})" >&2
exit "$rc"
