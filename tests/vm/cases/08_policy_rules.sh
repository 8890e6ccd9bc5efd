# The policy's per-rule keys with --enforce: deny_unknown_exec lets only what the baseline
# records run below its path (a new script, and one modified in place, are denied); protect
# denies writes to what its rule selects. Each attempt is reported.
. /lib.sh
mkdir -p "$W/bin" "$W/etc"
printf '#!/bin/sh\necho ran known\n' > "$W/bin/known"
chmod 755 "$W/bin/known"
echo secret > "$W/etc/secret"
POL=/tmp/$NAME.toml
cat > "$POL" <<TOML
version = 1
[[rule]]
path = "$W"
[[rule]]
path = "$W/bin"
deny_unknown_exec = true
[[rule]]
path = "$W/etc/secret"
protect = true
TOML
fimctl -c "$POL" --unsigned --db "$DB" init > /tmp/$NAME.init 2>&1 || fail "init: $(cat /tmp/$NAME.init)"
: > "$OUT"
fimctl -c "$POL" --unsigned --db "$DB" --format ndjson watch --socket "$SOCK" --full-check-interval 0 --heartbeat 0 \
  --enforce > "$OUT" 2> "$ERR" &
WPID=$!
wait_record '"type":"rescan_done"' 60 || fail "no start rescan"
sleep 1  # the sensor policy is applied on the daemon's next tick
out=$("$W/bin/known" 2>&1) || fail "the baseline's script did not run: $out"
echo "known: $out"
printf '#!/bin/sh\necho ran new\n' > "$W/bin/new"
chmod 755 "$W/bin/new"
out=$("$W/bin/new" 2>&1) && fail "a script the baseline does not record ran: $out"
echo "new: $out"
wait_record "\"code\":\"denied\".*\"path\":\"$W/bin/new\".*\"hook\":\"exec\"" 30 || fail "no denied alert for the exec of new"
record "\"code\":\"denied\".*\"hook\":\"exec\"" | cut -c1-300
echo 'echo tampered' >> "$W/bin/known"
out=$("$W/bin/known" 2>&1) && fail "the script modified in place still ran: $out"
echo "known after an in-place write: $out"
out=$(sh -c "echo evil > $W/etc/secret" 2>&1) && fail "the write to the protect rule's file succeeded"
echo "secret: $out"
[ "$(cat "$W/etc/secret")" = secret ] || fail "the protected file changed"
wait_record "\"code\":\"denied\".*\"path\":\"$W/etc/secret\"" 30 || fail "no denied alert for the protected file"
stop_watch
