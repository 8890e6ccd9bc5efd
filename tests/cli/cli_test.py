#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Golden tests of the fimctl command line (meson suite 'cli').

Usage: cli_test.py [--fimctl PATH] --list
       cli_test.py --fimctl PATH [--update-golden] [CASE...]   (no CASE: all of them)
Exit 0 pass, 1 fail, 77 skip (a root-only case as non-root, a tool or filesystem feature
missing).

Report cases (CASES) build a small tree in a fresh directory under /tmp, run `init`, change
the tree, run `check`, and compare, for every run:
  - the exit code, the same in all three formats;
  - the plain report (--no-color) against golden/CASE.txt, after normalise() has replaced
    what differs between runs (the temporary directory, times, inode numbers, the baseline's
    content digest, durations); the golden file is a transcript of every command of the case;
  - the json and ndjson reports: they must parse (strict UTF-8, no duplicate keys), agree with
    each other, and hold exactly the expected change records (kind, exact path bytes, file
    type, set of changed attributes); `path_b64` must appear exactly for paths that are not
    valid UTF-8 and decode to the exact bytes;
  - that the plain output is terminal-safe (no control byte but newline, valid UTF-8, no C1
    or bidi control), for every case, not only the one about hostile names.
Error cases (ERRORS) check what docs/design.md, Exit codes, promises for fatal errors: the
documented exit code, exactly one line on stderr starting with "fimctl: error:", nothing on stdout,
in every format, and nothing written where nothing may be written.

The goldens were recorded with /tmp on ext4: a few values (directory sizes, the `flags`
attribute) depend on the filesystem, and a failure says so when /tmp is something else.
"""
import argparse
import base64
import collections
import dataclasses
import difflib
import fcntl
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import time
from typing import Callable, Optional, Sequence, Union

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import (POLICY, SKIP, Failure, Run, Skip, expect, need_tool, run,  # noqa: E402,F401
                     run_main)

SCHEMA = "fimctl.v1"
# docs/design.md, Record schema: the documented, append-only set of ndjson record types.
RECORD_TYPES = {"change", "entry_status", "summary", "gap", "rescan_start", "rescan_done",
                "rescan_progress", "degraded", "alert", "heartbeat"}
# Every command runs in all three formats, plain last: its output is what the transcript
# shows, and an init run last leaves the baseline the rest of the case uses.
FORMATS = ("json", "ndjson", "plain")
# Mutations sleep this long first, so the times they set differ from those the tree was built
# with even where the kernel's timestamp clock is coarse (one jiffy, up to 10 ms).
TICK = 0.05
NOBODY = 65534


# --- the per-case context and running fimctl ---------------------------------------------

class Ctx:
    """One case's temporary directory: ROOT/tree is scanned, ROOT/db is the baseline."""

    def __init__(self, fimctl, root):
        self.fimctl = fimctl
        self.root = root
        self.tree = os.path.join(root, "tree")
        self.db = os.path.join(root, "db")
        self.is_root = os.geteuid() == 0
        self.user = None          # run fimctl as this uid (setpriv), for privilege cases
        self.transcript = []      # the golden file's lines (bytes)
        self.cleanups = []        # run before the directory is removed (e.g. chmod back)
        self.held = []            # files kept open for the case (a held lock)
        self.fingerprints = {}    # path -> state a failed command must not have touched

    def close(self):
        for fn in self.cleanups:
            fn()
        for f in self.held:
            f.close()

    def path(self, rel) -> bytes:
        """ROOT/rel as bytes; rel may be str or bytes (names that are not UTF-8)."""
        return os.fsencode(self.root) + b"/" + os.fsencode(rel)

    def expand(self, arg):
        return arg.replace("{ROOT}", self.root) if isinstance(arg, str) else arg

    def fimctl_run(self, args, fmt="plain", cwd=None, timeout=60, raw=False):
        """Runs fimctl in format `fmt` with `args`, after "--db ROOT/db --unsigned" unless
        `raw` (the error cases spell out every option themselves)."""
        fmt_args = ["--no-color"] if fmt == "plain" else ["--format", fmt]
        # Every run names the project's default policy: what /etc/fimctl holds on the machine
        # running the tests must not change their results.
        prefix = ["-c", POLICY] if "-c" not in args else []
        # ...and a key directory of its own (none: unsigned), whatever /etc/fimctl/keys holds.
        prefix += ["--keys", os.path.join(self.root, "keys")] if "--keys" not in args else []
        prefix += [] if raw else ["--db", self.db, "--unsigned"]
        argv = [self.fimctl] + prefix + fmt_args + [self.expand(a) for a in args]
        return run(argv, timeout=timeout, user=self.user,
                   cwd=os.path.join(self.root, cwd) if cwd else None)

    def note(self, line):
        self.transcript.append(normalise(self, os.fsencode(line)))

    def record(self, run, cwd=None):
        """A command, its exit code and its normalised output, into the transcript."""
        where = {None: "", ".": "    (in ROOT)"}.get(cwd, f"    (in ROOT/{cwd})")
        self.note(f"$ {show(self, run.argv)}{where}")
        self.note(f"[exit {run.rc}]")
        self.transcript.extend(normalise(self, run.out).splitlines())
        if run.err:
            self.transcript.append(b"stderr: " + normalise(self, run.err.rstrip(b"\n")))


def show(ctx, argv) -> str:
    """A command line for messages and transcripts: the binary as 'fimctl', ROOT for the dir."""
    words = ["fimctl"] + [os.fsdecode(a).encode("unicode_escape").decode() for a in argv[1:]]
    return " ".join(words).replace(ctx.root, "ROOT").replace(POLICY, "SHARE/fimctl.toml")


# --- normalising and checking output -----------------------------------------------------

