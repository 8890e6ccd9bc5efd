#!/usr/bin/env python3
"""The default policy (share/fimctl.toml) on a host-shaped tree seen through --sysroot: what it
covers, with which labels, and that the exclusions a stock host needs to stay silent open no
hole for an intruder (issue 20). tests/root/day_test.py measures the silence in a real root.

Usage: default_policy_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail. Every case works in its own temporary directory.
"""
import hashlib
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import POLICY, Ctx as CaseCtx, Failure, expect, run_fimctl, run_main  # noqa: E402

KEY = b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n-----END PRIVATE KEY-----\n"

# A host as Debian 12 lays it out, in miniature: path -> content (bytes), or ("link", target).
HOST = {
    "/etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
    "/etc/hostname": b"host\n",
    "/etc/resolv.conf": b"nameserver 192.0.2.1\n",
    "/etc/resolvconf/resolv.conf.d/head": b"# resolvconf's own\n",
    "/etc/mtab": ("link", "../proc/self/mounts"),
    "/etc/adjtime": b"0.0 1764806400 0.000000\n1764806400\nUTC\n",
    "/etc/machine-id": b"0123456789abcdef0123456789abcdef\n",
    "/etc/.updated": b"TIMESTAMP_NSEC=1\n",
    "/etc/ld.so.cache": b"glibc-ld.so.cache1.1",
    "/etc/profile": b"PATH=/usr/bin:/bin\n",
    "/etc/profile.d/bash_completion.sh": b"# completion\n",
    "/etc/bash.bashrc": b"PS1='\\h:\\w\\$ '\n",
    "/etc/environment": b"",
    "/etc/cron.d/e2scrub_all": b"10 3 * * 0 root e2scrub_all\n",
    "/etc/systemd/system/multi-user.target.wants/cron.service": ("link", "/lib/systemd/system/cron.service"),
    "/etc/fimctl/fimctl.toml": b"version = 1\n",
    "/etc/fimctl/keys/signing.pub": b"-----BEGIN PUBLIC KEY-----\n",
    "/etc/fimctl/keys/signing.key": KEY,
    "/boot/vmlinuz-6.1.0-28-amd64": b"\x4d\x5a" + b"kernel" * 100,
    "/boot/initrd.img-6.1.0-28-amd64": b"initramfs",
    "/boot/grub/grub.cfg": b"menuentry 'Debian' {}\n",
    "/boot/grub/grubenv": b"# GRUB Environment Block\n" + b"#" * 999,
    "/root/.bashrc": b"# ~/.bashrc\n",
    "/root/.profile": b"# ~/.profile\n",
    "/var/spool/cron/crontabs/.placeholder": b"",
    "/var/log/wtmp": b"",
    "/usr/bin/true": b"\x7fELF",
    "/usr/lib/systemd/system/cron.service": b"[Service]\nExecStart=/usr/sbin/cron -f\n",
}


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.db = os.path.join(tmp, "db", "baseline.db")
        os.makedirs(os.path.dirname(self.db))
        for path, what in HOST.items():
            full = self.tree + path
            os.makedirs(os.path.dirname(full), exist_ok=True)
            if isinstance(what, tuple):
                os.symlink(what[1], full)
            else:
                self.write(path, what)
        os.chmod(self.tree + "/etc/fimctl/keys/signing.key", 0o600)
        os.symlink("usr/lib", self.tree + "/lib")  # merged /usr

    def write(self, path, data, append=False):
        with open(self.tree + path, "ab" if append else "wb") as f:
            f.write(data)

    def run(self, *args, fmt="json"):
        return run_fimctl(self.fimctl, "--sysroot", self.tree, *args, config=POLICY, db=self.db, fmt=fmt)

    def check(self):
        """check -> (exit code, path -> change record, stdout)."""
        r = self.run("check")
        doc = r.json()
        if doc is None:
            raise Failure(f"check: exit {r.rc}, no report: {r.stderr}")
        return r.rc, {c["path"]: c for c in doc["records"] if c["type"] == "change"}, r.stdout


def init_clean(ctx):
    r = ctx.run("init")
    expect(r.rc == 0, f"init: exit {r.rc}: {r.stderr}")
    rc, ch, _ = ctx.check()
    expect(rc == 0 and ch == {}, f"check right after init: exit {rc}: {sorted(ch)}")


