#!/usr/bin/env python3
"""A day of operation under the default policy (issue 20): a Debian 12 root stays silent.

A copy of the cached debootstrap root (tests/root/package_test.py makes it), with what a
stock host runs every day installed (cron, logrotate), fimctl as the package installs it
(/usr/sbin/fimctl, the default policy as /etc/fimctl/fimctl.toml, the apt hook) and a signing
key. fimctl runs inside the root (chroot, /proc mounted in a private mount namespace). After
a signed `init`, the day: `apt-get update` from Debian's mirror, `logrotate -f`, the daily
cron jobs run by hand (`run-parts /etc/cron.daily`, what cron or the systemd timers run),
then a small package installed and purged with apt. `check` must report nothing but growing
logs after the first part, and `check --packages` nothing that the package run does not
explain after the second.

Not played here: a reboot (a chroot has no boot: what a boot or shutdown rewrites,
/etc/adjtime, /etc/machine-id, /etc/.updated, /boot/grub/grubenv, is recorded with fewer
attributes for the documented reasons given in share/fimctl.toml, and
tests/cli/default_policy_test.py plays those rewrites on a tree), DHCP lease renewals
(dhclient-script would reconfigure the host's own network: the same), and running services
(there are none in a chroot). The package run is hello: no maintainer-script side effects
(alternatives, units, ldconfig) to explain; tests/root/package_test.py covers those.

Usage: day_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import SOURCE, run_main  # noqa: E402
from package_test import debroot, sh  # noqa: E402

DB = "/var/lib/fimctl/baseline.db"
# What a stock Debian host has beyond minbase and runs daily.
DAY_PACKAGES = ["cron", "logrotate"]
# The package installed and purged during the day: small, no maintainer-script side effects.
PACKAGE = "hello"


class DayRoot:
    """A copy of the debootstrap root, set up as a host with fimctl's package on it."""

    def __init__(self, fimctl, tmp):
        self.dir = os.path.join(tmp, "root")
        sh("cp", "-a", debroot(fimctl), self.dir)
        r = self.dir
        sh("mount", "-t", "proc", "proc", r + "/proc")
        shutil.copy("/etc/resolv.conf", r + "/etc/resolv.conf")  # the mirror, by name
        # The daily apt job sleeps up to 30 minutes first (to spread the mirrors' load).
        with open(r + "/etc/apt/apt.conf.d/10periodic-now", "w") as f:
            f.write('APT::Periodic::RandomSleep "0";\n')
        self.run("apt-get", "update")
        self.run("apt-get", "install", "-y", "--no-install-recommends", *DAY_PACKAGES)
        # fimctl as its package installs it.
        shutil.copy(fimctl, r + "/usr/sbin/fimctl")
        os.makedirs(r + "/etc/fimctl", exist_ok=True)
        shutil.copy(os.path.join(SOURCE, "share", "fimctl.toml"), r + "/etc/fimctl/fimctl.toml")
        shutil.copy(os.path.join(SOURCE, "share", "apt", "99fimctl"), r + "/etc/apt/apt.conf.d/99fimctl")
        os.makedirs(r + "/var/lib/fimctl", mode=0o700, exist_ok=True)
        self.run("/usr/sbin/fimctl", "key", "generate")

    def run(self, *cmd, check=True):
        return sh("chroot", self.dir, *cmd, check=check, timeout=900,
                  env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})

    def fimctl(self, *args):
        """fimctl inside the root, ndjson -> (exit code, records, stderr, seconds)."""
        t0 = time.monotonic()
        p = self.run("/usr/sbin/fimctl", "--db", DB, "--format", "ndjson", *args, check=False)
        secs = time.monotonic() - t0
        return p.returncode, [json.loads(l) for l in p.stdout.splitlines() if l.strip()], p.stderr, secs


def growing(rec):
    """A record of an entry that the growing-log rules decide (tag "logs")."""
    return "logs" in rec.get("tags", [])


def describe(recs):
    """One line per change record: kind, path, changed attributes, package verdict, rule."""
    return "\n  ".join(f"{r['kind']} {r['path']} {[c['attr'] for c in r.get('changes', [])]} "
                       f"{r.get('package', {}).get('verdict', '')} {r.get('package', {}).get('detail', '')} "
                       f"[{r.get('rule', '')}]" for r in recs)


