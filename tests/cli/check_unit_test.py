#!/usr/bin/env python3
"""fimctl-check.service run by systemd 252 itself, as PID 1 of new namespaces, under the
hardening it asks for (capability bounding set, read-only tree, private /tmp): a check that
still sees what an unconfined init recorded, the quiet fresh install, and the deleted baseline
that must not look like one.

Usage: check_unit_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no systemd, no namespaces). Nothing is installed; the
host's units are hidden from the namespaced systemd.
"""
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import SOURCE, Skip, expect, read, run, run_main, write  # noqa: E402

SHARE = os.path.join(SOURCE, "share")


class Ctx:
    def __init__(self, fimctl, tmp):
        self.fimctl, self.tmp = fimctl, tmp

    def run(self, cmd, timeout=120, **kw):
        r = run(cmd, timeout=timeout, **kw)
        return r.rc, r.stdout, r.stderr


# The check unit run by systemd itself, as PID 1 of new namespaces: systemd's sandbox is the
# one the unit asks for, so a setting that hides or changes what the check reads shows up as a
# difference, and one that keeps it from writing state.db as a missing state.db.
SANDBOX_SCRIPT = r"""
set -eu
T=$1 FIMCTL=$2
# /proc here is the host's while this is a new pid namespace: LeakSanitizer (a sanitizer
# build) would look for its own threads under the wrong pid and abort.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mount --make-rprivate /
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -o bind,ro /proc/sys /proc/sys
mount -t tmpfs -o mode=0755 tmpfs /run
# Only the units of this test: no host unit is started, no generator runs.
for d in /etc/systemd/system /lib/systemd/system /usr/lib/systemd/system /usr/local/lib/systemd/system \
         /lib/systemd/system-generators /usr/lib/systemd/system-generators /etc/systemd/system-generators; do
  if [ -d "$d" ]; then mount -t tmpfs -o mode=0755 tmpfs "$d"; fi
done
mkdir -p /run/systemd/system /run/fimtest
cp -r "$T/units/." /run/systemd/system/
mount --bind "$T/out" /run/fimtest
mount -t tmpfs -o mode=0755 tmpfs /var/lib
mkdir -m 0700 /var/lib/fimctl
mount --bind "$T/state" /var/lib/fimctl
# The binary may lie below /tmp: copy it before /tmp is replaced.
mkdir /run/fimtest-bin
cp "$FIMCTL" /run/fimtest-bin/fimctl
FIMCTL=/run/fimtest-bin/fimctl
cp "$5" /run/fimtest-bin/fimctl-cron && chmod 0755 /run/fimtest-bin/fimctl-cron
# node-exporter's textfile directory (root's, 0755, as Debian's package makes it).
mkdir -p /var/lib/prometheus/node-exporter
mount --bind "$T/metrics" /var/lib/prometheus/node-exporter
mount --bind "$T/vartmp" /var/tmp
mount --bind "$T/tmp" /tmp
F="$FIMCTL -c /var/lib/fimctl/policy.toml --keys /var/lib/fimctl/keys"
$F key generate >/run/fimtest/init.log 2>&1
# fresh: never initialised; baseline_deleted: the intruder removed the baseline after init.
# A fresh install's state.db stands for what the apt hook writes before any init.
if [ "$4" != fresh ]; then $F init >>/run/fimtest/init.log 2>&1; else : > /var/lib/fimctl/state.db; fi
if [ "$4" = baseline_deleted ]; then rm /var/lib/fimctl/baseline.db; ls /var/lib/fimctl >>/run/fimtest/init.log; fi
exec env container=fimctl-test "$3" --log-target=console --log-level=notice --unit=fimtest.target
"""


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] == "cgroup2":
                return left.split()[4]
    return None


