#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks on what fimctl reads of a file's content: a file whose first block is a hole (it
was never hashed, so it could change unseen), and a growing log rewritten in place or wiped
and rewritten longer (MITRE T1070.002: login records edited to hide a session).

Usage: attack_content_tampering.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Each case works in its own temporary directory.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, expect, run_fimctl, run_main  # noqa: E402

KIB = 1024


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        os.mkdir(self.tree)
        self.policy = os.path.join(tmp, "policy.toml")
        with open(self.policy, "w") as f:
            f.write(f'version = 1\n\n[[rule]]\npath = "{self.tree}"\n\n'
                    f'[[rule]]\nregex = "{self.tree}/log/.*"\nattrs = ">"\n')
        os.mkdir(os.path.join(self.tree, "log"))

    def fim(self, *args, rc_want):
        r = run_fimctl(self.fimctl, *args, config=self.policy, db=self.db)
        expect(r.rc == rc_want, lambda: f"{args}: exit {r.rc}, want {rc_want}\nstderr: {r.stderr}\n"
                                        f"stdout: {r.stdout[:3000]}")
        return r

    def check(self, rc_want):
        """check's records by path (changes and entry statuses)."""
        doc = self.fim("check", rc_want=rc_want).json()
        return {rec.get("path"): rec for rec in doc["records"] if rec.get("path")}

    def path(self, name):
        return os.path.join(self.tree, name)


def changed(rec):
    """The attributes a change record says differ."""
    return [c["attr"] for c in (rec or {}).get("changes", [])]


def sparse(path, layout):
    """Writes a file from (offset, bytes) pieces; what lies between them is holes, and the
    file ends at the last piece or at layout's final (size, None)."""
    with open(path, "wb") as f:
        for off, data in layout:
            if data is None:
                f.truncate(off)
            else:
                f.seek(off)
                f.write(data)


def rewrite_at(path, off, data):
    """Overwrites bytes in place, keeping the size (and, with os.utime, the mtime)."""
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


# --- sparse files (hole 9) ------------------------------------------------------------------

def case_leading_hole_file_is_hashed(ctx):
    """A file whose first block is a hole (create, seek 8 KiB, write): the walk's SEEK_DATA
    moved the read offset past the hole, the byte count never matched, and the file stayed
    'unstable' with no digest, so every check exited 8 and its content was never compared."""
    sparse(ctx.path("lead"), [(8 * KIB, b"x" * 100)])
    sparse(ctx.path("middle"), [(0, b"a" * 100), (1 << 20, b"b")])
    sparse(ctx.path("end"), [(0, b"a" * 100), (1 << 20, None)])
    sparse(ctx.path("all-hole"), [(64 * KIB, None)])  # SEEK_DATA finds no data at all (ENXIO)
    ctx.fim("init", ctx.tree, rc_want=0)
    recs = ctx.check(0)
    expect(not recs, f"a clean tree of sparse files reports {list(recs)}")


def case_change_inside_leading_hole_detected(ctx):
    """The attacker writes into the hole of a sparse file and sets the mtime back: the size
    and times are the same, only the digest can tell, so the file must have been hashed."""
    sparse(ctx.path("lead"), [(8 * KIB, b"x" * 100)])
    ctx.fim("init", ctx.tree, rc_want=0)
    rewrite_at(ctx.path("lead"), 100, b"evil")
    recs = ctx.check(4)
    rec = recs.get(ctx.path("lead"))
    expect(rec and rec.get("kind") == "changed" and "sha256" in changed(rec),
           f"the write into the hole is not a sha256 change: {rec}")


# --- growing logs (hole 10) ----------------------------------------------------------------

def login_log(ctx, n=64):
    path = ctx.path("log/wtmp")
    with open(path, "wb") as f:
        for i in range(n):
            f.write(f"user{i:03d} pts/{i % 8} 10.0.0.{i % 250}\n".encode().ljust(64, b"\0"))
    return path


def case_log_grows_quietly(ctx):
    """The normal case the defence must not break: appends to a growing log are not a change,
    and the check after an append is clean (the prefix digest matches)."""
    log = login_log(ctx)
    ctx.fim("init", ctx.tree, rc_want=0)
    with open(log, "ab") as f:
        f.write(b"user999 pts/9 10.0.0.9\n".ljust(64, b"\0"))
    recs = ctx.check(0)
    expect(not recs, f"an append to a growing log is reported: {recs}")


def case_log_entry_overwritten_in_place(ctx):
    """Same size, one login record rewritten in place, mtime set back: only the content tells."""
    log = login_log(ctx)
    ctx.fim("init", ctx.tree, rc_want=0)
    rewrite_at(log, 64 * 5, b"root    ".ljust(64, b"\0"))
    recs = ctx.check(4)
    rec = recs.get(log)
    expect(rec and "sha256" in changed(rec), f"in-place rewrite not reported: {rec}")


def case_log_wiped_and_rewritten_longer(ctx):
    """Truncate to zero and write back the records minus one plus padding, ending longer than
    before: the size only grew, which a growing log allows; the first old-size bytes differ."""
    log = login_log(ctx)
    ctx.fim("init", ctx.tree, rc_want=0)
    data = open(log, "rb").read()
    forged = data[:64 * 3] + data[64 * 4:] + b"x" * 128
    with open(log, "wb") as f:  # O_TRUNC, then the forged history
        f.write(forged)
    expect(len(forged) > len(data), "the forged log must be longer")
    recs = ctx.check(4)
    rec = recs.get(log)
    expect(rec and "sha256" in changed(rec), f"wiped and rewritten log not reported: {rec}")


def case_log_grown_then_prefix_edited(ctx):
    """An append and an edit of an old record in the same interval: the append must not hide
    the edit."""
    log = login_log(ctx)
    ctx.fim("init", ctx.tree, rc_want=0)
    with open(log, "ab") as f:
        f.write(b"y" * 64)
    rewrite_at(log, 0, b"Z")
    recs = ctx.check(4)
    rec = recs.get(log)
    expect(rec and "sha256" in changed(rec), f"edit under an append not reported: {rec}")


def case_log_shrunk_still_reported(ctx):
    """The old defence keeps working: a log that shrank is a change."""
    log = login_log(ctx)
    ctx.fim("init", ctx.tree, rc_want=0)
    os.truncate(log, 64 * 10)
    recs = ctx.check(4)
    rec = recs.get(log)
    expect(rec and "size" in changed(rec), f"shrunk log not reported: {rec}")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-content-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
