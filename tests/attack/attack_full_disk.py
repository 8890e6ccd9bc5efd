#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks that hide a report by filling a disk: the state directory (state.db cannot take the
report, and check used to fail with exit 20 and no records at all), and /tmp (where the report
was spooled: plain printed only the counts, ndjson nothing). The report must always reach
stdout; a state.db that cannot be written is an alert and exit bit 8.

Usage: attack_full_disk.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Each case works in its own temporary directory, in a private mount
namespace (the harness's root mode).
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, Skip, expect, fill_filesystem, fimctl_argv, run, run_main  # noqa: E402

CHANGES = 50


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.state_dir = os.path.join(tmp, "state")
        os.mkdir(self.state_dir)
        self.db = os.path.join(self.state_dir, "baseline.db")
        os.mkdir(self.tree)
        for i in range(CHANGES + 10):
            with open(os.path.join(self.tree, f"f{i:03d}"), "w") as f:
                f.write("original\n")

    def argv(self, *args, fmt):
        return fimctl_argv(self.fimctl, *args, db=self.db, keys=os.path.join(self.tmp, "keys"), fmt=fmt)

    def fim(self, *args, fmt="ndjson", rc_want, wrap=()):
        r = run([*wrap, *self.argv(*args, fmt=fmt)])
        expect(r.rc == rc_want, lambda: f"{args}: exit {r.rc}, want {rc_want}\nstderr: {r.stderr}\n"
                                        f"stdout: {r.stdout[:2000]}")
        return r

    def tamper(self):
        for i in range(CHANGES):
            with open(os.path.join(self.tree, f"f{i:03d}"), "w") as f:
                f.write("tampered, longer\n")


def mount_small_tmpfs(path, size="4m"):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "fimctl-attack", path], check=True)


def fill(path):
    """Writes until ENOSPC: nothing more fits on the filesystem of `path`."""
    fill_filesystem(os.path.join(path, "filler"))
    # Small files too, so not even a page of a journal or WAL fits.
    for i in range(10000):
        try:
            with open(os.path.join(path, f"filler{i}"), "wb") as f:
                f.write(b"\0" * 4096)
        except OSError:
            break


def ndjson(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def case_full_state_dir_keeps_report(ctx):
    """The state directory is full when check finds 50 changes: every change is reported,
    an alert names state.db, and the exit code is 4|8 (changed, incomplete), not 20 with no
    records. Nothing is lost or corrupted: once there is room again the next check records."""
    mount_small_tmpfs(ctx.state_dir)
    ctx.fim("init", ctx.tree, rc_want=0)
    ctx.tamper()
    fill(ctx.state_dir)
    r = ctx.fim("check", rc_want=12)
    recs = ndjson(r.stdout)
    changes = [x for x in recs if x.get("type") == "change"]
    expect(len(changes) == CHANGES, f"{len(changes)} change records, want {CHANGES}: {r.stdout[:1500]}")
    alerts = [x for x in recs if x.get("type") == "alert" and x.get("code") == "state"]
    expect(alerts and "state.db" in alerts[0]["message"], f"no 'state' alert naming state.db: {recs[-3:]}")
    summary = recs[-1]
    expect(summary.get("type") == "summary" and summary.get("exit_code") == 12, f"summary: {summary}")
    # Plain says it too, and lists every change.
    r = ctx.fim("check", fmt="plain", rc_want=12)
    expect(r.stdout.count("changed: ") == CHANGES and "state.db" in r.stdout, r.stdout[:1500])
    for name in os.listdir(ctx.state_dir):
        if name.startswith("filler"):
            os.unlink(os.path.join(ctx.state_dir, name))
    ctx.fim("check", rc_want=4)


def case_full_tmp_keeps_report(ctx):
    """/tmp is full (here a full 64 KiB tmpfs mounted over it in a private mount namespace):
    the report of 50 changes still reaches stdout whole in every format."""
    if not os.path.exists("/usr/bin/unshare"):
        raise Skip("unshare is not installed")
    ctx.fim("init", ctx.tree, rc_want=0)
    ctx.tamper()
    # A private mount namespace whose /tmp is a full tmpfs, with the case's directory (under
    # the old /tmp) bound back at its path so that fimctl still sees its tree and baseline.
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'exec 3<"$0" && mount -t tmpfs -o size=64k fimctl-attack /tmp && mkdir -p "$0" && '
            'mount --no-canonicalize --bind /proc/self/fd/3 "$0" && exec 3<&- && '
            '(head -c 1M /dev/zero > /tmp/filler 2>/dev/null; true) && exec "$@"', ctx.tmp]
    for fmt in ("plain", "ndjson", "json"):
        r = ctx.fim("check", fmt=fmt, rc_want=4, wrap=wrap)
        if fmt == "plain":
            n = r.stdout.count("changed: ")
        elif fmt == "ndjson":
            n = sum(1 for x in ndjson(r.stdout) if x.get("type") == "change")
        else:
            n = sum(1 for x in json.loads(r.stdout)["records"] if x.get("type") == "change")
        expect(n == CHANGES, f"--format {fmt}: {n} changes reported, want {CHANGES}: {r.stdout[:1500]}")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-disk-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), as_root=True,
                      doc=__doc__))
