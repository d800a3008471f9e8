#!/bin/bash
# NFSv4.0/4.1/4.2 tests with the Linux kernel client (qemu guest), against peernfsd or a
# reference server.
#   run-nfs4.sh [--server peernfsd|ganesha|knfsd] [PEERNFSD]
#     --server (or KC_REFERENCE=ganesha|knfsd, as for run-nfs3.sh): the server under test,
#     default peernfsd; binary: PEERNFSD argument, else $PEERNFSD, else build/bin/peernfsd
# Needs root (exits 77, "skipped", otherwise) and the packages in README.md.
# Makes its own network namespace (KC_NETNS, default kc-nfs4-PID), export directories under
# a temporary directory (main export rw,no_root_squash; ro export; root_squash export),
# starts the server there, then boots ONE guest that runs guest/nfs4-suite.sh: for each of
# vers=4.0, 4.1, 4.2 it mounts the main export by its NFSv4 path and runs
#   guest/nfs3-basic.sh, guest/nfs3-exports.sh (KC_EXPORTS_V4=1), guest/nfs4-state.sh
#   (locks, delegation recall, locks against an NFSv3+NLM mount of the same export
#   (KC_V3_EXPORT) and against a process on the server, open+lock reclaim after a restart)
#   and guest/nfs3-restart.sh
# While the guest runs, this script serves its restart requests: when the guest creates
# TAG.writing in its 9p share, the server is killed with SIGKILL after KC_KILL_DELAY (3) s,
# started again 2 s later, and TAG.restarted is created. It also plays a local process on
# the server (lib/hostlock.py, fcntl locks on the export's files; not for knfsd, whose disk
# is in its guest): TAG.hostlock (a path relative to the export) -> it locks the file,
# answers TAG.hostlocked, unlocks once TAG.hostunlock exists and answers TAG.hostunlocked;
# TAG.hosttry -> a non-blocking lock attempt, answered in TAG.hosttried (EAGAIN/got). After the guest: owner on disk of
# each version's root-squashed file, ro export unchanged, main export empty, SIGTERM exit
# within 10 s, no sanitizer reports in peernfsd.log.
# Export paths: peernfsd joins its exports into the pseudo file system at their own paths,
# so a v4 mount uses the same path as v3 (the export directory's absolute path); Ganesha
# uses its Pseudo paths /export, /ro, /sq.
# Versions: peernfsd must serve all three. Ganesha may lack 4.2 (KC_V4_OPTIONAL="4.2"): a
# version that cannot be mounted then prints SKIP, a version that mounts is tested fully.
# Ganesha runs with a 20 s grace period (Graceless = false) and a 20 s lease, so reclaims
# after the restart are real reclaims, and with delegations enabled (NFSv4 Delegations,
# export Delegations = R; its VFS FSAL grants none all the same, see README.md).
# knfsd (knfsd-run.sh: the kernel's server in a second guest at 10.99.0.2, one export, the
# NFSv4 root "/", 15 s lease and grace): parts basic, state and restart only (SKIP for
# exports: no ro or root_squash export there, and no access to its disk); its "kill -9" is
# `rpc.nfsd 0` (all NFSv4 state discarded) and the restart `rpc.nfsd 8`.
# Prints a summary; exits 0 only if every check passed. Removes everything it made; the
# logs stay in the printed directory when something failed (or with KC_KEEP=1): server log,
# guest console.log and share/dmesg (the guest's kernel log, always captured).
# Env: KC_V4_VERSIONS ("4.0 4.1 4.2"), KC_V4_OPTIONAL (versions allowed to be missing),
#      KC_V4_EXTRA_OPTS (more mount options for every mount), KC_V4_PARTS ("basic exports
#      state restart"), KC_PEERNFSD_ARGS (extra peernfsd arguments, default "--grace 15": a
#      short grace period after the restarts), KC_CAPTURE=1, KC_VERBOSE=1, KC_KEEP=1,
#      KC_GUEST_TIMEOUT (seconds for the guest, 1500), KC_KILL_DELAY (3), KC_DEADLINE
#      (seconds for the whole run, 1680: below the ctest TIMEOUT, so cleanup still happens).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REF=${KC_REFERENCE:-}
while [ $# -gt 0 ]; do
  case $1 in
    --server) REF=${2:-}; shift 2;;
    --server=*) REF=${1#--server=}; shift;;
    -h|--help) sed -n '2,40p' "$0"; exit 0;;
    *) break;;
  esac
