# A tmpfs mounted over a watched directory, then unmounted: before 6.14 the kernel has no
# fanotify mount events, so the daemon learns of it from /proc/self/mountinfo (what Debian
# 12's 6.1 gives): an alert with the mount, the rescan's differences, status not clean while
# it stays, and an alert when it goes.
. /lib.sh
mkdir -p "$W/etc/ssh"
echo 'PermitRootLogin no' > "$W/etc/ssh/sshd_config"
init_baseline
start_watch
case $(uname -r) in
  6.[0-9].*|6.1[0-3].*) grep -q '"mount_events":false' "$OUT" || fail "mount events on $(uname -r)?" ;;
esac
mount -t tmpfs evil "$W/etc/ssh" || fail "mount -t tmpfs refused"
wait_record "\"code\":\"mount_attached\".*\"mount_point\":\"$W/etc/ssh\".*\"fstype\":\"tmpfs\"" 30 ||
  { umount "$W/etc/ssh"; fail "no mount_attached alert"; }
record '"code":"mount_attached"' | grep -o '"seen_by":"[a-z_]*"'
wait_record "\"kind\":\"removed\",\"path\":\"$W/etc/ssh/sshd_config\"" 30 ||
  { umount "$W/etc/ssh"; fail "the rescan did not report the hidden sshd_config"; }
sleep 1
fimctl --db "$DB" --format json status --socket "$SOCK" > /tmp/$NAME.status 2>&1
rc=$?
[ $rc = 8 ] && grep -q 'is hidden by a mount' /tmp/$NAME.status ||
  { umount "$W/etc/ssh"; fail "status exit $rc while the mount stays: $(cat /tmp/$NAME.status)"; }
umount "$W/etc/ssh" || fail "umount: the daemon keeps the mount busy?"
wait_record "\"code\":\"mount_detached\".*\"mount_point\":\"$W/etc/ssh\"" 30 || fail "no mount_detached alert"
stop_watch
