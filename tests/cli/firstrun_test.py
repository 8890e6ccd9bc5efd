#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The first ten minutes (issue 20, items 4 and 5): what a newcomer meets before the reports.

Usage: firstrun_test.py --fimctl PATH [CASE...] | --list

  version_*          fimctl version, --version and -V print the same lines
  unknown_*          a mistyped command or option: one usage line with the nearest name (16)
  nonroot_*          each command run as nobody (setpriv) against a root-only install (baseline
                     and key directories 0700): the command that needs root says so in one
                     line, "fimctl: error: COMMAND: needs root (WHY)", exit 20; those that do
                     not need it work (root only: the install is built as root)
  no_baseline_*      watch and status with no baseline: "no baseline at PATH: run 'fimctl init'" (17)
  interrupt_init_*   SIGINT/SIGTERM in the middle of init --force: one line, exit 128+signal, no
                     temp file left, the old baseline byte for byte as it was
  records_carry_time_host   every json/ndjson record of init/check/update has `time` and `host`
"""
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import POLICY, Ctx, Skip, expect, run, run_fimctl, run_main  # noqa: E402

NOBODY = 65534
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def fimctl(ctx, *args, user=None, timeout=60, **kw):
    return run_fimctl(ctx.fimctl, *args, db=kw.pop("db", ctx.db), user=user, timeout=timeout, **kw)


def one_error_line(r, rc, pattern, what):
    err = r.stderr
    expect(r.rc == rc, f"{what}: exit {r.rc}, want {rc}; stderr: {err!r}; stdout: {r.stdout[:300]!r}")
    lines = err.splitlines()
    expect(len(lines) == 1 and re.search(pattern, lines[0]),
           f"{what}: want one stderr line matching {pattern!r}, got {err!r}")
    expect(r.out == b"", f"{what}: a fatal error printed on stdout: {r.stdout[:300]!r}")


# --- version ------------------------------------------------------------------------------

def case_version_flag(ctx):
    runs = {a: run([ctx.fimctl, a]) for a in ("version", "--version", "-V")}
    for a, r in runs.items():
        expect(r.rc == 0 and r.err == b"", f"fimctl {a}: exit {r.rc}, stderr {r.stderr!r}")
    outs = {r.stdout for r in runs.values()}
    expect(len(outs) == 1, f"version, --version and -V differ: {outs}")
    lines = runs["version"].stdout.splitlines()
    expect(re.fullmatch(r"fimctl \d+\.\d+\.\d+", lines[0]), f"first line: {lines[0]!r}")
    facts = dict(line.split(": ", 1) for line in lines[1:])
    for key in ("baseline schema", "report schema", "BPF LSM sensors", "libsystemd"):
        expect(key in facts, f"no '{key}: ...' line in {lines}")
    for key in ("BPF LSM sensors", "libsystemd"):
        expect(facts[key] in ("yes", "no"), f"{key}: {facts[key]!r}, want yes or no")


# --- unknown commands and options ---------------------------------------------------------

def case_unknown_command_suggests(ctx):
    for argv, pattern in (
            (["chek"], r"^fimctl: error: unknown command 'chek'; did you mean 'check'\?$"),
            (["--db", "/nonexistent/x", "intit"], r"^fimctl: error: unknown command 'intit'; did you mean 'init'\?$"),
            (["config", "shwo"], r"^fimctl: error: unknown command 'shwo'; did you mean 'show'\?$"),
            (["key", "generat"], r"^fimctl: error: unknown command 'generat'; did you mean 'generate'\?$"),
            # Nothing near: no guess, the way to the list instead.
            (["xyzzy"], r"^fimctl: error: unknown command 'xyzzy' \(see 'fimctl --help'\)$"),
            # Hidden commands are not suggested.
            (["completon"], r"^fimctl: error: unknown command 'completon' \(see 'fimctl --help'\)$")):
        one_error_line(run([ctx.fimctl, *argv]), 16, pattern, " ".join(argv))


def case_unknown_option_suggests(ctx):
    for argv, pattern in (
            (["init", "--froce"], r"^fimctl: error: unknown option '--froce'; did you mean '--force'\?$"),
            (["check", "--pakages"], r"^fimctl: error: unknown option '--pakages'; did you mean '--packages'\?$"),
            (["--formt=json", "check"], r"^fimctl: error: unknown option '--formt'; did you mean '--format'\?$"),
            (["check", "--no-such-thing"], r"^fimctl: error: unknown option '--no-such-thing' \(see 'fimctl check --help'\)$"),
            # An option of a command, before the command: where it goes, not "did you mean" itself.
            (["--socket", "/run/x.sock", "status"],
             r"^fimctl: error: option '--socket' goes after its command: 'fimctl status --socket \.\.\.'$")):
        one_error_line(run([ctx.fimctl, *argv]), 16, pattern, " ".join(argv))


# --- as nobody, against a root-only install -----------------------------------------------

def root_install(ctx):
    """As root: TMP/keys (0700, a key pair), TMP/lib (0700, a signed baseline of TMP/tree),
    like /etc/fimctl/keys and /var/lib/fimctl on an installed host."""
    if os.geteuid() != 0:
        raise Skip("needs root (the install it runs against is root's)")
    if not shutil.which("setpriv"):
        raise Skip("setpriv is not installed")
    os.makedirs(ctx.tree)
    with open(os.path.join(ctx.tree, "f"), "w") as f:
        f.write("x\n")
    ctx.keys = os.path.join(ctx.tmp, "keys")
    lib = os.path.join(ctx.tmp, "lib")
    os.makedirs(lib, mode=0o700)
    ctx.db = os.path.join(lib, "baseline.db")
    r = fimctl(ctx, "key", "generate", keys=ctx.keys, unsigned=False, fmt=None)
    expect(r.rc == 0, f"key generate: {r.stderr}")
    r = fimctl(ctx, "init", ctx.tree, keys=ctx.keys, unsigned=False, fmt=None)
    expect(r.rc == 0, f"init: {r.stderr}")
    expect(os.stat(ctx.keys).st_mode & 0o777 == 0o700, "the key directory is not 0700")


# command -> what it needs root for; None: it does not need root (it must work as nobody).
NONROOT = {
    "init": (["init", "--force", "--reason", "r"], "cannot read signing key"),
    "check": (["check"], "baseline"),
    "update": (["update", "--yes", "--reason", "r"], "baseline|signing key"),
    "accept": (["accept", "--all", "--yes", "--reason", "r"], "baseline|signing key"),
    "log": (["log"], "baseline"),
    "watch": (["watch"], "baseline"),
    "status": (["status", "--socket", "/nonexistent/watch.sock"], "baseline|state"),
    "containers": (["containers"], r"reads /proc/PID/root"),
    "init_containers": (["init", "--containers"], r"reads /proc/PID/root"),
    "key_generate": (["key", "generate"], "keys"),
    "key_sign": (["key", "sign", "{db}"], "baseline|signing key"),
    "key_rotate": (["key", "rotate", "--reason", "r"], "baseline|signing key|keys"),
    "migrate": (["migrate"], "baseline"),
    "adopt": (["adopt", "{db}", "--reason", "r"], "baseline"),
    "seal": (["seal", "/etc/passwd"], "baseline"),
    # Never fails an apt run (exit 0), but says why it recorded nothing.
    "apt_hook": (["apt-hook", "pre"], "state|baseline"),
    "config_check": (["config", "check"], None),
    "config_show": (["config", "show"], None),
    "explain": (["explain", "/etc/passwd"], None),
    "version": (["version"], None),
}


def nonroot_case(name):
    argv, why = NONROOT[name]

    def case(ctx):
        root_install(ctx)
        args = [a.replace("{db}", ctx.db) for a in argv]
        before = open(ctx.db, "rb").read()
        r = fimctl(ctx, *args, user=NOBODY, keys=ctx.keys, unsigned=False, fmt=None, timeout=30)
        what = "as nobody: fimctl " + shlex.join(args)
        if why is None:
            expect(r.rc == 0, f"{what}: exit {r.rc}: {r.stderr}")
        else:
            command = " ".join(a for a in args if not a.startswith("-") and a not in ("r", ctx.db)
                               and not a.startswith("/"))
            command = {"init_containers": "init --containers", "apt_hook": "apt-hook"}.get(name, command)
            one_error_line(r, 0 if name == "apt_hook" else 20, r"^fimctl: error: " + re.escape(command) + r": needs root \(.*(" + why + r")",
                           what)
        expect(open(ctx.db, "rb").read() == before, f"{what}: the baseline changed")
    return case


# --- no baseline --------------------------------------------------------------------------

def case_no_baseline_watch(ctx):
    os.makedirs(os.path.dirname(ctx.db), exist_ok=True)
    db = os.path.join(ctx.tmp, "lib", "baseline.db")  # not even its directory exists
    for d in (db, ctx.db):
        r = fimctl(ctx, "watch", "--socket", os.path.join(ctx.tmp, "sock"), db=d, fmt=None, timeout=30)
        one_error_line(r, 17, r"^fimctl: error: no baseline at '" + re.escape(d) + r"': run 'fimctl init'$",
                       f"watch --db {d}")


def case_no_baseline_status(ctx):
    db = os.path.join(ctx.tmp, "lib", "baseline.db")
    for d in (db, ctx.db):
        r = fimctl(ctx, "status", "--socket", os.path.join(ctx.tmp, "sock"), db=d, fmt=None)
        one_error_line(r, 17, r"^fimctl: error: no baseline at '" + re.escape(d) + r"': run 'fimctl init'",
                       f"status --db {d}")
    expect(not os.path.exists(os.path.join(ctx.tmp, "lib")), "status created the baseline directory")


def case_deleted_baseline_not_told_to_init(ctx):
    """An intruder deletes the baseline: check, watch and status must not tell the admin to run
    'fimctl init' (which would record the host as the intruder left it); state.db remembers it."""
    os.makedirs(ctx.tree)
    r = fimctl(ctx, "init", ctx.tree)
    expect(r.rc == 0, f"init: {r.stderr}")
    os.unlink(ctx.db)
    for args in (["check"], ["watch"], ["status", "--socket", os.path.join(ctx.tmp, "sock")]):
        r = fimctl(ctx, *args, fmt=None)
        one_error_line(r, 17, r"^fimctl: error: no baseline at '" + re.escape(ctx.db) +
                       r"', but the state.db beside it says one was recorded: it was removed or hidden", args[0])
        expect("run 'fimctl init'" not in r.stderr, f"{args[0]} tells the admin to run init: {r.stderr}")


# --- interrupted init ---------------------------------------------------------------------

def interrupt_case(sig):
    def case(ctx):
        os.makedirs(ctx.tree)
        with open(os.path.join(ctx.tree, "small"), "w") as f:
            f.write("x\n")
        r = fimctl(ctx, "init", ctx.tree)
        expect(r.rc == 0, f"first init: {r.stderr}")
        old = open(ctx.db, "rb").read()
        # Enough to hash that init runs for seconds: sparse files cost no disk.
        for i in range(16):
            with open(os.path.join(ctx.tree, f"big{i}"), "wb") as f:
                f.truncate(1 << 30)
        argv = [ctx.fimctl, "-c", POLICY, "--db", ctx.db, "--keys", ctx.db + ".keys", "--unsigned",
                "-j", "1", "init", "--force", "--reason", "r", ctx.tree]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        d = os.path.dirname(ctx.db)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and p.poll() is None:
            if any(n.startswith("db.tmp.") for n in os.listdir(d)):
                break
            time.sleep(0.01)
        expect(p.poll() is None, "init ended before it could be interrupted (make the tree bigger)")
        expect(any(n.startswith("db.tmp.") for n in os.listdir(d)), "no temp file appeared within 30 s")
        time.sleep(0.2)
        p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        expect(p.returncode == 128 + sig, f"exit {p.returncode}, want {128 + sig}; stderr {err!r}")
        expect(err.decode().splitlines() == ["fimctl: interrupted: no baseline written"], f"stderr: {err!r}")
        left = [n for n in os.listdir(d) if ".tmp" in n]
        expect(not left, f"left behind: {left}")
        expect(open(ctx.db, "rb").read() == old, "the old baseline changed")
        expect(not os.path.exists(ctx.db + ".prev"), "a .prev was kept though nothing was replaced")
        for i in range(16):
            os.unlink(os.path.join(ctx.tree, f"big{i}"))
        # The old baseline still verifies and still describes the tree: only the directory's
        # times changed (its entries came and went).
        r = fimctl(ctx, "check", fmt="ndjson")
        changes = [x["path"] for x in map(json.loads, r.stdout.splitlines()) if x["type"] == "change"]
        expect(r.rc == 4 and changes == [ctx.tree], f"check with the old baseline after the interrupted init: "
               f"exit {r.rc}, changes {changes}: {r.stderr}")
    return case


# --- time and host on every record --------------------------------------------------------

def case_records_carry_time_host(ctx):
    want_host = {"name": socket.gethostname(), "id": open("/etc/machine-id").read().strip()}

    def records(r, fmt):
        if fmt == "ndjson":
            return [json.loads(line) for line in r.stdout.splitlines()]
        doc = json.loads(r.stdout)
        return [doc, doc["summary"], *doc["records"]]

    def every_record_stamped(r, fmt, what):
        recs = records(r, fmt)
        expect(len(recs) >= 2, f"{what}: {recs}")
        for rec in recs[1:] if fmt == "json" else recs:  # the json document itself is no record
            expect(TIME_RE.match(rec.get("time", "")), f"{what}: no RFC 3339 time: {rec}")
            expect(rec.get("host") == want_host, f"{what}: host {rec.get('host')}, want {want_host}")
        return recs

    for fmt in ("json", "ndjson"):
        shutil.rmtree(ctx.tree, ignore_errors=True)
        os.makedirs(ctx.tree)
        for n in ("a", "b"):
            with open(os.path.join(ctx.tree, n), "w") as f:
                f.write(n)
        if os.path.exists(ctx.db):
            os.unlink(ctx.db)
        r = fimctl(ctx, "init", ctx.tree, fmt=fmt)
        expect(r.rc == 0, r.stderr)
        every_record_stamped(r, fmt, f"init --format {fmt}")
        with open(os.path.join(ctx.tree, "a"), "a") as f:
            f.write("more")
        os.unlink(os.path.join(ctx.tree, "b"))
        with open(os.path.join(ctx.tree, "c"), "w") as f:
            f.write("c")
        r = fimctl(ctx, "check", fmt=fmt)
        expect(r.rc == 7, f"check: exit {r.rc}: {r.stderr}")
        recs = every_record_stamped(r, fmt, f"check --format {fmt}")
        kinds = {x.get("kind", "") for x in recs if x.get("type") == "change"}
        expect(kinds == {"added", "changed", "removed"}, f"check --format {fmt}: changes {kinds}")
        r = fimctl(ctx, "update", "--yes", "--reason", "r", fmt=fmt)
        expect(r.rc == 7, f"update: exit {r.rc}: {r.stderr}")
        every_record_stamped(r, fmt, f"update --format {fmt}")


CASES = {
    "version_flag": case_version_flag,
    "unknown_command_suggests": case_unknown_command_suggests,
    "unknown_option_suggests": case_unknown_option_suggests,
    **{f"nonroot_{n}": nonroot_case(n) for n in NONROOT},
    "no_baseline_watch": case_no_baseline_watch,
    "no_baseline_status": case_no_baseline_status,
    "deleted_baseline_not_told_to_init": case_deleted_baseline_not_told_to_init,
    "interrupt_init_sigint": interrupt_case(signal.SIGINT),
    "interrupt_init_sigterm": interrupt_case(signal.SIGTERM),
    "records_carry_time_host": case_records_carry_time_host,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-firstrun-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
