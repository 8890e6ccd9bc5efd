#!/usr/bin/env python3
"""The scheduled check's script share/cron/fimctl-cron, as cron and the systemd units run it:
/etc/default/fimctl's settings (MAILTO, MAILSUBJ, QUIETREPORTS, METRICS_FILE), the node-exporter
textfile (checked with promtool), the mail (a fake sendmail), the report handed from the check
unit to the mail unit, and the quiet fresh install that a deleted baseline must not imitate.

Usage: scheduled_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Nothing outside the case's temporary directory is touched.
"""
import os
import re
import shutil
import stat
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import SOURCE, Skip, expect, read, run, run_main, write  # noqa: E402

SCRIPT = os.path.join(SOURCE, "share", "cron", "fimctl-cron")
UNIT = os.path.join(SOURCE, "share", "systemd", "fimctl-check.service")

# A fimctl that prints what a check prints: the summary line first (FAKE_SUMMARY, or none).
FAKE_FIMCTL = """#!/bin/sh
[ -n "${FAKE_SUMMARY:-}" ] && echo "$FAKE_SUMMARY"
echo "fake report: $*"
echo "fake notice" >&2
exit "${FAKE_RC:-0}"
"""


class Ctx:
    """A host in a directory: bin/ (fake fimctl, logger, sendmail), state/ (/var/lib/fimctl),
    metrics/ (node-exporter's directory), default (/etc/default/fimctl), mail.log."""

    def __init__(self, fimctl, tmp):
        self.fimctl, self.tmp = fimctl, tmp
        self.bin, self.state = os.path.join(tmp, "bin"), os.path.join(tmp, "state")
        self.metrics = os.path.join(tmp, "metrics", "fimctl.prom")
        self.defaults, self.mail = os.path.join(tmp, "default"), os.path.join(tmp, "mail.log")
        os.makedirs(os.path.dirname(self.metrics))
        os.makedirs(self.state, mode=0o700)
        write(os.path.join(self.bin, "fimctl"), FAKE_FIMCTL, 0o755)
        write(os.path.join(self.bin, "logger"), f'#!/bin/sh\necho "$*" >> {tmp}/logger.log\n', 0o755)
        self.with_sendmail(True)
        self.settings()
        # An initialised host (init's lock; the fresh-install case removes it).
        write(os.path.join(self.state, "baseline.db.lock"), "")

    def with_sendmail(self, present):
        path = os.path.join(self.bin, "sendmail")
        if present:
            write(path, f'#!/bin/sh\n{{ echo "ARGS: $*"; cat; echo "--END--"; }} >> {self.mail}\n', 0o755)
        elif os.path.exists(path):
            os.unlink(path)

    def settings(self, **kw):
        s = dict(MAILTO="admin@example.org", MAILSUBJ='"fimctl check on testhost"', QUIETREPORTS="yes",
                 METRICS_FILE=self.metrics, FIMCTL_OPTIONS="")
        s.update(kw)
        write(self.defaults, "".join(f"{k}={v}\n" for k, v in s.items()))

    def run(self, *args, **env):
        for f in (self.mail, os.path.join(self.tmp, "logger.log")):
            if os.path.exists(f):
                os.unlink(f)
        e = dict(os.environ, PATH=self.bin + ":/usr/bin:/bin", FIMCTL=os.path.join(self.bin, "fimctl"),
                 FIMCTL_SYSTEMD_DIR=os.path.join(self.tmp, "no-systemd"), FIMCTL_DEFAULTS=self.defaults,
                 FIMCTL_STATE=self.state, FIMCTL_DPKG_STATUS=os.path.join(self.tmp, "no-dpkg"))
        for k in ("INVOCATION_ID", "MONITOR_INVOCATION_ID", "MONITOR_SERVICE_RESULT", "MONITOR_EXIT_STATUS"):
            e.pop(k, None)
        e.update(env)
        r = run(["sh", SCRIPT, *args], env=e, timeout=120)
        return r.rc, r.stdout, r.stderr

    def mails(self):
        return read(self.mail).split("--END--\n")[:-1] if os.path.exists(self.mail) else []


