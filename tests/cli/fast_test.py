#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check --fast (docs/design.md, Evidence): what each verdict rests on, and the ways an intruder
could try to make a fast check trust what it did not read.

Usage: fast_test.py --fimctl PATH [CASE...] | --list

Every case makes a tree and a policy of its own (rehash_interval as the case needs) and an
unsigned baseline; `state.db` beside it is edited with sqlite3 where a case plays a clock step.
The host's clock is never stepped (the qemu guest does that: tests/vm).
"""
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Ctx, expect, run_fimctl, run_main  # noqa: E402

FILES = 40


class FastCtx(Ctx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        os.makedirs(self.tree)
        for i in range(FILES):
            with open(os.path.join(self.tree, f"f{i:02}"), "w") as f:
                f.write(f"content {i}\n" * (i + 1))
        self.policy(rehash="7d")

    def policy(self, rehash="7d", mode=None):
        self.config = os.path.join(self.tmp, "fimctl.toml")
        with open(self.config, "w") as f:
            f.write(f'version = 1\n[options]\nrehash_interval = "{rehash}"\n')
            if mode:
                f.write(f'check_mode = "{mode}"\n')
            f.write(f'[[rule]]\npath = "{self.tree}"\n')

    def run(self, *args, fmt="json"):
        return run_fimctl(self.fimctl, *args, db=self.db, config=self.config, fmt=fmt)

    def init(self):
        r = self.run("init")
        expect(r.rc == 0, f"init: exit {r.rc}: {r.stderr}")

    def check(self, *args, rc=None):
        """check --format ndjson: (exit code, summary, {path: change record}, alerts)."""
        r = self.run("check", *args, fmt="ndjson")
        recs = [json.loads(line) for line in r.out.splitlines()]
        expect(recs and recs[-1]["type"] == "summary", f"check {args}: exit {r.rc}: {r.stderr}\n{r.stdout[:500]}")
        if rc is not None:
            expect(r.rc == rc, f"check {args}: exit {r.rc}, want {rc}: {r.stdout[-800:]}")
        changes = {rec["path"]: rec for rec in recs if rec["type"] == "change"}
        alerts = [rec for rec in recs if rec["type"] == "alert" and rec["code"] != "unsigned"]
        return r.rc, recs[-1], changes, alerts

    def state(self, sql, *params):
        con = sqlite3.connect(os.path.join(os.path.dirname(self.db), "state.db"))
        cur = con.execute(sql, params)
        rows = cur.fetchall()
        con.commit()
        con.close()
        return rows

    def path(self, i):
        return os.path.join(self.tree, f"f{i:02}")


def entries(ctx):
    return FILES + 1  # the files and the tree's own directory


# --- what a fast check rests on -------------------------------------------------------------

def case_first_fast_check_after_init_reads_nothing(ctx):
    """init records the clock and that every entry was hashed: the next fast check rests on
    stat evidence for every entry and hashes nothing (none is due within 7 days)."""
    ctx.init()
    _, s, changes, _ = ctx.check("--fast", rc=0)
    expect(s["mode"] == "fast" and not changes, s)
    ev = s["evidence"]
    expect(ev["stat"] == entries(ctx) and ev["hashed"] == 0 and s["bytes_hashed"] == 0, f"evidence: {s}")


def case_content_change_with_mtime_restored_is_found(ctx):
    """The intruder rewrites a file with the same size and puts its mtime back (touch -r): the
    change time moved, so the fast check hashes it and reports the content change; the other
    entries rest on stat."""
    ctx.init()
    p = ctx.path(7)
    st = os.stat(p)
    data = open(p, "rb").read()
    with open(p, "r+b") as f:
        f.write(bytes([data[0] ^ 1]) + data[1:])
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    expect(os.stat(p).st_size == st.st_size and os.stat(p).st_mtime_ns == st.st_mtime_ns, "setup")
    rc, s, changes, _ = ctx.check("--fast")
    expect(rc == 4 and p in changes, f"exit {rc}, changes {list(changes)}")
    attrs = {c["attr"] for c in changes[p]["changes"]}
    expect({"sha256", "ctime"} <= attrs and "mtime" not in attrs, f"attrs: {attrs}")
    expect(changes[p]["evidence"] == "hashed", changes[p])
    expect(s["evidence"]["hashed"] == 1 and s["evidence"]["stat"] == entries(ctx) - 1, s["evidence"])


def case_rolling_rehash_reaches_every_entry(ctx):
    """With rehash_interval = 2s, after 2 s every entry's turn has come: a fast check hashes all
    of them (counted as rolling), then the next one right after hashes only those whose turn
    came again in between, and no entry waits longer than the interval plus the run gap."""
    ctx.policy(rehash="2s")
    ctx.init()
    time.sleep(2.2)
    _, s, _, _ = ctx.check("--fast", rc=0)
    expect(s["evidence"]["hashed"] == FILES and s["evidence"]["rolling"] == FILES, f"all due: {s['evidence']}")
    _, s2, _, _ = ctx.check("--fast", rc=0)
    expect(s2["evidence"]["hashed"] < FILES, f"hashed again at once: {s2['evidence']}")


def case_rolling_share_follows_the_time_between_checks(ctx):
    """A 20 s interval, checks 5 s apart: each check hashes about a quarter of the files
    (their turns spread by path), never all, and over five checks every file was hashed."""
    ctx.policy(rehash="20s")
    ctx.init()
    hashed = []
    for _ in range(5):
        time.sleep(5)
        _, s, _, _ = ctx.check("--fast", rc=0)
        hashed.append(s["evidence"]["hashed"])
    expect(all(0 < n < FILES for n in hashed[:4]), f"per check: {hashed}")
    expect(sum(hashed) >= FILES, f"per check: {hashed}")


def case_check_mode_fast_from_policy_and_full_overrides(ctx):
    """check_mode = "fast" makes check fast; --full hashes every byte anyway."""
    ctx.policy(mode="fast")
    ctx.init()
    _, s, _, _ = ctx.check(rc=0)
    expect(s["mode"] == "fast" and s["evidence"]["stat"] == entries(ctx), s)
    _, s, _, _ = ctx.check("--full", rc=0)
    expect(s["mode"] == "full" and s["evidence"]["hashed"] == entries(ctx) and s["bytes_hashed"] > 0, s)
    r = ctx.run("check", "--fast", "--full")
    expect(r.rc == 16, f"--fast --full: exit {r.rc}")


# --- the clock ----------------------------------------------------------------------------

def case_clock_step_withdraws_stat_evidence(ctx):
    """The last check's realtime-minus-boottime is 1 h off what it is now (the clock was
    stepped, here played by editing state.db): stat evidence is withdrawn with an alert saying
    why, every file is hashed, and the step is recorded so the next fast check rests on stat
    again."""
    ctx.init()
    ctx.check("--fast", rc=0)
    ctx.state("UPDATE check_clock SET offset_ns = offset_ns + 3600000000000")
    _, s, _, alerts = ctx.check("--fast", rc=0)
    codes = {a["code"]: a["message"] for a in alerts}
    expect("stat_evidence_withdrawn" in codes and "stepped by -3600.0 s" in codes["stat_evidence_withdrawn"], codes)
    expect(s["evidence"]["stat"] == 0 and s["evidence"]["hashed"] == entries(ctx), s["evidence"])
    expect("stepped" in s.get("stat_withdrawn", ""), s)
    _, s, _, alerts = ctx.check("--fast", rc=0)
    expect(s["evidence"]["stat"] == entries(ctx) and not alerts, f"{s['evidence']} {alerts}")


def case_change_hidden_by_clock_step_is_found(ctx):
    """The attack the clock rule is for, played without touching the clock: a file is rewritten
    and its ctime is made to equal the baseline's (as a clock set back would), which here is
    done the other way round, by making the baseline's recorded clock say the clock stepped.
    Whatever the times say, a fast check after a step hashes, and finds the change."""
    ctx.init()
    p = ctx.path(3)
    with open(p, "r+b") as f:
        f.write(b"X")
    ctx.state("UPDATE check_clock SET offset_ns = offset_ns - 7200000000000")
    rc, s, changes, _ = ctx.check("--fast")
    expect(rc == 4 and p in changes and changes[p]["evidence"] == "hashed", f"exit {rc}: {list(changes)}")


def case_no_recorded_clock_means_hashing(ctx):
    """state.db without the clock row (removed, or a baseline from before fast checks): nothing
    rests on stat; the report says why."""
    ctx.init()
    ctx.state("DELETE FROM check_clock")
    _, s, _, alerts = ctx.check("--fast", rc=0)
    expect(s["evidence"]["hashed"] == entries(ctx) and s["evidence"]["stat"] == 0, s["evidence"])
    expect(any(a["code"] == "stat_evidence_withdrawn" for a in alerts), alerts)


def case_reboot_with_clock_behind_withdraws_stat(ctx):
    """Another boot id and a clock that reads earlier than the last check: withdrawn."""
    ctx.init()
    ctx.state("UPDATE check_clock SET boot_id = 'another-boot', realtime_ns = realtime_ns + 86400000000000")
    _, s, _, alerts = ctx.check("--fast", rc=0)
    expect(s["evidence"]["stat"] == 0 and "reboot" in s.get("stat_withdrawn", ""), s)
    # The same reboot with a clock that moved on: stat evidence stands.
    ctx.state("UPDATE check_clock SET boot_id = 'another-boot', realtime_ns = realtime_ns - 86400000000000")
    _, s, _, _ = ctx.check("--fast", rc=0)
    expect(s["evidence"]["stat"] == entries(ctx), s["evidence"])


# --- state.db as the intruder's lever -------------------------------------------------------

def case_hashed_rows_for_another_baseline_do_not_apply(ctx):
    """init --force makes another baseline (another id): what state.db says of the old one's
    hashes and clock does not make the new one's entries look recently hashed."""
    ctx.policy(rehash="2s")
    ctx.init()
    time.sleep(2.2)
    ctx.check("--fast", rc=0)  # hashed rows for every file
    ctx.state("UPDATE check_clock SET baseline_id = '00000000000000000000000000000000'")
    _, s, _, alerts = ctx.check("--fast", rc=0)
    expect(s["evidence"]["stat"] == 0 and any(a["code"] == "stat_evidence_withdrawn" for a in alerts), s)


