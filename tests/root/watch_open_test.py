#!/usr/bin/env python3
"""fimctl watch and writers that keep a watched file open (suite 'root'): a shared writable
mapping (with and without its fd) and a file held open for writing. fanotify reports neither
a store through a mapping nor anything before close_write but modify; the daemon finds such
files by a scan of /proc every 5 s and compares them while they stay open.

Usage: watch_open_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify).
Each case's writer is a process of its own that holds the file until the case ends.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import run_main  # noqa: E402
from watch_test import Daemon, init, sha, filesystem  # noqa: E402

# Within this the change must be reported while the writer still holds the file: the scan
# runs every 5 s, so this is three passes (not a speed requirement).
HELD_TIMEOUT = 15

# Each holder changes the file, says "ready" and keeps it until its stdin closes.
HOLD_MAPPED = """
import mmap, sys
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 0)                 # MAP_SHARED, PROT_READ|PROT_WRITE
m[0:len(sys.argv[2])] = sys.argv[2].encode()
m.flush()                                    # msync: on disk now
print("ready", flush=True)
sys.stdin.read()
"""
# The same through libc, with the fd closed before the store: only the mapping holds the file
# (its close_write comes at munmap, so fanotify says nothing at all).
HOLD_MAPPED_NO_FD = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
size = os.path.getsize(sys.argv[1])
fd = os.open(sys.argv[1], os.O_RDWR)
addr = libc.mmap(None, size, 3, 1, fd, 0)    # PROT_READ|PROT_WRITE, MAP_SHARED
assert addr not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
os.close(fd)
print("mapped", flush=True)
sys.stdin.readline()                         # the case says when (after close_write's compare)
ctypes.memmove(addr, sys.argv[2].encode(), len(sys.argv[2]))
libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
assert libc.msync(addr, size, 4) == 0        # MS_SYNC
print("ready", flush=True)
sys.stdin.read()
"""
HOLD_OPEN = """
import os, sys
f = open(sys.argv[1], "r+b")
f.write(sys.argv[2].encode())
f.flush()
os.fsync(f.fileno())
print("ready", flush=True)
sys.stdin.read()
"""


class Holder:
    """A writer process running `script` on path, held until close()."""

    def __init__(self, script, path, data):
        self.proc = subprocess.Popen([sys.executable, "-c", script, path, data], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def expect(self, word):
        line = self.proc.stdout.readline().strip()
        assert line == word, f"holder said {line!r}, exit {self.proc.poll()}"

    def say(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def holding(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def watched_file(fimctl, tmp, size=8192):
    """A tree on tmpfs with one file of `size` bytes, baselined; (path, db)."""
    mnt = filesystem(tmp, "tmpfs")
    tree = f"{mnt}/tree/lib"
    os.makedirs(tree)
    path = f"{tree}/libfoo.so.1"
    with open(path, "wb") as f:
        f.write(b"\x7fELF" + b"\0" * (size - 4))
    db = f"{tmp}/db/baseline.db"
    os.makedirs(f"{tmp}/db")
    init(fimctl, db, f"{mnt}/tree")
    return path, db


def expect_held_change(d, holder, path, content, what):
    """The change to `content`, flagged open_for_write with the holder's pid, reported while
    the holder still has the file."""
    want = sha(content)

    def pred(r):
        return (r["type"] == "change" and r["path"] == path and r.get("open_for_write") is True and
                any(c["attr"] == "sha256" and c["new"] == want for c in r.get("changes", [])))
    r = d.wait_for(pred, HELD_TIMEOUT, f"{what} of {path} reported with open_for_write")[-1]
    assert holder.holding(), "the holder exited: the report may have come from its close"
    assert r["pid"] == holder.proc.pid and r["comm"].startswith("python"), r
    return r


def patched(path, data):
    with open(path, "rb") as f:
        body = f.read()
    return data.encode() + body[len(data):]


def case_shared_mapping_held_open(fimctl, tmp):
    """A store through a MAP_SHARED mapping (msync'd; mapping and fd kept): reported while held."""
    path, db = watched_file(fimctl, tmp)
    data = "TROJANED-BY-MMAP"
    want = patched(path, data)
    with Daemon(fimctl, tmp, db) as d:
        h = Holder(HOLD_MAPPED, path, data)
        try:
            h.expect("ready")
            r = expect_held_change(d, h, path, want, "the store through the mapping")
            assert r["source"] == "watch", r
        finally:
            h.close()
        assert d.stop() == 0, d.stderr()


def case_shared_mapping_without_fd(fimctl, tmp):
    """The same with the fd closed before the store: only /proc/PID/maps shows the writer."""
    path, db = watched_file(fimctl, tmp)
    data = "MAPPED-NO-FD"
    want = patched(path, data)
    with Daemon(fimctl, tmp, db) as d:
        h = Holder(HOLD_MAPPED_NO_FD, path, data)
        try:
            h.expect("mapped")
            h.say("go")
            h.expect("ready")
            expect_held_change(d, h, path, want, "the store through the fd-less mapping")
        finally:
            h.close()
        assert d.stop() == 0, d.stderr()


def case_file_held_open_for_write(fimctl, tmp):
    """Written, flushed and fsync'd through an fd that stays open: the record says it is held
    open for writing, and by whom."""
    path, db = watched_file(fimctl, tmp)
    data = "TROJANED-BY-WRITE"
    want = patched(path, data)
    with Daemon(fimctl, tmp, db) as d:
        h = Holder(HOLD_OPEN, path, data)
        try:
            h.expect("ready")
            expect_held_change(d, h, path, want, "the write")
            # Held and unchanged: compared at every pass, not reported again.
            time.sleep(11)
            again = [r for r in d.records() if r["type"] == "change" and r["path"] == path and r.get("open_for_write")]
            assert len(again) == 1, again
        finally:
            h.close()
        assert d.stop() == 0, d.stderr()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watch-open.", as_root=True, doc=__doc__))