def metrics(path):
    """{name or name{labels}: value} of a textfile."""
    out = {}
    for line in read(path).splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def promtool_ok(path):
    promtool = shutil.which("promtool")
    if not promtool:
        raise Skip("promtool is not installed (Debian package prometheus)")
    with open(path, "rb") as f:
        r = run([promtool, "check", "metrics"], input=f.read())
    expect(r.rc == 0 and not (r.stdout + r.stderr).strip(), f"promtool check metrics: exit {r.rc}\n{r.stdout}{r.stderr}\n{read(path)}")


def case_metrics_textfile(ctx):
    """Every scheduled check writes the textfile (0644, renamed into place: no temporary file
    left) that promtool accepts: last run time, exit code, success, duration and the counts of
    the report's summary line; a failed check (no summary) has no counts and success 0."""
    ctx.settings(MAILTO="")
    rc, out, err = ctx.run(FAKE_RC="7", FAKE_SUMMARY="fimctl check: 1 added, 2 removed, 3 changed, 0 incomplete (9 entries, 0 B hashed, 0.01 s)")
    expect(rc == 7, f"exit {rc}: {out}{err}")
    promtool_ok(ctx.metrics)
    m = metrics(ctx.metrics)
    expect(stat.S_IMODE(os.stat(ctx.metrics).st_mode) == 0o644, "the textfile is not 0644")
    expect(os.listdir(os.path.dirname(ctx.metrics)) == ["fimctl.prom"], f"left behind: {os.listdir(os.path.dirname(ctx.metrics))}")
    want = {"fimctl_check_exit_code": 7, "fimctl_check_success": 1, 'fimctl_check_entries{kind="added"}': 1,
            'fimctl_check_entries{kind="removed"}': 2, 'fimctl_check_entries{kind="changed"}': 3,
            'fimctl_check_entries{kind="incomplete"}': 0}
    for k, v in want.items():
        expect(m.get(k) == v, f"{k} = {m.get(k)}, want {v}\n{read(ctx.metrics)}")
    import time
    expect(abs(m["fimctl_check_last_run_timestamp_seconds"] - time.time()) < 60, f"last run: {m}")
    expect(0 <= m["fimctl_check_duration_seconds"] < 60, f"duration: {m}")
    rc, out, err = ctx.run(FAKE_RC="18")
    promtool_ok(ctx.metrics)
    m = metrics(ctx.metrics)
    expect(m["fimctl_check_exit_code"] == 18 and m["fimctl_check_success"] == 0, f"failed check: {m}")
    expect(not any(k.startswith("fimctl_check_entries") for k in m), f"counts of a failed check: {m}")
    # METRICS_FILE empty, or its directory absent: no file, no error.
    os.unlink(ctx.metrics)
    ctx.settings(MAILTO="", METRICS_FILE="")
    rc, out, err = ctx.run(FAKE_RC="0")
    expect(rc == 0 and not os.path.exists(ctx.metrics) and err == "", f"METRICS_FILE empty: exit {rc}, {err}")
    ctx.settings(MAILTO="", METRICS_FILE=os.path.join(ctx.tmp, "absent", "fimctl.prom"))
    rc, out, err = ctx.run(FAKE_RC="0")
    expect(rc == 0 and err == "", f"no metrics directory: exit {rc}, {err}")


def case_metrics_counts_are_the_reports(ctx):
    """With the real fimctl: the counts in the textfile are the json summary's of the same
    differences (the plain summary line the script reads is that summary)."""
    tree = os.path.join(ctx.tmp, "tree")
    for n in ("a", "b", "c"):
        write(os.path.join(tree, n), n + "\n")
    policy = os.path.join(ctx.tmp, "policy.toml")
    write(policy, f'[[rule]]\npath = "{tree}"\n')
    opts = f"-c {policy} --db {ctx.state}/baseline.db --keys {ctx.tmp}/keys --unsigned"
    r = run([ctx.fimctl, *opts.split(), "init"])
    expect(r.rc == 0, f"init: {r.stderr}")
    os.unlink(os.path.join(tree, "a"))
    write(os.path.join(tree, "b"), "changed\n")
    write(os.path.join(tree, "new"), "x\n")
    write(os.path.join(tree, "new2"), "x\n")
    import json
    r = run([ctx.fimctl, *opts.split(), "--format", "json", "check"])
    summary = json.loads(r.stdout)["summary"]
    ctx.settings(MAILTO="", FIMCTL_OPTIONS=f'"{opts}"')
    rc, out, err = ctx.run(FIMCTL=ctx.fimctl)
    expect(rc == r.rc == 7, f"exit {rc} (json check {r.rc}): {out}{err}")
    m = metrics(ctx.metrics)
    for kind in ("added", "removed", "changed", "incomplete"):
        expect(m.get(f'fimctl_check_entries{{kind="{kind}"}}') == summary[kind], f"{kind}: {m} vs {summary}")
    expect(summary["added"] == 2 and summary["removed"] == 1 and summary["changed"] >= 1, f"summary {summary}")
    promtool_ok(ctx.metrics)


