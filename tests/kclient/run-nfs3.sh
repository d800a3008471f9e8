#!/bin/bash
# NFSv3 tests with the Linux kernel client (qemu guest) against peernfsd.
#   run-nfs3.sh [PEERNFSD]        binary: $1, else $PEERNFSD, else build/bin/peernfsd
# Needs root (exits 77, "skipped", otherwise) and the packages in README.md.
# Makes its own network namespace (KC_NETNS, default kc-nfs3-PID, so it never touches a
# namespace someone else uses), export directories under a temporary directory, an exports
# file (main export rw,no_root_squash; ro export; root_squash export), starts peernfsd with
# its own rpcbind there (lib/peernfsd-netns.sh), then:
#   guest 1: guest/nfs3-basic.sh and guest/nfs3-exports.sh
#   guest 2: guest/nfs3-restart.sh, while this script kill -9s peernfsd and restarts it
#   host:    rpcbind registrations (after start, after the restart, gone after SIGTERM),
#            owner of the root-squashed file on disk, ro export unchanged, clean shutdown,
#            no sanitizer reports in peernfsd.log
# Prints a summary; exits 0 only if every check passed. Removes everything it made; the
# logs stay in the printed directory when something failed (or with KC_KEEP=1).
# Env: KC_REFERENCE=ganesha runs the same tests against NFS-Ganesha instead (checks the
#      tests themselves); KC_CAPTURE=1 (pcap per guest run), KC_VERBOSE=1, KC_GUEST_TIMEOUT
#      (seconds per guest, 360), KC_KILL_DELAY (seconds of writing before the kill, 3),
#      KC_MOUNT_OPTS (mount options of every guest mount, default vers=3,nolock),
#      KC_DEADLINE (seconds, 840: then everything is stopped and the run fails; below
#      the ctest TIMEOUT, so cleanup still happens).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${KC_REFERENCE:-}
if [ -z "$REF" ]; then
  PEERNFSD=${1:-${PEERNFSD:-$HERE/../../build/bin/peernfsd}}
  [ -x "$PEERNFSD" ] || { echo "run-nfs3.sh: no peernfsd binary at $PEERNFSD" >&2; exit 2; }
  export PEERNFSD=$(realpath "$PEERNFSD")
fi
[ "$(id -u)" = 0 ] || { echo "run-nfs3.sh: SKIP: needs root (netns, tap, qemu)" >&2; exit 77; }
for c in qemu-system-x86_64 busybox mount.nfs rpcbind rpcinfo cpio depmod gcc nsenter unshare ss; do
  command -v "$c" >/dev/null || { echo "run-nfs3.sh: $c missing: see README.md for the packages" >&2; exit 2; }
done
export KC_NETNS=${KC_NETNS:-kc-nfs3-$$}
export KC_TIMEOUT=${KC_GUEST_TIMEOUT:-360}
SRV=10.99.0.1
export KC_EXPORT_OPTS=${KC_MOUNT_OPTS:-vers=3,nolock}   # the name nfs3-exports.sh reads
T=$(mktemp -d /tmp/kclient-nfs3.XXXXXX); chmod 755 "$T"
S=$T/server                        # peernfsd-netns.sh run dir / ganesha dir
FAILS=(); NPASS=0; GUEST_PIDS=()
# watchdog: SIGALRM to us at the deadline; the traps below clean up. It must not keep our
# stdout open (ctest waits for EOF) and takes its sleep along when it is stopped.
(
  exec </dev/null >/dev/null 2>&1
  trap 'kill "$s"; exit 0' TERM
  sleep "${KC_DEADLINE:-840}" & s=$!; wait "$s" && kill -ALRM $$
) &
WATCHDOG=$!

ok() { echo "PASS: host: $*"; NPASS=$((NPASS + 1)); }
bad() { echo "FAIL: host: $*"; FAILS+=("host: $*"); }
log() { echo "=== $(date +%T) $*"; }

