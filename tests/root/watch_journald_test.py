#!/usr/bin/env python3
"""fimctl watch and a real systemd-journald (suite 'root'): each record is one journal entry
with PRIORITY, FIMCTL_TYPE and its type's MESSAGE_ID, read back with journalctl -o json.
journald runs in the case's private mount namespace, on tmpfs over /run and the journal
directories: the host's journal (if any) is neither read nor written.

Usage: watch_journald_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no systemd-journald, no fanotify).
"""
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, expect, fimctl_argv, run, run_main  # noqa: E402
from root_test import mount  # noqa: E402
from watch_test import Daemon, init  # noqa: E402

# src/daemon/journal.cpp (docs/design.md, Record schema).
CHANGE_ID = "c0aee8a1b2d24a75afd95d2456ee37f1"
WATCH_START_ID = "f784f4c577d94247b3689432667c3f88"


class Journald:
    """systemd-journald on tmpfs in this mount namespace."""

    def __init__(self, tmp):
        exe = next((p for p in ("/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald") if os.access(p, os.X_OK)), None)
        if not exe or not os.path.exists("/etc/machine-id"):
            raise Skip("no systemd-journald or /etc/machine-id (Debian package systemd)")
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/run")
        for d in ("/var/log/journal",):
            if os.path.isdir(d):
                mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", d)
        self.log = open(os.path.join(tmp, "journald.log"), "w")
        self.proc = subprocess.Popen([exe], stdout=self.log, stderr=self.log)
        end = time.monotonic() + 10
        while not os.path.exists("/run/systemd/journal/socket"):
            if time.monotonic() > end or self.proc.poll() is not None:
                self.stop()
                raise Skip(f"systemd-journald did not start here: {open(self.log.name).read()[-500:]}")
            time.sleep(0.05)

    def entries(self, *match):
        r = run(["journalctl", "--no-pager", "-o", "json", *match], timeout=30)
        return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]

    def wait(self, *match, what, timeout=20):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = self.entries(*match)
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"no journal entry {what} ({' '.join(match)}); all: {self.entries()[-5:]}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def added(jd, path, timeout=20):
    """The change entry (MESSAGE_ID of change) whose record adds `path`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in jd.entries(f"MESSAGE_ID={CHANGE_ID}"):
            rec = json.loads(e["MESSAGE"])
            if rec["type"] == "change" and rec["kind"] == "added" and rec["path"] == path:
                return e
        time.sleep(0.1)
    raise AssertionError(f"no change entry adding {path}: {jd.entries(f'MESSAGE_ID={CHANGE_ID}')}")


def tree_and_baseline(fimctl, tmp):
    tree = os.path.join(tmp, "tree")
    os.makedirs(tree)
    with open(os.path.join(tree, "f"), "w") as f:
        f.write("f\n")
    db = os.path.join(tmp, "db")
    init(fimctl, db, tree)
    return tree, db


def case_syslog_records_get_priority_and_message_id(fimctl, tmp):
    """watch --syslog on a host where journald runs: every record is an entry of its own with
    PRIORITY (warning for a change, notice for the daemon's records), FIMCTL_TYPE and its type's
    MESSAGE_ID; MESSAGE is the record's JSON. The --output lines are written as before."""
    tree, db = tree_and_baseline(fimctl, tmp)
    jd = Journald(tmp)
    try:
        with Daemon(fimctl, tmp, db, extra=("--syslog",)) as d:
            with open(os.path.join(tree, "new"), "w") as f:
                f.write("x\n")
            d.change(os.path.join(tree, "new"), "added")
            e = added(jd, os.path.join(tree, "new"))
            expect(e.get("PRIORITY") == "4" and e.get("FIMCTL_TYPE") == "change" and e.get("SYSLOG_IDENTIFIER") == "fimctl", e)
            start = jd.wait(f"MESSAGE_ID={WATCH_START_ID}", what="for watch_start")[-1]
            expect(start.get("PRIORITY") == "5" and start.get("FIMCTL_TYPE") == "watch_start", start)
            expect(d.stop() == 0, d.stderr())
    finally:
        jd.stop()


def case_journal_stdout_becomes_entries(fimctl, tmp):
    """Standard output is a journal stream ($JOURNAL_STREAM, as systemd sets it for a service):
    each record goes to journald as an entry with fields, not as a line on the stream, and
    MESSAGE is still the ndjson line (journalctl -o cat | jq works as before)."""
    tree, db = tree_and_baseline(fimctl, tmp)
    jd = Journald(tmp)
    proc = None
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("/run/systemd/journal/stdout")
        # The stream protocol's header: identifier, unit, priority, level prefix, forward to
        # syslog, kmsg, console.
        s.sendall(b"fimctl-stream\n\n6\n0\n0\n0\n0\n")
        st = os.fstat(s.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        cmd = fimctl_argv(fimctl, "watch", "--socket", os.path.join(tmp, "watch.sock"), "--debounce", "20ms", db=db, fmt="ndjson")
        err = open(os.path.join(tmp, "watch.stderr"), "w")
        proc = subprocess.Popen(cmd, stdout=s.fileno(), stderr=err, env=env)
        jd.wait(f"MESSAGE_ID={WATCH_START_ID}", what="for watch_start", timeout=30)
        time.sleep(0.5)
        with open(os.path.join(tree, "new"), "w") as f:
            f.write("x\n")
        e = added(jd, os.path.join(tree, "new"))
        expect(e.get("_TRANSPORT") == "journal" and e.get("PRIORITY") == "4", e)
        proc.terminate()
        expect(proc.wait(timeout=30) == 0, open(err.name).read())
        lines = [x for x in jd.entries("SYSLOG_IDENTIFIER=fimctl-stream") if '"schema"' in str(x.get("MESSAGE", ""))]
        expect(not lines, f"records also written as lines on the stream: {lines[:3]}")
    finally:
        if proc and proc.poll() is None:
            proc.kill()
            proc.wait()
        jd.stop()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-journald-", as_root=True, doc=__doc__))
