#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# /init of the vm suite's guest (tests/vm/run-vm.sh): mounts what fimctl needs, an ext4
# filesystem on a loop device for the watched roots, runs every case in /cases (exit 0 pass,
# 77 skip, anything else fail; each prints its evidence), prints the closing
# "N passed, N failed" line the host reads, and powers off.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t securityfs securityfs /sys/kernel/security
mount -t tmpfs tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run  # the status socket's directory: not 1777 (Trusted paths)
mkdir -p /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t bpf bpf /sys/fs/bpf
ifconfig lo 127.0.0.1 up  # the metrics endpoint
echo "### kernel $(uname -r); lsm $(cat /sys/kernel/security/lsm)"
for m in crc16 crc32c_generic mbcache jbd2 ext4 loop; do
  [ -f /modules/$m.ko ] && insmod /modules/$m.ko
done
mkdir -p /mnt/w
mount -t ext4 -o loop /disk.img /mnt/w || echo "### cannot mount the ext4 image: the cases run on rootfs"
pass=0 fail=0 skip=0
for c in /cases/*.sh; do
  name=$(basename "$c" .sh)
  out=$(timeout 180 sh "$c" "$name" 2>&1)
  rc=$?
  echo "$out" | head -40 | sed 's/^/  | /'
  if [ $rc = 0 ]; then
    echo "PASS $name"
    pass=$((pass + 1))
  elif [ $rc = 77 ]; then
    echo "SKIP $name"
    skip=$((skip + 1))
  else
    echo "FAIL $name (exit $rc)"
    fail=$((fail + 1))
  fi
done
echo "### $skip skipped"
echo "$pass passed, $fail failed"
sync
poweroff -f
