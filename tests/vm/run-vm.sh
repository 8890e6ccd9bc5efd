#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The vm suite's host side (docs/design.md, Tests): boots one of Debian's own kernels under qemu
# TCG with a busybox initramfs carrying a static fimctl and tests/vm/cases/*.sh, and checks
# the guest's closing "N passed, N failed" line. The BPF LSM programs cannot load on the
# build machines (EPERM, docs/design.md, Real time); in the guest they do.
#
# Usage: run-vm.sh METAPACKAGE FIMCTL WORKDIR
#   METAPACKAGE  linux-image-amd64 (6.1) or linux-image-6.12-amd64: the image package is what
#                the metapackage depends on today (never a pinned version; the mirror moves)
#   FIMCTL       a statically linked fimctl (the initramfs has no libc)
#   WORKDIR      scratch space; WORKDIR/guest.log is the console, WORKDIR/counts the result
#                ("PASSED FAILED", read by scripts/ci-summary.py)
# Kernel packages are cached in $FIMCTL_VM_CACHE (default /var/cache/fimctl-vm).
# Exit 0 when every guest case passed, 1 otherwise, 77 (skip) when fimctl is not static.
set -euo pipefail
meta=$1 fimctl=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
cache=${FIMCTL_VM_CACHE:-/var/cache/fimctl-vm}
timeout_s=${FIMCTL_VM_TIMEOUT:-900}
log() { echo "run-vm: $*" >&2; }

if readelf -l "$fimctl" | grep -q 'program interpreter'; then
  log "$fimctl is not statically linked: the vm suite runs in the static build (scripts/test: build-static)"
  exit 77
fi
for tool in qemu-system-x86_64 cpio busybox dpkg-deb mkfs.ext4 xz gzip readelf cc; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install qemu-system-x86 cpio busybox-static e2fsprogs xz-utils)"; exit 1; }
done

# The kernel: the image package the metapackage names, downloaded once into the cache.
find_pkg() { apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}'; }
pkg=$(find_pkg)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq >&2 || true  # a bare machine's package lists (bookworm-security has 6.12)
  pkg=$(find_pkg)
fi
[ -n "$pkg" ] || { log "apt-cache does not know $meta (apt-get update; bookworm-security in sources.list for 6.12)"; exit 1; }
mkdir -p "$cache"
deb=$(ls "$cache/${pkg}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
  log "downloading $pkg"
  (cd "$cache" && apt-get download "$pkg" >&2)
  deb=$(ls "$cache/${pkg}_"*.deb | head -1)
fi
kdir=$cache/${pkg}.x
if [ ! -d "$kdir/boot" ]; then
  rm -rf "$kdir.tmp" && dpkg-deb -x "$deb" "$kdir.tmp" && mv "$kdir.tmp" "$kdir"
fi
kver=$(ls "$kdir/lib/modules" | head -1)
log "kernel $pkg ($kver)"

# The initramfs: busybox, fimctl, the cases, the modules an ext4 loop mount needs (tmpfs has
# no fsid on 6.1, so fanotify's FID mode cannot mark it there) and one module to load.
rm -rf "$work/initrd" && mkdir -p "$work/initrd"/{bin,sbin,proc,sys,dev,tmp,etc,mnt,modules,cases,run,var/lib}
cp "$(command -v busybox)" "$work/initrd/bin/busybox"
for a in $("$work/initrd/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$work/initrd/bin/$a"; done
cp "$fimctl" "$work/initrd/bin/fimctl"
cc -static -O2 -o "$work/initrd/bin/initmod" "$here/initmod.c"  # init_module(2) from memory
cc -static -O2 -o "$work/initrd/bin/mountapi" "$here/mountapi.c"  # move_mount(2), the new mount API
cc -static -O2 -o "$work/initrd/bin/extentof" "$here/extentof.c"  # FIEMAP: where a file's data lies
cp "$here/init.sh" "$work/initrd/init"
cp "$here/lib.sh" "$work/initrd/lib.sh"
cp "$here"/cases/*.sh "$work/initrd/cases/"
chmod +x "$work/initrd/init"
printf 'root:x:0:0:root:/root:/bin/sh\nfimuser:x:1000:1000:fim user:/tmp:/bin/sh\n' > "$work/initrd/etc/passwd"
printf 'root:x:0:\nfimuser:x:1000:\n' > "$work/initrd/etc/group"
for m in crc16 crc32c_generic mbcache jbd2 ext4 loop dummy; do
  f=$(find "$kdir/lib/modules/$kver" -name "$m.ko*" | head -1)
  [ -n "$f" ] || continue  # built in
  case $f in
    *.xz) xz -dc "$f" > "$work/initrd/modules/$m.ko" ;;
    *.zst) zstd -dc "$f" > "$work/initrd/modules/$m.ko" ;;
    *) cp "$f" "$work/initrd/modules/$m.ko" ;;
  esac
done
# fs-verity (fimctl seal): the feature, and blocks of the page size (6.1 seals no other size).
rm -f "$work/disk.img" && truncate -s 32M "$work/disk.img" && mkfs.ext4 -q -F -b 4096 -O verity "$work/disk.img"
cp "$work/disk.img" "$work/initrd/disk.img"
(cd "$work/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$work/initrd.gz"

# Boot. TCG: /dev/kvm on the build machines is PVM-only and cannot run a stock kernel.
log "booting (qemu TCG, timeout ${timeout_s}s)"
start=$(date +%s)
set +e
timeout "$timeout_s" qemu-system-x86_64 -machine q35 -accel tcg -cpu max -smp 2 -m 1024 \
  -kernel "$kdir/boot/vmlinuz-$kver" -initrd "$work/initrd.gz" -nographic -no-reboot \
  -append "console=ttyS0 quiet panic=-1 lsm=lockdown,capability,landlock,yama,bpf" > "$work/guest.log" 2>&1
qrc=$?
set -e
tr -d '\r' < "$work/guest.log" | grep -E '^(PASS|FAIL|SKIP|###|[0-9]+ passed)' >&2 || true
line=$(tr -d '\r' < "$work/guest.log" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -1 || true)
log "$kver: qemu exit $qrc after $(( $(date +%s) - start )) s; guest: ${line:-no summary line}"
if [ -z "$line" ]; then
  echo "0 1" > "$work/counts"
  log "no closing line from the guest; the console is in $work/guest.log"
  tail -40 "$work/guest.log" >&2
  exit 1
fi
passed=${line%% passed*}
failed=${line#*passed, }
failed=${failed%% failed*}
echo "$passed $failed" > "$work/counts"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