def case_cron_mail(ctx):
    """Under cron: a clean check sends and prints nothing (QUIETREPORTS=yes); differences and
    errors are mailed to MAILTO with MAILSUBJ and what happened, and then not printed (cron
    would mail them twice); QUIETREPORTS=no mails a clean check too; MAILTO empty: no mail,
    the report printed for cron's own mail."""
    rc, out, err = ctx.run(FAKE_RC="0")
    expect(rc == 0 and out == "" and ctx.mails() == [], f"clean: exit {rc}, printed {out!r}, mailed {ctx.mails()}")
    for code, says in [(4, "differences found (exit 4: changed)"), (17, "check failed (exit 17: baseline missing")]:
        rc, out, err = ctx.run(FAKE_RC=str(code))
        mails = ctx.mails()
        expect(rc == code and out == "", f"exit {rc}: printed {out!r}")
        expect(len(mails) == 1, f"exit {code}: {len(mails)} mails")
        m = mails[0]
        expect(m.startswith("ARGS: -t -oi\nTo: admin@example.org\nSubject: fimctl check on testhost: " + says), m)
        expect("Auto-Submitted: auto-generated" in m and "fake report: check" in m and "fake notice" in m, m)
        expect("-t fimctl -p user." in read(os.path.join(ctx.tmp, "logger.log")), "no syslog line")
    ctx.settings(QUIETREPORTS="no")
    rc, out, err = ctx.run(FAKE_RC="0")
    expect(rc == 0 and out == "" and len(ctx.mails()) == 1 and "Subject: fimctl check on testhost: clean" in ctx.mails()[0],
           f"QUIETREPORTS=no: {ctx.mails()}")
    ctx.settings(MAILTO="")
    rc, out, err = ctx.run(FAKE_RC="2")
    expect(rc == 2 and ctx.mails() == [] and "differences found (exit 2: removed)" in out and "fake report" in out,
           f"MAILTO empty: exit {rc}, printed {out!r}, mailed {ctx.mails()}")


def case_no_mta_says_so(ctx):
    """No sendmail and no mail(1): one line on stderr says the report was not mailed, and the
    cron job prints the report, so cron's own mail (or its log) still has it."""
    ctx.with_sendmail(False)
    if shutil.which("sendmail", path="/usr/sbin:/usr/bin:/sbin:/bin") or shutil.which("mail", path="/usr/bin:/bin"):
        raise Skip("this host has an MTA or mail(1): the script would find it")
    rc, out, err = ctx.run(FAKE_RC="4")
    expect(rc == 4 and "differences found" in out and "fake report" in out, f"exit {rc}: printed {out!r}")
    expect(err.count("\n") == 1 and "no sendmail or mail(1)" in err and "admin@example.org" in err, f"stderr {err!r}")