def run_check_unit(ctx, scenario):
    """Runs fimctl-check.service as written under systemd 252 as PID 1 of new namespaces
    (ExecStart= is the script it runs, pointed at the built binary, a test policy and
    settings), after an init (scenario "clean"), none ("fresh") or an init whose baseline was
    then deleted ("baseline_deleted"). fimtest-done.service, ordered after it, records what
    systemd says of the check unit and stops the manager. Returns (show, report, mounts,
    metrics text, diag)."""
    if os.geteuid() != 0:
        raise Skip("needs root (namespaces, mounts, systemd as PID 1)")
    systemd = next((p for p in ("/lib/systemd/systemd", "/usr/lib/systemd/systemd") if os.access(p, os.X_OK)), None)
    if not systemd or not shutil.which("unshare"):
        raise Skip("needs systemd and unshare (Debian packages systemd, util-linux)")
    cg = cgroup2_mount()
    if not cg:
        raise Skip("no cgroup2 hierarchy mounted")
    flags = ["--pid", "--fork", "--kill-child", "--mount", "--cgroup", "--uts", "--net", "--ipc"]
    rc, _, err = ctx.run(["unshare", *flags, "true"])
    if rc != 0:
        raise Skip(f"cannot create namespaces here: {err.strip()}")
    with open("/proc/self/cgroup") as f:
        own = next(l.split(":", 2)[2].strip() for l in f if l.startswith("0::"))
    group = os.path.join(cg + own, f"fimctl-install-test-{os.getpid()}")

    t = os.path.join(ctx.tmp, "sandbox")
    for sub in ("units/fimctl-check.service.d", "out", "state", "tmp", "vartmp", "metrics"):
        os.makedirs(os.path.join(t, sub))
    os.chmod(os.path.join(t, "state"), 0o700)
    for sub in ("tmp", "vartmp"):
        os.chmod(os.path.join(t, sub), 0o1777)
    shutil.copyfile(os.path.join(SHARE, "systemd", "fimctl-check.service"), os.path.join(t, "units", "fimctl-check.service"))
    write(os.path.join(t, "units", "fimtest.target"),
          "[Unit]\nDescription=fimctl install test\nWants=fimctl-check.service fimtest-done.service\n")
    write(os.path.join(t, "units", "fimtest-done.service"), """[Unit]
DefaultDependencies=no
After=fimctl-check.service
SuccessAction=exit-force
FailureAction=exit-force
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'systemctl show -p ConditionResult -p Result -p ExecMainStatus -p ActiveState fimctl-check.service > /run/fimtest/show'
""")
    # The unit as written; only the binary, the policy and the settings change.
    write(os.path.join(t, "out", "default"), "MAILTO=\nFIMCTL_OPTIONS='-c /var/lib/fimctl/policy.toml --keys /var/lib/fimctl/keys'\n")
    write(os.path.join(t, "units", "fimctl-check.service.d", "test.conf"), f"""[Unit]
DefaultDependencies=no
[Service]
ExecStartPre=/bin/cat /proc/self/mountinfo
ExecStart=
ExecStart=/run/fimtest-bin/fimctl-cron --unit
Environment=FIMCTL=/run/fimtest-bin/fimctl FIMCTL_DEFAULTS=/run/fimtest/default
StandardOutput=append:/run/fimtest/check.out
StandardError=append:/run/fimtest/check.err
# A sanitizer build: LeakSanitizer stops the process with ptrace, which the unit's system call
# filter refuses (EPERM); everything else it checks as usual.
Environment=ASAN_OPTIONS=detect_leaks=0
""")
    # A trusted.* extended attribute is visible only with CAP_SYS_ADMIN: a unit that drops it
    # would see this file change.
    probe = os.path.join(t, "state", "probe")
    write(probe, "probe\n")
    try:
        os.setxattr(probe, "trusted.fimctl-test", b"1")
    except OSError:
        pass
    rules = [("/etc/shadow", None), ("/root", 0), ("/usr/lib/modules", 0), ("/var/lib/fimctl/probe", 0)]
    write(os.path.join(t, "state", "policy.toml"),
          "".join(f'[[rule]]\npath = "{p}"\n' + (f"depth = {d}\n" if d is not None else "")
                  for p, d in rules if p.startswith("/var/lib/fimctl") or os.path.exists(p)))
    os.mkdir(group)
    try:
        script = os.path.join(t, "sandbox.sh")
        write(script, SANDBOX_SCRIPT)
        # Into a cgroup of its own first: the cgroup namespace makes it systemd's root.
        rc, out, err = ctx.run(["sh", "-c", 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', "sh", group,
                                "unshare", *flags, "sh", script, t, ctx.fimctl, systemd, scenario,
                                os.path.join(SHARE, "cron", "fimctl-cron")], timeout=180)
    finally:
        for sub, _, _ in sorted(os.walk(group), key=lambda w: -len(w[0])):
            try:
                os.rmdir(sub)
            except OSError:
                pass

    def opt(name):
        p = os.path.join(t, "out", name)
        return read(p) if os.path.exists(p) else ""
    output = opt("check.out")
    # The mount table the check saw (ExecStartPre), then its report.
    mounts = {}
    for line in output.splitlines():
        left, sep, _ = line.partition(" - ")
        if sep and len(left.split()) >= 6:
            mounts[left.split()[4]] = left.split()[5].split(",")
    report = "\n".join(l for l in output.splitlines() if " - " not in l)
    show = dict(l.split("=", 1) for l in opt("show").splitlines() if "=" in l)
    diag = lambda: (f"systemd exit {rc}\ninit: {opt('init.log')}\nshow: {show}\n"
                    f"check: {report}\n{opt('check.err')}\nconsole: {out}{err}")
    expect(rc == 0 and show, diag)
    metrics = os.path.join(t, "metrics", "fimctl.prom")
    return show, report, mounts, read(metrics) if os.path.exists(metrics) else "", diag