# --- the server under test: peernfsd, or Ganesha as the reference
if [ -z "$REF" ]; then
  EXP_DIR=$T/export RO_DIR=$T/ro SQ_DIR=$T/sq
  EXP_PATH=$EXP_DIR RO_PATH=$RO_DIR SQ_PATH=$SQ_DIR   # peernfsd: mounted by absolute path
  ctl() { "$HERE/lib/peernfsd-netns.sh" "$1" "$S" "${@:2}"; }
  srv_start() {
    # the main export lists Kerberos after sys, as the embedded default does: a client
    # that does not ask for a flavor must settle on AUTH_SYS
    printf '%s *(rw,no_root_squash,sec=sys:krb5:krb5i:krb5p)\n%s *(ro,no_root_squash)\n%s *(rw,root_squash)\n' \
      "$EXP_DIR" "$RO_DIR" "$SQ_DIR" > "$T/exports"
    ctl start --exports "$T/exports"
  }
  srv_kill9() { ctl kill9; }
  srv_restart() { ctl restart; }
  srv_term() { ctl term; }          # exit 3: needed SIGKILL
  srv_stop() { ctl stop >/dev/null 2>&1; }
  rpcbind_pid() { cat "$S/rpcbind.pid" 2>/dev/null; }
  SRV_LOG=$S/peernfsd.log
else
  [ "$REF" = ganesha ] || { echo "KC_REFERENCE: only 'ganesha'" >&2; exit 2; }
  EXP_DIR=$S/export RO_DIR=$S/ro SQ_DIR=$S/sq
  EXP_PATH=/export RO_PATH=/ro SQ_PATH=/sq             # Ganesha: mounted by pseudo path
  export KC_GANESHA_DIR=$S KC_GANESHA_CONF_EXTRA="
EXPORT { Export_Id = 2; Path = $RO_DIR; Pseudo = /ro; Protocols = 3, 4; Transports = TCP;
         Access_Type = RO; Squash = No_Root_Squash; SecType = sys; FSAL { Name = VFS; } }
EXPORT { Export_Id = 3; Path = $SQ_DIR; Pseudo = /sq; Protocols = 3, 4; Transports = TCP;
         Access_Type = RW; Squash = Root_Squash; Anonymous_Uid = 65534; Anonymous_Gid = 65534;
         SecType = sys; FSAL { Name = VFS; } }"
  srv_start() { "$HERE/ganesha-netns.sh" start; }
  srv_kill9() { "$HERE/ganesha-netns.sh" kill9; }
  srv_restart() { "$HERE/ganesha-netns.sh" restart; }
  srv_term() {
    local pid st; pid=$(cat "$S/ganesha.pid"); kill -TERM "$pid"
    for _ in $(seq 100); do   # gone, or a zombie
      st=$(ps -o stat= -p "$pid" 2>/dev/null); [ -z "$st" ] || [ "${st:0:1}" = Z ] && return 0; sleep 0.1
    done; return 3
  }
  srv_stop() { "$HERE/ganesha-netns.sh" stop >/dev/null 2>&1; }
  rpcbind_pid() { cat "$S/rpcbind.pid" 2>/dev/null; }
  SRV_LOG=$S/ganesha.log
