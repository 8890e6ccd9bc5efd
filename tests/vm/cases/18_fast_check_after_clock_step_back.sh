# The guest's clock stepped back 1 h between two fast checks (never the host's: the vm suite
# is the only place this runs), a file changed with its size and mtime as recorded: check
# --fast withdraws stat evidence (alert stat_evidence_withdrawn), hashes, and reports it.
. /lib.sh
mkdir -p "$W/etc"
echo "setting=1" > "$W/etc/conf"
F="fimctl --unsigned --db $DB"
init_baseline
$F --format json check --fast > /tmp/$NAME.first; rc=$?
[ $rc = 0 ] || fail "first check --fast: exit $rc: $(cat /tmp/$NAME.first)"
touch -r "$W/etc/conf" /tmp/$NAME.times  # its mtime, to put back
date -s "@$(( $(date +%s) - 3600 ))" > /dev/null || fail "date -s"
echo "setting=2" > "$W/etc/conf"
touch -r /tmp/$NAME.times "$W/etc/conf"
$F --format json check --fast > /tmp/$NAME.fast; rc=$?
date -s "@$(( $(date +%s) + 3600 ))" > /dev/null
[ $((rc & 4)) = 4 ] || fail "check --fast after the clock step: exit $rc: $(cat /tmp/$NAME.fast)"
grep -q 'stat_evidence_withdrawn' /tmp/$NAME.fast || fail "no stat_evidence_withdrawn alert: $(cat /tmp/$NAME.fast)"
grep -q "$W/etc/conf" /tmp/$NAME.fast || fail "the change is not reported"
grep -o '"code": \?"stat_evidence_withdrawn"[^}]*' /tmp/$NAME.fast | head -1
