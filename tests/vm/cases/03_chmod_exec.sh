# chmod +x of a file in a watched root is flagged (made_executable), with who-data.
. /lib.sh
printf '#!/bin/sh\necho hi\n' > "$W/script"
chmod 644 "$W/script"
init_baseline
start_watch
chmod +x "$W/script"
wait_record "\"code\":\"made_executable\".*\"path\":\"$W/script\"" 30 || fail "no made_executable alert"
record '"code":"made_executable"' | cut -c1-400
wait_record "\"type\":\"change\".*\"path\":\"$W/script\".*\"hook\":\"chmod\"" 30 || fail "the mode change has no who from chmod"
stop_watch