ISO_TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def normalise(ctx, data: bytes) -> bytes:
    """Replaces what differs between runs of the same case; everything else is golden."""
    data = data.replace(ctx.root.encode(), b"ROOT")
    data = data.replace(POLICY.encode(), b"SHARE/fimctl.toml")
    data = ISO_TIME.sub(b"TIME", data)
    # The baseline's digest covers times and inode numbers, so it differs at every run.
    data = re.sub(rb"content sha256 [0-9a-f]{64}", b"content sha256 DIGEST", data)
    # A baseline id is random, made by each init.
    data = re.sub(rb"baseline id [0-9a-f]{32}", b"baseline id ID", data)
    # New inodes get whatever number the filesystem hands out; that it changed is the fact.
    data = re.sub(rb"(?m)^  inode: \d+ -> \d+$", b"  inode: INODE -> INODE", data)
    data = re.sub(rb"(?m)^  handle: [0-9a-f]+ -> [0-9a-f]+$", b"  handle: HANDLE -> HANDLE", data)
    data = re.sub(rb"hashed, \d+\.\d\d s\)", b"hashed, SECONDS s)", data)
    # The report id covers the changed rows, times and inode numbers included; that a report
    # prints one is golden, its value is checked by the json cases and tests/attack.
    data = re.sub(rb"(?m)^report: [0-9a-f]{24}$", b"report: ID", data)
    return data


def is_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# Code points a terminal acts on or that reorder text (C1 controls such as U+009B CSI, bidi
# overrides, line separators): an escaped name must contain none of them.
UNSAFE = re.compile("[\u0080-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")


def check_terminal_safe(data: bytes, what: str):
    bad = [b for b in data if (b < 0x20 and b != 0x0A) or b == 0x7F]
    expect(not bad, f"{what}: raw control byte {bad[:1]} (CVE-2025-54389 class): {data[:300]!r}")
    expect(is_utf8(data), f"{what}: not valid UTF-8 (invalid bytes must be escaped): {data[:300]!r}")
    m = UNSAFE.search(data.decode("utf-8"))
    expect(m is None, lambda: f"{what}: unescaped control code point U+{ord(m.group()):04X}")


def strict_json(text: str):
    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        expect(len(keys) == len(set(keys)), f"duplicate key in a JSON object: {keys}")
        return dict(pairs)
    return json.loads(text, object_pairs_hook=no_duplicates)


