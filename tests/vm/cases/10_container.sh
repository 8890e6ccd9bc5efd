# In a container (own mount and pid namespaces, chroot into a busybox rootfs) that has a
# watched root bind-mounted at /app: its write is reported with the container's mount
# namespace in who, and its exec of a binary the baseline does not record is flagged, under
# the host path (the kernel's dentries are the host's).
. /lib.sh
echo data > "$W/f"
init_baseline
start_watch
C=/tmp/ctr-$NAME
mkdir -p "$C/bin" "$C/app" "$C/proc"
cp /bin/busybox "$C/bin/busybox"
for a in sh cat echo true; do ln -sf busybox "$C/bin/$a"; done
cp /bin/busybox "$W/dropped"
unshare -m -p -f sh -c "mount --bind $W $C/app && exec chroot $C /bin/sh -c 'echo from-container >> /app/f; /app/dropped true'" \
  > /tmp/$NAME.ctr 2>&1
host_ns=$(readlink /proc/self/ns/mnt | tr -cd 0-9)
wait_record "\"code\":\"exec_unknown\".*\"path\":\"$W/dropped\"" 30 || fail "no exec_unknown for the container's exec"
rec=$(record "\"code\":\"exec_unknown\".*\"path\":\"$W/dropped\"")
echo "$rec" | cut -c1-400
ns=$(echo "$rec" | sed 's/.*"mntns":\([0-9]*\).*/\1/')
echo "host mntns $host_ns, exec's mntns $ns"
[ -n "$ns" ] && [ "$ns" != "$host_ns" ] || fail "the exec's mntns is the host's"
wait_record "\"type\":\"change\".*\"path\":\"$W/f\".*\"who\":" 30 || fail "no change with who for the container's write"
rec=$(record "\"type\":\"change\".*\"path\":\"$W/f\"")
echo "$rec" | grep -o '"who":{[^}]*}'
ns=$(echo "$rec" | sed 's/.*"mntns":\([0-9]*\).*/\1/')
[ "$ns" != "$host_ns" ] || fail "the write's mntns is the host's"
stop_watch
