# Kernel-side loss: with the daemon stopped (SIGSTOP) its 1 MiB ring buffer (1024 records)
# fills; the records the kernel could not queue are counted, and the daemon treats them like
# a fanotify overflow: a gap record (reason bpf_loss) and a rescan that finds the changes.
. /lib.sh
init_baseline
start_watch
kill -STOP "$WPID"
i=0
while [ $i -lt 1500 ]; do
  echo x > "$W/f$i"
  i=$((i + 1))
done
kill -CONT "$WPID"
wait_record '"type":"gap".*"reason":"bpf_loss"' 60 || fail "no gap record for the lost BPF records"
record '"type":"gap".*"reason":"bpf_loss"'
wait_record '"type":"rescan_done","reason":"bpf_loss"' 120 || fail "no rescan after the loss"
record '"type":"rescan_done","reason":"bpf_loss"'
lost=$(fimctl --db "$DB" status --socket "$SOCK" | grep 'bpf_lost' | awk '{print $2}')
echo "bpf_lost: $lost"
[ "${lost:-0}" -gt 0 ] || fail "status does not count the lost records"
wait_record "\"type\":\"change\".*\"path\":\"$W/f1499\"" 60 || fail "the last file created is not reported"
stop_watch
