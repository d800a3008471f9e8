#!/bin/bash
# Build the kclient guest initramfs from installed Debian packages:
#   linux-image-amd64 (kernel + modules), busybox-static, nfs-common + rpcbind
#   (mount.nfs, rpc.statd, rpcbind, rpcinfo, showmount and their shared libs), gcc (nfstool).
# Usage: build-initramfs.sh [OUTDIR]   (default $KC_CACHE or /tmp/peernfs-kclient-cache)
# Produces OUTDIR/vmlinuz and OUTDIR/initramfs.cpio; prints OUTDIR.
# Idempotent: rebuilds only when inputs (these scripts, kernel, packages) change.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-${KC_CACHE:-/tmp/peernfs-kclient-cache}}
KVER=${KC_KVER:-$(ls /lib/modules | sort -V | tail -1)}
[ -f "/boot/vmlinuz-$KVER" ] || { echo "no /boot/vmlinuz-$KVER (apt-get install linux-image-amd64)" >&2; exit 1; }
command -v busybox >/dev/null && [ -x /bin/busybox ] || { echo "apt-get install busybox-static" >&2; exit 1; }
MODULES="virtio_pci virtio_net 9pnet_virtio 9p sunrpc auth_rpcgss lockd nfs_acl nfsv3 nfsv4
         nfs_layout_nfsv41_files nfs_layout_flexfiles ${KC_EXTRA_MODULES:-}"
BINS="/sbin/mount.nfs /sbin/rpc.statd /sbin/rpcbind /usr/sbin/rpcinfo /sbin/showmount ${KC_EXTRA_BINS:-}"

mkdir -p "$OUT"
stamp=$( { echo "$KVER $MODULES $BINS"; cat "$HERE/build-initramfs.sh" "$HERE/guest-init.sh" "$HERE/nfstool.c";
           dpkg-query -W busybox-static nfs-common rpcbind "linux-image-$KVER" 2>/dev/null; } | sha256sum | cut -c1-16)
if [ -f "$OUT/initramfs.cpio" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$stamp" ]; then echo "$OUT"; exit 0; fi

R=$(mktemp -d "$OUT/root.XXXXXX"); trap 'rm -rf "$R"' EXIT; chmod 755 "$R"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,host,mnt/nfs,var/lib/nfs/sm,var/lib/nfs/sm.bak,lib64}
ln -s /run "$R/var/run"; ln -s /proc/self/mounts "$R/etc/mtab"; mknod -m 600 "$R/dev/console" c 5 1

# busybox and all its applets
cp /bin/busybox "$R/bin/busybox"
for a in $(/bin/busybox --list-full); do [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"; done

# kernel modules + dependency closure, then a depmod for that subset (busybox modprobe uses it)
M=/lib/modules/$KVER
for m in $MODULES; do
  f=$(modinfo -k "$KVER" -n "$m"); f=${f#$M/}
  for d in $f $(sed -n "s|^$f: *||p" "$M/modules.dep"); do
    mkdir -p "$R/$M/$(dirname "$d")"; cp "$M/$d" "$R/$M/$d"
  done
done
cp "$M"/modules.{order,builtin,builtin.modinfo} "$R/$M/"
depmod -b "$R" "$KVER"

# dynamically linked NFS helpers with their libraries
for b in $BINS; do
  cp "$b" "$R/sbin/"
  for l in $(ldd "$b" | grep -o '/[^ ]*'); do mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; done
done
ln -sf /sbin/mount.nfs "$R/sbin/mount.nfs4"
cp /etc/netconfig /etc/services /etc/protocols /etc/rpc "$R/etc/"
printf 'root:x:0:0:root:/:/bin/sh\n_rpc:x:100:65534::/run/rpcbind:/bin/false\nstatd:x:101:65534::/var/lib/nfs:/bin/false\n' > "$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$R/etc/group"
printf '127.0.0.1 localhost\n' > "$R/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files\n' > "$R/etc/nsswitch.conf"
chown -R 101:65534 "$R/var/lib/nfs"

# static helper (mount with text options, copy_file_range, fcntl/flock locking tests)
gcc -O2 -static -o "$R/bin/nfstool" "$HERE/nfstool.c"
install -m 755 "$HERE/guest-init.sh" "$R/init"

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet > "$OUT/initramfs.cpio.tmp")
mv "$OUT/initramfs.cpio.tmp" "$OUT/initramfs.cpio"
cp "/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$stamp" > "$OUT/stamp"
echo "$OUT"