def case_unit_and_mail_unit(ctx):
    """--unit (fimctl-check.service): the report to stdout, last-check.txt (its run's
    INVOCATION_ID and status), fimctl's status as its own. --mail (fimctl-check-mail.service):
    mails that report when MONITOR_INVOCATION_ID is its run; a run that ended without writing
    one is mailed as a failure, never as the old report; a clean check is not mailed."""
    rc, out, err = ctx.run("--unit", FAKE_RC="4", INVOCATION_ID="aaaa")
    expect(rc == 4 and out.startswith("fimctl check: differences found (exit 4: changed)\n") and "fake report" in out, f"{rc} {out!r}")
    saved = os.path.join(ctx.state, "last-check.txt")
    expect(read(saved).startswith("invocation=aaaa rc=4\nfake report: check"), read(saved))
    expect(stat.S_IMODE(os.stat(saved).st_mode) & 0o077 == 0, "last-check.txt is readable by others")
    expect(ctx.mails() == [], "the check unit mailed")
    rc, out, err = ctx.run("--mail", MONITOR_INVOCATION_ID="aaaa", MONITOR_SERVICE_RESULT="exit-code", MONITOR_EXIT_STATUS="4")
    mails = ctx.mails()
    expect(rc == 0 and len(mails) == 1 and "Subject: fimctl check on testhost: differences found (exit 4: changed)" in mails[0]
           and "fake report: check" in mails[0], f"mail: {rc} {mails} {err}")
    rc, out, err = ctx.run("--mail", MONITOR_INVOCATION_ID="bbbb", MONITOR_SERVICE_RESULT="timeout", MONITOR_EXIT_STATUS="")
    mails = ctx.mails()
    expect(len(mails) == 1 and "check failed (no report: result timeout" in mails[0] and "fake report" not in mails[0],
           f"a run without a report: {mails}")
    rc, out, err = ctx.run("--unit", FAKE_RC="0", INVOCATION_ID="cccc")
    rc, out, err = ctx.run("--mail", MONITOR_INVOCATION_ID="cccc", MONITOR_SERVICE_RESULT="success", MONITOR_EXIT_STATUS="0")
    expect(ctx.mails() == [], f"clean check mailed: {ctx.mails()}")
    ctx.settings(MAILTO="")
    rc, out, err = ctx.run("--mail", MONITOR_INVOCATION_ID="dddd", MONITOR_SERVICE_RESULT="exit-code")
    expect(rc == 0 and ctx.mails() == [], "MAILTO empty, still mailed")


def initialised_files():
    script = re.search(r"for f in ([^;]+); do", read(SCRIPT)).group(1).split()
    unit = re.findall(r"^ConditionPathExists=\|/var/lib/fimctl/(\S+)$", read(UNIT), re.M)
    expect(sorted(script) == sorted(unit), f"fimctl-cron checks {script}, the unit {unit}")
    return script


def case_fresh_install_is_quiet(ctx):
    """Never initialised (none of the files init or a check leaves; a state.db the apt hook
    wrote does not count): the cron job neither checks, nor mails, nor writes metrics;
    fimctl-check.service's conditions are the same list."""
    initialised_files()
    os.unlink(os.path.join(ctx.state, "baseline.db.lock"))
    write(os.path.join(ctx.state, "state.db"), "")
    rc, out, err = ctx.run(FAKE_RC="17")
    expect(rc == 0 and out + err == "" and ctx.mails() == [] and not os.path.exists(ctx.metrics),
           f"fresh install: exit {rc}, printed {out + err!r}, mailed {ctx.mails()}")


def case_baseline_deleted_check_still_fails(ctx):
    """The intruder deletes baseline.db right after init (no scheduled check ran yet) to turn
    the daily check into a fresh install's quiet skip: init's lock file keeps it running; it
    fails with 17, is mailed and logged, and the metrics say so (systemd: the same files are
    the unit's ConditionPathExists=|, check_unit_test.py runs it)."""
    tree = os.path.join(ctx.tmp, "tree")
    write(os.path.join(tree, "f"), "f\n")
    policy = os.path.join(ctx.tmp, "policy.toml")
    write(policy, f'[[rule]]\npath = "{tree}"\n')
    opts = f"-c {policy} --db {ctx.state}/baseline.db --keys {ctx.tmp}/keys --unsigned"
    os.unlink(os.path.join(ctx.state, "baseline.db.lock"))
    r = run([ctx.fimctl, *opts.split(), "init"])
    expect(r.rc == 0, f"init: {r.stderr}")
    ctx.settings(FIMCTL_OPTIONS=f'"{opts}"')
    os.unlink(os.path.join(ctx.state, "baseline.db"))
    left = sorted(os.listdir(ctx.state))
    expect(any(f in initialised_files() for f in left),
           f"after init only {left}: deleting baseline.db leaves none of the files the condition names")
    rc, out, err = ctx.run(FIMCTL=ctx.fimctl)
    mails = ctx.mails()
    expect(rc == 17, f"exit {rc}: {out}{err}")
    expect(len(mails) == 1 and "check failed (exit 17: baseline missing" in mails[0], f"mails: {mails}")
    expect("user.err" in read(os.path.join(ctx.tmp, "logger.log")), "not logged")
    m = metrics(ctx.metrics)
    expect(m["fimctl_check_exit_code"] == 17 and m["fimctl_check_success"] == 0, f"metrics {m}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-scheduled-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
