#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks through the files fimctl keeps beside the baseline (issue 17, hole 7): with --db in
a sticky world-writable directory, another user creates state.db, its -journal or the lock
before fimctl does, and keeps them after the directory is made private again. A planted
state.db with a higher sequence forced a false rollback alert (18), a planted and held lock
blocked every update (19), a -journal symlink made root write where it points. The baseline's
own directory gets no sticky-bit exemption, and a side file of another user, a link or a file
with other names is refused (18) with a message naming it.

Usage: attack_side_files.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Root cases, each in a private mount namespace.
"""
import os
import sqlite3
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, expect, fimctl_argv, run, run_main  # noqa: E402

NOBODY = 65534


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.dir = os.path.join(tmp, "shared")
        os.mkdir(self.dir)
        self.db = os.path.join(self.dir, "baseline.db")
        os.mkdir(self.tree)
        with open(os.path.join(self.tree, "f"), "w") as f:
            f.write("original\n")

    def fim(self, *args):
        return run(fimctl_argv(self.fimctl, *args, db=self.db, keys=os.path.join(self.tmp, "keys"), fmt="ndjson"))

    def as_nobody(self, *cmd):
        subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd], check=True)

    def sticky_then_private(self, plant):
        """The directory is 1777 while `plant` (a shell command run as nobody) runs, then the
        operator makes it 0755 again: what nobody created stays, and stays theirs."""
        os.chmod(self.dir, 0o1777)
        self.as_nobody("sh", "-c", plant)
        os.chmod(self.dir, 0o755)


def refused(r, name, what):
    expect(r.rc == 18, lambda: f"{what}: exit {r.rc}, want 18 (refused)\nstderr: {r.stderr}")
    expect(name in r.stderr, lambda: f"{what}: the message does not name {name}: {r.stderr}")


def case_state_db_planted_by_user_refused(ctx):
    """nobody plants state.db, then writes a sequence far ahead into it: the old fimctl calls
    the real baseline a rollback (18 'older than one already seen'); now the planted state.db
    is refused by name."""
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
    state = os.path.join(ctx.dir, "state.db")
    os.unlink(state)
    ctx.sticky_then_private(f"touch {state} && chmod 666 {state}")
    con = sqlite3.connect(state)
    con.execute("CREATE TABLE sequence(baseline BLOB PRIMARY KEY, seq INTEGER NOT NULL, "
                "content_sha256 TEXT NOT NULL) WITHOUT ROWID")
    con.execute("INSERT INTO sequence VALUES(?, 999, 'x')", (ctx.db.encode(),))
    con.commit()
    con.close()
    r = ctx.fim("check")
    refused(r, "state.db", "check with a planted state.db")
    expect("uid 65534" in r.stderr, lambda: f"the message does not name the owner: {r.stderr}")


def case_lock_planted_by_user_refused(ctx):
    """nobody plants baseline.db.lock and holds a flock on it: the old fimctl's update waits on
    nobody's lock (19, 'locked by another fimctl'); now the lock is refused by name."""
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
    lock = ctx.db + ".lock"
    os.unlink(lock)
    ctx.sticky_then_private(f"touch {lock}")
    # Its own session, so the sleep that flock forks dies with it: a sleep left holding the
    # test's stdout made meson wait its full 60 s.
    holder = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                               "flock", lock, "sleep", "60"], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = ctx.fim("update", "--yes")
        refused(r, "baseline.db.lock", "update with a planted, held lock")
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()


def case_journal_symlink_planted_refused(ctx):
    """nobody plants state.db-journal as a symlink to a root-owned file: the old fimctl's
    SQLite writes its journal through it and then removes the link, the target is clobbered;
    now the link is refused by name and the target is untouched."""
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
    victim = os.path.join(ctx.tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    journal = os.path.join(ctx.dir, "state.db-journal")
    ctx.sticky_then_private(f"ln -s {victim} {journal}")
    r = ctx.fim("check")
    with open(victim) as f:
        content = f.read()
    expect(content == "precious\n", lambda: f"the symlink's target was written through: {content[:100]!r}")
    refused(r, "state.db-journal", "check with a planted -journal symlink")


def case_wal_planted_by_user_refused(ctx):
    """nobody plants state.db-wal (theirs, writable by them): refused by name before SQLite
    looks at it."""
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
    wal = os.path.join(ctx.dir, "state.db-wal")
    ctx.sticky_then_private(f"touch {wal}")
    r = ctx.fim("check")
    refused(r, "state.db-wal", "check with a planted -wal")


def case_baseline_dir_sticky_world_writable_refused(ctx):
    """--db in a 1777 root-owned directory: its sticky bit exempted it as it exempts /tmp above
    a path; the baseline's own directory is refused, naming it."""
    os.chmod(ctx.dir, 0o1777)
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 18, lambda: f"init in a 1777 directory: exit {r.rc}, want 18\nstderr: {r.stderr}")
    expect(ctx.dir in r.stderr and "writable by everyone" in r.stderr, lambda: f"message: {r.stderr}")
    os.chmod(ctx.dir, 0o755)
    r = ctx.fim("init", ctx.tree)
    expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
    os.chmod(ctx.dir, 0o1777)
    r = ctx.fim("check")
    expect(r.rc == 18 and ctx.dir in r.stderr, lambda: f"check in a 1777 directory: exit {r.rc}: {r.stderr}")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-side-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), as_root=True,
                      doc=__doc__))
