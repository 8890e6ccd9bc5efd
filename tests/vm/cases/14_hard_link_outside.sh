# A hard link made outside every root to a baseline file, then written and chmod-ed through:
# reported under the baseline path with BPF LSM loaded too (its map holds the roots'
# directories; fanotify's link-count mark finds the file, and the file's own mark its writes).
. /lib.sh
mkdir -p "$W/sbin" /mnt/w/outside-$NAME
echo "the real sshd" > "$W/sbin/sshd"
init_baseline
start_watch
ln "$W/sbin/sshd" /mnt/w/outside-$NAME/x
wait_record "\"type\":\"change\".*\"path\":\"$W/sbin/sshd\".*\"attr\":\"nlink\"" 60 || fail "the link was not reported"
echo backdoor >> /mnt/w/outside-$NAME/x
wait_record "\"type\":\"change\".*\"path\":\"$W/sbin/sshd\".*\"via\":\"/mnt/w/outside-$NAME/x\"" 60 ||
  fail "the write through the link was not reported with via"
chmod 6755 /mnt/w/outside-$NAME/x
wait_record "\"type\":\"change\".*\"path\":\"$W/sbin/sshd\".*\"attr\":\"mode\"" 60 || fail "the chmod was not reported"
record "\"path\":\"$W/sbin/sshd\".*\"via\"" | grep -o '"who":{[^}]*}'
stop_watch
