# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced by the guest's cases: a fresh watched root per case on the ext4 mount, a baseline,
# a `fimctl watch` writing ndjson, and waits on its records. Guest timings are TCG's (5-10x
# slower than native): waits are generous and nothing is timed.
set -u
NAME=$1
W=/mnt/w/$NAME
DBDIR=/tmp/db-$NAME
DB=$DBDIR/baseline.db
SOCK=/run/fimctl-$NAME.sock
OUT=/tmp/$NAME.ndjson
ERR=/tmp/$NAME.err
WPID=
mkdir -p "$W" "$DBDIR"

fail() {
  echo "FAILED: $*"
  [ -f "$ERR" ] && sed 's/^/stderr: /' "$ERR" | head -20
  [ -f "$OUT" ] && sed 's/^/record: /' "$OUT" | tail -20
  stop_watch
  exit 1
}

init_baseline() {
  fimctl --unsigned --db "$DB" init "$W" > /tmp/$NAME.init 2>&1 || fail "fimctl init: $(cat /tmp/$NAME.init)"
}

# start_watch [ARGS...]: the daemon, ready once its start rescan is done.
start_watch() {
  : > "$OUT"
  fimctl --unsigned --db "$DB" --format ndjson watch --socket "$SOCK" --full-check-interval 0 --heartbeat 0 "$@" \
    > "$OUT" 2> "$ERR" &
  WPID=$!
  wait_record '"type":"rescan_done"' 60 || fail "the daemon did not finish its start rescan"
}

stop_watch() {
  [ -n "$WPID" ] || return 0
  kill -TERM "$WPID" 2>/dev/null
  wait "$WPID" 2>/dev/null
  WPID=
}

# wait_record PATTERN [SECONDS] [FILE]: a record line matching the extended regex.
wait_record() {
  i=0 limit=$(( ${2:-30} * 10 ))
  while [ $i -lt $limit ]; do
    grep -Eq "$1" "${3:-$OUT}" 2>/dev/null && return 0
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}

record() { grep -E "$1" "${2:-$OUT}" | head -1; }
