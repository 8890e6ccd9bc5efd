# A sealed file's data block rewritten on the block device beneath ext4 (unmounted): fs-verity
# fails the read (EIO), and check --full, and a fast check whose rolling re-hash reaches the
# file, report it (exit bit 8 or 4, never 0).
. /lib.sh
POL=/tmp/$NAME.toml
mkdir -p "$W/bin"
head -c 100000 /dev/urandom > "$W/bin/tool"
printf 'version = 1\n[options]\nrehash_interval = "1s"\n[[rule]]\npath = "%s"\nseal = true\n' "$W" > "$POL"
F="fimctl -c $POL --unsigned --db $DB"
$F init > /tmp/$NAME.init 2>&1 || fail "init: $(cat /tmp/$NAME.init)"
$F seal "$W/bin/tool" > /tmp/$NAME.seal 2>&1 || fail "seal: $(cat /tmp/$NAME.seal)"
# update exits with check's bits: 4, the verity digest and flag it takes in.
$F update --yes > /tmp/$NAME.update 2>&1; rc=$?
[ $rc = 4 ] || fail "update: exit $rc: $(cat /tmp/$NAME.update)"
off=$(extentof "$W/bin/tool") || fail "no extent for the file"
dev=$(awk '$2 == "/mnt/w" {print $1}' /proc/mounts)
sync
umount /mnt/w || fail "cannot unmount /mnt/w"
[ -n "$dev" ] && losetup -d "$dev" 2>/dev/null
printf 'TAMPERED' | dd of=/disk.img bs=1 seek=$((off + 100)) conv=notrunc 2>/dev/null || fail "dd"
mount -t ext4 -o loop /disk.img /mnt/w || fail "cannot mount the image again"
cat "$W/bin/tool" > /dev/null 2>&1 && fail "the tampered file reads without an error"
$F --format json check --full > /tmp/$NAME.full; rc=$?
[ $rc != 0 ] && [ $((rc & 12)) != 0 ] || fail "check --full after the tamper: exit $rc"
grep -q "$W/bin/tool" /tmp/$NAME.full || fail "check --full does not name the file: $(cat /tmp/$NAME.full)"
sleep 2
$F --format json check --fast > /tmp/$NAME.fast; rc=$?
[ $rc != 0 ] && [ $((rc & 12)) != 0 ] || fail "check --fast (rolling re-hash due) after the tamper: exit $rc"
grep -q "$W/bin/tool" /tmp/$NAME.fast || fail "check --fast does not name the file: $(cat /tmp/$NAME.fast)"
echo "full: exit $(grep -c . /tmp/$NAME.full) lines; fast exit $rc"