def case_hashed_times_in_the_future_vouch_for_nothing(ctx):
    """An intruder who can write state.db sets every hashed-at time (and the full run's) a year
    ahead, to put every entry's turn in the rolling re-hash off: such times vouch for nothing,
    and the entries are hashed."""
    ctx.policy(rehash="2s")
    ctx.init()
    time.sleep(2.2)
    ctx.check("--fast", rc=0)  # a hashed row for every file
    year = 365 * 86400 * 10**9
    ctx.state("UPDATE hashed SET at_ns = at_ns + ?", year)
    ctx.state("UPDATE check_clock SET full_ns = full_ns + ?", year)
    time.sleep(2.2)
    _, s, _, _ = ctx.check("--fast", rc=0)
    expect(s["evidence"]["hashed"] == FILES, f"turns put off by forged times: {s['evidence']}")


def case_fast_report_header_counts_evidence(ctx):
    """The plain report's header names the evidence: "N by stat, N watched, N hashed, N verity"."""
    ctx.init()
    os.truncate(ctx.path(1), 3)
    r = ctx.run("check", "--fast", fmt="plain")
    expect(r.rc == 4, f"exit {r.rc}: {r.stderr}")
    expect(f"evidence: {entries(ctx) - 1} by stat, 0 watched, 1 hashed, 0 verity" in r.stdout, r.stdout)
    r = ctx.run("check", fmt="plain")
    expect("evidence:" not in r.stdout, "a full check has no evidence line")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-fast-", lambda a, fimctl, tmp: FastCtx(fimctl, tmp), doc=__doc__))
