# A write to a watched file by a non-root user is reported with who-data (uid, pid, comm).
. /lib.sh
echo data > "$W/f"
chmod 666 "$W/f"
init_baseline
start_watch
su -s /bin/sh fimuser -c "echo \$\$ > /tmp/$NAME.pid; echo more >> $W/f"
pid=$(cat /tmp/$NAME.pid)
wait_record "\"type\":\"change\".*\"path\":\"$W/f\".*\"who\":" 30 || fail "no change record with who for $W/f"
rec=$(record "\"type\":\"change\".*\"path\":\"$W/f\"")
echo "$rec" | grep -o '"who":{[^}]*}'
echo "$rec" | grep -q "\"who\":{\"pid\":$pid,\"tgid\":$pid," || fail "who is not the writer (pid $pid)"
echo "$rec" | grep -q '"uid":1000,' || fail "who.uid is not 1000"
echo "$rec" | grep -q '"comm":"sh"' || fail "who.comm is not sh"
echo "$rec" | grep -q '"hook":"open_write"' || fail "who.hook is not open_write"
echo "$rec" | grep -q '"loginuid"' && fail "loginuid given without a login session"
# A process of a login session (its audit loginuid set, as pam_loginuid does) is named by it.
sh -c "echo 1000 > /proc/self/loginuid && echo more >> $W/f"
wait_record "\"type\":\"change\".*\"path\":\"$W/f\".*\"loginuid\":1000" 30 || fail "no who.loginuid 1000"
record "\"type\":\"change\".*\"path\":\"$W/f\".*\"loginuid\":1000" | grep -o '"who":{[^}]*}'
stop_watch