fi
srv_rpcinfo() { local rb; rb=$(rpcbind_pid) && nsenter --target "$rb" -m -n -- rpcinfo -p 127.0.0.1 2>&1; }
# registered PROG VERS: count of tcp registrations
registered() { srv_rpcinfo | awk -v p="$1" -v v="$2" '$1 == p && $2 == v && $3 == "tcp" {n++} END {print n+0}'; }
# registered_soon PROG VERS: the server may register just after it starts listening: wait 5 s
registered_soon() {
  local i; for ((i = 0; i < 50; i++)); do [ "$(registered "$1" "$2")" -ge 1 ] && return 0; sleep 0.1; done; return 1
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ALRM
  kill "$WATCHDOG" 2>/dev/null
  for p in "${GUEST_PIDS[@]}"; do kill -- "-$p" 2>/dev/null; done   # setsid: pgid = pid
  for p in "${GUEST_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  srv_stop
  "$HERE/netns.sh" down
  if [ ${#FAILS[@]} = 0 ] && [ $rc = 0 ] && [ -z "${KC_KEEP:-}" ]; then rm -rf "$T"
  else echo "logs kept in $T (server: $SRV_LOG; guests: $T/guest-*/{console.log,share/dmesg})"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
trap 'echo "run-nfs3.sh: deadline of ${KC_DEADLINE:-840}s reached" >&2; exit 124' ALRM

# start_guest NAME MOUNT_OPTS TEST_SCRIPT [files for the 9p share]: boots one guest in the
# background (own process group), output in $T/NAME.out; sets GUEST_PID and GUEST_DIR
start_guest() {
  local name=$1 opts=$2 test=$3; shift 3
  GUEST_DIR=$T/guest-$name; mkdir -p "$GUEST_DIR/share"
  for f in "$@"; do cp "$f" "$GUEST_DIR/share/"; done
  KC_RUNDIR=$GUEST_DIR setsid "$HERE/run-guest.sh" "$SRV:$EXP_PATH" "$opts" "$test" \
    > "$T/$name.out" 2>&1 < /dev/null &
  GUEST_PID=$!; GUEST_PIDS+=("$GUEST_PID")
}
# finish_guest NAME: waits for it, prints its output, collects its FAIL lines
finish_guest() {
  local name=$1 rc
  wait "$GUEST_PID"; rc=$?
  cat "$T/$name.out"
  NPASS=$((NPASS + $(grep -c '^PASS:' "$T/$name.out")))
  while IFS= read -r l; do FAILS+=("$name: ${l#FAIL: }"); done < <(grep '^FAIL:' "$T/$name.out")
  case $rc in
    0) ;;
    100) bad "$name: guest could not mount $SRV:$EXP_PATH";;
    124) bad "$name: guest timed out (${KC_TIMEOUT}s)";;
    125) bad "$name: guest died without a result";;
    *) grep -q '^FAIL:' "$T/$name.out" || bad "$name: exit status $rc without a FAIL line";;
  esac
}

# --- set up
log "netns $KC_NETNS, work dir $T, server ${REF:-peernfsd $PEERNFSD}"
"$HERE/netns.sh" up || exit 1
"$HERE/build-initramfs.sh" >/dev/null || exit 1
mkdir -p "$EXP_DIR" "$RO_DIR" "$SQ_DIR"
head -c 1048576 /dev/urandom > "$RO_DIR/ro-file"
RO_MD5=$(md5sum < "$RO_DIR/ro-file" | cut -d' ' -f1)
chmod 1777 "$SQ_DIR"                       # squashed root must be able to create here
echo secret > "$SQ_DIR/root-only"; chmod 600 "$SQ_DIR/root-only"
echo anon > "$SQ_DIR/anon-only"; chown 65534:65534 "$SQ_DIR/anon-only"; chmod 600 "$SQ_DIR/anon-only"

log "start server"
srv_start || { bad "server start"; exit 1; }
registered_soon 100003 3 && ok "rpcbind: NFS v3 registered" || bad "rpcbind: NFS v3 not registered: $(srv_rpcinfo | tr '\n' ';')"
registered_soon 100005 3 && ok "rpcbind: MOUNT v3 registered" || bad "rpcbind: MOUNT v3 not registered"
registered_soon 100005 1 && ok "rpcbind: MOUNT v1 registered" || bad "rpcbind: MOUNT v1 not registered"

# --- guest 1: basic + exports (one boot; the wrapper runs both from the 9p share)
log "guest 1: nfs3-basic.sh + nfs3-exports.sh"
cat > "$T/guest1.sh" <<'EOF'
#!/bin/sh
total=0
for t in nfs3-basic.sh nfs3-exports.sh; do
  echo "--- $t"; (cd "$NFS_MNT" && sh "/host/$t"); rc=$?
  echo "--- $t: $rc failures"; total=$((total + rc))
done
[ $total -gt 99 ] && total=99     # 100 and up are the harness's own codes
exit $total
EOF
export KC_RO_EXPORT=$RO_PATH KC_SQ_EXPORT=$SQ_PATH KC_RO_MD5=$RO_MD5
export KC_ENV_EXTRA="KC_RO_EXPORT KC_SQ_EXPORT KC_RO_MD5 KC_EXPORT_OPTS"
start_guest basic "$KC_EXPORT_OPTS" "$T/guest1.sh" "$HERE/guest/nfs3-basic.sh" "$HERE/guest/nfs3-exports.sh"
finish_guest basic
# host side of the squash check: who owns the file that root created through the export
if probe=$(cat "$GUEST_DIR/share/squash-probe" 2>/dev/null) && [ -n "$probe" ]; then
  own=$(stat -c %u:%g "$SQ_DIR/$probe" 2>&1)
  [ "$own" = 65534:65534 ] && ok "root_squash: $probe owned by 65534:65534 on the server's disk" \
    || bad "root_squash: $probe owned by '$own' on the server's disk, expected 65534:65534"
