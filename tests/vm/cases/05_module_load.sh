# Kernel module loads are reported: from a file (busybox insmod: finit_module, hook
# kernel_read_file) and from memory (init_module, hook kernel_load_data).
. /lib.sh
[ -f /modules/dummy.ko ] || { echo "no dummy.ko in this kernel package"; exit 77; }
init_baseline
start_watch
insmod /modules/dummy.ko || fail "insmod dummy.ko failed"
wait_record '"code":"module_load".*dummy.ko' 30 || fail "no module_load alert"
record '"code":"module_load"' | cut -c1-400
rmmod dummy || fail "rmmod dummy failed"
initmod /modules/dummy.ko || fail "init_module of dummy.ko failed"
wait_record '"code":"module_load".*"hook":"kernel_load_data"' 30 || fail "no module_load alert for init_module"
record '"code":"module_load".*"hook":"kernel_load_data"' | cut -c1-300
stop_watch
