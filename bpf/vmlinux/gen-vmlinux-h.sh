#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Regenerates bpf/vmlinux/x86/vmlinux.h from the BTF of the kernel linux-image-amd64 depends
# on (docs/design.md, Real time: dumped from the oldest supported kernel, 6.1, with its
# provenance on line 1).
# The kernel is not booted: the vmlinuz's xz payload is the vmlinux whose .BTF section the
# running kernel exposes as /sys/kernel/btf/vmlinux. Needs apt-get, dpkg-deb, python3, bpftool.
set -euo pipefail
out=$(cd "$(dirname "$0")" && pwd)/x86/vmlinux.h
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
apt-get download "$pkg" >&2
deb=$(ls ./*.deb)
dpkg-deb -x "$deb" k
vmlinuz=$(ls k/boot/vmlinuz-*)
python3 - "$vmlinuz" vmlinux <<'PY'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
at = data.find(b'\xfd7zXZ\x00')
if at < 0:
    sys.exit('no xz payload in ' + sys.argv[1])
open(sys.argv[2], 'wb').write(lzma.LZMADecompressor().decompress(data[at:]))
PY
ver=$(dpkg-deb -f "$deb" Version)
sha=$(sha256sum "$vmlinuz" | cut -c1-16)
{
  echo "/* provenance: BTF of Debian's $pkg ($ver, the kernel linux-image-amd64 depended on on $(date -u +%F); vmlinuz sha256 ${sha}...): the xz payload of /boot/$(basename "$vmlinuz") decompressed to vmlinux (what scripts/extract-vmlinux does), then 'bpftool btf dump file vmlinux format c' ($(bpftool version | head -1)). Not booted: the .BTF section dumped is the one the guest exposes as /sys/kernel/btf/vmlinux. Regenerate with bpf/vmlinux/gen-vmlinux-h.sh. */"
  bpftool btf dump file vmlinux format c
} > "$out"
echo "wrote $out" >&2