done
[ "$REF" = peernfsd ] && REF=
case $REF in
  ''|ganesha|knfsd) ;;
  *) echo "run-nfs4.sh: --server: peernfsd, ganesha or knfsd, not '$REF'" >&2; exit 2;;
esac
if [ -z "$REF" ]; then
  PEERNFSD=${1:-${PEERNFSD:-$HERE/../../build/bin/peernfsd}}
  [ -x "$PEERNFSD" ] || { echo "run-nfs4.sh: no peernfsd binary at $PEERNFSD" >&2; exit 2; }
  export PEERNFSD=$(realpath "$PEERNFSD")
fi
[ "$(id -u)" = 0 ] || { echo "run-nfs4.sh: SKIP: needs root (netns, tap, qemu)" >&2; exit 77; }
for c in qemu-system-x86_64 busybox mount.nfs rpcbind rpcinfo cpio depmod gcc nsenter unshare ss; do
  command -v "$c" >/dev/null || { echo "run-nfs4.sh: $c missing: see README.md for the packages" >&2; exit 2; }
done
[ "$REF" = ganesha ] && ! command -v ganesha.nfsd >/dev/null && { echo "run-nfs4.sh: ganesha.nfsd missing (nfs-ganesha nfs-ganesha-vfs)" >&2; exit 2; }
export KC_NETNS=${KC_NETNS:-kc-nfs4-$$}
export KC_TIMEOUT=${KC_GUEST_TIMEOUT:-1500}
SRV=10.99.0.1 SRV2=10.99.0.254    # the server's two addresses (SRV2: a second client identity)
PARTS=${KC_V4_PARTS:-basic exports state restart}
T=$(mktemp -d /tmp/kclient-nfs4.XXXXXX); chmod 755 "$T"
S=$T/server                        # peernfsd-netns.sh run dir / ganesha dir
FAILS=(); NPASS=0; NSKIP=0; GUEST_PID= TAIL= HOSTLOCK_PIDS=()
declare -A HOST_SERVED   # host lock requests served (by share file name)
# watchdog: SIGALRM to us at the deadline; the traps below clean up. It must not keep our
# stdout open (ctest waits for EOF) and takes its sleep along when it is stopped.
(
  exec </dev/null >/dev/null 2>&1
  trap 'kill "$s"; exit 0' TERM
  sleep "${KC_DEADLINE:-1680}" & s=$!; wait "$s" && kill -ALRM $$
) &
WATCHDOG=$!

ok() { echo "PASS: host: $*"; NPASS=$((NPASS + 1)); }
bad() { echo "FAIL: host: $*"; FAILS+=("host: $*"); }
log() { echo "=== $(date +%T) $*"; }