def case_check_unit_runs_sandboxed(ctx):
    """systemd 252 runs fimctl-check.service as written (its script pointed at the built
    binary and a test policy) in private namespaces: the check reads /etc/shadow, /root and
    /usr/lib/modules and a trusted.* extended attribute exactly as an unsandboxed init recorded
    them (exit 0) with only the capabilities of its bounding set, writes state.db and the
    node-exporter textfile, while / is read-only for it."""
    show, report, mounts, metrics, diag = run_check_unit(ctx, "clean")
    expect(show.get("Result") == "success" and show.get("ExecMainStatus") == "0", diag)
    expect("ro" in mounts.get("/", []), lambda: f"/ is not read-only for the check: {mounts.get('/')}\n" + diag())
    expect("rw" in mounts.get("/var/lib/fimctl", []), lambda: f"/var/lib/fimctl is not writable: {mounts.get('/var/lib/fimctl')}")
    expect(re.search(r"fimctl check: 0 added, 0 removed, 0 changed, 0 incomplete \([1-9]", report), diag)
    expect("alert" not in report and "warning" not in report, diag)
    expect(os.path.getsize(os.path.join(ctx.tmp, "sandbox", "state", "state.db")) > 0, "state.db was not written")
    expect(read(os.path.join(ctx.tmp, "sandbox", "state", "last-check.txt")).startswith("invocation="), "no last-check.txt")
    expect("fimctl_check_exit_code 0" in metrics and "fimctl_check_success 1" in metrics, lambda: f"metrics: {metrics!r}\n" + diag())


def case_fresh_install_check_unit_skipped(ctx):
    """Never initialised (a state.db as the apt hook leaves it, no baseline): systemd skips
    fimctl-check.service on its conditions (no failed unit, no mail, nothing run)."""
    show, report, _, metrics, diag = run_check_unit(ctx, "fresh")
    expect(show.get("ConditionResult") == "no" and show.get("ActiveState") == "inactive", diag)
    expect(report == "" and metrics == "", diag)


def case_baseline_deleted_check_unit_still_fails(ctx):
    """The intruder deletes baseline.db after init to make the daily check look like a fresh
    install's: what init left (its lock file) keeps the unit's conditions true, the check runs,
    fails with 17 (baseline missing) and the unit is failed (OnFailure=: the mail)."""
    show, report, _, metrics, diag = run_check_unit(ctx, "baseline_deleted")
    expect(show.get("ConditionResult") == "yes", lambda: "the check was skipped: " + diag())
    expect(show.get("Result") == "exit-code" and show.get("ExecMainStatus") == "17" and show.get("ActiveState") == "failed", diag)
    expect("check failed (exit 17" in report and "fimctl_check_exit_code 17" in metrics, diag)


def case_security_exposure(ctx):
    """systemd-analyze security rates fimctl-check.service OK (below 4.0; 5.1 MEDIUM before it
    had a capability bounding set) and fimctl-watch.service no worse than 3.1."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        raise Skip("systemd-analyze is not installed (Debian package systemd)")
    for name, limit in (("fimctl-check.service", 3.99), ("fimctl-watch.service", 3.1)):
        copy = os.path.join(ctx.tmp, name)
        shutil.copyfile(os.path.join(SHARE, "systemd", name), copy)
        rc, out, err = ctx.run([analyze, "security", "--offline=yes", "--no-pager", copy])
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out + err)
        if rc != 0 and not m:
            raise Skip(f"systemd-analyze security --offline=yes does not work here: {err.strip()}")
        expect(m and float(m.group(1)) <= limit, f"{name}: exposure {m.group(1) if m else '?'}, want <= {limit}\n{out}{err}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-check-unit-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
