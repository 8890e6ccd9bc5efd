# Enforcement (off by default): with --enforce a write, an unlink and a rename over a protected
# file fail with EPERM and each attempt is reported; without it the write succeeds.
. /lib.sh
echo original > "$W/protected"
init_baseline
start_watch --enforce --protect "$W/protected"
out=$(sh -c "echo evil >> $W/protected" 2>&1) && fail "the write to the protected file succeeded"
echo "write: $out"
echo "$out" | grep -q 'Operation not permitted' || fail "the write did not fail with EPERM"
[ "$(cat "$W/protected")" = original ] || fail "the protected file changed"
rm -f "$W/protected" 2>/dev/null; [ -f "$W/protected" ] || fail "the protected file was unlinked"
echo x > "$W/other"; mv -f "$W/other" "$W/protected" 2>/dev/null
[ "$(cat "$W/protected")" = original ] || fail "a rename replaced the protected file"
wait_record '"code":"denied".*"hook":"open_write"' 30 || fail "no denied alert for the write"
wait_record '"code":"denied".*"hook":"unlink"' 30 || fail "no denied alert for the unlink"
wait_record '"code":"denied".*"hook":"rename"' 30 || fail "no denied alert for the rename"
record '"code":"denied"' | cut -c1-400
fimctl --db "$DB" status --socket "$SOCK" | grep 'bpf_'
stop_watch
# Off by default: the same write succeeds (and is reported as a change).
start_watch --protect "$W/protected"
sh -c "echo allowed >> $W/protected" || fail "without --enforce the write failed"
wait_record "\"type\":\"change\".*\"path\":\"$W/protected\"" 30 || fail "the write without --enforce was not reported"
stop_watch