def case_default_policy_covers_the_host(ctx):
    """The walk roots of the default policy name /boot, /etc, root's shell start-up files and
    /var/spool/cron; each part of the host is labelled by its own rule."""
    r = run_fimctl(ctx.fimctl, "config", "check", config=POLICY, fmt="plain")
    expect(r.rc == 0, f"config check: {r.rc} {r.stderr}")
    for root in ("/boot", "/etc", "/root/.bashrc", "/root/.profile", "/root/.ssh", "/var/spool/cron", "/usr/lib"):
        expect(f" {root}\n" in r.stdout or f" {root} " in r.stdout or f" {root}," in r.stdout,
               f"root {root} missing: {r.stdout}")
    init_clean(ctx)
    labels = {
        "/etc/hostname": ("medium", "etc"),
        "/etc/cron.d/e2scrub_all": ("high", "cron"),
        "/etc/profile": ("high", "shell"),
        "/etc/profile.d/bash_completion.sh": ("high", "shell"),
        "/etc/bash.bashrc": ("high", "shell"),
        "/etc/environment": ("high", "shell"),
        "/root/.bashrc": ("high", "shell"),
        "/root/.profile": ("high", "shell"),
        "/etc/systemd/system/multi-user.target.wants/cron.service": ("high", "systemd"),
        "/usr/lib/systemd/system/cron.service": ("high", "systemd"),
        "/etc/fimctl/fimctl.toml": ("critical", "fimctl"),
        "/etc/fimctl/keys/signing.pub": ("critical", "fimctl"),
        "/boot/vmlinuz-6.1.0-28-amd64": ("high", "boot"),
        "/boot/grub/grub.cfg": ("high", "boot"),
        "/var/spool/cron/crontabs/.placeholder": ("high", "cron"),
        "/etc/passwd": ("critical", "accounts"),
    }
    for path in labels:  # a change of each, to read its labels off the report
        ctx.write(path, b"#", append=True) if not os.path.islink(ctx.tree + path) else None
    os.unlink(ctx.tree + "/etc/systemd/system/multi-user.target.wants/cron.service")
    os.symlink("/tmp/x.service", ctx.tree + "/etc/systemd/system/multi-user.target.wants/cron.service")
    rc, ch, _ = ctx.check()
    for path, (severity, tag) in labels.items():
        expect(path in ch, f"{path}: not reported; reported: {sorted(ch)}")
        expect(ch[path]["severity"] == severity and tag in ch[path]["tags"],
               f"{path}: {ch[path]['severity']} {ch[path]['tags']}, want {severity} and tag {tag}")


def rewrite(ctx, path, data):
    """A new file renamed over path, as dhclient-script and hwclock write theirs."""
    ctx.write(path + ".new", data)
    os.rename(ctx.tree + path + ".new", ctx.tree + path)


def case_host_rewrites_are_quiet(ctx):
    """What a stock host rewrites by itself is not reported: resolv.conf renewed (a new file,
    the same servers), adjtime at shutdown, a machine id mounted at boot, /etc/.updated,
    GRUB's environment block written at boot."""
    init_clean(ctx)
    rewrite(ctx, "/etc/resolv.conf", HOST["/etc/resolv.conf"])
    rewrite(ctx, "/etc/adjtime", b"0.5 1764892800 0.000000\n1764892800\nUTC\n")
    rewrite(ctx, "/etc/machine-id", b"fedcba9876543210fedcba9876543210\n")
    rewrite(ctx, "/etc/.updated", b"TIMESTAMP_NSEC=2\n")
    ctx.write("/boot/grub/grubenv", b"# GRUB Environment Block\nrecordfail=1\n" + b"#" * 987)
    rc, ch, _ = ctx.check()
    expect(rc == 0 and ch == {}, f"exit {rc}: {sorted(ch)}")


