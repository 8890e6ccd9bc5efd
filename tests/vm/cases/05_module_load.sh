# A kernel module load (busybox insmod: finit_module) is reported.
. /lib.sh
[ -f /modules/dummy.ko ] || { echo "no dummy.ko in this kernel package"; exit 77; }
init_baseline
start_watch
insmod /modules/dummy.ko || fail "insmod dummy.ko failed"
wait_record '"code":"module_load".*dummy.ko' 30 || fail "no module_load alert"
record '"code":"module_load"' | cut -c1-400
stop_watch
