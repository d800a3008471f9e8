#!/bin/bash
# Reference NFS server for validating the harness: NFS-Ganesha 4.3 (FSAL VFS) with
# rpcbind and rpc.statd, all inside the kclient netns and a private mount namespace
# whose /run is a fresh tmpfs (rpcbind's unix socket is then not shared with the host
# or with other namespaces).
#   ganesha-netns.sh start|stop|kill9|restart [DIR]    DIR default /tmp/kclient-ganesha
# kill9 SIGKILLs ganesha.nfsd only; restart starts it again (same config) in the namespaces
# of the rpcbind that start left running, as after a crash.
# Exports DIR/export as /export (NFSv3 and v4.0-4.2, RW, no root squash).
# Extra settings: KC_GANESHA_NFSV4="Delegations = true;" KC_GANESHA_EXPORT="Delegations = RW;"
#   KC_GANESHA_GRACELESS=false (default true: no grace period after a restart; with false,
#   add e.g. "Grace_Period = 20;" to KC_GANESHA_NFSV4, the default being 90 s),
#   KC_GANESHA_LEASE (NFSv4 lease in seconds, 30)
#   KC_GANESHA_CONF_EXTRA="EXPORT { ... }" (appended to ganesha.conf, e.g. more exports)
set -euo pipefail
NS=${KC_NETNS:-kclient}; D=${2:-${KC_GANESHA_DIR:-/tmp/kclient-ganesha}}
case ${1:-} in
start)
  mkdir -p "$D/export" "$D/recov" "$D/statd/sm" "$D/statd/sm.bak"
  cat > "$D/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3, 4; Enable_UDP = false; Enable_RQUOTA = false;
                 MNT_Port = 20048; NLM_Port = 32803; Mount_Path_Pseudo = true; }
NFSV4 { Minor_Versions = 0, 1, 2; Graceless = ${KC_GANESHA_GRACELESS:-true}; Lease_Lifetime = ${KC_GANESHA_LEASE:-30}; Only_Numeric_Owners = true;
        RecoveryBackend = fs; RecoveryRoot = "$D/recov"; ${KC_GANESHA_NFSV4:-} }
NFS_KRB5 { Active_krb5 = false; }
EXPORT { Export_Id = 1; Path = "$D/export"; Pseudo = /export; Protocols = 3, 4;
         Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; ${KC_GANESHA_EXPORT:-}
         FSAL { Name = VFS; } }
LOG { Default_Log_Level = ${KC_GANESHA_LOGLEVEL:-EVENT}; }
${KC_GANESHA_CONF_EXTRA:-}
CONF
  ip netns exec "$NS" unshare -m --propagation private sh -c "
    mount -t tmpfs tmpfs /run && mkdir -p /run/rpcbind
    rpcbind -f & echo \$! > '$D/rpcbind.pid'; sleep 1
    rpc.statd -F --no-notify -P '$D/statd' & echo \$! > '$D/statd.pid'; sleep 1
    exec ganesha.nfsd -F -f '$D/ganesha.conf' -L '$D/ganesha.log' -p '$D/ganesha.pid'
  " > "$D/server.out" 2>&1 &
  echo $! > "$D/ganesha.pid"
  for i in $(seq 60); do ip netns exec "$NS" ss -ltn | grep -q ':2049 ' && break; sleep 0.5; done
  ip netns exec "$NS" ss -ltn | grep -q ':2049 ' || { echo "ganesha did not start, see $D" >&2; exit 1; }
  echo "ganesha up in netns $NS, export $D/export as /export";;
kill9)
  pid=$(cat "$D/ganesha.pid"); kill -KILL "$pid"
  for _ in $(seq 50); do  # gone, or a zombie (nobody may reap it)
    st=$(ps -o stat= -p "$pid" 2>/dev/null || true); { [ -z "$st" ] || [ "${st:0:1}" = Z ]; } && break; sleep 0.2
  done
  echo "ganesha pid $pid killed";;
restart)
  nsenter --target "$(cat "$D/rpcbind.pid")" -m -n -- \
    ganesha.nfsd -F -f "$D/ganesha.conf" -L "$D/ganesha.log" -p "$D/ganesha.pid" </dev/null >> "$D/server.out" 2>&1 &
  echo $! > "$D/ganesha.pid"
  for i in $(seq 60); do ip netns exec "$NS" ss -ltn | grep -q ':2049 ' && break; sleep 0.5; done
  ip netns exec "$NS" ss -ltn | grep -q ':2049 ' || { echo "ganesha did not restart, see $D" >&2; exit 1; }
  echo "ganesha restarted (pid $(cat "$D/ganesha.pid"))";;
stop)  # by PID: TERM all three, wait up to 10 s for each, then KILL
  pids=
  for p in ganesha statd rpcbind; do
    [ -f "$D/$p.pid" ] && { pids="$pids $(cat "$D/$p.pid")"; rm -f "$D/$p.pid"; }
  done
  for pid in $pids; do kill "$pid" 2>/dev/null || true; done
  for pid in $pids; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  done; true;;
*) echo "usage: $0 start|stop|kill9|restart [DIR]" >&2; exit 2;;
esac
