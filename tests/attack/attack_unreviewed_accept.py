#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks that make the operator accept changes nobody reviewed (docs/design.md, Baseline:
acceptance): the operator checks and sees change A; an intruder without the private key
changes B, or changes A again, and runs `check` so that the last report is theirs; the
operator's `accept --reason A PATH` (or `update`) would then sign B in too. Accept and update
are bound to the report the operator saw by its id (--report ID, one of the last 20 kept in
state.db); without it they ask on a terminal and refuse (16) elsewhere unless --yes is given.

Usage: attack_unreviewed_accept.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Needs no root. Each case works in its own temporary directory.
"""
import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, expect, fimctl_argv, run, run_main  # noqa: E402


class Ctx(CaseCtx):
    """A signed baseline of TMP/tree (etc/a, etc/hosts) at TMP/var/baseline.db, keys in
    TMP/keys."""

    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.dir = os.path.join(tmp, "var")
        os.mkdir(self.dir, 0o700)
        self.db = os.path.join(self.dir, "baseline.db")
        self.keys = os.path.join(tmp, "keys")
        self.etc = os.path.join(self.tree, "etc")
        os.makedirs(self.etc)
        for n in ("a", "hosts"):
            self.write(n, f"{n}\n")
        self.fim("key", "generate", fmt=None, rc_want=0)
        self.fim("init", self.tree, rc_want=0)

    def path(self, name):
        return os.path.join(self.etc, name)

    def write(self, name, text, mode="w"):
        with open(self.path(name), mode) as f:
            f.write(text)

    def argv(self, *args, fmt="json"):
        return fimctl_argv(self.fimctl, *args, db=self.db, keys=self.keys, unsigned=False, fmt=fmt)

    def fim(self, *args, rc_want=None, fmt="json"):
        r = run(self.argv(*args, fmt=fmt), stdin=subprocess.DEVNULL)
        if rc_want is not None:
            expect(r.rc == rc_want, lambda: f"{args}: exit {r.rc}, want {rc_want}\nstderr: {r.stderr}\n"
                                            f"stdout: {r.stdout[:2000]}")
        return r

    def check(self, rc_want=None):
        """A check: (its report id, the paths it reports)."""
        r = self.fim("check", rc_want=rc_want)
        doc = r.json()
        expect(doc is not None and "report_id" in doc["summary"],
               lambda: f"check prints no report id: {r.stdout[:1500]} {r.stderr}")
        return doc["summary"]["report_id"], sorted(c["path"] for c in doc["records"] if c.get("type") == "change")

    def baseline_bytes(self):
        with open(self.db, "rb") as f:
            return f.read()


def refused(r, *words):
    """Exit 16, every one of `words` in the error, and no report."""
    expect(r.rc == 16, lambda: f"exit {r.rc}, want 16 (refused)\nstderr: {r.stderr}\nstdout: {r.stdout[:1500]}")
    for w in words:
        expect(w in r.stderr, lambda: f"the error does not say {w!r}: {r.stderr}")
    expect(r.stdout == "", lambda: f"a refusal printed a report: {r.stdout[:1500]}")


def on_terminal(argv, answer):
    """Runs argv with stdin and stderr on a pseudo-terminal, `answer` typed ahead: (exit code,
    stdout, what the terminal showed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    os.write(master, answer)
    shown = b""
    while True:  # until the child's end of the terminal is closed
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            p.kill()
            break
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child exited
            break
        if not chunk:
            break
        shown += chunk
    out = p.stdout.read()
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, out.decode(errors="replace"), shown.decode(errors="replace")


def case_change_slipped_in_after_review_not_accepted(ctx):
    """The operator reviews report R1 (etc/a changed); the intruder adds etc/backdoor and runs
    check (R2). The operator's `accept --report R1 etc` takes etc/a only: the backdoor and the
    directory it changed stay reported."""
    ctx.write("a", "reviewed edit\n", "a")
    r1, paths1 = ctx.check(rc_want=4)
    expect(paths1 == [ctx.path("a")], f"R1 lists {paths1}")
    ctx.write("backdoor", "intruder\n")
    r2, paths2 = ctx.check(rc_want=5)
    expect(r2 != r1 and ctx.path("backdoor") in paths2, f"R2 {r2} lists {paths2}, R1 was {r1}")
    ctx.fim("accept", "--report", r1[:24], "--reason", "A", ctx.etc, rc_want=0)
    _, left = ctx.check(rc_want=5)
    expect(left == sorted([ctx.etc, ctx.path("backdoor")]), f"after accepting R1, check reports {left}")
    # R1 once more: its difference is in the baseline now, so it is no longer R1's to accept.
    refused(ctx.fim("accept", "--report", r1, "--reason", "again", "--all"), "no longer")


def case_reviewed_entry_changed_again_refused(ctx):
    """The intruder changes the reviewed file once more and runs check: `accept --report R1`
    refuses (16) naming R1 and R2, and the baseline stays as it was; R2, once reviewed, is
    accepted."""
    ctx.write("a", "reviewed edit\n", "a")
    r1, _ = ctx.check(rc_want=4)
    ctx.write("a", "intruder's line\n", "a")
    r2, _ = ctx.check(rc_want=4)
    expect(r1 != r2, "a further change of the same file kept the report id")
    before = ctx.baseline_bytes()
    refused(ctx.fim("accept", "--report", r1, "--reason", "A", "--all"), r1[:24], r2[:24])
    refused(ctx.fim("accept", "--report", r1[:12], "--reason", "A", ctx.path("a")), r1[:24], r2[:24])
    expect(ctx.baseline_bytes() == before, "a refused accept changed the baseline")
    ctx.fim("accept", "--report", r2, "--reason", "A, then reviewed again", "--all", rc_want=0)
    # The signed journal names the report each acceptance came from, to compare with a copy
    # of the reports kept off the host.
    log = [json.loads(x) for x in ctx.fim("log", fmt="ndjson", rc_want=0).stdout.splitlines() if x.strip()]
    expect(log and all(e.get("report_id") == r2 for e in log), f"journal entries do not name report {r2}: {log}")
    ctx.check(rc_want=0)


def case_kept_report_edited_in_state_db_refused(ctx):
    """state.db is not signed: an intruder who can write it copies the backdoor's entry of
    their own check (R2) into R1, the report the operator reviewed. `accept --report R1`
    refuses (18): R1's entries no longer hash to its id."""
    ctx.write("a", "reviewed edit\n", "a")
    r1, _ = ctx.check(rc_want=4)
    ctx.write("backdoor", "intruder\n")
    r2, _ = ctx.check(rc_want=5)
    con = sqlite3.connect(os.path.join(ctx.dir, "state.db"))
    seq = {rid: con.execute("SELECT seq FROM reports WHERE id = ?", (rid,)).fetchone()[0] for rid in (r1, r2)}
    con.execute("INSERT INTO report_entries SELECT ?1, path, kind, old_row, new_row, rule FROM report_entries "
                "WHERE report = ?2 AND path NOT IN (SELECT path FROM report_entries WHERE report = ?1)",
                (seq[r1], seq[r2]))
    con.commit()
    con.close()
    before = ctx.baseline_bytes()
    r = ctx.fim("accept", "--report", r1, "--reason", "A", "--all")
    expect(r.rc == 18 and "state.db" in r.stderr and r1[:24] in r.stderr,
           f"an edited kept report: exit {r.rc}, want 18 naming state.db and the report: {r.stderr}")
    expect(ctx.baseline_bytes() == before, "accept of an edited report changed the baseline")


def case_accept_without_report_not_a_terminal_refused(ctx):
    """`accept --reason A etc` from a script, after the intruder's check: refused (16, naming
    --report and --yes) before anything is read; --yes is the script's way to accept the last
    report as it is."""
    ctx.write("a", "reviewed edit\n", "a")
    ctx.fim("check", rc_want=4)
    ctx.write("backdoor", "intruder\n")
    ctx.fim("check", rc_want=5)
    before = ctx.baseline_bytes()
    refused(ctx.fim("accept", "--reason", "A", ctx.etc), "--report", "--yes")
    refused(ctx.fim("accept", "--reason", "A", "--all"), "--report", "--yes")
    expect(ctx.baseline_bytes() == before, "a refused accept changed the baseline")
    ctx.fim("accept", "--yes", "--reason", "all of it, unreviewed", "--all", rc_want=0)
    ctx.check(rc_want=0)


def case_accept_on_a_terminal_shows_and_asks(ctx):
    """Without --report on a terminal, accept lists what it would accept (the backdoor too)
    and asks; anything but yes accepts nothing."""
    ctx.write("a", "reviewed edit\n", "a")
    ctx.fim("check", rc_want=4)
    ctx.write("backdoor", "intruder\n")
    ctx.fim("check", rc_want=5)
    before = ctx.baseline_bytes()
    argv = ctx.argv("accept", "--reason", "A", ctx.etc)
    rc, out, shown = on_terminal(argv, b"n\n")
    expect(rc == 16 and out == "", f"answered no: exit {rc}, stdout {out[:500]!r}, terminal {shown!r}")
    expect(ctx.path("backdoor") in shown and ctx.path("a") in shown and "accept 3 changes? [y/N]" in shown,
           f"the terminal did not show what would be accepted and ask: {shown!r}")
    expect(ctx.baseline_bytes() == before, "accept changed the baseline though the answer was no")
    rc, out, shown = on_terminal(argv, b"y\n")
    expect(rc == 0 and "\"command\":\"accept\"" in out, f"answered yes: exit {rc}, stdout {out[:500]!r}, terminal {shown!r}")
    ctx.check(rc_want=0)


def case_update_without_report_not_a_terminal_refused(ctx):
    """The operator reviews a check (etc/a); the intruder adds etc/backdoor; `update` from a
    script, which would take the backdoor into the baseline, is refused (16, naming --report
    and --yes) and writes nothing; on a terminal it shows the backdoor and asks; with --yes it
    writes what it found."""
    ctx.write("a", "reviewed edit\n", "a")
    ctx.fim("check", rc_want=4)
    ctx.write("backdoor", "intruder\n")
    before = ctx.baseline_bytes()
    refused(ctx.fim("update", "--reason", "A"), "--report", "--yes")
    expect(ctx.baseline_bytes() == before, "a refused update changed the baseline")
    rc, out, shown = on_terminal(ctx.argv("update", "--reason", "A"), b"n\n")
    expect(rc == 16 and out == "" and ctx.path("backdoor") in shown and "update 3 changes? [y/N]" in shown,
           f"update on a terminal, answered no: exit {rc}, stdout {out[:300]!r}, terminal {shown!r}")
    expect(ctx.baseline_bytes() == before, "update changed the baseline though the answer was no")
    ctx.fim("update", "--yes", "--reason", "whatever is there, unreviewed", rc_want=5)
    ctx.fim("check", rc_want=0)


def case_update_bound_to_report_refused(ctx):
    """The operator reviews R1 (etc/a); the intruder adds etc/backdoor without a check:
    `update --report R1` refuses (16) naming R1 and the id of what it found, and writes
    nothing; `update` from a script refuses too; `update --report R2` of a reviewed check
    succeeds."""
    ctx.write("a", "reviewed edit\n", "a")
    r1, _ = ctx.check(rc_want=4)
    ctx.write("backdoor", "intruder\n")
    before = ctx.baseline_bytes()
    r = ctx.fim("update", "--report", r1[:24], "--reason", "A")
    refused(r, r1[:24], "backdoor")
    ids = set(re.findall(r"report ([0-9a-f]{24})", r.stderr))
    expect(len(ids) == 2, f"the refusal does not name two report ids: {r.stderr}")
    refused(ctx.fim("update", "--reason", "A"), "--report", "--yes")
    expect(ctx.baseline_bytes() == before, "a refused update changed the baseline")
    r2, _ = ctx.check(rc_want=5)
    expect(r2[:24] in ids, f"the id update named ({ids}) is not that of a check of the same state ({r2})")
    r = ctx.fim("update", "--report", r2[:12], "--reason", "A and the new file, reviewed", rc_want=5)
    expect(r.json()["summary"]["report_id"] == r2, "update's report id is not that of the check it is bound to")
    ctx.check(rc_want=0)


def case_same_differences_same_id(ctx):
    """The id is a function of the differences, not of the run: two checks of the same state
    print the same id (plain shows its first 16 digits), any further change gives another."""
    clean1, _ = ctx.check(rc_want=0)
    clean2, _ = ctx.check(rc_want=0)
    expect(clean1 == clean2 and re.fullmatch(r"[0-9a-f]{64}", clean1), f"unchanged tree: {clean1} then {clean2}")
    ctx.write("a", "edit\n", "a")
    r1, _ = ctx.check(rc_want=4)
    r1b, _ = ctx.check(rc_want=4)
    expect(r1 == r1b and r1 != clean1, f"same differences: {r1} then {r1b} (clean {clean1})")
    plain = ctx.fim("check", fmt="plain", rc_want=4).stdout
    expect(f"\nreport: {r1[:24]}\n" in plain, f"the plain report does not show the id {r1[:24]}: {plain[:800]}")
    os.chmod(ctx.path("hosts"), 0o600)
    r2, _ = ctx.check(rc_want=4)
    expect(r2 != r1, "another difference kept the report id")


def case_unknown_or_short_report_id_refused(ctx):
    """An id state.db does not keep, one too short to be unambiguous, or not hex is refused
    (16) and nothing is accepted; 12 digits of a kept id are enough."""
    ctx.write("a", "edit\n", "a")
    r1, _ = ctx.check(rc_want=4)
    before = ctx.baseline_bytes()
    other = ("0" if r1[0] != "0" else "1") + r1[1:]
    refused(ctx.fim("accept", "--report", other, "--reason", "x", "--all"), "no report")
    refused(ctx.fim("accept", "--report", r1[:11], "--reason", "x", "--all"), "at least 12")
    refused(ctx.fim("accept", "--report", "g" * 16, "--reason", "x", "--all"), "hex")
    refused(ctx.fim("update", "--report", other, "--reason", "x"), "no report")
    expect(ctx.baseline_bytes() == before, "a refused command changed the baseline")
    ctx.fim("accept", "--report", r1[:12].upper(), "--reason", "x", "--all", rc_want=0)


def case_only_last_20_reports_kept(ctx):
    """state.db keeps the last 20 reports: after 21 checks of 21 different states the first
    id is unknown, the second is found (and refused: its file changed since), the last one is
    accepted."""
    ids = []
    for i in range(21):
        ctx.write("a", f"edit {i}\n", "a")
        ids.append(ctx.check(rc_want=4)[0])
    expect(len(set(ids)) == 21, "21 different states gave fewer ids")
    refused(ctx.fim("accept", "--report", ids[0], "--reason", "x", "--all"), "no report", "20")
    refused(ctx.fim("accept", "--report", ids[1], "--reason", "x", "--all"), ids[1][:24], "not what is there now")
    ctx.fim("accept", "--report", ids[20], "--reason", "x", "--all", rc_want=0)
    ctx.check(rc_want=0)


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-accept-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