def parse_json_report(out: bytes):
    """--format json: one document {"schema","type":"report","summary","records"}."""
    try:
        doc = strict_json(out.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure(f"json report does not parse: {e}: {out[:300]!r}")
    expect(doc.get("schema") == SCHEMA and doc.get("type") == "report", f"not a report: {list(doc)}")
    return doc["summary"], doc["records"]


def parse_ndjson_report(out: bytes):
    """--format ndjson: one record per line, the summary last."""
    expect(out.endswith(b"\n"), "ndjson output does not end with a newline")
    recs = []
    for n, line in enumerate(out[:-1].split(b"\n"), 1):
        try:
            recs.append(strict_json(line.decode("utf-8")))
        except (UnicodeDecodeError, ValueError) as e:
            raise Failure(f"ndjson line {n} does not parse: {e}: {line[:300]!r}")
    expect(recs and recs[-1].get("type") == "summary", "the last ndjson record is not the summary")
    return recs[-1], recs[:-1]


def lossy(raw: bytes) -> str:
    """What the JSON `path` string holds for bytes that are not UTF-8: each invalid byte
    becomes the code point of the same value (written \\u00XX), valid sequences stay."""
    s = raw.decode("utf-8", "surrogateescape")
    return "".join(chr(ord(c) - 0xDC00) if 0xDC80 <= ord(c) <= 0xDCFF else c for c in s)


def exact_bytes(rec: dict, key: str) -> bytes:
    """The exact bytes of a path field: from `key_b64` when present, else the string."""
    text = rec[key]
    b64 = rec.get(key + "_b64")
    if b64 is None:
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError:
            raise Failure(f"{key} holds a lone surrogate and no {key}_b64: {rec}")
    raw = base64.b64decode(b64, validate=True)
    expect(not is_utf8(raw), f"{key}_b64 given for a path that is valid UTF-8: {raw!r}")
    expect(text == lossy(raw), f"{key} {text!r} is not the escaped form of {key}_b64 {raw!r}")
    return raw


# --- expected changes ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Change:
    kind: str                   # added / removed / changed
    rel: Union[str, bytes]      # path relative to ROOT
    file_type: str              # file_type of the record (the new type for a changed entry)
    attrs: tuple = ()           # changed attributes, sorted (changed records only)

    def key(self, ctx):
        return (self.kind, ctx.path(self.rel), self.file_type, self.attrs)


def changed(rel, file_type, attrs):
    return Change("changed", rel, file_type, tuple(sorted(attrs.split())))


def added(rel, file_type):
    return Change("added", rel, file_type)


def removed(rel, file_type):
    return Change("removed", rel, file_type)


def change_key(rec: dict):
    """A change record's (kind, exact path, file_type, attrs), after checking its shape."""
    kind, ftype = rec.get("kind"), rec.get("file_type")
    expect(kind in ("added", "removed", "changed"), f"unknown change kind: {rec}")
    path = exact_bytes(rec, "path")
    if kind != "changed":
        side = rec.get("new" if kind == "added" else "old")
        expect(isinstance(side, dict) and side.get("type") == ftype,
               f"{kind} record without its attributes or with another type: {rec}")
        return (kind, path, ftype, ())
    items = rec.get("changes")
    expect(isinstance(items, list) and items, f"changed record without changes: {rec}")
    attrs = [c["attr"] for c in items]
    expect(len(attrs) == len(set(attrs)), f"an attribute listed twice: {rec}")
    for c in items:
        expect("old" in c or "new" in c, f"change of {c['attr']} without old or new: {rec}")
        expect(c.get("old") != c.get("new") or "old" not in c or "new" not in c,
               f"change of {c['attr']} where old equals new: {rec}")
    if "type" in attrs:
        old_type = next(c["old"] for c in items if c["attr"] == "type")
        expect(rec.get("old_file_type") == old_type, f"type changed but old_file_type wrong: {rec}")
    else:
        expect("old_file_type" not in rec, f"old_file_type without a type change: {rec}")
    return (kind, path, ftype, tuple(sorted(attrs)))


def show_key(key):
    kind, path, ftype, attrs = key
    return f"{kind} {path!r} ({ftype}) {' '.join(attrs)}".rstrip()


def same_summary(a, b):
    """Equal but for the duration and, for init (each format wrote its own baseline), the
    baseline's creation time."""
    def strip(s):
        s = {k: v for k, v in s.items() if k != "seconds"}
        if s.get("command") == "init":
            s["baseline"] = {k: v for k, v in s["baseline"].items() if k not in ("created", "id")}
        return s
    return strip(a) == strip(b)


TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def unstamped(records):
    """The records without `time` and `host` (docs/design.md, Record schema: every record ends
    with them), after checking that each has both: they differ between runs."""
    out = []
    for rec in records:
        rec = dict(rec)
        t, host = rec.pop("time", None), rec.pop("host", None)
        expect(isinstance(t, str) and TIME_RE.match(t), f"record without an RFC 3339 time: {rec}")
        expect(isinstance(host, dict) and sorted(host) == ["id", "name"] and all(host.values()),
               f"record without host {{name, id}}: {rec} {host}")
        out.append(rec)
    return out


def check_json_reports(ctx, command, rc, runs, want):
    """json and ndjson: parse, agree, summary consistent, change records exactly `want`."""
    s_json, r_json = parse_json_report(runs["json"].out)
    s_nd, r_nd = parse_ndjson_report(runs["ndjson"].out)
    (s_json, s_nd), r_json, r_nd = unstamped([s_json, s_nd]), unstamped(r_json), unstamped(r_nd)
    expect(r_json == r_nd, "json and ndjson reports hold different records")
    expect(same_summary(s_json, s_nd), f"json and ndjson summaries differ:\n{s_json}\n{s_nd}")
    for rec in r_json + [s_json]:
        expect(rec.get("schema") == SCHEMA and rec.get("type") in RECORD_TYPES, f"bad record: {rec}")
    expect(s_json["type"] == "summary" and s_json["command"] == command, f"summary: {s_json}")
    expect(s_json["exit_code"] == rc, f"summary exit_code {s_json['exit_code']}, process exited {rc}")
    expect(exact_bytes(s_json["baseline"], "path") == os.fsencode(ctx.db), f"baseline path: {s_json}")
    expect(s_json["baseline"]["signed"] is False, "an unsigned baseline reported as signed")
    # docs/design.md, Baseline: an unsigned baseline needs --unsigned, and every report says so.
    alerts = [r.get("code") for r in r_json if r["type"] == "alert"]
    expect(alerts == ["unsigned"], f"alerts {alerts}, want exactly ['unsigned']")
    statuses = [r for r in r_json if r["type"] == "entry_status"]
    expect(not statuses, f"unexpected entry_status records: {statuses}")
    got = [change_key(r) for r in r_json if r["type"] == "change"]
    for kind in ("added", "removed", "changed"):
        n = sum(1 for k in got if k[0] == kind)
        expect(s_json[kind] == n, f"summary says {s_json[kind]} {kind}, records say {n}")
    got_c = collections.Counter(got)
    want_c = collections.Counter(w.key(ctx) for w in want)
    missing, extra = want_c - got_c, got_c - want_c
    expect(not missing and not extra, lambda: "JSON change records differ from the expected ones:\n"
           + "".join(f"  missing:    {show_key(k)}\n" for k in sorted(missing))
           + "".join(f"  unexpected: {show_key(k)}\n" for k in sorted(extra)))


def report(ctx, command, args, rc, want, cwd=None, timeout=60):
    """Runs a command that must produce a report, checks it and adds it to the transcript."""
    def run_one(fmt):
        if command == "init" and os.path.exists(ctx.db):  # init refuses to replace a baseline
            os.unlink(ctx.db)
        return ctx.fimctl_run([command, *args], fmt=fmt, cwd=cwd, timeout=timeout)
    runs = {fmt: run_one(fmt) for fmt in FORMATS}
    plain = runs["plain"]
    for fmt, r in runs.items():
        expect(r.rc == rc, f"{show(ctx, r.argv)}: exit {r.rc}, want {rc}\nstderr: {r.err!r}\n"
               f"stdout: {r.out.decode(errors='replace')}")
        # Progress goes to a terminal only; warnings are part of the report, not stderr.
        expect(r.err == b"", f"{show(ctx, r.argv)}: unexpected stderr: {r.err!r}")
    check_terminal_safe(plain.out, f"{show(ctx, plain.argv)}: plain report")
    check_json_reports(ctx, command, rc, runs, want(ctx) if callable(want) else want)
    ctx.record(plain, cwd)


def expect_fatal(ctx, r: Run, rc: int, says: str):
    """docs/design.md, Exit codes: a fatal error is one clear line on stderr, nothing on stdout."""
    cmd = show(ctx, r.argv)
    expect(r.rc == rc, f"{cmd}: exit {r.rc}, want {rc}; stderr: {r.err!r}")
    expect(r.out == b"", f"{cmd}: a fatal error must print nothing on stdout: {r.out[:300]!r}")
    lines = r.err.split(b"\n")
    expect(len(lines) == 2 and lines[1] == b"" and lines[0].startswith(b"fimctl: error: "),
           f"{cmd}: stderr must be one line starting with 'fimctl: error: ', got {r.err!r}")
    check_terminal_safe(r.err, f"{cmd}: stderr")
    expect(says.encode() in r.err, f"{cmd}: the message does not say {says!r}: {r.err!r}")


# --- the steps of a report case -----------------------------------------------------------

@dataclasses.dataclass
class Mutate:
    """Changes the tree; the description goes into the transcript."""
    what: str
    fn: Callable

    def run(self, ctx, timeout):
        time.sleep(TICK)
        ctx.note(f"# {self.what}")
        self.fn(ctx)


@dataclasses.dataclass
class Check:
    """`check [args]` must exit `rc` and report exactly `want` (a list, or ctx -> list)."""
    rc: int
    want: Union[Sequence[Change], Callable]
    args: tuple = ()
    cwd: Optional[str] = None  # relative to ROOT, for relative PATH arguments

    def run(self, ctx, timeout):
        report(ctx, "check", self.args, self.rc, self.want, cwd=self.cwd, timeout=timeout)


@dataclasses.dataclass
class Refused:
    """`check args` must fail with the fatal exit code `rc`, saying `says`."""
    args: tuple
    rc: int
    says: str

    def run(self, ctx, timeout):
        for fmt in FORMATS:
            r = ctx.fimctl_run(["check", *self.args], fmt=fmt, timeout=timeout)
            expect_fatal(ctx, r, self.rc, self.says)
        ctx.record(r)


@dataclasses.dataclass
class Case:
    name: str
    doc: str
    build: Callable
    steps: list
    root_only: bool = False
    tools: tuple = ()
    timeout: float = 60
    variant: Optional[Callable] = None  # ctx -> golden name suffix ("" or ".nonroot")

    def run(self, ctx, update, golden_dir):
        if self.root_only and not ctx.is_root:
            raise Skip("needs root")
        for tool in self.tools:
            need_tool(tool)
        os.mkdir(ctx.tree)
        self.build(ctx)
        ctx.note(f"# {self.name}: {self.doc}")
        report(ctx, "init", ("{ROOT}/tree",), 0, [], timeout=self.timeout)
        for step in self.steps:
            step.run(ctx, self.timeout)
        name = self.name + (self.variant(ctx) if self.variant else "")
        compare_golden(ctx, os.path.join(golden_dir, name + ".txt"), update)


def compare_golden(ctx, path, update):
    got = b"\n".join(ctx.transcript) + b"\n"
    if update:
        with open(path, "wb") as f:
            f.write(got)
        return
    try:
        with open(path, "rb") as f:
            want = f.read()
    except FileNotFoundError:
        raise Failure(f"no golden file {path} (run with --update-golden, then read it)")
    if got != want:
        diff = difflib.unified_diff(want.decode(errors="backslashreplace").splitlines(),
                                    got.decode(errors="backslashreplace").splitlines(),
                                    f"golden/{os.path.basename(path)}", "this run", lineterm="")
        raise Failure("plain transcript differs from the golden file:\n" + "\n".join(diff))


def filesystem_hint(path):
    """Directory sizes and the `flags` attribute depend on the filesystem under test."""
    r = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    fs = r.stdout.strip()
    return "" if fs in ("ext2/ext3", "ext4", "") else \
        f"\n(note: the expectations were recorded with /tmp on ext4; {path} is on {fs})"


# --- building and changing trees ----------------------------------------------------------

def write(ctx, rel, data, mode=None):
    path = ctx.path(rel)
    with open(path, "wb") as f:
        f.write(data)
    if mode is not None:
        os.chmod(path, mode)


def append(ctx, rel, data=b"!"):
    with open(ctx.path(rel), "ab") as f:
        f.write(data)


def swap(ctx, rel, create):
    """Replaces ROOT/rel by what `create(path)` makes. The new object is created before the
    old one is unlinked, so it cannot reuse the old inode number: the report's inode line
    does not come and go with the allocator's mood."""
    path, tmp = ctx.path(rel), ctx.path(rel) + b".new"
    create(tmp)
    os.unlink(path)
    os.rename(tmp, path)


def files(spec):
    """A build function: {relative path: bytes for a file, None for a directory}."""
    def build(ctx):
        for rel, data in spec.items():
            if data is None:
                os.mkdir(ctx.path(rel))
            else:
                write(ctx, rel, data)
    return build


def rewrite_same_size(ctx):
    path = ctx.path("tree/f")
    st = os.stat(path)
    with open(path, "r+b") as f:
        f.write(b"modified content\n")  # as long as "original content\n"
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    expect(os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns,
           "setup: size or mtime not preserved")


def build_xattr(ctx):
    write(ctx, "tree/f", b"f\n")
    try:
        os.setxattr(ctx.path("tree/f"), "user.fimctl.keep", b"same")
    except OSError as e:
        raise Skip(f"user xattrs not supported under {ctx.root}: {e}")


def setfacl(ctx, *args):
    p = subprocess.run(["setfacl", *args], capture_output=True)
    if p.returncode != 0:
        raise Skip(f"setfacl {' '.join(map(os.fsdecode, args))}: {p.stderr.decode(errors='replace').strip()}")


def build_acl(ctx):
    write(ctx, "probe", b"")  # outside the tree: does this filesystem take ACLs at all?
    setfacl(ctx, "-m", "u:12345:r", ctx.path("probe"))
    write(ctx, "tree/f", b"f\n")
    os.mkdir(ctx.path("tree/d"))


def set_acls(ctx):
    setfacl(ctx, "-m", "u:12345:r", ctx.path("tree/f"))
    setfacl(ctx, "-d", "-m", "u:12345:rx", ctx.path("tree/d"))


def setcap(ctx):
    p = subprocess.run(["setcap", "cap_net_raw+ep", ctx.path("tree/ping")], capture_output=True)
    if p.returncode != 0:
        raise Skip(f"setcap: {p.stderr.decode(errors='replace').strip()}")


def build_special(ctx):
    os.mkfifo(ctx.path("tree/fifo"))  # no writer: a reader that opened it would block forever
    if ctx.is_root:                   # /dev/null's numbers: reading it would give 0 bytes, but
        os.mknod(ctx.path("tree/null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # never do it


def change_special(ctx):
    os.chmod(ctx.path("tree/fifo"), 0o600)
    if ctx.is_root:  # same path, same mode, other device: /dev/zero
        swap(ctx, "tree/null", lambda p: os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(1, 5)))


def special_changes(ctx):
    want = [changed("tree/fifo", "fifo", "mode ctime")]
    if ctx.is_root:
        want += [changed("tree", "dir", "mtime ctime"),
                 changed("tree/null", "chardev", "mtime ctime inode rdev btime handle")]
    return want


# Names an attacker can create in a watched directory (CVE-2025-54389 faked AIDE report lines
# with escape sequences). Each is a file holding b"x".
HOSTILE = [
    b"new\nline",
    b"tab\there",
    b"\x1b[31mFAKE\x1b[0m",
    b"back\\slash",
    b"bad\xff\xfe",                      # not UTF-8: JSON needs path_b64
    b"-dash",                            # looks like an option on a command line
    b"   ",                              # only spaces
    "\u00e9".encode() * 127 + b"x",      # 255 bytes (NAME_MAX), multi-byte UTF-8
    "\u009b31mC1".encode(),              # C1 CSI: valid UTF-8, still a terminal control
    "\u202eRLO".encode(),                # bidi override: reorders the rest of the line
]
# A path longer than PATH_MAX (4096): 17 directories of 250 bytes, then "leaf".
DEEP = [f"{i:02d}".encode() + b"d" * 248 for i in range(17)]
DEEP_LEAF = b"tree/" + b"/".join(DEEP) + b"/leaf"


def deep_dir_fd(ctx, create=False):
    """An fd of the deepest directory, reached relative to each parent's fd: no syscall ever
    sees the whole path, which is too long for one."""
    fd = os.open(ctx.path("tree"), os.O_RDONLY | os.O_DIRECTORY)
    for comp in DEEP:
        if create:
            os.mkdir(comp, dir_fd=fd)
        nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd


def write_deep_leaf(ctx, data, create=False):
    fd = deep_dir_fd(ctx, create)
    try:
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644, dir_fd=fd)
        os.write(leaf, data)
        os.close(leaf)
    finally:
        os.close(fd)


def build_hostile(ctx):
    for name in HOSTILE:
        write(ctx, b"tree/" + name, b"x")
    write_deep_leaf(ctx, b"x", create=True)
    expect(len(ctx.path(DEEP_LEAF)) > 4096, "setup: the deep path is not past PATH_MAX")


def change_hostile(ctx):
    for name in HOSTILE:
        append(ctx, b"tree/" + name)
    write_deep_leaf(ctx, b"!")


CONTENT_ATTRS = "size mtime ctime sha256"  # what appending to a file changes
HOSTILE_CHANGES = [changed(b"tree/" + n, "file", CONTENT_ATTRS) for n in HOSTILE] + \
                  [changed(DEEP_LEAF, "file", CONTENT_ATTRS)]


def change_all_kinds(ctx):
    append(ctx, "tree/keep")
    os.unlink(ctx.path("tree/gone"))
    write(ctx, "tree/fresh", b"fresh\n")


def change_subset(ctx):
    append(ctx, "tree/a/x")
    append(ctx, "tree/b/y")
    write(ctx, "tree/b/new", b"new\n")


CASES = [
    Case("content", "same size, mtime put back: only the digest can tell",
         files({"tree/f": b"original content\n"}),
         [Mutate("rewrite tree/f with as many bytes, then restore its mtime", rewrite_same_size),
          Check(4, [changed("tree/f", "file", "ctime sha256")])]),
    Case("mode", "a file becomes setuid",
         lambda ctx: write(ctx, "tree/f", b"f\n", 0o755),
         [Mutate("chmod 4755 tree/f", lambda ctx: os.chmod(ctx.path("tree/f"), 0o4755)),
          Check(4, [changed("tree/f", "file", "mode ctime")])]),
    Case("owner", "another owner and group",
         files({"tree/f": b"f\n"}),
         [Mutate("chown 12345:12346 tree/f", lambda ctx: os.chown(ctx.path("tree/f"), 12345, 12346)),
          Check(4, [changed("tree/f", "file", "uid gid ctime")])],
         root_only=True),
    Case("xattr", "a user xattr is added, with a binary value that must not reach the terminal",
         build_xattr,
         [Mutate("setxattr user.fimctl.new = 00 ff 1b '[31m' on tree/f",
                 lambda ctx: os.setxattr(ctx.path("tree/f"), "user.fimctl.new", b"\x00\xff\x1b[31m")),
          Check(4, [changed("tree/f", "file", "xattrs ctime")])]),
    Case("acl", "a named-user access ACL on a file, a default ACL on a directory",
         build_acl,
         [Mutate("setfacl -m u:12345:r tree/f; setfacl -d -m u:12345:rx tree/d", set_acls),
          Check(4, [changed("tree/f", "file", "acl_access ctime"),
                    changed("tree/d", "dir", "acl_default ctime")])],
         tools=("setfacl",)),
    Case("capability", "a file gains a capability (what ping has, what a backdoor wants)",
         files({"tree/ping": b"\x7fELF not really\n"}),
         [Mutate("setcap cap_net_raw+ep tree/ping", setcap),
          Check(4, [changed("tree/ping", "file", "caps ctime")])],
         root_only=True, tools=("setcap",)),
    Case("symlink_target", "a symlink now points elsewhere (same length, so same size)",
         lambda ctx: os.symlink("libc.so.6", ctx.path("tree/lib")),
         [Mutate("replace tree/lib -> libc.so.6 by tree/lib -> evil.so.6",
                 lambda ctx: swap(ctx, "tree/lib", lambda p: os.symlink("evil.so.6", p))),
          Check(4, [changed("tree", "dir", "mtime ctime"),
                    changed("tree/lib", "symlink", "mtime ctime inode link btime handle")])]),
    Case("type_change", "a file replaced by a directory, another by a symlink",
         files({"tree/to-dir": b"file\n", "tree/to-link": b"file\n"}),
         [Mutate("replace tree/to-dir by a directory and tree/to-link by a symlink to 'target'",
                 lambda ctx: (swap(ctx, "tree/to-dir", os.mkdir),
                              swap(ctx, "tree/to-link", lambda p: os.symlink("target", p)))),
          # A type change reports every attribute either side has, except an empty set on one
          # side that does not apply to the other (no caps on a file that became a dir).
          Check(4, [changed("tree", "dir", "mtime ctime nlink"),
                    changed("tree/to-dir", "dir",
                            "type mode size mtime ctime inode nlink sha256 btime handle"),
                    changed("tree/to-link", "symlink",
                            "type mode size mtime ctime inode link sha256 flags btime handle")])]),
    Case("added", "a file, a directory with a file in it, a symlink",
         files({"tree/old": b"old\n"}),
         [Mutate("create tree/new-file, tree/new-dir/inner, tree/new-link -> old",
                 lambda ctx: (write(ctx, "tree/new-file", b"new\n"), os.mkdir(ctx.path("tree/new-dir")),
                              write(ctx, "tree/new-dir/inner", b"inner\n"),
                              os.symlink("old", ctx.path("tree/new-link")))),
          # The directory that gained entries changed too: exit 1|4.
          Check(5, [changed("tree", "dir", "mtime ctime nlink"),
                    added("tree/new-dir", "dir"), added("tree/new-dir/inner", "file"),
                    added("tree/new-file", "file"), added("tree/new-link", "symlink")])]),
    Case("removed", "a file and a directory with a file in it",
         files({"tree/keep": b"keep\n", "tree/gone-file": b"gone\n", "tree/gone-dir": None,
                "tree/gone-dir/inner": b"inner\n"}),
         [Mutate("rm -r tree/gone-file tree/gone-dir",
                 lambda ctx: (os.unlink(ctx.path("tree/gone-file")),
                              shutil.rmtree(ctx.path("tree/gone-dir")))),
          Check(6, [changed("tree", "dir", "mtime ctime nlink"),
                    removed("tree/gone-dir", "dir"), removed("tree/gone-dir/inner", "file"),
                    removed("tree/gone-file", "file")])]),
    Case("hard_link", "a second name for a file: its nlink changes and the name is added",
         files({"tree/a": b"a\n"}),
         [Mutate("ln tree/a tree/b", lambda ctx: os.link(ctx.path("tree/a"), ctx.path("tree/b"))),
          Check(5, [changed("tree", "dir", "mtime ctime"), changed("tree/a", "file", "ctime nlink"),
                    added("tree/b", "file")])]),
    Case("fifo_and_devices", "a FIFO and (as root) a character device: recorded by type, never "
         "opened, so nothing blocks; a new mode and a new device number are reported",
         build_special,
         [Check(0, []),
          Mutate("chmod 600 tree/fifo; as root: replace tree/null (1:3) by a device 1:5", change_special),
          Check(4, special_changes)],
         timeout=20, variant=lambda ctx: "" if ctx.is_root else ".nonroot"),
    Case("hostile_names", "names with control bytes, escapes, invalid UTF-8, 255 bytes, and a "
         "path past PATH_MAX: silent while unchanged, each reported exactly when changed",
         build_hostile,
         [Check(0, []),
          Mutate("append '!' to every file", change_hostile),
          Check(4, HOSTILE_CHANGES),
          # A name with a leading '-' passed after '--', relative to the working directory.
          Check(4, [changed("tree/-dash", "file", CONTENT_ATTRS)], args=("--", "-dash"), cwd="tree")]),
    Case("subset_check", "check PATH reports that subtree only; a PATH outside the roots is refused",
         files({"tree/a": None, "tree/a/x": b"x\n", "tree/b": None, "tree/b/y": b"y\n",
                "outside": None, "tree-sibling": None}),
         [Mutate("append to tree/a/x and tree/b/y, create tree/b/new", change_subset),
          Check(4, [changed("tree/a/x", "file", CONTENT_ATTRS)], args=("tree/a",), cwd="."),
          Check(5, [changed("tree/b", "dir", "mtime ctime"), added("tree/b/new", "file"),
                    changed("tree/b/y", "file", CONTENT_ATTRS)], args=("{ROOT}/tree/b",)),
          Refused(("{ROOT}/outside",), 16, "not covered by the baseline"),
          # Shares the root's name as a string prefix, and lies outside it all the same.
          Refused(("{ROOT}/tree-sibling",), 16, "not covered by the baseline")]),
    Case("unchanged", "an untouched tree: exit 0 and no differences, twice",
         lambda ctx: (files({"tree/f": b"f\n", "tree/empty": b"", "tree/d": None,
                             "tree/d/g": b"g\n"})(ctx), os.symlink("f", ctx.path("tree/l"))),
         [Check(0, []), Check(0, [])]),
    Case("exit_bits", "added, removed and changed in one run: exit 1|2|4 = 7",
         files({"tree/keep": b"keep\n", "tree/gone": b"gone\n"}),
         [Mutate("append to tree/keep, rm tree/gone, create tree/fresh", change_all_kinds),
          Check(7, [changed("tree", "dir", "mtime ctime"), changed("tree/keep", "file", CONTENT_ATTRS),
                    removed("tree/gone", "file"), added("tree/fresh", "file")])]),
]


# --- error cases --------------------------------------------------------------------------

def baseline(ctx):
    """A tree and a good baseline of it, proven good by a clean check (the control: each
    error case damages a copy, so the failure is the damage's and not the setup's)."""
    os.mkdir(ctx.tree)
    write(ctx, "tree/f", b"content\n")
    r = ctx.fimctl_run(["init", ctx.tree])
    expect(r.rc == 0, f"setup: init exit {r.rc}: {r.err!r}")
    r = ctx.fimctl_run(["check"])
    expect(r.rc == 0, f"control: check of the intact baseline exit {r.rc}: {r.err!r}")


def copy_of_baseline(ctx, name):
    """The good baseline, to be damaged where it is: a copy elsewhere would be refused first
    as a baseline never used at that path (docs/design.md, Baseline: identity)."""
    del name
    baseline(ctx)
    return ctx.db


def edit_copy(ctx, name, sql, params=()):
    """Edits a copy of a good baseline with the sqlite3 module, as an attacker would."""
    db = copy_of_baseline(ctx, name)
    con = sqlite3.connect(db)
    con.execute(sql, params)
    con.commit()
    con.close()
    expect(not os.path.exists(db + "-journal"), "setup: sqlite3 left a journal behind")
    return db


def check_of(db):
    return ["--db", db, "--unsigned", "check"]


def prep_missing(ctx):
    return check_of(os.path.join(ctx.root, "absent.db"))


def prep_not_a_database(ctx):
    db = os.path.join(ctx.root, "text.db")
    with open(db, "wb") as f:
        f.write(b"this is a text file, not a database\n" * 200)
    return check_of(db)


def prep_empty(ctx):
    db = os.path.join(ctx.root, "empty.db")
    open(db, "wb").close()
    return check_of(db)


def prep_foreign(ctx):
    db = os.path.join(ctx.root, "foreign.db")
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE entries(path BLOB PRIMARY KEY, sha256 BLOB)")
    con.commit()
    con.close()
    return check_of(db)


def prep_newer(ctx):
    return check_of(edit_copy(ctx, "newer.db", "PRAGMA user_version=99"))


def prep_planted(suffix):
    def prep(ctx):
        db = copy_of_baseline(ctx, "planted.db")
        with open(db + suffix, "wb") as f:  # whatever it holds: it must never be replayed
            f.write(b"\0" * 512)
        remember(ctx, db)
        remember(ctx, db + suffix)
        return check_of(db)
    return prep


def prep_tampered(ctx):
    db = copy_of_baseline(ctx, "tampered.db")
    con = sqlite3.connect(db)
    path = os.fsencode(ctx.tree) + b"/f"
    (sha,) = con.execute("SELECT sha256 FROM entries WHERE path = ?", (path,)).fetchone()
    con.execute("UPDATE entries SET sha256 = ? WHERE path = ?", (bytes([sha[0] ^ 1]) + sha[1:], path))
    con.commit()
    con.close()
    append(ctx, "tree/f")  # a change a report would show: with the tampering, none may appear
    return check_of(db)


def prep_unsigned_without_flag(ctx):
    baseline(ctx)
    return ["--db", ctx.db, "check"]


def prep_init_without_unsigned(ctx):
    os.mkdir(ctx.tree)
    return ["--db", ctx.db, "init", ctx.tree]


def prep_init_missing(ctx):
    os.mkdir(ctx.tree)
    return ["--db", ctx.db, "--unsigned", "init", os.path.join(ctx.tree, "absent")]


def prep_init_unreadable(ctx):
    """A root that cannot be listed. Root reads anything, so as root fimctl runs as nobody."""
    os.mkdir(ctx.tree)
    closed = os.path.join(ctx.tree, "closed")
    os.mkdir(closed)
    write(ctx, "tree/closed/f", b"secret\n")
    os.chmod(closed, 0o000)
    ctx.cleanups.append(lambda: os.chmod(closed, 0o755))
    state = os.path.join(ctx.root, "state")  # where this user may write a baseline
    os.mkdir(state)
    if ctx.is_root:
        need_tool("setpriv")
        os.chown(state, NOBODY, NOBODY)
        ctx.user = NOBODY
    ctx.db = os.path.join(state, "db")
    return ["--db", ctx.db, "--unsigned", "init", closed]


def prep_locked(ctx):
    """Another fimctl holds the lock: emulated by holding it here with our pid in it, as
    fimctl writes its own."""
    baseline(ctx)
    lock = open(ctx.db + ".lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    ctx.held.append(lock)
    remember(ctx, ctx.db)
    return ["--db", ctx.db, "--unsigned", "init", ctx.tree]


def prep_usage(*extra):
    def prep(ctx):
        baseline(ctx)
        return ["--db", ctx.db, "--unsigned", *extra, "check"]
    return prep


def prep_format(fmt, *command):
    """--format FMT before COMMAND (a format the command does not have): refused before it
    runs, so nothing else needs to exist."""
    def prep(ctx):
        baseline(ctx)
        return ["--db", ctx.db, "--unsigned", "--format", fmt, *command]
    return prep


def fingerprint(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        return f.read(), st.st_ino, st.st_mtime_ns


def remember(ctx, path):
    ctx.fingerprints[path] = fingerprint(path)


def untouched(ctx):
    """Every remembered file is exactly as it was: a baseline never replaced by a failed
    init, a planted side file never replayed or removed."""
    for path, before in ctx.fingerprints.items():
        expect(os.path.exists(path), f"{path} was removed by a command that failed")
        expect(fingerprint(path) == before, f"{path} was modified or replaced by a command that failed")


def still_absent(path_of):
    def after(ctx):
        path = path_of(ctx)
        expect(not os.path.exists(path), f"{path} exists after the failed command")
        leftovers = [n for n in os.listdir(os.path.dirname(path)) if ".tmp." in n]
        expect(not leftovers, f"temporary baselines left behind: {leftovers}")
    return after


@dataclasses.dataclass
class Error:
    name: str
    doc: str
    prepare: Callable    # ctx -> argv after the binary (the format option is added)
    rc: int
    says: Union[str, Callable]  # a phrase the one stderr line must contain (or ctx -> it)
    formats: bool = True  # also in json and ndjson (not when the case is about --format)
    after: Optional[Callable] = None  # ctx -> None: what the failed command left alone

    def run(self, ctx, update, golden_dir):
        argv = self.prepare(ctx)
        says = self.says(ctx) if callable(self.says) else self.says
        for fmt in FORMATS if self.formats else ("plain",):
            expect_fatal(ctx, ctx.fimctl_run(argv, fmt=fmt, raw=True), self.rc, says)
        if self.after:
            self.after(ctx)


ERRORS = [
    Error("bad_missing_baseline", "no file at --db", prep_missing, 17, "no baseline at",
          after=still_absent(lambda ctx: os.path.join(ctx.root, "absent.db"))),
    Error("bad_not_a_database", "a text file", prep_not_a_database, 17, "is not a fimctl baseline"),
    Error("bad_empty_file", "a zero-byte file (SQLite would call it an empty database)",
          prep_empty, 17, "is not a fimctl baseline",
          after=lambda ctx: expect(os.path.getsize(os.path.join(ctx.root, "empty.db")) == 0,
                                   "the empty file was written to")),
    Error("bad_foreign_sqlite", "a SQLite database that is not fimctl's", prep_foreign, 17,
          "is not a fimctl baseline"),
    Error("bad_newer_schema", "user_version 99: written by a newer fimctl", prep_newer, 17,
          "newer fimctl"),
    Error("bad_planted_journal", "a -journal beside the baseline would be replayed by SQLite",
          prep_planted("-journal"), 18, "-journal", after=untouched),
    Error("bad_planted_wal", "so would a -wal", prep_planted("-wal"), 18, "-wal", after=untouched),
    Error("bad_tampered_row", "one byte of one stored sha256 flipped: no report at all",
          prep_tampered, 18, "failed verification"),
    Error("bad_unsigned_without_flag", "check of an unsigned baseline without --unsigned",
          prep_unsigned_without_flag, 18, "--unsigned"),
    Error("bad_init_without_unsigned", "this build cannot sign: init needs --unsigned",
          prep_init_without_unsigned, 16, "--unsigned", after=still_absent(lambda ctx: ctx.db)),
    Error("bad_init_missing_path", "init of a PATH that does not exist", prep_init_missing, 16,
          "does not exist", after=still_absent(lambda ctx: ctx.db)),
    # Permission denied to a user who is not root: said as "needs root", exit 20 (issue 20).
    Error("bad_init_unreadable_root", "init of a root this user cannot list",
          prep_init_unreadable, 20, "init: needs root (cannot read root", after=still_absent(lambda ctx: ctx.db)),
    Error("bad_locked_baseline", "init while another process holds <db>.lock: the holder's pid "
          "is named and the baseline is left alone", prep_locked, 19,
          lambda ctx: f"locked by another fimctl (pid {os.getpid()})", after=untouched),
    Error("bad_unknown_option", "an option fimctl does not have", prep_usage("--bogus"), 16,
          "--bogus"),
    Error("bad_format_xml", "a report format fimctl does not have", prep_usage("--format", "xml"),
          16, "xml", formats=False),
    # Each command has the formats main.cpp's table gives it; any other is a usage error that
    # names them, one case per class of command.
    Error("bad_format_report_containers", "check --containers writes one report per container: "
          "no one document", prep_format("json", "check", "--containers"), 16,
          "--format json: fimctl check --containers writes plain, ndjson or ecs", formats=False),
    Error("bad_format_stream_watch", "the daemon's records are a stream: no one document",
          prep_format("json", "watch"), 16, "--format json: fimctl watch writes plain, ndjson or ecs",
          formats=False),
    Error("bad_format_stream_log", "the journal's entries are a stream", prep_format("json", "log"), 16,
          "--format json: fimctl log writes plain or ndjson", formats=False),
    Error("bad_format_text_config", "config prints no records", prep_format("ndjson", "config", "check"), 16,
          "--format ndjson: fimctl config writes plain", formats=False),
]

ALL = {c.name: c for c in CASES + ERRORS}
assert len(ALL) == len(CASES) + len(ERRORS), "duplicate case name"


# --- main ---------------------------------------------------------------------------------

def make_ctx(args, fimctl, tmp):
    ctx = Ctx(fimctl, tmp)
    ctx.update, ctx.golden_dir = args.update_golden, args.golden_dir
    return ctx


if __name__ == "__main__":
    sys.exit(run_main({name: (lambda ctx, c=c: c.run(ctx, ctx.update, ctx.golden_dir))
                       for name, c in ALL.items()},
                      "fimctl-cli.", make_ctx,
                      [("--update-golden", {"action": "store_true", "help":
                        "write golden/CASE.txt from this run (then read every one of them)"}),
                       ("--golden-dir", {"default": os.path.join(HERE, "golden"),
                                         "help": argparse.SUPPRESS})],
                      fail_hint=filesystem_hint, doc=__doc__))
