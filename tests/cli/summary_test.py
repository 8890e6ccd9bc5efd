#!/usr/bin/env python3
"""Reports that summarise (docs/design.md, Reports: summaries): after an upgrade of three
packages by two apt runs (hundreds of changes) and a few changes no run explains, the plain
report opens with its "summary:" line and the table by severity and rule, package verdict and
apt run; what a run explains is one line per package (every file with -v); everything else is
listed in full. JSON's summary carries the same groups. The scheduled check's mail takes its
subject from the summary and is bounded. The attack cases play an intruder who hides a change
among an upgrade's: each is named for the attack.

The host is a directory used with --sysroot: a dpkg database of the test's own making (status,
.list and .md5sums), and the apt runs as the apt hook records them in state.db.

Usage: summary_test.py --fimctl PATH (--list | CASE)"""
import hashlib
import json
import os
import re
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from ecs_schema import Schema  # noqa: E402
from fimtest import SOURCE, Ctx as CaseCtx, expect, read, run, run_main, write  # noqa: E402

# name -> (directory, files): 310 files in all.
PACKAGES = {"alpha": ("usr/lib/alpha", 150), "beta": ("usr/share/beta", 60), "gamma": ("usr/lib/gamma", 100)}
BEFORE = {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
AFTER = {"alpha": "1.1", "beta": "1.1", "gamma": "2.0"}
RUNS = ["alpha:amd64 1.0 1.1\nbeta:amd64 1.0 1.1\n", "gamma:amd64 1.0 2.0\n"]


class Ctx(CaseCtx):
    """TMP/root (the host), TMP/policy.toml (/usr high, /etc medium, /etc/cron.d critical),
    the baseline TMP/db/baseline.db and its state.db."""

    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.root = os.path.join(tmp, "root")
        self.db = os.path.join(tmp, "db", "baseline.db")
        self.policy = os.path.join(tmp, "policy.toml")
        write(self.policy, 'version = 1\n[[rule]]\npath = "/usr"\nseverity = "high"\n'
                           '[[rule]]\npath = "/etc"\nseverity = "medium"\n'
                           '[[rule]]\npath = "/etc/cron.d"\nseverity = "critical"\n')
        self.packages = dict(PACKAGES)
        self.dpkg(BEFORE)
        self.put("etc/cron.d/job", b"* * * * * root true\n")
        os.makedirs(os.path.join(self.root, "usr", "bin"))

    def put(self, rel, data):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def dpkg(self, versions, only=None):
        """Installs `versions` (name -> version) of the packages: their files and dpkg's records."""
        status = ""
        for name, (d, n) in self.packages.items():
            v = versions[name]
            status += f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {v}\n\n"
            if only and name not in only:
                continue
            files = [f"/{d}/f{i}" for i in range(n)]
            self.put(f"var/lib/dpkg/info/{name}.list", ("\n".join(["/" + d] + files) + "\n").encode())
            md5 = ""
            for i in range(n):
                data = f"{name} {v} file {i}\n".encode()
                self.put(f"{d}/f{i}", data)
                md5 += hashlib.md5(data).hexdigest() + f"  {d}/f{i}\n"
            self.put(f"var/lib/dpkg/info/{name}.md5sums", md5.encode())
        self.put("var/lib/dpkg/status", status.encode())

    def apt_runs(self, runs):
        """The apt hook's records of `runs` (its "name:arch old new" lines), as its post hook
        writes them after the baseline."""
        db = sqlite3.connect(os.path.join(os.path.dirname(self.db), "state.db"))
        now = time.time_ns()
        for i, changes in enumerate(runs):
            db.execute("INSERT INTO apt_runs(at_ns, changes) VALUES(?, ?)", (now + i, changes))
        db.commit()
        db.close()

    def argv(self, *args, fmt="plain"):
        out = [self.fimctl, "-c", self.policy, "--sysroot", self.root, "--db", self.db, "--keys", self.db + ".keys",
               "--unsigned"]
        return out + (["--no-color"] if fmt == "plain" else ["--format", fmt]) + list(args)

    def run(self, *args, fmt="plain"):
        return run(self.argv(*args, fmt=fmt), timeout=120)

    def upgraded(self):
        """init; then the two apt runs, a file of alpha's not what alpha ships (mismatch), a
        cron job and a binary no package ships."""
        r = self.run("init")
        expect(r.rc == 0, f"init: {r.stderr}")
        self.dpkg(AFTER)
        self.put("usr/lib/alpha/f7", b"tampered\n")
        self.put("etc/cron.d/evil", b"* * * * * root /tmp/x\n")
        self.put("usr/bin/dropper", b"#!/bin/sh\n")
        self.apt_runs(RUNS)

    def check(self, *args, fmt="plain"):
        r = self.run("check", "--packages", *args, fmt=fmt)
        expect(r.rc & 16 == 0 and r.rc & 7, f"check: exit {r.rc}: {r.stderr}")
        return r.stdout


# What upgraded() leaves unexplained: two files added, alpha's tampered file, and the two
# directories the additions changed.
UNEXPLAINED = ["/etc/cron.d/evil", "/usr/bin/dropper", "/usr/lib/alpha/f7", "/etc/cron.d", "/usr/bin"]
VERIFIED = 149 + 60 + 100


def table(out):
    """The summary table: (added, removed, changed, label) rows and headings, as printed."""
    block = out.split("\nsummary: ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    rows = []
    for line in block:
        m = re.match(r"^  +(\S+) +(\S+) +(\S+)  (.*)$", line)
        expect(m, f"not a table row: {line!r}")
        rows.append(m.groups())
    return rows


def case_upgrade_collapses_to_one_line_per_package(ctx):
    """Hundreds of changes from two apt runs: the summary line counts what needs reading and
    its highest severity; the table groups by severity and rule, verdict and run; every
    change the runs explain is one line per package at the end; the unexplained ones in full."""
    ctx.upgraded()
    out = ctx.check()
    expect(f"\nsummary: {len(UNEXPLAINED)} unexplained changes (critical), {VERIFIED} verified by apt "
           f"({VERIFIED} only by dpkg's records)\n" in out, out[:3000])
    rows = table(out)
    want = [("added", "removed", "changed", "by severity and rule"),
            ("1", "0", "1", "critical"), ("1", "0", "1", "  /etc/cron.d (policy.toml:8)"),
            ("1", "0", "311", "high"), ("1", "0", "311", "  /usr (policy.toml:2)"),
            ("added", "removed", "changed", "by package verdict"),
            ("0", "0", "1", "mismatch"), ("2", "0", "2", "unpackaged"), ("0", "0", str(VERIFIED), "verified"),
            ("added", "removed", "changed", "by apt run")]
    expect(rows[:len(want)] == want, f"table:\n{rows}")
    runs = rows[len(want):]
    expect([r[:3] for r in runs] == [("0", "0", "210"), ("0", "0", "100")] and
           all(r[3].startswith("apt run ") for r in runs), f"runs: {runs}")
    for line in ["  alpha 1.0 -> 1.1: 150 files, 149 verified (dpkg-md5), 1 not (listed above)",
                 "  beta 1.0 -> 1.1: 60 files, all verified (dpkg-md5)",
                 "  gamma 1.0 -> 2.0: 100 files, all verified (dpkg-md5)"]:
        expect(f"\n{line}\n" in out, f"no {line!r}:\n{out[-1500:]}")
    # Unexplained: in full, after the table and before the runs' lines.
    first_run = out.index("\napt run 1 at ")
    for path in UNEXPLAINED:
        at = out.find(f": {path} ")
        expect(out.index("\nsummary: ") < at < first_run, f"{path} not listed in full between summary and runs")
    expect("package: mismatch alpha 1.1 (amd64) [dpkg-md5]" in out, "the tampered file's verdict is not shown")
    # Explained: not one of their paths.
    expect(not re.search(r"/usr/lib/gamma/f\d", out) and "/usr/share/beta/f" not in out, "an explained file listed")
    expect(len(out.splitlines()) < 80, f"{len(out.splitlines())} lines for a report of ~315 changes")


def case_verbose_lists_every_explained_change(ctx):
    """-v: under each package line, every change its run explains, one line each."""
    ctx.upgraded()
    out = ctx.check("-v")
    for name, (d, n) in PACKAGES.items():
        for i in range(n):
            if (name, i) == ("alpha", 7):
                continue
            expect(f"  changed: /{d}/f{i}  {name} {AFTER[name]} (amd64), dpkg-md5\n" in out, f"/{d}/f{i} not listed with -v")
    expect("  gamma 1.0 -> 2.0: 100 files, all verified (dpkg-md5)" in out, "the package lines went with -v")


def groups_of(records):
    """The summary's groups as the change records say they should be."""
    sev, rules, verdicts, runs = {}, {}, {}, {}
    explained = unexplained = 0
    for r in records:
        k = r["kind"]
        bump = (lambda d, key: d.setdefault(key, {"added": 0, "removed": 0, "changed": 0}).__setitem__(
            k, d[key][k] + 1))
        bump(sev, r["severity"])
        bump(rules, r["rule"])
        p = r.get("package", {})
        bump(verdicts, p["verdict"])
        if "upgrade" in p:
            bump(runs, p["upgrade"])
        if p["verdict"] == "verified" and "upgrade" in p:
            explained += 1
        else:
            unexplained += 1
    return sev, rules, verdicts, runs, explained, unexplained


def case_json_groups_agree_with_the_records(ctx):
    """json and ndjson: the summary's groups are the change records counted by severity,
    rule, verdict and apt run; explained plus unexplained is every change; --format ecs keeps
    them under fimctl.groups in a valid document."""
    ctx.upgraded()
    doc = json.loads(ctx.check(fmt="json"))
    summary, records = doc["summary"], [r for r in doc["records"] if r["type"] == "change"]
    g = summary["groups"]
    sev, rules, verdicts, runs, explained, unexplained = groups_of(records)
    counts = lambda e: {k: e[k] for k in ("added", "removed", "changed")}  # noqa: E731
    expect({e["severity"]: counts(e) for e in g["severity"]} == sev, f"severity {g['severity']} vs {sev}")
    expect([e["severity"] for e in g["severity"]] == ["critical", "high"], "not highest first")
    expect({e["rule"]: counts(e) for e in g["rules"]} == rules, f"rules {g['rules']} vs {rules}")
    expect({e["verdict"]: counts(e) for e in g["verdicts"]} == verdicts, f"verdicts {g['verdicts']}")
    expect([e["verdict"] for e in g["verdicts"]] == ["mismatch", "unpackaged", "verified"], "verdicts not worst first")
    expect({e["run"]: counts(e) for e in g["apt_runs"]} == runs, f"runs {g['apt_runs']} vs {runs}")
    alpha = [p for e in g["apt_runs"] for p in e["packages"] if p["name"] == "alpha"]
    expect(alpha == [{"name": "alpha", "arch": "amd64", "from": "1.0", "to": "1.1", "verified": 149, "other": 1,
                      "evidence": ["dpkg-md5"]}], f"alpha: {alpha}")
    total = summary["added"] + summary["removed"] + summary["changed"]
    expect(sum(counts(g["explained"]).values()) == explained == VERIFIED and g["explained"]["weak"] == VERIFIED,
           f"explained {g['explained']}")
    expect(sum(counts(g["unexplained"]).values()) == unexplained == total - VERIFIED, f"unexplained {g['unexplained']}")
    expect(g["unexplained"]["severity"] == "critical", f"{g['unexplained']}")
    last = json.loads(ctx.check(fmt="ndjson").splitlines()[-1])
    expect(last["type"] == "summary" and last["groups"] == g, "ndjson's groups differ from json's")
    schema = Schema()
    docs = [json.loads(line) for line in ctx.check(fmt="ecs").splitlines() if line.strip()]
    for d in docs:
        expect(not schema.problems(d), f"invalid ECS document: {schema.problems(d)}")
    expect(any(d.get("fimctl", {}).get("groups") == g or d.get("fimctl.groups") == g for d in docs),
           "no ECS document carries the groups")


def case_package_rewritten_without_an_apt_run_listed_in_full(ctx):
    """The intruder replaces a package's files and rewrites dpkg's md5sums and status to
    match, with no apt run: dpkg's records vouch for them, but no recorded run explains them,
    so every one is listed in full and counted unexplained; the subject-worthy summary says so."""
    r = ctx.run("init")
    expect(r.rc == 0, r.stderr)
    ctx.dpkg(dict(BEFORE, beta="6.6"), only={"beta"})
    out = ctx.check()
    expect("\nsummary: 60 unexplained changes (high)\n" in out, out[:1500])
    for i in range(60):
        expect(f"\nchanged: /usr/share/beta/f{i} [high]\n" in out, f"/usr/share/beta/f{i} not listed in full")
    expect("verified by apt" not in out and "\napt run" not in out, "a change with no recorded run was collapsed")


def case_unexplained_change_inside_an_upgrade_not_collapsed(ctx):
    """The intruder times a change to ride on an upgrade: one of the upgraded package's files
    is not what the new version ships, another is added beside its files. Both are listed in
    full and counted unexplained (with the package's directory, which now holds a file it does
    not ship); the package's line says two of its changes were not verified."""
    ctx.upgraded()
    ctx.put("usr/lib/gamma/f99", b"not what gamma 2.0 ships\n")
    ctx.put("usr/lib/gamma/extra", b"planted\n")
    out = ctx.check()
    expect(f"\nsummary: {len(UNEXPLAINED) + 3} unexplained changes (critical)" in out, out[:1500])
    expect("\nchanged: /usr/lib/gamma/f99 [high]\n" in out and "\nadded: /usr/lib/gamma/extra (file) [high]\n" in out,
           "a change inside the upgrade was hidden")
    expect("\nchanged: /usr/lib/gamma [high]\n" in out, "the directory holding the planted file is not listed")
    expect("  gamma 1.0 -> 2.0: 101 files, 99 verified (dpkg-md5), 2 not (listed above)" in out, out[-800:])


def case_mail_subject_counts_and_bounded_body(ctx):
    """share/cron/fimctl-cron on this host: the mail's subject is the summary line ("5
    unexplained changes (critical), 309 verified by apt ..."), its body the report up to
    MAILMAXBYTES, cut at a line, with where the whole report is (last-check.txt, which has it)."""
    ctx.upgraded()
    bindir, state = os.path.join(ctx.tmp, "bin"), os.path.dirname(ctx.db)
    mail = os.path.join(ctx.tmp, "mail.log")
    real = ctx.argv(fmt="plain")
    write(os.path.join(bindir, "fimctl"), "#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in real) + ' "$@"\n', 0o755)
    write(os.path.join(bindir, "sendmail"), f'#!/bin/sh\n{{ echo "ARGS: $*"; cat; }} > {mail}\n', 0o755)
    write(os.path.join(bindir, "logger"), "#!/bin/sh\nexit 0\n", 0o755)
    defaults = os.path.join(ctx.tmp, "default")
    write(defaults, 'MAILTO=admin@example.org\nMAILSUBJ="fimctl on testhost"\nMAILMAXBYTES=1500\nMETRICS_FILE=\n')
    env = dict(os.environ, PATH=bindir + ":/usr/bin:/bin", FIMCTL=os.path.join(bindir, "fimctl"),
               FIMCTL_SYSTEMD_DIR=os.path.join(ctx.tmp, "no-systemd"), FIMCTL_DEFAULTS=defaults, FIMCTL_STATE=state,
               FIMCTL_DPKG_STATUS=os.path.join(ctx.root, "var/lib/dpkg/status"))
    r = run(["sh", os.path.join(SOURCE, "share", "cron", "fimctl-cron")], env=env, timeout=120)
    expect(r.rc == 5 and r.stdout == "", f"fimctl-cron: exit {r.rc}, printed {r.stdout!r} {r.stderr!r}")
    text = read(mail)
    subject = re.search(r"^Subject: (.*)$", text, re.M).group(1)
    expect(subject == f"fimctl on testhost: 5 unexplained changes (critical), {VERIFIED} verified by apt "
                      f"({VERIFIED} only by dpkg's records)", subject)
    body = text.split("\n\n", 1)[1]
    expect(body.startswith("fimctl check on ") and "differences found (exit 5: added, changed)" in body, body[:300])
    m = re.search(r"\n\[(\d+) more lines not mailed \(MAILMAXBYTES=1500\): the whole report is in (\S+)\]\n$", body)
    expect(m, f"no pointer at the end:\n{body[-400:]}")
    report = body.split("\n\n", 1)[1].rsplit("\n\n[", 1)[0]
    expect(len(report.encode()) <= 1500, f"body of {len(report.encode())} bytes")
    expect("\nsummary: 5 unexplained changes" in report, "the summary is not in the mail")
    saved = read(m.group(2))
    expect("\nchanged: /usr/lib/alpha/f7 [high]\n" in saved and "gamma 1.0 -> 2.0" in saved, "last-check.txt is not whole")
    expect(saved.count("\n") - 1 - report.count("\n") - 1 >= int(m.group(1)) - 1, "the count of lines left out is wrong")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-summary-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