else bad "root_squash: the guest left no squash-probe"; fi
[ "$(md5sum < "$RO_DIR/ro-file" | cut -d' ' -f1)" = "$RO_MD5" ] && [ "$(ls "$RO_DIR")" = ro-file ] \
  && ok "ro export unchanged on disk" || bad "ro export changed on disk: $(ls -l "$RO_DIR" | tr '\n' ';')"
[ -z "$(ls "$EXP_DIR")" ] && ok "main export empty after the guest's cleanup" \
  || bad "main export not empty: $(ls "$EXP_DIR" | head -5 | tr '\n' ' ')"

# --- guest 2: kill -9 and restart the server under a writer
log "guest 2: nfs3-restart.sh (server killed and restarted under load)"
unset KC_ENV_EXTRA
# wsize 256 KiB: each 1 MiB file then goes out as UNSTABLE WRITEs + COMMIT, so a kill during
# a flush leaves uncommitted writes that the client must send again to the new instance
start_guest restart "$KC_EXPORT_OPTS,wsize=262144" "$HERE/guest/nfs3-restart.sh"
for ((i = 0; i < 240; i++)); do            # the guest boots and writes its first file
  [ -e "$GUEST_DIR/share/restart.writing" ] && break
  kill -0 "$GUEST_PID" 2>/dev/null || break; sleep 0.5
done
if [ -e "$GUEST_DIR/share/restart.writing" ]; then
  sleep "${KC_KILL_DELAY:-3}"
  log "kill -9 server"; srv_kill9 || bad "kill -9 of the server"
  # The killed server leaves its registrations behind, as after a real crash. Remove only
  # MOUNT v1: the new instance must register that afresh and cope with the stale NFS entry.
  nsenter --target "$(rpcbind_pid)" -m -n -- rpcinfo -d 100005 1 >/dev/null 2>&1
  sleep 2
  log "restart server"
  if srv_restart; then
    touch "$GUEST_DIR/share/restart.restarted"
    registered_soon 100005 1 && ok "rpcbind: the restarted server registered (MOUNT v1)" \
      || bad "rpcbind: MOUNT v1 not registered by the restarted server: $(srv_rpcinfo | tr '\n' ';')"
    registered_soon 100003 3 && ok "rpcbind: NFS v3 registered after the restart (over the stale entry)" \
      || bad "rpcbind: NFS v3 not registered after the restart: $(srv_rpcinfo | tr '\n' ';')"
  else bad "server restart after kill -9"; fi
else bad "restart guest never started writing"; fi
finish_guest restart

# --- shut down: SIGTERM must end the server promptly and remove its registrations
log "SIGTERM server"
srv_term; rc=$?
[ $rc = 0 ] && ok "server exited within 10 s of SIGTERM" || bad "server did not exit within 10 s of SIGTERM (killed)"
if [ -z "$REF" ]; then   # peernfsd(8): "the registrations are removed on SIGTERM/SIGINT"
  n=$(( $(registered 100003 3) + $(registered 100005 3) + $(registered 100005 1) ))
  [ "$n" = 0 ] && ok "rpcbind registrations removed on SIGTERM" \
    || bad "rpcbind registrations left after SIGTERM: $(srv_rpcinfo | awk '$1 == 100003 || $1 == 100005' | tr '\n' ';')"
fi
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$SRV_LOG" 2>/dev/null; then
  bad "sanitizer reports in $SRV_LOG: $(grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$SRV_LOG")"
fi

echo
echo "=== summary: $NPASS passed, ${#FAILS[@]} failed (server: ${REF:-peernfsd})"
for f in "${FAILS[@]}"; do echo "  FAIL: $f"; done
[ ${#FAILS[@]} = 0 ]
