#!/bin/bash
# Install what building, running and testing peernfs needs (Debian 12). Idempotent:
# does nothing when every package is already installed.
#   install-deps.sh [run|test]   run: build + serve; test (default): everything
set -euo pipefail
RUN_PKGS="build-essential cmake pkg-config python3 rpcbind nfs-common libsqlite3-dev liburing-dev iproute2 procps
          libkrb5-dev"
TEST_PKGS="clang libclang-rt-14-dev libnfs-dev libnfs-utils qemu-system-x86 linux-image-amd64
           busybox-static cpio kmod tshark nfs-ganesha nfs-ganesha-vfs psmisc util-linux
           krb5-kdc krb5-admin-server python3-gssapi"
pkgs=$RUN_PKGS
[ "${1:-test}" = test ] && pkgs="$RUN_PKGS $TEST_PKGS"
missing=
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# tshark asks whether non-root users may capture; the default (no) is fine
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get install -y -q --no-install-recommends $missing