# --- the server under test: peernfsd, or Ganesha as the reference
if [ -z "$REF" ]; then
  EXP_DIR=$T/export RO_DIR=$T/ro SQ_DIR=$T/sq
  EXP_PATH=$EXP_DIR RO_PATH=$RO_DIR SQ_PATH=$SQ_DIR   # pseudo fs: exports at their own paths
  VERSIONS=${KC_V4_VERSIONS:-4.0 4.1 4.2} OPTIONAL=${KC_V4_OPTIONAL:-}
  ctl() { "$HERE/lib/peernfsd-netns.sh" "$1" "$S" "${@:2}"; }
  srv_start() {
    # the main export lists Kerberos after sys, as the embedded default does: a client
    # that does not ask for a flavor must settle on AUTH_SYS
    printf '%s *(rw,no_root_squash,sec=sys:krb5:krb5i:krb5p)\n%s *(ro,no_root_squash)\n%s *(rw,root_squash)\n' \
      "$EXP_DIR" "$RO_DIR" "$SQ_DIR" > "$T/exports"
    # shellcheck disable=SC2086  # KC_PEERNFSD_ARGS: words
    ctl start --exports "$T/exports" ${KC_PEERNFSD_ARGS---grace 15}
  }
  srv_kill9() { ctl kill9; }
  srv_restart() { ctl restart; }
  srv_term() { ctl term; }          # exit 3: needed SIGKILL
  srv_stop() { ctl stop >/dev/null 2>&1; }
  SRV_LOG=$S/peernfsd.log
elif [ "$REF" = knfsd ]; then
  EXP_DIR= RO_DIR= SQ_DIR= EXP_PATH=/ RO_PATH= SQ_PATH= KR=  # KR: knfsd-run.sh's run dir
  SRV=10.99.0.2 SRV2=10.99.0.253; export KC_TAP=kctap1  # the server guest has kctap0
  VERSIONS=${KC_V4_VERSIONS:-4.0 4.1 4.2} OPTIONAL=${KC_V4_OPTIONAL:-}
  PARTS=${KC_V4_PARTS:-basic state restart}
  [[ " $PARTS " == *" exports "* ]] && { echo "run-nfs4.sh: knfsd: no 'exports' part (one export only)" >&2; exit 2; }
  srv_start() { KR=$(KC_TAP=kctap0 KC_KNFSD_ADDR2=$SRV2/24 "$HERE/knfsd-run.sh" start); }
  srv_kill9() { "$HERE/knfsd-run.sh" nfsd "$KR" 0; }
  srv_restart() { "$HERE/knfsd-run.sh" nfsd "$KR" 8; }
  srv_term() { [ -n "$KR" ] && "$HERE/knfsd-run.sh" stop "$KR"; }
  srv_stop() {
    [ -n "$KR" ] || return 0
    "$HERE/knfsd-run.sh" stop "$KR" >/dev/null 2>&1 || kill -- "-$(cat "$KR/guest.pid")" 2>/dev/null
  }
  SRV_LOG="the knfsd guest's run dir (/tmp/kclient-runs/knfsd.*)"
else
  EXP_DIR=$S/export RO_DIR=$S/ro SQ_DIR=$S/sq
  EXP_PATH=/export RO_PATH=/ro SQ_PATH=/sq             # Ganesha: Pseudo paths
  VERSIONS=${KC_V4_VERSIONS:-4.0 4.1 4.2} OPTIONAL=${KC_V4_OPTIONAL-4.2}
  export KC_GANESHA_DIR=$S KC_GANESHA_GRACELESS=false
  export KC_GANESHA_LEASE=20 KC_GANESHA_NFSV4="Grace_Period = 20; Delegations = true;" KC_GANESHA_EXPORT="Delegations = R;"
  export KC_GANESHA_CONF_EXTRA="
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
  SRV_LOG=$S/ganesha.log
