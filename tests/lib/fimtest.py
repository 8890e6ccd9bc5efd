# SPDX-License-Identifier: GPL-2.0-or-later
"""The one harness of the python test files (suites 'cli' and 'root'; docs/design.md, Tests).

A test file declares its cases (name -> function) and calls run_main(); run_main gives every
file the same command line and the same exit codes:

    FILE.py [--fimctl PATH] [file options] --list     the case names, one per line
    FILE.py --fimctl PATH [file options] [CASE...]    runs them (none named: all of them)

Each case runs in a fresh temporary directory, removed afterwards. A case passes when it
returns, fails when it raises Failure (expect()) or AssertionError, and is skipped when it
raises Skip (not root, a tool or a kernel feature missing). The process exits 0 (all passed
or skipped, at least one passed), 1 (one failed) or 77 (all skipped), as meson expects.

Root files (as_root=True) skip when not run as root and run each case in a private mount
namespace (unshare -m): a failed case leaves no mount behind on the host.
"""
import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
SOURCE = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
# The project's default policy. Every run names it: what /etc/fimctl holds on the machine
# running the tests must not change their results.
POLICY = os.path.join(SOURCE, "share", "fimctl.toml")


class Failure(Exception):
    """A case's expectation did not hold."""


class Skip(Exception):
    """A case cannot run here (not root, a missing tool or kernel feature)."""