def case_day_of_operation_is_quiet(fimctl, tmp):
    """init, then a day (apt-get update, logrotate -f, run-parts /etc/cron.daily): check
    reports nothing outside the growing-log rules; then apt installs and purges a package:
    check --packages explains every change (verified) except growing logs."""
    root = DayRoot(fimctl, tmp)
    rc, recs, err, init_s = root.fimctl("init")
    assert rc == 0, (rc, err)
    entries = next(r for r in recs if r["type"] == "summary").get("entries")
    rc, recs, err, check_s = root.fimctl("check")
    changes = [r for r in recs if r["type"] == "change"]
    assert rc == 0 and changes == [], f"check right after init: exit {rc}:\n  {describe(changes)}\n{err}"

    root.run("apt-get", "update")
    root.run("logrotate", "-f", "/etc/logrotate.conf")
    root.run("run-parts", "--report", "/etc/cron.daily")
    rc, recs, err, _ = root.fimctl("check")
    changes = [r for r in recs if r["type"] == "change"]
    noise = [r for r in changes if not growing(r)]
    assert noise == [], f"changes outside the growing-log rules after the day:\n  {describe(noise)}"
    assert rc & 8 == 0, (rc, err, [r for r in recs if r["type"] in ("entry_status", "alert")])
    day_logs = sorted(r["path"] for r in changes)

    root.run("apt-get", "install", "-y", PACKAGE)
    root.run("apt-get", "purge", "-y", PACKAGE)
    root.run("/usr/sbin/fimctl", "-q", "apt-hook", "record")  # waits for the hook's detached recorder
    rc, recs, err, pkg_s = root.fimctl("check", "--packages")
    changes = [r for r in recs if r["type"] == "change"]
    unexplained = [r for r in changes if not growing(r) and r.get("package", {}).get("verdict") != "verified"]
    assert unexplained == [], f"changes the package run does not explain:\n  {describe(unexplained)}"
    assert rc & 8 == 0, (rc, err, [r for r in recs if r["type"] in ("entry_status", "alert")])
    assert not any(r["type"] == "alert" and r["code"] == "package_mismatch" for r in recs), recs
    print(f"figures: {entries} entries, init {init_s:.2f} s, check {check_s:.2f} s; growing logs changed "
          f"by the day: {day_logs}; after {PACKAGE} installed and purged: {len(changes)} changes, "
          f"all explained, check --packages {pkg_s:.2f} s:\n  {describe(changes)}")


def case_boot_efi_mount_entered(fimctl, tmp):
    """The EFI system partition is another filesystem mounted at /boot/efi: the default policy
    enters it (cross_fs), so a tampered boot loader there is reported. (A tmpfs stands in for
    the FAT partition; FAT's made-up inode numbers are why the rule leaves inode out.)"""
    tree, db = os.path.join(tmp, "tree"), os.path.join(tmp, "baseline.db")
    os.makedirs(tree + "/boot/efi")
    os.makedirs(tree + "/etc")
    with open(tree + "/boot/vmlinuz", "wb") as f:
        f.write(b"kernel")
    sh("mount", "-t", "tmpfs", "esp", tree + "/boot/efi")
    os.makedirs(tree + "/boot/efi/EFI/debian")
    with open(tree + "/boot/efi/EFI/debian/grubx64.efi", "wb") as f:
        f.write(b"MZ grub")
    base = [fimctl, "--sysroot", tree, "-c", os.path.join(SOURCE, "share", "fimctl.toml"), "--db", db,
            "--keys", db + ".keys", "--unsigned", "--format", "json"]
    sh(*base, "init")
    with open(tree + "/boot/efi/EFI/debian/grubx64.efi", "wb") as f:
        f.write(b"MZ evil")
    p = sh(*base, "check", check=False)
    ch = {r["path"]: r for r in json.loads(p.stdout)["records"] if r["type"] == "change"}
    assert p.returncode == 4 and set(ch) == {"/boot/efi/EFI/debian/grubx64.efi"}, (p.returncode, sorted(ch), p.stderr)
    r = ch["/boot/efi/EFI/debian/grubx64.efi"]
    assert r["severity"] == "high" and "boot" in r["tags"], r


CASES = {
    "day_of_operation_is_quiet": case_day_of_operation_is_quiet,
    "boot_efi_mount_entered": case_boot_efi_mount_entered,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-day.", as_root=True, doc=__doc__))
