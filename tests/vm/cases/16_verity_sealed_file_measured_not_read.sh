# fimctl seal, then update: check --fast measures the sealed file (evidence verity) instead of
# reading it, so a run with nothing else to hash hashes 0 bytes.
. /lib.sh
POL=/tmp/$NAME.toml
mkdir -p "$W/bin"
head -c 200000 /dev/urandom > "$W/bin/tool"
printf 'version = 1\n[[rule]]\npath = "%s"\nseal = true\n' "$W" > "$POL"
F="fimctl -c $POL --unsigned --db $DB"
$F init > /tmp/$NAME.init 2>&1 || fail "init: $(cat /tmp/$NAME.init)"
$F seal "$W/bin/tool" > /tmp/$NAME.seal 2>&1 || fail "seal: $(cat /tmp/$NAME.seal)"
grep -q "^sealed '$W/bin/tool'" /tmp/$NAME.seal || fail "seal did not say sealed: $(cat /tmp/$NAME.seal)"
echo x >> "$W/bin/tool" 2>/dev/null && fail "a sealed file was opened for writing"
$F --format json check --full > /tmp/$NAME.pre; rc=$?
[ $rc = 4 ] || fail "check after seal, before update: exit $rc (want 4: verity and flags changed)"
# update exits with check's bits: 4, the verity digest and flag it takes in.
$F update --yes > /tmp/$NAME.update 2>&1; rc=$?
[ $rc = 4 ] || fail "update: exit $rc: $(cat /tmp/$NAME.update)"
$F --format json check --fast > /tmp/$NAME.fast; rc=$?
[ $rc = 0 ] || fail "check --fast: exit $rc: $(cat /tmp/$NAME.fast)"
grep -Eq '"verity": ?1' /tmp/$NAME.fast || fail "the sealed file's evidence is not verity: $(cat /tmp/$NAME.fast)"
grep -Eq '"bytes_hashed": ?0[,}]' /tmp/$NAME.fast || fail "bytes were hashed: $(grep -o '"bytes_hashed":[^,]*' /tmp/$NAME.fast)"
grep -o '"evidence": \?{[^}]*}' /tmp/$NAME.fast
