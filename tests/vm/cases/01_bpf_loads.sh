# BPF LSM loads and attaches (--bpf=required would exit 21 otherwise); status and metrics say so.
. /lib.sh
echo data > "$W/f"
init_baseline
start_watch --bpf=required --metrics 127.0.0.1:9464
fimctl --db "$DB" status --socket "$SOCK" > /tmp/$NAME.status 2>&1
grep 'bpf_lsm' /tmp/$NAME.status
grep -q 'bpf_lsm: active (file_open,' /tmp/$NAME.status || fail "status does not say the sensors are active"
grep -q 'unavailable' "$ERR" && fail "stderr says unavailable"
metric=$(wget -q -O - http://127.0.0.1:9464/metrics 2>/dev/null | grep '^fimctl_bpf_lsm_active')
echo "$metric"
[ "$metric" = "fimctl_bpf_lsm_active 1" ] || fail "metric fimctl_bpf_lsm_active is not 1"
stop_watch
