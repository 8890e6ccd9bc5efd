# A BPF program load by another process (a second fimctl watch loading its sensors) is reported.
. /lib.sh
init_baseline
start_watch
mkdir -p /mnt/w/$NAME-2 /tmp/db2-$NAME
fimctl --unsigned --db /tmp/db2-$NAME/baseline.db init /mnt/w/$NAME-2 > /dev/null 2>&1 || fail "second init"
fimctl --unsigned --db /tmp/db2-$NAME/baseline.db --format ndjson watch --socket /run/second-$NAME.sock \
  --full-check-interval 0 > /tmp/$NAME.second 2>&1 &
second=$!
# libbpf's feature probes load small unnamed programs first; then the LSM programs (type 29).
pat='"code":"bpf_load".*"comm":"fimctl".*"prog_name":"fim_file_open","prog_type":29'
wait_record "$pat" 60 || { kill $second; fail "no bpf_load alert for the second daemon's fim_file_open"; }
record "$pat" | cut -c1-500
kill -TERM $second; wait $second
stop_watch
