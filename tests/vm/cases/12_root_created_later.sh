# A root the policy names but that does not exist at start: once it is created, the sensors
# follow it (the daemon re-registers roots every 5 s), so changes in it carry who-data.
. /lib.sh
POL=/tmp/$NAME.toml
printf 'version = 1\n[[rule]]\npath = "%s/later"\n' "$W" > "$POL"
fimctl -c "$POL" --unsigned --db "$DB" init > /tmp/$NAME.init 2>&1 || fail "init: $(cat /tmp/$NAME.init)"
: > "$OUT"
fimctl -c "$POL" --unsigned --db "$DB" --format ndjson watch --socket "$SOCK" --full-check-interval 0 --heartbeat 0 \
  > "$OUT" 2> "$ERR" &
WPID=$!
wait_record '"type":"rescan_done"' 60 || fail "no start rescan"
mkdir "$W/later"
sleep 7
sh -c "echo new > $W/later/file"
wait_record "\"type\":\"change\",\"kind\":\"added\",\"path\":\"$W/later/file\".*\"who\":" 30 ||
  fail "no added record with who for a file in the root created after start: $(record "\"path\":\"$W/later/file\"")"
record "\"type\":\"change\",\"kind\":\"added\",\"path\":\"$W/later/file\"" | grep -o '"who":{[^}]*}'
stop_watch
