#!/usr/bin/env python3
"""Maintenance windows (docs/design.md, Reconciliation): 'fimctl window open|close|list' write
signed journal entries; check and update tag the changes a window covers (below its paths, ctime
inside it, on a clock that did not step); 'accept --window ID' takes exactly the tagged ones.
The daemon's side (a window naming a writer) is tests/root/watch_window_test.py.

Usage: window_test.py --fimctl PATH (--list | CASE)"""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ecs_schema import Schema  # noqa: E402
from fimtest import Skip, expect, run_main  # noqa: E402
from trust_test import Ctx as TrustCtx, journal_rows  # noqa: E402


class Ctx(TrustCtx):
    """A signed baseline of TMP/tree with app/ (what the deploy changes) and other/ beside it."""

    def write(self, name, text):
        path = os.path.join(self.tree, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    def setup(self):
        self.write("app/conf", "v1\n")
        self.write("other/x", "x1\n")
        self.signed_baseline()
        self.app = os.path.join(self.tree, "app")

    def records(self, *args, rc_want):
        """check --format json's records, by path."""
        out = self.ok("--format", "json", "check", *args, rc_want=rc_want)
        return {r["path"]: r for r in json.loads(out)["records"] if r.get("type") == "change"}


def tags(records):
    return {p: (r.get("window") or {}).get("id") for p, r in records.items()}


def case_window_accepts_the_deploy_not_a_change_outside_its_paths(ctx):
    """A window on app/: the deploy's changes below it are tagged (plain, json, ndjson), an
    unrelated change made at the same time outside it is not; accept --window takes exactly the
    tagged ones, with the window's reason, each journal entry naming the window; the unrelated
    change stays reported."""
    ctx.setup()
    out = ctx.ok("window", "open", "--for", "10m", "--reason", "CHG-1234", ctx.app)
    expect(out.startswith("window 1 open until "), out)
    ctx.write("app/conf", "v2\n")
    ctx.write("app/new", "n\n")
    ctx.write("other/x", "intruder\n")
    recs = ctx.records(rc_want=5)
    t = tags(recs)
    expect(t[ctx.app + "/conf"] == "1" and t[ctx.app + "/new"] == "1", f"the deploy is not tagged: {t}")
    expect(t[ctx.tree + "/other/x"] is None, f"a change outside the window's paths is tagged: {t}")
    plain = ctx.ok("check", rc_want=5)
    expect("  window: 1 (changed " in plain and "window 1: tags 3 of these changes" in plain, plain)
    nd = [json.loads(line) for line in ctx.ok("--format", "ndjson", "check", rc_want=5).splitlines()]
    summary = [r for r in nd if r["type"] == "summary"][0]
    expect(summary["windows"] == {"1": 3}, f"the summary does not count the window's changes: {summary}")
    ecs = Schema()
    docs = [json.loads(line) for line in ctx.ok("--format", "ecs", "check", rc_want=5).splitlines()]
    expect(all(not ecs.problems(d) for d in docs), [ecs.problems(d) for d in docs])
    expect(sum(1 for d in docs if d.get("fimctl", {}).get("window", {}).get("id") == "1") == 3, docs)
    out = ctx.ok("accept", "--window", "1", "--yes")
    rows = [r[1] for r in journal_rows(ctx.db)]
    accepted = [r for r in rows if "\naction=accept\n" in r]
    expect(len(accepted) == 3 and all(f"\nwindow={b'1'.hex()}\n" in r and f"reason={b'CHG-1234'.hex()}" in r
                                      for r in accepted), f"journal: {rows}")
    expect(not any("other" in bytes.fromhex(r.split("path=")[1].split("\n")[0]).decode() for r in accepted), rows)
    recs = ctx.records(rc_want=4)
    expect(set(recs) == {ctx.tree + "/other/x"}, f"after accept --window, left: {sorted(recs)}")
    log = ctx.ok("log")
    expect("  window: 1, until " in log and "  window: 1\n" in log, log)


def case_change_after_the_window_expired_is_not_tagged(ctx):
    """A window never outlives its duration: a change after it expired is reported untagged,
    and accept --window refuses (nothing is tagged), leaving the baseline as it was."""
    ctx.setup()
    ctx.ok("window", "open", "--for", "1s", "--reason", "short", ctx.app)
    time.sleep(1.2)
    listed = ctx.ok("window", "list")
    expect(listed.startswith("window 1: expired,"), listed)
    ctx.write("app/conf", "late\n")
    expect(tags(ctx.records(rc_want=4))[ctx.app + "/conf"] is None, "a change after expiry is tagged")
    before = open(ctx.db, "rb").read()
    ctx.refused(16, "tags none of the", "accept", "--window", "1", "--yes")
    expect(open(ctx.db, "rb").read() == before, "a refused accept --window changed the baseline")


def case_change_before_the_window_opened_is_not_tagged(ctx):
    """A change made before the window opened (an intruder's, waiting for a deploy to hide
    behind) is not tagged, though it is below the window's paths."""
    ctx.setup()
    ctx.write("app/conf", "planted\n")
    time.sleep(0.05)
    ctx.ok("window", "open", "--for", "10m", "--reason", "deploy", ctx.app)
    ctx.write("app/new", "deployed\n")
    t = tags(ctx.records(rc_want=5))
    expect(t[ctx.app + "/conf"] is None and t[ctx.app + "/new"] == "1", f"tags: {t}")


def case_closed_window_keeps_its_tags_and_tags_nothing_after(ctx):
    """window close ends it: what changed inside stays tagged (acceptable after the close), a
    change after the close is not; a closed window cannot be closed again."""
    ctx.setup()
    ctx.ok("window", "open", "--for", "1h", "--reason", "deploy", ctx.app)
    ctx.write("app/conf", "v2\n")
    out = ctx.ok("window", "close")
    expect(out.startswith("window 1 closed at "), out)
    time.sleep(0.05)
    ctx.write("app/late", "after\n")
    t = tags(ctx.records(rc_want=5))
    expect(t[ctx.app + "/conf"] == "1" and t[ctx.app + "/late"] is None, f"tags: {t}")
    ctx.refused(16, "closed already", "window", "close", "1")
    ctx.refused(16, "no window is open", "window", "close")
    ctx.ok("accept", "--window", "1", "--yes")
    left = ctx.records(rc_want=5)
    expect(ctx.app + "/late" in left and ctx.app + "/conf" not in left, sorted(left))


def case_window_naming_a_writer_tags_nothing_in_check(ctx):
    """check cannot tell who wrote a file: a window that names a writer tags nothing without
    the watch daemon's record of the writes."""
    ctx.setup()
    ctx.ok("window", "open", "--for", "10m", "--reason", "deploy", "--by-process", "ansible", ctx.app)
    ctx.write("app/conf", "v2\n")
    expect(tags(ctx.records(rc_want=4))[ctx.app + "/conf"] is None, "tagged without the daemon")
    listed = ctx.ok("window", "list")
    expect("written by process ansible" in listed, listed)


def case_forged_window_in_the_journal_refused(ctx):
    """The window is signed: extending its expiry (or its paths) in the journal fails
    verification (18) for check, accept and window list alike."""
    ctx.setup()
    ctx.ok("window", "open", "--for", "1s", "--reason", "short", ctx.app)
    rows = journal_rows(ctx.db)
    text = rows[-1][1]
    until = [line for line in text.split("\n") if line.startswith("until=")][0]
    forged = text.replace(until, "until=" + str(int(until[6:]) + 86400 * 10**9))
    forged = forged.replace("scope=" + ctx.app.encode().hex(), "scope=" + ctx.tree.encode().hex())
    ctx.meta(f"UPDATE journal SET entry = CAST(x'{forged.encode().hex()}' AS BLOB) WHERE seq = {rows[-1][0]}")
    for args in (["check"], ["window", "list"], ["accept", "--window", "1", "--yes"]):
        rc, out, err = ctx.run(*args)
        expect(rc == 18, f"{args}: a forged window: exit {rc}: {err}")


def case_window_open_refuses_bad_input(ctx):
    """Bad input is refused (16) with the reason, and the baseline is left as it was: no
    --reason, no --for, too long, a path outside the roots, a command name the kernel would
    truncate, two writers, an unknown user."""
    ctx.setup()
    before = open(ctx.db, "rb").read()
    for says, args in (("needs --reason", ["--for", "1h"]),
                       ("--for", ["--reason", "r"]),
                       ("--for", ["--for", "8d", "--reason", "r"]),
                       ("--for", ["--for", "soon", "--reason", "r"]),
                       ("not below the baseline's roots", ["--for", "1h", "--reason", "r", "/usr"]),
                       ("at most 15 bytes", ["--for", "1h", "--reason", "r", "--by-process", "a-very-long-command"]),
                       ("--by-", ["--for", "1h", "--reason", "r", "--by-process", "a", "--by-user", "root"]),
                       ("no user", ["--for", "1h", "--reason", "r", "--by-user", "no-such-user-here"])):
        rc, out, err = ctx.run("window", "open", *args)
        expect(rc == 16 and says in err, f"window open {args}: exit {rc}: {err}")
    expect(open(ctx.db, "rb").read() == before, "a refused window open changed the baseline")
    ctx.refused(16, "there is no window", "accept", "--window", "7", "--yes")
    ctx.refused(16, "no PATHs", "accept", "--window", "1", "--yes", ctx.app)


def case_reboot_since_the_window_opened_withdraws_its_tags(ctx):
    """A clock that may have been stepped (here: another boot id, as after a restart) cannot
    date a change: the window's tags are withdrawn, the changes are reported untagged with the
    alert window_clock, and accept --window takes nothing."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare (a private mount namespace to fake the boot id)")
    ctx.setup()
    ctx.ok("window", "open", "--for", "10m", "--reason", "deploy", ctx.app)
    ctx.write("app/conf", "v2\n")
    fake = os.path.join(ctx.tmp, "boot_id")
    with open(fake, "w") as f:
        f.write("11111111-2222-3333-4444-555555555555\n")
    cmd = (f"mount --bind {fake} /proc/sys/kernel/random/boot_id && exec \"$0\" \"$@\"")
    base = [ctx.fimctl, "--db", ctx.db, "--keys", ctx.keys, "--format", "ndjson"]
    r = subprocess.run(["unshare", "-m", "sh", "-c", cmd] + base + ["check"], capture_output=True, text=True)
    expect(r.returncode == 4, f"check after a reboot: exit {r.returncode}: {r.stderr}")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    expect(any(x["type"] == "alert" and x["code"] == "window_clock" for x in recs), r.stdout)
    expect(not any(x.get("window") for x in recs if x["type"] == "change"), f"tagged after a reboot: {r.stdout}")
    r = subprocess.run(["unshare", "-m", "sh", "-c", cmd] + base + ["accept", "--window", "1", "--yes"],
                       capture_output=True, text=True)
    expect(r.returncode == 16 and "tags none of the" in r.stderr, f"accept after a reboot: {r.returncode}: {r.stderr}")
    # On this boot the window still dates the change.
    expect(tags(ctx.records(rc_want=4))[ctx.app + "/conf"] == "1", "the tag is gone on the same boot")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-window-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
