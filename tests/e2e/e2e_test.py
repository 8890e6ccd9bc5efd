#!/usr/bin/env python3
"""Golden runs of the fimctl binary: one case per change kind, hostile names, bad input.

Usage: e2e_test.py --fimctl PATH (--list | [--update-golden] CASE)
Exit 0 pass, 1 fail, 77 skip (a root-only case as non-root, or a missing tool).

Each case builds a tree in a fresh directory, runs `init`, changes the tree, runs `check`,
and compares: the exit code; the plain report against golden/CASE.txt after normalising
what varies between runs (the temporary directory, times, inode numbers, digests of the
baseline); and the JSON and ndjson reports, which must parse and hold the same changes.
"""
import argparse
import base64
import fcntl
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))


class Skip(Exception):
    pass


class Ctx:
    def __init__(self, fimctl, tmp):
        self.fimctl, self.tmp = fimctl, tmp
        self.tree = os.path.join(tmp, "tree")
        self.db = os.path.join(tmp, "baseline.db")
        os.makedirs(self.tree)

    def p(self, *parts):
        return os.path.join(self.tree, *parts)

    def run(self, *args, fmt="plain", db=None, unsigned=True, user=None, timeout=60):
        cmd = [self.fimctl, "--db", db or self.db, "--no-color", "-q", "--format", fmt]
        if unsigned:
            cmd.append("--unsigned")
        cmd += list(args)
        if user is not None:
            cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"] + cmd
        p = subprocess.run(cmd, capture_output=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def init(self, *paths):
        rc, out, err = self.run("init", *(paths or [self.tree]))
        assert rc == 0, f"init exit {rc}: {err!r}"


def need(tool):
    if not shutil.which(tool):
        raise Skip(f"{tool} not installed")


def need_root():
    if os.geteuid() != 0:
        raise Skip("needs root")


def write(path, data, mode=0o644):
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    os.chmod(path, mode)


# --- comparing reports ------------------------------------------------------------------

TIME = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def normalise(ctx, out):
    out = out.replace(ctx.tmp.encode(), b"TMP")
    out = TIME.sub(b"TIME", out)
    out = re.sub(rb"content sha256 [0-9a-f]{64}", b"content sha256 DIGEST", out)
    out = re.sub(rb"\(\d+ entries, [0-9.]+ [KMGT]?B hashed, [0-9.]+ s\)", b"(N entries, N B hashed, N s)", out)
    out = re.sub(rb"hashed, [0-9.]+ s\)", b"hashed, N s)", out)
    # Times, inode and device numbers differ per run; sizes of directories per filesystem.
    out = re.sub(rb"(?m)^  (inode|ctime|mtime|dev|size): .*", rb"  \1: VARIES", out)
    return out


def golden_check(ctx, case, out, update):
    path = os.path.join(HERE, "golden", case + ".txt")
    got = normalise(ctx, out)
    if update:
        with open(path, "wb") as f:
            f.write(got)
        return
    with open(path, "rb") as f:
        want = f.read()
    assert got == want, f"plain report differs from golden/{case}.txt:\n--- want\n{want.decode(errors='replace')}\n--- got\n{got.decode(errors='replace')}"


def json_changes(ctx, *args):
    """Runs check in json and ndjson; checks both parse, agree, and return {path bytes: record}."""
    rc1, doc, err = ctx.run("check", *args, fmt="json")
    rc2, nd, err2 = ctx.run("check", *args, fmt="ndjson")
    assert rc1 == rc2, (rc1, rc2, err, err2)
    d = json.loads(doc)
    lines = [json.loads(line) for line in nd.splitlines()]
    assert d["schema"] == "fimctl.v1" and d["type"] == "report"
    assert lines[-1]["type"] == "summary" and lines[-1]["exit_code"] == rc1
    assert d["records"] == lines[:-1], "json and ndjson disagree"
    out = {}
    for r in d["records"]:
        assert r["schema"] == "fimctl.v1"
        if r["type"] not in ("change", "entry_status"):
            continue
        raw = base64.b64decode(r["path_b64"]) if "path_b64" in r else r["path"].encode()
        try:
            valid = raw.decode("utf-8") == r["path"]
        except UnicodeDecodeError:
            valid = False
        assert ("path_b64" in r) == (not valid), f"path_b64 must appear exactly for non-UTF-8 paths: {r}"
        out[raw] = r
    return rc1, out


def attrs(record):
    return [c["attr"] for c in record.get("changes", [])]


def scenario(ctx, case, update, mutate, want_rc, want):
    """init, mutate, check: exit code, golden plain report, JSON changes {relpath: attrs}."""
    ctx.init()
    mutate(ctx)
    rc, out, err = ctx.run("check")
    assert rc == want_rc, f"check exit {rc}, want {want_rc}: {err!r}\n{out.decode(errors='replace')}"
    golden_check(ctx, case, out, update)
    rc, changes = json_changes(ctx)
    got = {os.path.relpath(p, ctx.tree.encode()).decode(errors="surrogateescape"): (r.get("kind"), attrs(r)) for p, r in changes.items()}
    for rel, (kind, must) in want.items():
        assert rel in got, f"{rel} not reported; got {sorted(got)}"
        assert got[rel][0] == kind, (rel, got[rel])
        missing = [a for a in must if a not in got[rel][1]]
        assert not missing, f"{rel}: {missing} not among {got[rel][1]}"
    extra = set(got) - set(want) - {"."}
    assert not extra, f"unexpected changes: {sorted(extra)}"


# --- change kinds -------------------------------------------------------------------------

def case_unchanged(ctx, update):
    write(ctx.p("a"), "a")
    scenario(ctx, "unchanged", update, lambda c: None, 0, {})


def case_content(ctx, update):
    write(ctx.p("a"), "original")
    write(ctx.p("b"), "grows")

    def mutate(c):
        st = os.stat(c.p("a"))
        write(c.p("a"), "0riginal")                       # same size ...
        os.utime(c.p("a"), ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime
        write(c.p("b"), "grows more")
    scenario(ctx, "content", update, mutate, 4, {"a": ("changed", ["sha256", "ctime"]), "b": ("changed", ["sha256", "size"])})


def case_mode(ctx, update):
    write(ctx.p("a"), "a", 0o755)
    scenario(ctx, "mode", update, lambda c: os.chmod(c.p("a"), 0o4755), 4, {"a": ("changed", ["mode"])})


def case_owner(ctx, update):
    need_root()
    write(ctx.p("a"), "a")
    scenario(ctx, "owner", update, lambda c: os.chown(c.p("a"), 1234, 5678), 4, {"a": ("changed", ["uid", "gid"])})


def case_xattr(ctx, update):
    write(ctx.p("a"), "a")
    try:
        os.setxattr(ctx.p("a"), "user.tag", b"v1")
    except OSError as e:
        raise Skip(f"user xattrs: {e}")

    def mutate(c):
        os.setxattr(c.p("a"), "user.tag", b"v2")
        os.setxattr(c.p("a"), "user.bin", b"\x00\xff")
    scenario(ctx, "xattr", update, mutate, 4, {"a": ("changed", ["xattrs"])})


def case_acl(ctx, update):
    need("setfacl")
    write(ctx.p("a"), "a")
    os.mkdir(ctx.p("d"))

    def mutate(c):
        subprocess.run(["setfacl", "-m", "u:12345:r", c.p("a")], check=True)
        subprocess.run(["setfacl", "-d", "-m", "g:23456:rx", c.p("d")], check=True)
    scenario(ctx, "acl", update, mutate, 4, {"a": ("changed", ["acl_access"]), "d": ("changed", ["acl_default"])})


def case_capability(ctx, update):
    need_root()
    need("setcap")
    write(ctx.p("ping"), "\x7fELF")
    scenario(ctx, "capability", update,
             lambda c: subprocess.run(["setcap", "cap_net_raw+ep", c.p("ping")], check=True), 4,
             {"ping": ("changed", ["caps"])})


def case_symlink_target(ctx, update):
    os.symlink("/usr/lib/libc.so.6", ctx.p("lib"))

    def mutate(c):
        os.unlink(c.p("lib"))
        os.symlink("/tmp/evil.so", c.p("lib"))
    scenario(ctx, "symlink_target", update, mutate, 4, {"lib": ("changed", ["link"])})


def case_type_change(ctx, update):
    write(ctx.p("f2dir"), "x")
    write(ctx.p("f2link"), "x")

    def mutate(c):
        os.unlink(c.p("f2dir"))
        os.mkdir(c.p("f2dir"))
        os.unlink(c.p("f2link"))
        os.symlink("/etc/shadow", c.p("f2link"))
    scenario(ctx, "type_change", update, mutate, 4,
             {"f2dir": ("changed", ["type", "sha256"]), "f2link": ("changed", ["type", "link", "sha256"])})


def case_added_removed(ctx, update):
    os.mkdir(ctx.p("gone"))
    write(ctx.p("gone", "x"), "x")

    def mutate(c):
        shutil.rmtree(c.p("gone"))
        os.mkdir(c.p("new"))
        write(c.p("new", "y"), "y")
    scenario(ctx, "added_removed", update, mutate, 7,  # the parent directory changed too
             {"gone": ("removed", []), "gone/x": ("removed", []), "new": ("added", []), "new/y": ("added", [])})


def case_hard_link(ctx, update):
    write(ctx.p("suid"), "x", 0o4755)
    os.mkdir(ctx.p("sub"))
    scenario(ctx, "hard_link", update, lambda c: os.link(c.p("suid"), c.p("sub", "keep")), 5,
             {"suid": ("changed", ["nlink"]), "sub": ("changed", []), "sub/keep": ("added", [])})


def case_exit_bits(ctx, update):
    write(ctx.p("a"), "a")
    write(ctx.p("b"), "b")

    def mutate(c):
        write(c.p("a"), "changed")
        os.unlink(c.p("b"))
        write(c.p("c"), "c")
    scenario(ctx, "exit_bits", update, mutate, 7, {"a": ("changed", ["sha256"]), "b": ("removed", []), "c": ("added", [])})


def case_special_files(ctx, update):
    need_root()
    os.mkfifo(ctx.p("fifo"))  # no writer: opening it for reading would block forever
    os.mknod(ctx.p("null"), 0o666 | 0o020000, os.makedev(1, 3))

    def mutate(c):
        os.unlink(c.p("null"))
        os.mknod(c.p("null"), 0o666 | 0o020000, os.makedev(1, 5))
    scenario(ctx, "special_files", update, mutate, 4, {"null": ("changed", ["rdev"])})


def case_subset_check(ctx, update):
    for d in ("a", "b"):
        os.mkdir(ctx.p(d))
        write(ctx.p(d, "f"), d)
    ctx.init()
    write(ctx.p("a", "f"), "changed a")
    write(ctx.p("b", "f"), "changed b")
    rc, out, err = ctx.run("check", ctx.p("a"))
    assert rc == 4, (rc, err)
    golden_check(ctx, "subset_check", out, update)
    rc, out, err = ctx.run("check", ctx.tmp)
    assert rc == 16 and b"not covered by the baseline" in err, (rc, err)


# --- hostile names --------------------------------------------------------------------------

HOSTILE = [b"new\nline", b"tab\there", b"\x1b[31mFAKE OK\x1b[0m", b"back\\slash", b"\xff\xfe",
           b"-leading", b"   ", b"n" * 255, "caf\u00e9".encode(), b"\xe2\x80\xaertl"]


def case_hostile_names(ctx, update):
    tree = ctx.tree.encode()
    for name in HOSTILE:
        write(os.path.join(tree, name), b"x")
    # A path longer than 4,000 bytes, built relative to a directory fd (past PATH_MAX).
    fd = os.open(ctx.tree, os.O_RDONLY)
    deep = []
    for i in range(20):
        comp = f"{i:02d}" + "d" * 250
        os.mkdir(comp, dir_fd=fd)
        nfd = os.open(comp, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
        deep.append(comp)
    os.close(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    deep_leaf = (ctx.tree + "/" + "/".join(deep) + "/leaf").encode()
    assert len(deep_leaf) > 4000
    ctx.init()
    rc, out, err = ctx.run("check")
    assert rc == 0, f"unchanged hostile tree: exit {rc}\n{out!r}"
    # change each one
    for name in HOSTILE:
        write(os.path.join(tree, name), b"changed")
    leaf = os.open("leaf", os.O_WRONLY | os.O_TRUNC, dir_fd=fd)
    os.write(leaf, b"changed")
    os.close(leaf)
    os.close(fd)
    rc, out, err = ctx.run("check")
    assert rc == 4, (rc, err)
    for b in out:
        assert b >= 0x20 or b == 0x0A, f"raw control byte {b:#x} in the plain report"
    assert b"\\x1b[31mFAKE OK\\x1b[0m" in out and b"new\\nline" in out and b"\\xff\\xfe" in out
    assert b"\\u202ertl" in out
    rc, changes = json_changes(ctx)
    for name in HOSTILE:
        path = os.path.join(tree, name)
        assert path in changes and "sha256" in attrs(changes[path]), f"{name!r} not reported exactly"
    assert deep_leaf in changes, "the deep leaf was not reported with its exact path"


# --- bad input: one line on stderr, the documented code, nothing on stdout -------------------

def expect_fatal(ctx, rc, out, err, code, words):
    assert rc == code, f"exit {rc}, want {code}: {err!r}"
    assert out == b"", f"stdout must be empty on a fatal error: {out[:200]!r}"
    lines = err.decode(errors="replace").strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fimctl: error: "), lines
    assert words in lines[0], (words, lines[0])


def copy_db(ctx, name):
    dst = os.path.join(ctx.tmp, name)
    shutil.copy(ctx.db, dst)
    return dst


def case_bad_baselines(ctx, update):
    write(ctx.p("a"), "a")
    ctx.init()
    missing = os.path.join(ctx.tmp, "missing.db")
    expect_fatal(ctx, *ctx.run("check", db=missing), 17, "no baseline at")
    garbage = os.path.join(ctx.tmp, "garbage.db")
    write(garbage, os.urandom(8192))
    expect_fatal(ctx, *ctx.run("check", db=garbage), 17, "is not a fimctl baseline")
    empty = os.path.join(ctx.tmp, "empty.db")
    write(empty, b"")
    expect_fatal(ctx, *ctx.run("check", db=empty), 17, "is not a fimctl baseline")
    foreign = os.path.join(ctx.tmp, "foreign.db")
    sqlite3.connect(foreign).execute("CREATE TABLE t(x)").connection.commit()
    expect_fatal(ctx, *ctx.run("check", db=foreign), 17, "is not a fimctl baseline")
    newer = copy_db(ctx, "newer.db")
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version=99")
    con.commit()
    con.close()
    expect_fatal(ctx, *ctx.run("check", db=newer), 17, "newer fimctl")


def case_tampered_baseline(ctx, update):
    write(ctx.p("a"), "a")
    ctx.init()
    tampered = copy_db(ctx, "tampered.db")
    con = sqlite3.connect(tampered)
    (sha,) = con.execute("SELECT sha256 FROM entries WHERE sha256 IS NOT NULL").fetchone()
    con.execute("UPDATE entries SET sha256 = ? WHERE sha256 = ?", (bytes([sha[0] ^ 1]) + sha[1:], sha))
    con.commit()
    con.close()
    write(ctx.p("a"), "trojan")  # the change the edit tries to hide: no report may appear
    expect_fatal(ctx, *ctx.run("check", db=tampered), 18, "failed verification")
    planted = copy_db(ctx, "planted.db")
    write(planted + "-journal", b"\0" * 512)
    expect_fatal(ctx, *ctx.run("check", db=planted), 18, "-journal")


def case_unsigned_needs_flag(ctx, update):
    write(ctx.p("a"), "a")
    expect_fatal(ctx, *ctx.run("init", ctx.tree, unsigned=False), 16, "--unsigned")
    ctx.init()
    expect_fatal(ctx, *ctx.run("check", unsigned=False), 18, "not signed")


def case_bad_roots(ctx, update):
    expect_fatal(ctx, *ctx.run("init", ctx.p("nope")), 16, "does not exist")
    need_root()
    need("setpriv")
    os.mkdir(ctx.p("closed"), 0o700)
    os.chmod(ctx.tmp, 0o755)
    os.chmod(ctx.tree, 0o755)
    home = os.path.join(ctx.tmp, "nobody")
    os.mkdir(home)
    os.chown(home, 65534, 65534)
    expect_fatal(ctx, *ctx.run("init", ctx.p("closed"), db=os.path.join(home, "b.db"), user=65534),
                 16, "cannot read root")


def case_locked(ctx, update):
    write(ctx.p("a"), "a")
    with open(ctx.db + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write("4242\n")
        f.flush()
        expect_fatal(ctx, *ctx.run("init", ctx.tree), 19, "locked by another fimctl (pid 4242)")


def case_usage_errors(ctx, update):
    for args in (["--bogus", "check"], ["--format", "xml", "check"], ["-j", "0", "check"], []):
        rc, out, err = ctx.run(*args)
        assert rc == 16, (args, rc, err)


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fimctl", required=True)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--update-golden", action="store_true")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(CASES))
        return 0
    if a.case not in CASES:
        print(f"unknown case {a.case!r}; --list shows them", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="fimctl-e2e.")
    os.chmod(tmp, 0o755)
    try:
        CASES[a.case](Ctx(os.path.abspath(a.fimctl), tmp), a.update_golden)
        print(f"pass: {a.case}")
        return 0
    except Skip as e:
        print(f"skip: {a.case}: {e}")
        return SKIP
    except AssertionError as e:
        print(f"FAIL: {a.case}: {e}")
        return 1
    finally:
        subprocess.run(["chattr", "-R", "-i", tmp], capture_output=True)
        subprocess.run(["chmod", "-R", "u+rwx", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
