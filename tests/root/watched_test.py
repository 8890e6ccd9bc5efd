#!/usr/bin/env python3
"""fimctl watch's continuous coverage, what 'check --fast' rests `watched` evidence on (suite 'root').

Usage: watched_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify).
Each case asks what a check would be told: 'status --watched' (watched_roots(): the covered
roots, since when, the paths events named) and 'status --format json' (covered_since). Coverage
must end at anything that casts doubt on it and begin again later, never from before.
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import POLICY, fill_filesystem, run, run_main  # noqa: E402
from root_test import mount  # noqa: E402
from watch_test import Daemon, daemon_with_small_queue, files_while_stopped, filesystem, init, small_tree  # noqa: E402


def watched(d):
    """watched_roots()'s answer: {root: (since_ns, [evented paths])}."""
    r = run([d.fimctl, "--db", d.db, "status", "--socket", d.sock, "--watched"], timeout=30)
    assert r.rc == 0, (r.rc, r.stderr)
    rec = json.loads(r.stdout)
    assert rec["type"] == "watched", rec
    return {x["root"]: (x["since_ns"], [e["path"] for e in x["evented"]]) for x in rec["roots"]}


def covered(d, tree, after=0, pred=lambda ev: True, timeout=20):
    """Waits until `tree` is covered since later than `after` (and `pred` holds for its evented paths)."""
    end = time.monotonic() + timeout
    while True:
        w = watched(d)
        if tree in w and w[tree][0] > after and pred(w[tree][1]):
            return w[tree]
        assert time.monotonic() < end, f"{tree} not covered since after {after}: {w}; {d.records()[-5:]}"
        time.sleep(0.1)


def not_from_before(d, tree, since):
    """Asked right after a break: no answer claims coverage from before it."""
    w = watched(d)
    assert tree not in w or w[tree][0] > since, (w, since)


def case_covered_since_in_status(fimctl, tmp):
    """status shows per root since when the daemon has covered it without a break."""
    tree, db = small_tree(fimctl, tmp)
    before = time.time_ns()
    with Daemon(fimctl, tmp, db) as d:
        since, _ = covered(d, tree)
        assert since > before, (since, before)
        rc, st = d.status()
        assert st["covered_since"] and st["covered_since"][0]["root"] == tree, st
        assert st["covered_since"][0]["since_ns"] == since, (st, since)
        r = run([fimctl, "--db", db, "status", "--socket", d.sock], timeout=30)
        assert "covered_since:\n    - root=" + tree + ", since=" in r.stdout, r.stdout
        assert d.stop() == 0


def case_evented_names_a_written_path(fimctl, tmp):
    """A file written below a covered root is named in evented (changed or not); the others are not,
    and the write does not end the coverage."""
    tree, db = small_tree(fimctl, tmp)
    with Daemon(fimctl, tmp, db) as d:
        since, ev = covered(d, tree)
        assert ev == [], ev
        with open(f"{tree}/f1", "a") as f:
            f.write("x")
        # Asked at once: the answer names it or vouches for nothing (the queue is read first).
        w = watched(d)
        assert tree not in w or f"{tree}/f1" in w[tree][1], w
        since2, ev = covered(d, tree, pred=lambda ev: f"{tree}/f1" in ev)
        assert since2 == since and f"{tree}/f0" not in ev and f"{tree}/f2" not in ev, (since, since2, ev)
        assert d.stop() == 0


def case_coverage_ends_on_overflow(fimctl, tmp):
    """The queue overflows while the daemon is stopped (SIGSTOP): the coverage from before ends,
    and begins again only after the overflow's rescan."""
    tree, db = small_tree(fimctl, tmp)
    d = daemon_with_small_queue(fimctl, tmp, db)
    try:
        since, _ = covered(d, tree)
        files_while_stopped(d, tree)
        not_from_before(d, tree, since)
        d.wait_for(lambda r: r["type"] == "rescan_done" and r["reason"] == "overflow", what="the overflow rescan")
        not_from_before(d, tree, since)
        rescan_done = time.time_ns()
        again, ev = covered(d, tree, after=since)
        assert again > since and again <= rescan_done + 5 * 10**9, (since, again)
        assert not [p for p in ev if "/new" in p], ev  # named before the break: gone with it
        assert d.stop() == 0
    finally:
        d.stop(signal.SIGKILL)


