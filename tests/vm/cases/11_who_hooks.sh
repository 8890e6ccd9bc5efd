# Every kind of change carries who-data from its own hook: mkdir (path_mkdir, joined by path),
# chown (path_chown), rename (inode_rename) and unlink (inode_unlink), joined by inode.
. /lib.sh
echo a > "$W/a"
echo c > "$W/c"
echo o > "$W/o"
echo t > "$W/t"
init_baseline
start_watch
mkdir "$W/d"
chown 1000:1000 "$W/o"
mv "$W/a" "$W/b"
rm "$W/c"
truncate -s 0 "$W/t"
check() {  # PATH KIND HOOK
  wait_record "\"type\":\"change\",\"kind\":\"$2\",\"path\":\"$1\".*\"hook\":\"$3\"" 30 ||
    fail "no $2 record for $1 with who from $3: $(record "\"path\":\"$1\"")"
  record "\"type\":\"change\",\"kind\":\"$2\",\"path\":\"$1\"" | grep -o '"who":{[^}]*}'
}
check "$W/d" added mkdir
check "$W/o" changed chown
check "$W/b" added rename
check "$W/a" removed rename
check "$W/c" removed unlink
check "$W/t" changed truncate
stop_watch