def case_intruder_persistence_reported(ctx):
    """The intruder's persistence, each reported under the default policy: a file planted in
    /etc/cron.d, /etc/systemd/system and /etc/profile.d, a line appended to /root/.bashrc, the
    kernel's content replaced (same size, times put back), a crontab, a unit below /usr/lib,
    and the neighbours of every exclusion: resolv.conf's servers, a file beside it, resolvconf's
    own files, mtab made a regular file; the machine id made writable."""
    init_clean(ctx)
    ctx.write("/etc/cron.d/backdoor", b"* * * * * root /tmp/.x\n")
    ctx.write("/etc/systemd/system/backdoor.service", b"[Service]\nExecStart=/tmp/.x\n")
    ctx.write("/etc/profile.d/zz.sh", b"/tmp/.x &\n")
    ctx.write("/root/.bashrc", b"/tmp/.x &\n", append=True)
    kernel = ctx.tree + "/boot/vmlinuz-6.1.0-28-amd64"
    st = os.stat(kernel)
    ctx.write("/boot/vmlinuz-6.1.0-28-amd64", b"\x4d\x5a" + b"KERNEL" * 100)
    os.utime(kernel, ns=(st.st_atime_ns, st.st_mtime_ns))
    ctx.write("/var/spool/cron/crontabs/root", b"* * * * * /tmp/.x\n")
    ctx.write("/usr/lib/systemd/system/backdoor.service", b"[Service]\nExecStart=/tmp/.x\n")
    rewrite(ctx, "/etc/resolv.conf", b"nameserver 203.0.113.66\n")
    ctx.write("/etc/resolv.conf.d", b"nameserver 203.0.113.66\n")
    ctx.write("/etc/resolvconf/resolv.conf.d/head", b"nameserver 203.0.113.66\n")
    os.unlink(ctx.tree + "/etc/mtab")
    ctx.write("/etc/mtab", b"/dev/sda1 / ext4 rw 0 0\n")
    os.chmod(ctx.tree + "/etc/machine-id", 0o666)
    rc, ch, _ = ctx.check()
    want = {"/etc/cron.d/backdoor": "added", "/etc/systemd/system/backdoor.service": "added",
            "/etc/profile.d/zz.sh": "added", "/root/.bashrc": "changed",
            "/boot/vmlinuz-6.1.0-28-amd64": "changed", "/var/spool/cron/crontabs/root": "added",
            "/usr/lib/systemd/system/backdoor.service": "added", "/etc/resolv.conf": "changed",
            "/etc/resolv.conf.d": "added", "/etc/resolvconf/resolv.conf.d/head": "changed",
            "/etc/mtab": "removed", "/etc/machine-id": "changed"}
    for path, kind in want.items():
        expect(path in ch and ch[path]["kind"] == kind,
               f"{path}: {ch.get(path, {}).get('kind', 'not reported')}, want {kind}; reported: {sorted(ch)}")
    attrs = {c["attr"] for c in ch["/boot/vmlinuz-6.1.0-28-amd64"]["changes"]}
    expect("sha256" in attrs and "mtime" not in attrs, f"kernel: {attrs}")
    expect({c["attr"] for c in ch["/etc/resolv.conf"]["changes"]} == {"sha256"}, ch["/etc/resolv.conf"])
    expect(ch["/etc/resolv.conf"]["severity"] == "high", ch["/etc/resolv.conf"])
    expect(rc & (1 | 2 | 4) == 7, f"exit {rc}")


def case_private_key_digest_never_recorded(ctx):
    """The signing key's digest is in neither the baseline nor any report (a mailed report
    would carry a fingerprint of the secret); replacing the key is still reported."""
    init_clean(ctx)
    old = hashlib.sha256(KEY).digest()
    con = sqlite3.connect(f"file:{ctx.db}?mode=ro&immutable=1", uri=True)
    try:
        row = con.execute("SELECT sha256 FROM entries WHERE path = ?",
                          (b"/etc/fimctl/keys/signing.key",)).fetchone()
    finally:
        con.close()
    expect(row is not None and row[0] is None, f"the private key's baseline row: {row}")
    with open(ctx.db, "rb") as f:
        expect(old not in f.read(), "the key's digest is in the baseline file")
    new = KEY.replace(b"AAAA", b"BBBB", 1)
    ctx.write("/etc/fimctl/keys/signing.key", new)
    rc, ch, out = ctx.check()
    expect("/etc/fimctl/keys/signing.key" in ch, f"a replaced key is not reported: {sorted(ch)}")
    expect(ch["/etc/fimctl/keys/signing.key"]["severity"] == "critical", ch["/etc/fimctl/keys/signing.key"])
    plain = ctx.run("check", fmt="plain").stdout
    for d in (old, hashlib.sha256(new).digest()):
        expect(d.hex() not in out and d.hex()[:8] not in plain, "a digest of the key is in a report")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-default-policy-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