def case_coverage_ends_on_restart(fimctl, tmp):
    """A stopped daemon vouches for nothing; the next one's coverage begins after its own start."""
    tree, db = small_tree(fimctl, tmp)
    d = Daemon(fimctl, tmp, db)
    since, _ = covered(d, tree)
    assert d.stop() == 0
    assert watched(d) == {}, watched(d)
    restart = time.time_ns()
    with Daemon(fimctl, tmp, db) as d2:
        again, _ = covered(d2, tree)
        assert again > restart, (restart, again)
        assert d2.stop() == 0


def case_coverage_ends_when_daemon_killed(fimctl, tmp):
    """SIGKILL: no clean stop, so state.db keeps the dead daemon's coverage rows and a recent
    heartbeat. No answer may claim coverage from before: not while it is dead (nobody answers),
    not from the next daemon (its coverage begins after its own start)."""
    tree, db = small_tree(fimctl, tmp)
    d = Daemon(fimctl, tmp, db)
    since, _ = covered(d, tree)
    with open(f"{tree}/f0", "a") as f:
        f.write("x")
    covered(d, tree, pred=lambda ev: f"{tree}/f0" in ev)
    d.stop(signal.SIGKILL)
    assert watched(d) == {}, watched(d)
    with open(f"{tree}/f2", "a") as f:
        f.write("changed while nobody watched")
    restart = time.time_ns()
    with Daemon(fimctl, tmp, db) as d2:
        not_from_before(d2, tree, restart)
        again, ev = covered(d2, tree)
        assert again > restart and f"{tree}/f0" not in ev, (restart, again, ev)
        assert d2.stop() == 0


def case_coverage_ends_on_sighup(fimctl, tmp):
    """SIGHUP (a reload) ends coverage; it begins again after the compare under the new policy."""
    tree, db = small_tree(fimctl, tmp)
    pol = f"{tmp}/policy.toml"
    with open(POLICY) as src, open(pol, "w") as dst:
        dst.write(src.read())
    with Daemon(fimctl, tmp, db, config=pol) as d:
        since, _ = covered(d, tree)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda r: r["type"] == "reload", what="the reload record")
        not_from_before(d, tree, since)
        covered(d, tree, after=since)
        assert d.stop() == 0


def case_coverage_ends_when_state_db_full(fimctl, tmp):
    """state.db's filesystem fills up (coverage_not_recorded): the paths events name can no longer
    be kept, so no coverage is vouched for, in status or to a check; it begins again, later, once
    writes succeed."""
    mnt = filesystem(tmp, "tmpfs")
    db_dir = f"{tmp}/dbfs"
    os.makedirs(db_dir)
    mount("-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", db_dir)
    tree = f"{mnt}/watched"
    os.makedirs(tree)
    with open(f"{tree}/f", "w") as f:
        f.write("x\n")
    db = f"{db_dir}/baseline.db"
    init(fimctl, db, tree)
    with Daemon(fimctl, tmp, db) as d:
        since, _ = covered(d, tree)
        fill_filesystem(f"{db_dir}/filler")
        d.wait_for(lambda r: r["type"] == "alert" and r["code"] == "coverage_not_recorded", timeout=40,
                   what="the coverage_not_recorded alert")
        with open(f"{tree}/f", "a") as f:  # named while nothing can be kept
            f.write("y\n")
        rc, st = d.status()
        assert rc == 8 and not [c for c in st["covered_since"] if c["since_ns"] <= since], st
        assert watched(d) == {}, watched(d)
        os.unlink(f"{db_dir}/filler")
        again, ev = covered(d, tree, after=since, timeout=40)
        assert again > since, (since, again)
        assert d.stop() == 0


def case_coverage_ends_on_mount_over_root(fimctl, tmp):
    """A tmpfs mounted over a directory below the root: coverage ends (what the mount hides is
    not watched); unmounted again, it begins after the rescan, later than the mount."""
    tree, db = small_tree(fimctl, tmp)
    os.makedirs(f"{tree}/sub")
    with Daemon(fimctl, tmp, db, extra=["--mount-events", "poll"]) as d:
        d.change(f"{tree}/sub", "added")  # made after init: compared once, then covered again
        since, _ = covered(d, tree)
        mount("-t", "tmpfs", "-o", "size=1m", "evil", f"{tree}/sub")
        d.wait_for(lambda r: r["type"] == "alert" and r["code"] == "mount_attached", what="mount_attached")
        not_from_before(d, tree, since)
        assert watched(d) == {}, watched(d)  # hidden: degraded while it stays
        subprocess.run(["umount", f"{tree}/sub"], check=True)
        d.wait_for(lambda r: r["type"] == "alert" and r["code"] == "mount_detached", what="mount_detached")
        covered(d, tree, after=since)
        assert d.stop() == 0


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watched.", as_root=True, doc=__doc__))