fi
listening() {   # knfsd runs in a guest: rpc.nfsd's status says it all
  [ "$REF" = knfsd ] || [ -n "$(ip netns exec "$KC_NETNS" ss -Hltn 'sport = :2049' 2>/dev/null)" ]
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM ALRM
  kill "$WATCHDOG" 2>/dev/null
  [ -n "$GUEST_PID" ] && { kill -- "-$GUEST_PID" 2>/dev/null; wait "$GUEST_PID" 2>/dev/null; }  # setsid: pgid = pid
  [ -n "$TAIL" ] && kill "$TAIL" 2>/dev/null
  for p in "${HOSTLOCK_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  srv_stop
  "$HERE/netns.sh" down
  if [ ${#FAILS[@]} = 0 ] && [ $rc = 0 ] && [ -z "${KC_KEEP:-}" ]; then rm -rf "$T"
  else echo "logs kept in $T (server: $SRV_LOG; guest: $T/guest/{console.log,share/dmesg}; output: $T/guest.out)"; fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM
trap 'echo "run-nfs4.sh: deadline of ${KC_DEADLINE:-1680}s reached" >&2; exit 124' ALRM

# serve_restart TAG: the guest asked for a server restart (it created TAG.writing)
serve_restart() {
  local tag=$1
  sleep "${KC_KILL_DELAY:-3}"
  log "$tag: kill -9 server"
  srv_kill9 || { bad "$tag: kill -9 of the server"; return; }
  sleep 2
  log "$tag: restart server"
  if srv_restart && listening; then
    ok "$tag: server killed with SIGKILL and restarted"
  else bad "$tag: server restart after kill -9"; fi
  touch "$G/share/$tag.restarted"   # also after a failure: the guest then reports what broke
}

# serve_hostlock FILE: the guest asked for a lock by a local process on the server
# (FILE: TAG.hostlock or TAG.hosttry in the share, holding a path relative to the export)
serve_hostlock() {
  local req=$1 name kind tag rel f
  name=$(basename "$req"); kind=${name##*.}; tag=${name%.*}
  rel=$(cat "$req" 2>/dev/null); f=$(realpath -m "$EXP_DIR/$rel")
  case $f in
    "$(realpath "$EXP_DIR")"/?*) ;;
    *) local ans=$tag.hostlocked; [ "$kind" = hosttry ] && ans=$tag.hosttried
       echo "error: '$rel' is not a path in the export" > "$G/share/$ans"; return;;
  esac
  log "$tag: $kind $f"
  if [ "$kind" = hostlock ]; then
    python3 "$HERE/lib/hostlock.py" hold "$f" "$G/share/$tag.hostlocked" "$G/share/$tag.hostunlock" \
      "$G/share/$tag.hostunlocked" >> "$T/hostlock.log" 2>&1 &
    HOSTLOCK_PIDS+=($!)
  else
    python3 "$HERE/lib/hostlock.py" try "$f" "$G/share/$tag.hosttried" >> "$T/hostlock.log" 2>&1
  fi
}

# --- set up
log "netns $KC_NETNS, work dir $T, server ${REF:-peernfsd $PEERNFSD}, versions $VERSIONS${OPTIONAL:+ (optional: $OPTIONAL)}"
"$HERE/netns.sh" up || exit 1
"$HERE/build-initramfs.sh" >/dev/null || exit 1
RO_MD5=
if [ "$REF" != knfsd ]; then
  # the server's second address: guest/nfs4-state.sh mounts through it as a second client
  ip -n "$KC_NETNS" addr add "$SRV2/24" dev kcbr0 || exit 1
  mkdir -p "$EXP_DIR" "$RO_DIR" "$SQ_DIR"
  head -c 1048576 /dev/urandom > "$RO_DIR/ro-file"
  RO_MD5=$(md5sum < "$RO_DIR/ro-file" | cut -d' ' -f1)
  chmod 1777 "$SQ_DIR"                       # squashed root must be able to create here
  echo secret > "$SQ_DIR/root-only"; chmod 600 "$SQ_DIR/root-only"
  echo anon > "$SQ_DIR/anon-only"; chown 65534:65534 "$SQ_DIR/anon-only"; chmod 600 "$SQ_DIR/anon-only"
fi

log "start server"
srv_start || { bad "server start"; exit 1; }
listening && ok "server listening on port 2049" || bad "server not listening on port 2049"
[ "$REF" = knfsd ] && echo "SKIP: host: knfsd: no 'exports' part (ro and root_squash exports): run-nfs4.sh sets up only one knfsd export"

# --- the guest: every version, one boot
G=$T/guest; mkdir -p "$G/share"
for f in nfs3-basic.sh nfs3-exports.sh nfs3-restart.sh nfs4-state.sh; do cp "$HERE/guest/$f" "$G/share/"; done
export KC_RO_EXPORT=$RO_PATH KC_SQ_EXPORT=$SQ_PATH KC_RO_MD5=$RO_MD5 KC_V4_VERSIONS=$VERSIONS KC_V4_OPTIONAL=$OPTIONAL
export KC_V4_EXTRA_OPTS=${KC_V4_EXTRA_OPTS:-} KC_V4_PARTS=$PARTS
export KC_SERVER2=$SRV2
# the main export by its NFSv3 (MOUNT) path: peernfsd the same path; Ganesha its Pseudo
# path (Mount_Path_Pseudo); knfsd the exported directory in its guest
if [ "$REF" = knfsd ]; then export KC_V3_EXPORT=/srv/export KC_HOSTLOCK=0
else export KC_V3_EXPORT=$EXP_PATH KC_HOSTLOCK=1; fi
# peernfsd sends CB_NOTIFY_LOCK to 4.1+ lock waiters (the guest checks the prompt grant)
[ -z "$REF" ] && export KC_NOTIFY_LOCK=1 || export KC_NOTIFY_LOCK=0
# NFSv4.2 user xattrs (RFC 8276): peernfsd and knfsd serve them, Ganesha 4.3 does not
[ "$REF" = ganesha ] && export KC_XATTR=0 || export KC_XATTR=1
if [ -z "$REF" ] && ! python3 -c 'import os, sys; p = sys.argv[1] + "/.xattr-probe"; open(p, "w").close()
try: os.setxattr(p, "user.probe", b"1")
finally: os.unlink(p)' "$EXP_DIR" 2>/dev/null; then
  echo "SKIP: host: the export's file system ($EXP_DIR) stores no user xattrs: no xattr checks"; KC_XATTR=0
fi
export KC_ENV_EXTRA="KC_RO_EXPORT KC_SQ_EXPORT KC_RO_MD5 KC_V4_VERSIONS KC_V4_OPTIONAL KC_V4_EXTRA_OPTS KC_V4_PARTS KC_SERVER2 KC_V3_EXPORT KC_HOSTLOCK KC_NOTIFY_LOCK KC_XATTR"
log "guest: guest/nfs4-suite.sh, versions $VERSIONS, parts $KC_V4_PARTS"
KC_RUNDIR=$G setsid "$HERE/run-guest.sh" "$SRV:$EXP_PATH" none "$HERE/guest/nfs4-suite.sh" \
  > "$T/guest.out" 2>&1 < /dev/null &
GUEST_PID=$!
# stream the guest's output (the guest writes it to its share as it goes) while serving
# its restart requests
tail -n +1 -F "$G/share/output" 2>/dev/null & TAIL=$!
while kill -0 "$GUEST_PID" 2>/dev/null; do
  for w in "$G"/share/*.writing; do
    [ -e "$w" ] || continue
    tag=$(basename "$w" .writing)
    [ -e "$G/share/$tag.taken" ] && continue
    touch "$G/share/$tag.taken"; serve_restart "$tag"
  done
  for r in "$G"/share/*.hostlock "$G"/share/*.hosttry; do
    [ -e "$r" ] && [ -z "${HOST_SERVED[$r]:-}" ] || continue
    HOST_SERVED[$r]=1; serve_hostlock "$r"
  done
  sleep 0.5
done
wait "$GUEST_PID"; rc=$?; GUEST_PID=
sleep 1; kill "$TAIL" 2>/dev/null; wait "$TAIL" 2>/dev/null; TAIL=
for p in "${HOSTLOCK_PIDS[@]}"; do   # each holder ends when the guest lets go of it
  st=$(ps -o stat= -p "$p" 2>/dev/null)
  [ -n "$st" ] && [ "${st:0:1}" != Z ] && { kill "$p"; bad "host lock holder (pid $p) still running after the guest"; }
  wait "$p" 2>/dev/null
done
HOSTLOCK_PIDS=()
[ -s "$T/hostlock.log" ] && { echo "--- host lock requests:"; sed 's/^/  /' "$T/hostlock.log"; }
# run-guest.sh's own lines: they follow its copy of the output in guest.out
tail -n +$(( $(cat "$G/share/output" 2>/dev/null | wc -l) + 1 )) "$T/guest.out"
NPASS=$((NPASS + $(grep -c '^PASS:' "$T/guest.out")))
NSKIP=$(grep -c '^SKIP:' "$T/guest.out")
[ "$REF" = knfsd ] && NSKIP=$((NSKIP + 1))
while IFS= read -r l; do FAILS+=("guest: ${l#FAIL: }"); done < <(grep '^FAIL:' "$T/guest.out")
case $rc in
  0) ;;
  124) bad "guest timed out (${KC_TIMEOUT}s)";;
  125) bad "guest died without a result";;
  *) grep -q '^FAIL:' "$T/guest.out" || bad "guest: exit status $rc without a FAIL line";;
esac
if [ $rc != 0 ] && [ -s "$G/share/dmesg" ]; then   # the guest's kernel log, for the record
  echo "--- guest dmesg (NFS lines; all of it in $G/share/dmesg)"
  grep -iE 'nfs|rpc|lockd' "$G/share/dmesg" | tail -40
fi

# --- host side of the per-version checks
if [[ " $PARTS " == *" exports "* ]]; then
  for v in $VERSIONS; do
    grep -q "^SKIP: \[v$v\]" "$T/guest.out" && continue
    if probe=$(cat "$G/share/squash-probe.$v" 2>/dev/null) && [ -n "$probe" ]; then
      own=$(stat -c %u:%g "$SQ_DIR/$probe" 2>&1)
      [ "$own" = 65534:65534 ] && ok "v$v root_squash: $probe owned by 65534:65534 on the server's disk" \
        || bad "v$v root_squash: $probe owned by '$own' on the server's disk, expected 65534:65534"
    else bad "v$v root_squash: the guest left no squash-probe.$v"; fi
  done
fi
if [ "$REF" != knfsd ]; then   # knfsd's disk is in its guest
  [ "$(md5sum < "$RO_DIR/ro-file" | cut -d' ' -f1)" = "$RO_MD5" ] && [ "$(ls "$RO_DIR")" = ro-file ] \
    && ok "ro export unchanged on disk" || bad "ro export changed on disk: $(ls -l "$RO_DIR" | tr '\n' ';')"
  [ -z "$(ls "$EXP_DIR")" ] && ok "main export empty after the guest's cleanup" \
    || bad "main export not empty: $(ls "$EXP_DIR" | head -5 | tr '\n' ' ')"
fi
for w in "$G"/share/*.writing; do   # every restart the guest asked for was done
  [ -e "$w" ] || continue; tag=$(basename "$w" .writing)
  [ -e "$G/share/$tag.restarted" ] || bad "$tag: the guest's restart request was not served"
done

# --- shut down: SIGTERM must end the server promptly
log "SIGTERM server"
srv_term; rc=$?
[ $rc = 0 ] && ok "server exited within 10 s of SIGTERM" || bad "server did not exit within 10 s of SIGTERM (killed)"
if grep -qE 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:' "$SRV_LOG" 2>/dev/null; then
  bad "sanitizer reports in $SRV_LOG: $(grep -m1 -E 'ERROR: .*Sanitizer|runtime error:' "$SRV_LOG")"
fi

echo
echo "=== summary: $NPASS passed, ${#FAILS[@]} failed, $NSKIP skipped (server: ${REF:-peernfsd}, versions: $VERSIONS)"
grep '^SKIP:' "$T/guest.out" | sed 's/^/  /'
for f in "${FAILS[@]}"; do echo "  FAIL: $f"; done
[ ${#FAILS[@]} = 0 ]
