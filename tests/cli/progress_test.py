#!/usr/bin/env python3
"""The progress line (docs/design.md, Record schema: the progress line): --progress=auto|always|never
on init, check, update and accept. Under a pty (stderr a terminal) a bar redrawn with "\\r" and a
final line that stays; nothing with never, -q, or into a pipe by default; --progress=always into
a pipe gives plain lines (no escapes, no "\\r"; FIMCTL_PROGRESS_INTERVAL, a test knob, shortens
their 10 s) and the final line; a bad value is a usage error; the report on stdout is the same
byte for byte with and without it.

Usage: progress_test.py --fimctl PATH (--list | CASE)"""
import os
import pty
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Failure, expect, fimctl_argv, run_main  # noqa: E402

# A tree that takes a moment to hash: small files (entries) and one sparse file (bytes: read
# as zeros, so hashing it costs CPU but no disk, and creating it costs nothing).
SMALL_FILES = 3000
SPARSE_BYTES = 1 << 30
FINAL = r"fimctl {cmd}: [0-9,]+ (?:entries|entry), [0-9.]+ [kMGT]?B in [0-9.]+ s"


class Ctx:
    def __init__(self, fimctl, tmp):
        self.fimctl = fimctl
        self.tmp = tmp
        self.tree = os.path.join(tmp, "tree")
        self.db = os.path.join(tmp, "db")

    def make_tree(self, sparse=SPARSE_BYTES):
        for d in range(SMALL_FILES // 100):
            os.makedirs(os.path.join(self.tree, f"d{d:02}"))
            for i in range(100):
                with open(os.path.join(self.tree, f"d{d:02}", f"f{i:03}"), "wb") as f:
                    f.write(b"%d/%d\n" % (d, i) * 50)
        if sparse:
            with open(os.path.join(self.tree, "sparse"), "wb") as f:
                f.truncate(sparse)

    def argv(self, *args):
        return fimctl_argv(self.fimctl, *args, db=self.db, fmt="plain")

    def pipe(self, *args, env=None, rc_want=None):
        """Runs fimctl with stdout and stderr pipes: (rc, stdout, stderr) bytes."""
        p = subprocess.run(self.argv(*args), capture_output=True, timeout=120,
                           env=dict(os.environ, **(env or {})))
        if rc_want is not None:
            expect(p.returncode == rc_want, f"{args}: exit {p.returncode}, wanted {rc_want}: {p.stderr!r}")
        return p.returncode, p.stdout, p.stderr

    def pty(self, *args, rc_want=None):
        """Runs fimctl with stderr on a pty (a terminal: the bar) and stdout a pipe: (rc,
        stdout, what the terminal got)."""
        master, slave = pty.openpty()
        try:
            p = subprocess.Popen(self.argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=slave)
        finally:
            os.close(slave)
        term = b""
        out = b""
        deadline = time.monotonic() + 120
        os.set_blocking(p.stdout.fileno(), False)
        try:
            while True:
                if time.monotonic() > deadline:
                    p.kill()
                    raise Failure(f"{args} under a pty did not finish; it printed {term[-500:]!r}")
                r, _, _ = select.select([master, p.stdout], [], [], 0.5)
                if master in r:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: every writer of the pty is gone
                        chunk = b""
                    if not chunk:
                        break
                    term += chunk
                if p.stdout in r:
                    out += p.stdout.read() or b""
        finally:
            os.close(master)
        out += p.stdout.read() or b""
        rc = p.wait(timeout=60)
        if rc_want is not None:
            expect(rc == rc_want, f"{args} under a pty: exit {rc}, wanted {rc_want}: {term[-500:]!r}")
        return rc, out, term


def bar_shown(term, cmd):
    """The terminal got the bar: redrawn with "\\r", erased to the end of the line."""
    text = term.decode()
    return "\r" in text and "\x1b[K" in text and re.search(f"fimctl {cmd}: .*entries", text)


def case_bar_and_final_line_under_a_pty(ctx):
    """init and check with stderr a terminal: the bar ("\\r", entries, and for check, whose
    total the baseline knows, a percentage) and at the end the final line, which stays."""
    ctx.make_tree()
    _, out, term = ctx.pty("init", ctx.tree, rc_want=0)
    expect(bar_shown(term, "init"), f"no bar on the terminal: {term[-600:]!r}")
    final = re.findall((FINAL + r"\r?\n").format(cmd="init").encode(), term)
    expect(len(final) == 1, f"no final line (or more than one): {term[-600:]!r}")
    # The final line stays: nothing erases it after it was written.
    expect(b"\x1b[K" not in term[term.rindex(final[0]):], f"the final line was erased: {term[-300:]!r}")
    expect(b"entries recorded" in out and b"\x1b" not in out and b"\r" not in out, f"stdout: {out[-300:]!r}")
    _, _, term = ctx.pty("check", rc_want=0)
    expect(bar_shown(term, "check"), f"no bar for check: {term[-600:]!r}")
    expect(re.search(rb"fimctl check: \[[#.]{20}\] [0-9]+% [0-9,]+/3,0[0-9][0-9] entries", term),
           f"check's bar has no percentage of the baseline's entries: {term[-600:]!r}")
    expect(re.search(FINAL.format(cmd="check").encode(), term), f"no final line for check: {term[-600:]!r}")


def case_update_and_accept_have_the_line_too(ctx):
    """update --yes and accept --all --yes under a pty end with their final lines."""
    ctx.make_tree(sparse=64 << 20)
    ctx.pipe("init", ctx.tree, rc_want=0)
    with open(os.path.join(ctx.tree, "d00", "f000"), "ab") as f:
        f.write(b"more\n")
    _, _, term = ctx.pty("update", "--yes", "--reason", "test", rc_want=4)
    expect(re.search(FINAL.format(cmd="update").encode(), term), f"no final line for update: {term[-600:]!r}")
    with open(os.path.join(ctx.tree, "d00", "f001"), "ab") as f:
        f.write(b"more\n")
    ctx.pipe("check", rc_want=4)
    _, _, term = ctx.pty("accept", "--all", "--yes", "--reason", "test", rc_want=0)
    expect(re.search(FINAL.format(cmd="accept").encode() + rb" ?", term) and b"fimctl accept: 1 entry" in term,
           f"accept's final line does not count the one entry re-collected: {term[-600:]!r}")


def case_never_and_quiet_under_a_pty_show_nothing(ctx):
    """--progress=never, and -q (which means never), under a pty: no line at all."""
    ctx.make_tree(sparse=64 << 20)
    _, _, term = ctx.pty("init", "--progress=never", ctx.tree, rc_want=0)
    expect(b"fimctl" not in term and b"\r" not in term, f"--progress=never drew: {term[-300:]!r}")
    _, _, term = ctx.pty("-q", "check", "--progress=always", rc_want=0)
    expect(b"fimctl" not in term and b"\r" not in term, f"-q drew: {term[-300:]!r}")


def case_pipe_by_default_shows_nothing(ctx):
    """stderr a pipe, --progress not given (auto): no progress at all, no final line."""
    ctx.make_tree(sparse=64 << 20)
    _, _, err = ctx.pipe("init", ctx.tree, rc_want=0)
    expect(b"fimctl init" not in err and b"\r" not in err, f"auto into a pipe: {err!r}")
    _, _, err = ctx.pipe("check", rc_want=0)
    expect(err == b"", f"auto into a pipe: {err!r}")


def case_always_into_a_pipe_gives_plain_lines(ctx):
    """--progress=always into a pipe (a log): plain lines, no escape or carriage return, at
    the interval (shortened here by FIMCTL_PROGRESS_INTERVAL), then the final line."""
    ctx.make_tree(sparse=4 << 30)
    ctx.pipe("init", ctx.tree, rc_want=0)
    _, _, err = ctx.pipe("check", "--progress=always", env={"FIMCTL_PROGRESS_INTERVAL": "0.1"}, rc_want=0)
    expect(b"\x1b" not in err and b"\r" not in err, f"escapes in a log: {err!r}")
    lines = err.decode().splitlines()
    expect(lines and re.fullmatch(FINAL.format(cmd="check"), lines[-1]), f"no final line last: {lines}")
    plain = re.compile(r"fimctl check: [0-9]+% [0-9,]+/3,0[0-9][0-9] entries, [0-9.]+ [kMGT]?B/[0-9.]+ GB, "
                       r"[0-9.]+ [kMGT]?B/s(, [0-9:]+ left)?")
    expect(len(lines) >= 2, f"no plain progress line before the final one: {lines}")
    for line in lines[:-1]:
        expect(plain.fullmatch(line), f"not a plain progress line: {line!r}")


def case_bad_value_is_a_usage_error(ctx):
    """--progress=sometimes: exit 16, naming the option and what it takes."""
    rc, _, err = ctx.pipe("check", "--progress=sometimes")
    expect(rc == 16, f"exit {rc}: {err!r}")
    expect(b"--progress" in err and b"auto" in err and b"never" in err, f"unclear message: {err!r}")


def case_report_is_the_same_with_and_without_progress(ctx):
    """The report on stdout is byte for byte the one without progress, in every case: under a
    pty, with always into a pipe, and with never."""
    ctx.make_tree(sparse=64 << 20)
    ctx.pipe("init", ctx.tree, rc_want=0)
    with open(os.path.join(ctx.tree, "d01", "f002"), "ab") as f:
        f.write(b"changed\n")
    os.unlink(os.path.join(ctx.tree, "d02", "f003"))
    outs = {}
    for name, how in (("never", ["--progress=never"]), ("always", ["--progress=always"])):
        outs[name] = ctx.pipe("check", *how, "--format", "plain", rc_want=6)[1]
        outs[name + "-json"] = ctx.pipe("check", *how, "--format", "ndjson", rc_want=6)[1]
    outs["pty"] = ctx.pty("check", "--format", "plain", rc_want=6)[1]
    outs["pty-json"] = ctx.pty("check", "--format", "ndjson", rc_want=6)[1]

    def stable(b):  # what differs between two runs anyway: times and durations
        b = re.sub(rb'"(time|created)":"[^"]*"', b'"T"', b)
        b = re.sub(rb'"seconds":[0-9.e+-]+', b'"seconds":0', b)
        return re.sub(rb"[0-9.]+ s\)", b"0 s)", b)

    for k in ("always", "pty"):
        expect(stable(outs[k]) == stable(outs["never"]), f"plain report differs with {k}:\n{outs[k]!r}\n{outs['never']!r}")
        expect(stable(outs[k + "-json"]) == stable(outs["never-json"]), f"ndjson report differs with {k}")
    expect(b"changed" in outs["never"] and b"removed" in outs["never"], outs["never"])


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-progress-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
