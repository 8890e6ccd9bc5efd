# Exec of a binary below a root that the baseline does not record is flagged; one it records is not.
. /lib.sh
cp /bin/busybox "$W/known"
init_baseline
start_watch
cp /bin/busybox "$W/newtool"
"$W/known" true
"$W/newtool" true
wait_record "\"code\":\"exec_unknown\".*\"path\":\"$W/newtool\"" 30 || fail "no exec_unknown alert for newtool"
record '"code":"exec_unknown"' | cut -c1-400
sleep 1
grep -q "\"code\":\"exec_unknown\".*\"path\":\"$W/known\"" "$OUT" && fail "known (in the baseline) was flagged"
stop_watch
