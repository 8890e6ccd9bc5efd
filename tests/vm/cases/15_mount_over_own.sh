# Mounts over fimctl's own files (issue 18, hole 4): with --enforce, a bind mount over the
# baseline's directory and a tmpfs over the keys directory fail with EPERM, through mount(2)
# (sb_mount) and through the new mount API (move_mount), the baseline stays visible and each
# attempt is a mount_denied alert naming who; a mount over an unrelated directory still
# succeeds, and so does a directory bound over itself (systemd's ReadWritePaths=). Without
# --enforce the mount succeeds, and the hook and the mount watcher both report it.
. /lib.sh
KEYS=/tmp/keys-$NAME EMPTY=/tmp/empty-$NAME ELSEWHERE=/tmp/elsewhere-$NAME
mkdir -p "$KEYS" "$EMPTY" "$ELSEWHERE"
# busybox says "permission denied (are you root?)" for EPERM
eperm() { echo "$1" | grep -Eqi 'not permitted|permission denied'; }
echo 'PermitRootLogin no' > "$W/sshd_config"
init_baseline
start_watch --enforce --keys "$KEYS"
out=$(mount --bind "$EMPTY" "$DBDIR" 2>&1) && { umount "$DBDIR"; fail "the bind mount over the baseline's directory succeeded"; }
echo "bind over $DBDIR: $out"
eperm "$out" || fail "the bind mount did not fail with EPERM"
[ -f "$DB" ] || fail "the baseline is hidden"
out=$(mount -t tmpfs none "$KEYS" 2>&1) && { umount "$KEYS"; fail "tmpfs over the keys directory succeeded"; }
echo "tmpfs over $KEYS: $out"
eperm "$out" || fail "the tmpfs mount did not fail with EPERM"
echo x > "/tmp/file-$NAME"
out=$(mount --bind "/tmp/file-$NAME" "$DB" 2>&1) && { umount "$DB"; fail "the bind mount over the baseline file succeeded"; }
eperm "$out" || fail "the bind mount over the baseline file did not fail with EPERM: $out"
out=$(mountapi tmpfs "$KEYS" 2>&1) && { umount "$KEYS"; fail "move_mount of a tmpfs over the keys directory succeeded"; }
echo "move_mount over $KEYS: $out"
eperm "$out" || fail "move_mount did not fail with EPERM"
mountapi bind "$DBDIR" "$DBDIR" || fail "move_mount of the baseline's directory over itself was refused"
umount "$DBDIR" || fail "umount of the self-bind"
mount --bind "$EMPTY" "$ELSEWHERE" || fail "a bind mount over an unrelated directory was refused"
umount "$ELSEWHERE" || fail "umount $ELSEWHERE"
mountapi bind "$EMPTY" "$ELSEWHERE" || fail "move_mount over an unrelated directory was refused"
umount "$ELSEWHERE" || fail "umount $ELSEWHERE"
wait_record "\"code\":\"mount_denied\".*\"path\":\"$DBDIR\".*\"hook\":\"sb_mount\"" 30 || fail "no mount_denied alert for $DBDIR"
wait_record "\"code\":\"mount_denied\".*\"path\":\"$KEYS\"" 30 || fail "no mount_denied alert for $KEYS"
wait_record "\"code\":\"mount_denied\".*\"path\":\"$DB\"" 30 || fail "no mount_denied alert for $DB"
wait_record "\"code\":\"mount_denied\".*\"path\":\"$KEYS\".*\"hook\":\"move_mount\"" 30 ||
  fail "no mount_denied alert from move_mount"
grep -q "\"code\":\"mount_[a-z_]*\".*\"path\":\"$DBDIR\",\"hook\":\"move_mount\"" "$OUT" &&
  fail "the directory bound over itself was reported by the hook"
record "\"code\":\"mount_denied\".*\"path\":\"$DBDIR\"" | cut -c1-500
grep -q "\"code\":\"mount_denied\".*\"path\":\"$ELSEWHERE\"" "$OUT" && fail "the unrelated mount was reported as denied"
fimctl --db "$DB" status --socket "$SOCK" | grep 'bpf_'
stop_watch
# Off by default: the mount succeeds, the hook reports who, the mount watcher what stays.
start_watch --keys "$KEYS"
mount --bind "$EMPTY" "$DBDIR" || fail "without --enforce the bind mount failed"
[ -f "$DB" ] && { umount "$DBDIR"; fail "the bind mount did not hide the baseline"; }
wait_record "\"code\":\"mount_over_own_files\".*\"path\":\"$DBDIR\"" 30 ||
  { umount "$DBDIR"; fail "no mount_over_own_files alert from the hook"; }
wait_record "\"code\":\"mount_attached\".*\"mount_point\":\"$DBDIR\".*\"fimctl_paths\"" 30 ||
  { umount "$DBDIR"; fail "no mount_attached alert from the mount watcher"; }
record '"code":"mount_over_own_files"' | cut -c1-400
umount "$DBDIR" || fail "umount $DBDIR"
stop_watch