def expect(cond, msg):
    """Fails the case with msg (or msg(), built only on failure) unless cond holds."""
    if not cond:
        raise Failure(msg() if callable(msg) else msg)


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text, mode=None):
    """Writes `text` to `path`, making its directories, then sets `mode` when given."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)


def need_tool(tool):
    """Skips the case when `tool` is not on PATH."""
    if not shutil.which(tool):
        raise Skip(f"{tool} is not installed")


class Ctx:
    """A case's context: the binary under test, the case's temporary directory, TMP/tree (the
    tree a case builds and scans) and TMP/db (its baseline). Files extend it."""

    def __init__(self, fimctl, tmp):
        self.fimctl, self.tmp = fimctl, tmp
        self.db = os.path.join(tmp, "db")
        self.tree = os.path.join(tmp, "tree")


def fill_filesystem(path):
    """Writes zeros to the file `path` until its filesystem is full (ENOSPC)."""
    with open(path, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass


# --- running fimctl -----------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    """One finished command: its argv, exit code and raw output."""
    argv: list
    rc: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.decode(errors="replace")

    def json(self):
        """The output as one JSON document, None when there is none."""
        if not self.out:
            return None
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as e:
            raise Failure(f"{' '.join(map(os.fsdecode, self.argv[1:]))}: output is not JSON ({e}): "
                          f"{self.out[:200]!r}")


def run(argv, *, timeout=60, user=None, **kw) -> Run:
    """Runs argv (as uid `user` through setpriv when given), its output captured; a command
    still running after `timeout` seconds fails the case. kw goes to subprocess.run."""
    cmd = list(argv)
    if user is not None:
        cmd = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as e:
        partial = b"".join(x for x in (e.stdout, e.stderr) if x)[-2000:]
        raise Failure(f"{' '.join(map(os.fsdecode, argv))} did not finish within {timeout} s"
                      + (f"; it printed: {partial!r}" if partial else ""))
    return Run(list(argv), p.returncode, p.stdout, p.stderr)


def fimctl_argv(fimctl, *args, config=POLICY, db=None, keys=None, unsigned=True, fmt="json"):
    """fimctl's command line on a private baseline: -c config (None: none), --db db with
    --keys keys (default db + ".keys": a key directory of its own, whatever /etc/fimctl/keys
    holds), --unsigned, then --format fmt ("plain": --no-color; None: neither), then args."""
    argv = [fimctl]
    if config is not None:
        argv += ["-c", config]
    if db is not None:
        argv += ["--db", db]
    if keys is not None or db is not None:
        argv += ["--keys", keys if keys is not None else db + ".keys"]
    if unsigned:
        argv.append("--unsigned")
    if fmt == "plain":
        argv.append("--no-color")
    elif fmt is not None:
        argv += ["--format", fmt]
    return argv + list(args)


def run_fimctl(fimctl, *args, timeout=60, user=None, run_kw=None, **argv_kw) -> Run:
    """Runs fimctl_argv(fimctl, *args, **argv_kw)."""
    return run(fimctl_argv(fimctl, *args, **argv_kw), timeout=timeout, user=user, **(run_kw or {}))


# --- the case runner ----------------------------------------------------------------------

def _unmount_below(tmp):
    """Unmounts what a case left mounted under tmp, deepest first, so that removing tmp does
    not descend into a mount or a loop image."""
    with open("/proc/self/mounts") as f:
        points = [line.split()[1] for line in f if line.split()[1].startswith(tmp + "/")]
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def _run_case(fn, name, a, make_ctx, prefix, as_root, fail_hint, extra_options):
    """One case in its own temporary directory -> 0, 1 or SKIP."""
    if as_root and os.geteuid() != 0:
        print(f"skip: {name}: needs root")
        return SKIP
    if as_root and not a.in_namespace:  # again, inside a private mount namespace
        if not shutil.which("unshare"):
            print(f"skip: {name}: unshare is not installed")
            return SKIP
        script = os.path.abspath(sys.modules["__main__"].__file__)
        argv = [sys.executable, script, "--fimctl", a.fimctl]
        for flag, _ in extra_options:
            value = getattr(a, flag.lstrip("-").replace("-", "_"))
            argv += [flag, value] if value is not None else []
        return subprocess.run(["unshare", "-m", "--propagation", "private", *argv, "--in-namespace",
                               name]).returncode
    tmp = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(tmp, 0o755)  # other users (setpriv) must reach their part of it
    fimctl_path = os.path.abspath(a.fimctl)
    ctx = None
    try:
        if make_ctx is None:
            fn(fimctl_path, tmp)
        else:
            ctx = make_ctx(a, fimctl_path, tmp)
            fn(ctx)
        print(f"pass: {name}")
        return 0
    except Skip as e:
        print(f"skip: {name}: {e}")
        return SKIP
    except (Failure, AssertionError) as e:
        print(f"FAIL: {name}: {e}{fail_hint(tmp) if fail_hint else ''}")
        return 1
    finally:
        if ctx is not None and hasattr(ctx, "close"):
            ctx.close()
        if as_root:
            _unmount_below(tmp)
            subprocess.run(["chmod", "-R", "u+rwx", tmp], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)  # fd-relative: fine past PATH_MAX
        if os.path.exists(tmp):
            print(f"warning: could not remove {tmp}", file=sys.stderr)


def run_main(cases, prefix, make_ctx=None, extra_options=(), *, as_root=False, fail_hint=None,
             doc=None):
    """The main() of every test file. cases: name -> case function, called as fn(ctx) with
    ctx = make_ctx(args, fimctl, tmp), or as fn(fimctl, tmp) without make_ctx (the root
    files). A ctx with a close() method has it called after the case. extra_options:
    (flag, argparse kwargs) pairs of the file's own options. fail_hint(tmp): text appended to
    a failure. prefix: of the temporary directory's name."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fimctl", help="the binary under test (needed to run cases)")
    for flag, kwargs in extra_options:
        ap.add_argument(flag, **kwargs)
    ap.add_argument("--list", action="store_true", help="print the case names, one per line")
    ap.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("cases", nargs="*", metavar="CASE")
    a = ap.parse_args()
    if a.list:
        print("\n".join(cases))
        return 0
    if not a.fimctl:
        ap.error("--fimctl is required to run cases")
    unknown = [c for c in a.cases if c not in cases]
    if unknown:
        print(f"unknown case(s) {unknown}; --list shows them", file=sys.stderr)
        return 1
    os.umask(0o022)  # the modes of what cases create are part of what some of them compare
    results = [_run_case(cases[name], name, a, make_ctx, prefix, as_root, fail_hint, extra_options)
               for name in a.cases or cases]
    if any(r not in (0, SKIP) for r in results):
        return 1
    return SKIP if results and all(r == SKIP for r in results) else 0
