#!/usr/bin/env python3
"""Package-aware checks (issue 11) with real packages in a debootstrap root.

A Debian 12 minbase root is made with debootstrap (once, cached under /var/tmp and shared
by the cases under a lock; skipped when the mirror cannot be reached). Each case copies it,
builds two versions of a package 'fimtest', serves them from an apt repository signed with a
key of the test's own over http on 127.0.0.1, and runs apt and fimctl inside the root
(chroot, /proc mounted in a private mount namespace): install 1.0, init, upgrade to 2.0 through
apt with the hook of share/apt, tamper, check --packages, accept --package-verified.

Usage: package_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import fcntl
import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import SOURCE, Skip, run_main  # noqa: E402

MIRROR = os.environ.get("FIMCTL_TEST_MIRROR", "http://deb.debian.org/debian")
CACHE = os.environ.get("FIMCTL_TEST_DEBROOT", "/var/tmp/fimctl-test-debroot")
DB = "/var/lib/fimctl/baseline.db"
# Beyond minbase: python3 compiles .pyc files in maintainer scripts (derived evidence).
ROOT_PACKAGES = ["python3-minimal"]


def sh(*cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-2000:]}{p.stdout[-2000:]}")
    return p


def libs_packages(fimctl):
    """The Debian packages holding the shared libraries fimctl links (for debootstrap --include)."""
    out = sh("ldd", fimctl).stdout
    pkgs = set()
    for line in out.splitlines():
        parts = line.split("=>")
        path = (parts[1] if len(parts) > 1 else parts[0]).split("(")[0].strip()
        if not path.startswith("/"):
            continue
        p = subprocess.run(["dpkg", "-S", os.path.realpath(path)], capture_output=True, text=True)
        if p.returncode != 0:
            p = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True)
        if p.returncode == 0:
            pkgs.add(p.stdout.split(":")[0].split(",")[0].strip())
    return sorted(pkgs)


def debroot(fimctl):
    """The cached minbase root, made once (under a lock: cases run in parallel)."""
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    with open(CACHE + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The plain and the sanitizer builds link different libraries: one root holds both.
        stamp = os.path.join(CACHE, ".fimctl-include")
        have = set(open(stamp).read().split(",")) if os.path.exists(stamp) else set()
        include = set(libs_packages(fimctl)) | set(ROOT_PACKAGES)
        if include <= have:
            return CACHE
        want = ",".join(sorted(include | have - {""}))
        if not shutil.which("debootstrap"):
            raise Skip("debootstrap is not installed")
        shutil.rmtree(CACHE, ignore_errors=True)
        p = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + want, "bookworm", CACHE, MIRROR],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            shutil.rmtree(CACHE, ignore_errors=True)
            raise Skip("debootstrap failed (mirror unreachable?): " + p.stdout[-300:] + p.stderr[-300:])
        open(stamp, "w").write(want)
        return CACHE


def build_deb(tmp, version, files, conffiles=(), name="fimtest", scripts=None, depends=None):
    """A package `name` of `version` holding `files` {path: (content, mode)}, with maintainer
    `scripts` {"postinst": text, ...}."""
    d = os.path.join(tmp, f"{name}-{version}")
    os.makedirs(os.path.join(d, "DEBIAN"))
    for script, text in (scripts or {}).items():
        with open(os.path.join(d, "DEBIAN", script), "w") as f:
            f.write(text)
        os.chmod(os.path.join(d, "DEBIAN", script), 0o755)
    for path, (content, mode) in files.items():
        full = d + path
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(content)
        os.chmod(full, mode)
    with open(os.path.join(d, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {name}\nVersion: {version}\nArchitecture: amd64\nMaintainer: fimctl tests <t@example.org>\n"
                + (f"Depends: {depends}\n" if depends else "") + "Description: a package of fimctl's tests\n")
    if conffiles:
        with open(os.path.join(d, "DEBIAN", "conffiles"), "w") as f:
            f.write("".join(c + "\n" for c in conffiles))
    out = os.path.join(tmp, f"{name}_{version}_amd64.deb")
    sh("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", d, out)
    return out


class Repo:
    """An apt repository (dists/fimtest/main/binary-amd64) signed with a key of the test's own."""

    def __init__(self, tmp, debs):
        self.dir = os.path.join(tmp, "repo")
        self.gnupg = os.path.join(tmp, "gnupg")
        os.makedirs(os.path.join(self.dir, "pool"))
        os.makedirs(self.gnupg, mode=0o700)
        stanzas = []
        for deb in debs:
            name = os.path.basename(deb)
            shutil.copy(deb, os.path.join(self.dir, "pool", name))
            control = sh("dpkg-deb", "-f", deb).stdout.strip()
            data = open(deb, "rb").read()
            stanzas.append(f"{control}\nFilename: pool/{name}\nSize: {len(data)}\n"
                           f"SHA256: {hashlib.sha256(data).hexdigest()}\n")
        packages = "\n".join(stanzas).encode()
        idx = os.path.join(self.dir, "dists", "fimtest", "main", "binary-amd64")
        os.makedirs(idx)
        open(os.path.join(idx, "Packages"), "wb").write(packages)
        release = ("Origin: fimtest\nSuite: fimtest\nCodename: fimtest\nArchitectures: amd64\nComponents: main\n"
                   "Date: Tue, 01 Dec 2026 00:00:00 UTC\nSHA256:\n"
                   f" {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-amd64/Packages\n")
        rel = os.path.join(self.dir, "dists", "fimtest", "Release")
        open(rel, "w").write(release)
        g = ["gpg", "--batch", "--homedir", self.gnupg, "--pinentry-mode", "loopback", "--passphrase", ""]
        sh(*g, "--quick-generate-key", "fimctl test repo <repo@example.org>", "ed25519", "sign", "never")
        sh(*g, "--clearsign", "-o", os.path.join(self.dir, "dists", "fimtest", "InRelease"), rel)
        self.keyring = os.path.join(tmp, "fimtest-archive.gpg")
        with open(self.keyring, "wb") as f:
            f.write(subprocess.run([*g, "--export"], capture_output=True, check=True).stdout)
        self.keyring_asc = os.path.join(tmp, "fimtest-archive.asc")  # as debian-archive-keyring ships them
        with open(self.keyring_asc, "wb") as f:
            f.write(subprocess.run([*g, "--armor", "--export"], capture_output=True, check=True).stdout)
        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass
        handler = functools.partial(Quiet, directory=self.dir)
        self.server = socketserver.TCPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class Root:
    """A copy of the debootstrap root with fimctl, the apt hook and the test repository."""

    def __init__(self, fimctl, tmp, repo, classic=False):
        """classic: like a host from the Debian installer, a one-line sources.list and the
        archive key as /etc/apt/trusted.gpg.d/*.asc (no Signed-By anywhere)."""
        self.dir = os.path.join(tmp, "root")
        self.signed = False
        sh("cp", "-a", debroot(fimctl), self.dir)
        r = self.dir
        shutil.copy(fimctl, r + "/usr/sbin/fimctl")
        shutil.copy(os.path.join(SOURCE, "share", "apt", "99fimctl"), r + "/etc/apt/apt.conf.d/99fimctl")
        if classic:
            for old in os.listdir(r + "/etc/apt/trusted.gpg.d"):  # only the test archive's key
                os.unlink(os.path.join(r + "/etc/apt/trusted.gpg.d", old))
            shutil.copy(repo.keyring_asc, r + "/etc/apt/trusted.gpg.d/fimtest-archive.asc")
            open(r + "/etc/apt/sources.list", "w").write(f"deb http://127.0.0.1:{repo.port}/ fimtest main\n")
        else:
            os.makedirs(r + "/etc/apt/keyrings", exist_ok=True)
            shutil.copy(repo.keyring, r + "/etc/apt/keyrings/fimtest.gpg")
            open(r + "/etc/apt/sources.list", "w").write("")  # only the test's repository, offline
            open(r + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
                f"Types: deb\nURIs: http://127.0.0.1:{repo.port}/\nSuites: fimtest\nComponents: main\n"
                "Signed-By: /etc/apt/keyrings/fimtest.gpg\n")
        os.makedirs(r + "/var/lib/fimctl", exist_ok=True)
        os.chmod(r + "/var/lib/fimctl", 0o700)
        sh("mount", "-t", "proc", "proc", r + "/proc")
        self.run("apt-get", "update")

    def run(self, *cmd, check=True):
        return sh("chroot", self.dir, *cmd, check=check,
                  env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"})

    def fimctl(self, *args):
        unsigned = [] if self.signed else ["--unsigned"]
        p = self.run("/usr/sbin/fimctl", "--db", DB, *unsigned, "--format", "json", *args, check=False)
        doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else None
        return p.returncode, doc, p.stderr

    def install(self, version):
        self.run("apt-get", "install", "-y", "--allow-downgrades", f"fimtest={version}")

    def write(self, path, content, mode=None):
        with open(self.dir + path, "wb") as f:
            f.write(content)
        if mode is not None:
            os.chmod(self.dir + path, mode)


V1 = {"/usr/bin/fimtest-tool": (b"#!/bin/sh\necho 1.0\n", 0o755),
      "/usr/lib/fimtest/data": (b"data 1.0\n", 0o644),
      "/usr/lib/fimtest/steady": (b"the same in both versions\n", 0o755),
      "/usr/lib/fimtest/old": (b"dropped in 2.0\n", 0o644),
      "/etc/fimtest.conf": (b"setting=1\n", 0o644)}
V2 = {"/usr/bin/fimtest-tool": (b"#!/bin/sh\necho 2.0\n", 0o755),
      "/usr/lib/fimtest/data": (b"data 2.0\n", 0o644),
      "/usr/lib/fimtest/steady": (b"the same in both versions\n", 0o755),
      "/usr/lib/fimtest/new": (b"new in 2.0\n", 0o644),
      "/etc/fimtest.conf": (b"setting=2\n", 0o644)}
ROOTS = ["/usr/bin", "/usr/lib/fimtest", "/etc/fimtest.conf"]


def setup(fimctl, tmp):
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    repo = Repo(tmp, debs)
    root = Root(fimctl, tmp, repo)
    root.install("1.0")
    rc, doc, err = root.fimctl("init", *ROOTS)
    assert rc == 0, (rc, err)
    return repo, root


def by_path(doc):
    return {r["path"]: r for r in doc["records"] if r["type"] == "change"}


def case_upgrade_verified_and_grouped(fimctl, tmp):
    """An apt upgrade's changes are verified against the signed .deb and grouped under the
    run the hook recorded; tampered, unpackaged and dropped files are not; accept
    --package-verified takes exactly the verified ones and journals their evidence."""
    repo, root = setup(fimctl, tmp)
    # The same root checked from the host with --sysroot: dpkg's and apt's records are the root's.
    host_db = os.path.join(tmp, "host", "baseline.db")
    os.makedirs(os.path.dirname(host_db), mode=0o700)
    host = [fimctl, "--sysroot", root.dir, "--db", host_db, "--unsigned", "--format", "json"]
    sh(*host, "init", *ROOTS)
    root.install("2.0")
    root.write("/usr/bin/dirname", b"#!/bin/sh\necho trojan\n")        # coreutils, no .deb here: dpkg's MD5
    os.chmod(root.dir + "/usr/lib/fimtest/steady", 0o4755)               # the package's content, set-uid
    root.write("/usr/bin/dropper", b"#!/bin/sh\n", 0o755)                # no package
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 1 | 2 | 4, (rc, err)
    ch = by_path(doc)
    tool = ch["/usr/bin/fimtest-tool"]["package"]
    assert tool["verdict"] == "verified" and tool["evidence"] == "deb-sha256", tool
    assert tool["name"] == "fimtest" and tool["version"] == "2.0", tool
    assert tool.get("upgrade", "").startswith("apt run "), tool   # grouped under the hook's record
    for p in ("/usr/lib/fimtest/new", "/usr/lib/fimtest/data", "/etc/fimtest.conf"):
        assert ch[p]["package"]["verdict"] == "verified", (p, ch[p]["package"])
    old = ch["/usr/lib/fimtest/old"]["package"]  # dropped by 2.0: the signed .deb of 1.0 held it
    assert old["verdict"] == "verified" and old["evidence"] == "deb-sha256" and old["version"] == "1.0", old
    assert "removed by an apt run" in old["detail"], old
    d = ch["/usr/bin/dirname"]["package"]
    assert d["verdict"] == "mismatch" and d["evidence"] == "dpkg-md5" and d["name"] == "coreutils", d
    s = ch["/usr/lib/fimtest/steady"]["package"]
    assert s["verdict"] == "mismatch" and s["evidence"] == "deb-sha256" and "4755" in s["detail"], s
    assert ch["/usr/bin/dropper"]["package"]["verdict"] == "unpackaged", ch["/usr/bin/dropper"]
    assert doc["summary"]["packages"]["mismatch"] == 2, doc["summary"]
    assert any(r["type"] == "alert" and r["code"] == "package_mismatch" for r in doc["records"])
    p = sh(*host, "check", "--packages", check=False)
    hch = by_path(json.loads(p.stdout))
    assert hch["/usr/bin/fimtest-tool"]["package"]["evidence"] == "deb-sha256", hch["/usr/bin/fimtest-tool"]
    assert hch["/usr/bin/dirname"]["package"]["verdict"] == "mismatch", hch["/usr/bin/dirname"]
    assert hch.keys() == ch.keys(), (hch.keys(), ch.keys())
    # The plain report: the summary says what needs reading; the run's verified changes are one
    # line for the package at the end (its tampered set-uid file is not among them: listed in
    # full); the mismatches in full.
    plain = root.run("/usr/sbin/fimctl", "--db", DB, "--unsigned", "check", "--packages", check=False).stdout
    assert re.search(r"\nsummary: \d+ unexplained changes \(\w+\), \d+ verified by apt( \(\d+ only by dpkg's records\))?\n",
                     plain), plain
    assert re.search(r"\n  fimtest \S+ -> 2\.0: \d+ files, \d+ verified \([a-z0-9, -]*deb-sha256[a-z0-9, -]*\), "
                     r"\d+ not \(listed above\)\n", plain), plain
    assert "\nadded: /usr/lib/fimtest/new " not in plain and "\nchanged: /usr/bin/fimtest-tool " not in plain, plain
    assert "package: mismatch coreutils" in plain, plain
    assert "\nchanged: /usr/lib/fimtest/steady" in plain, plain

    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "fimtest 2.0 upgrade")
    assert rc == 0, (rc, err)
    assert any(r["type"] == "alert" and r["code"] == "not_accepted" for r in doc["records"]), doc
    rc, doc, err = root.fimctl("check", "--packages")
    # Left: the tampered and the unpackaged files, and the directories they are in (a
    # directory is only as verified as what changed inside it).
    left = set(by_path(doc))
    assert left == {"/usr/bin/dirname", "/usr/lib/fimtest/steady", "/usr/bin/dropper", "/usr/bin", "/usr/lib/fimtest"}, left
    log = root.run("/usr/sbin/fimctl", "--db", DB, "--unsigned", "log", check=False).stdout
    assert "fimtest 2.0 upgrade (fimtest 2.0 amd64, deb-sha256)" in log, log


def case_planted_deb_refused(fimctl, tmp):
    """A trojaned binary with a matching .deb planted in apt's cache is not vouched for: the
    planted .deb does not match the signed index, and dpkg's MD5 does not match either."""
    repo, root = setup(fimctl, tmp)
    trojan = b"#!/bin/sh\necho owned\n"
    root.write("/usr/bin/fimtest-tool", trojan)
    os.makedirs(os.path.join(tmp, "fake"))
    fake = build_deb(os.path.join(tmp, "fake"), "1.0", {**V1, "/usr/bin/fimtest-tool": (trojan, 0o755)},
                     ["/etc/fimtest.conf"])
    cached = root.dir + "/var/cache/apt/archives/fimtest_1.0_amd64.deb"
    assert os.path.exists(cached), os.listdir(root.dir + "/var/cache/apt/archives")
    shutil.copy(fake, cached)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 4, (rc, err)
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "mismatch" and n["evidence"] == "dpkg-md5", n
    assert "does not match the signed index" in n["detail"] or "MD5" in n["detail"], n
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--weak", "--reason", "x")
    assert rc == 16 and "nothing was accepted" in err, (rc, err)
    # An index edited to list the fake .deb no longer matches its signed InRelease.
    lists = root.dir + "/var/lib/apt/lists"
    for name in os.listdir(lists):
        if name.endswith("_Packages"):
            text = open(os.path.join(lists, name)).read()
            good = hashlib.sha256(open(root.dir + "/var/cache/apt/archives/fimtest_1.0_amd64.deb", "rb").read())
            edited = re.sub(r"(Version: 1\.0\n(?:.*\n)*?SHA256: )[0-9a-f]{64}", lambda m: m.group(1) + good.hexdigest(),
                            text)
            assert edited != text, "the index lists fimtest 1.0 with a SHA256"
            open(os.path.join(lists, name), "w").write(edited)
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "mismatch" and n["evidence"] == "dpkg-md5", n


def case_weak_after_clean(fimctl, tmp):
    """Without the .debs (apt-get clean) the evidence falls back to dpkg's MD5s, labelled:
    accept --package-verified takes nothing until --weak says so; a file the upgrade dropped
    is verified only by the hook's record of the old file list (dpkg-list, weak)."""
    repo, root = setup(fimctl, tmp)
    root.install("2.0")
    root.run("apt-get", "clean")
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "verified" and n["evidence"] == "dpkg-md5", n
    assert "weak" in n["detail"], n
    gone = by_path(doc)["/usr/lib/fimtest/old"]["package"]  # 1.0's list, as the hook kept it
    assert gone["verdict"] == "verified" and gone["evidence"] == "dpkg-list", gone
    # A local mirror (a copy of the repository inside the root) gives the .debs back.
    shutil.copytree(repo.dir, root.dir + "/srv/mirror")
    rc, doc, err = root.fimctl("check", "--packages", "--package-mirror", "/srv/mirror")
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "verified" and n["evidence"] == "deb-sha256", n
    shutil.rmtree(root.dir + "/srv/mirror")
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "upgrade")
    assert rc == 16 and "--weak" in err, (rc, err)
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--weak", "--reason", "upgrade")
    assert rc == 0, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    left = by_path(doc)
    # The file 2.0 dropped: without 1.0's .deb, the apt hook's record of 1.0's file list says the
    # run removed it (dpkg-list, weak: --weak took it), and so the directory goes too.
    assert set(left) == set(), left.keys()


def case_auto_accept_takes_the_run_not_the_dropper(fimctl, tmp):
    """[options] auto_accept = "package-verified": the scheduled check accepts by itself what
    the recorded apt run's signed packages vouch for, journalled with the run as reason, and
    reports only the rest: the file an intruder dropped during the upgrade, and the directory
    it is in. Without the option nothing is accepted."""
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    root.run("/usr/sbin/fimctl", "key", "generate")
    root.signed = True
    root.install("1.0")
    off, on = "/etc/fimctl/off.toml", "/etc/fimctl/on.toml"  # the same policy (the option is not in its digest)
    os.makedirs(root.dir + "/etc/fimctl", exist_ok=True)
    root.write(off, b'version = 1\n[options]\nauto_accept = "off"\n')
    root.write(on, b'version = 1\n[options]\nauto_accept = "package-verified"\n')
    rc, doc, err = root.fimctl("-c", off, "init", *ROOTS)
    assert rc == 0, (rc, err)
    root.install("2.0")
    root.write("/usr/lib/fimtest/dropper", b"#!/bin/sh\n", 0o755)
    rc, doc, err = root.fimctl("-c", off, "check", "--packages")  # off: everything reported, nothing accepted
    assert rc & 4 and "/usr/lib/fimtest/data" in by_path(doc), (rc, err)
    rc, doc, err = root.fimctl("-c", on, "check", "--packages")
    left = by_path(doc)
    assert set(left) == {"/usr/lib/fimtest/dropper", "/usr/lib/fimtest"}, (left.keys(), err, doc["records"])
    assert left["/usr/lib/fimtest/dropper"]["package"]["verdict"] == "unpackaged", left
    assert any(r["type"] == "alert" and r["code"] == "auto_accepted" for r in doc["records"]), doc["records"]
    assert rc & 1, rc
    log = root.run("/usr/sbin/fimctl", "--db", DB, "log", check=False).stdout
    assert 'auto_accept = "package-verified" (policy): verified by their packages after apt run' in log, log
    assert "/usr/lib/fimtest/dropper" not in log, log


LIBDIR = "/usr/lib/x86_64-linux-gnu"
PYDIR = "/usr/lib/python3/dist-packages/fimtest_py"


def shared_object(tmp, version):
    """A real ELF shared object with a SONAME, so that ldconfig puts it in its cache."""
    src = os.path.join(tmp, f"fimtest-{version}.c")
    out = os.path.join(tmp, f"libfimtest.so.1-{version}")
    open(src, "w").write(f'const char *fimtest_version(void) {{ return "{version}"; }}\n')
    sh("cc", "-shared", "-fPIC", "-Wl,-soname,libfimtest.so.1", "-o", out, src)
    return open(out, "rb").read()


def upgrade_packages(tmp, version, drop):
    """Four packages of `version` the way Debian's are made: a tool (with a file that 2.0
    drops), a python module compiled by its postinst (and cleaned by its prerm, as
    py3compile/py3clean do), a shared library whose postinst runs ldconfig, and an agent
    its postinst makes set-gid (as openssh-client's does for ssh-agent)."""
    body = f"#!/bin/sh\necho fimtest {version}\n".encode() + bytes(range(256)) * 8
    tool = {"/usr/bin/fimtest-tool": (body, 0o755),
            f"/usr/share/doc/fimtest-tool/copyright": (f"copyright {version}\n".encode(), 0o644),
            f"/usr/share/fimtest-tool/{'old' if drop else 'new'}.dat": (b"data\n", 0o644)}
    py = {f"{PYDIR}/__init__.py": (b"", 0o644),
          f"{PYDIR}/mod.py": (f"VERSION = {version!r}\n\ndef f(x):\n    return x * 2\n".encode(), 0o644)}
    compile_py = f"#!/bin/sh\nset -e\npython3 -B -m compileall -q {PYDIR}\n"
    clean_py = f"#!/bin/sh\nrm -rf {PYDIR}/__pycache__\n"
    lib = {f"{LIBDIR}/libfimtest.so.1": (shared_object(tmp, version), 0o644)}
    agent = {"/usr/bin/fimtest-agent": (f"#!/bin/sh\necho agent {version}\n".encode(), 0o755)}
    make_sgid = "#!/bin/sh\nset -e\nchgrp mail /usr/bin/fimtest-agent\nchmod 2755 /usr/bin/fimtest-agent\n"
    return [build_deb(tmp, version, tool, name="fimtest-tool"),
            build_deb(tmp, version, py, name="fimtest-py", depends="python3-minimal",
                      scripts={"postinst": compile_py, "prerm": clean_py}),
            build_deb(tmp, version, lib, name="fimtest-lib", scripts={"postinst": "#!/bin/sh\nldconfig\n"}),
            build_deb(tmp, version, agent, name="fimtest-agent", scripts={"postinst": make_sgid})]


def case_real_upgrade_zero_touch(fimctl, tmp):
    """The acceptance run of a real upgrade on a host as the Debian installer leaves it: a
    one-line sources.list, the archive key in trusted.gpg.d/*.asc, packages installed and
    upgraded with `apt` (which deletes the .debs it downloaded), .pyc files compiled and
    ld.so.cache rebuilt by maintainer scripts, a set-gid bit set by a postinst. Every change
    the upgrade made is verified by strong evidence (deb-sha256, or derived for what scripts
    regenerate), accept --package-verified without --weak leaves a clean check; then a
    trojaned byte in an upgraded binary, a set-uid bit on another and a file dropped into
    /usr/bin are each reported and not accepted."""
    names = ["fimtest-tool", "fimtest-py", "fimtest-lib", "fimtest-agent"]
    os.makedirs(os.path.join(tmp, "v1"))
    os.makedirs(os.path.join(tmp, "v2"))
    debs = upgrade_packages(os.path.join(tmp, "v1"), "1.0", True) + upgrade_packages(os.path.join(tmp, "v2"), "2.0", False)
    repo = Repo(tmp, debs)
    root = Root(fimctl, tmp, repo, classic=True)
    root.run("/usr/sbin/fimctl", "key", "generate")
    root.signed = True
    root.run("apt", "install", "-y", *[f"{n}=1.0" for n in names])
    assert os.stat(root.dir + "/usr/bin/fimtest-agent").st_mode & 0o7777 == 0o2755
    assert os.path.exists(root.dir + PYDIR + "/__pycache__")
    roots = ["/usr/bin", "/usr/sbin", "/usr/lib", "/usr/share/doc", "/usr/share/fimtest-tool", "/etc"]
    rc, doc, err = root.fimctl("init", *roots)
    assert rc == 0, (rc, err)

    root.run("apt", "upgrade", "-y")
    root.run("/usr/sbin/fimctl", "-q", "apt-hook", "record")  # waits for the hook's detached recorder
    left_debs = [n for n in os.listdir(root.dir + "/var/cache/apt/archives") if n.startswith("fimtest")]
    assert left_debs == [], left_debs  # apt deleted what it downloaded: the point of the hook
    started = time.monotonic()
    rc, doc, err = root.fimctl("check", "--packages")
    check_seconds = time.monotonic() - started
    assert rc & 7, (rc, err)
    ch = by_path(doc)
    weak = {p: r["package"] for p, r in ch.items()
            if r["package"]["verdict"] != "verified" or r["package"]["evidence"] not in ("deb-sha256", "derived")}
    assert weak == {}, weak
    derived = {p for p, r in ch.items() if r["package"]["evidence"] == "derived"}
    assert "/etc/ld.so.cache" in derived, ch.get("/etc/ld.so.cache")
    assert any(p.endswith(".pyc") for p in derived), derived
    # ... and the directories holding them (weighed by their weakest changed entry).
    assert all(p.endswith(".pyc") or "__pycache__" in p or p in ("/etc/ld.so.cache", "/etc", PYDIR) for p in derived), derived
    assert ch["/usr/bin/fimtest-tool"]["package"]["evidence"] == "deb-sha256", ch["/usr/bin/fimtest-tool"]
    assert ch["/usr/share/fimtest-tool/old.dat"]["kind"] == "removed", ch["/usr/share/fimtest-tool/old.dat"]
    agent = ch["/usr/bin/fimtest-agent"]["package"]  # set-gid as the baseline accepted it: no false mismatch
    assert agent["verdict"] == "verified" and "baseline accepted" in agent["detail"], agent
    assert not any(r["type"] == "alert" and r["code"] == "package_mismatch" for r in doc["records"]), doc
    changes, verified = len(ch), sum(1 for r in ch.values() if r["package"]["verdict"] == "verified")

    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "fimtest 2.0 upgrade")
    assert rc == 0, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 0 and by_path(doc) == {}, (rc, by_path(doc), err)

    # The intruder after the upgrade: one byte of an upgraded binary, a set-uid bit, a dropper.
    tool = bytearray(open(root.dir + "/usr/bin/fimtest-tool", "rb").read())
    tool[40] ^= 1
    root.write("/usr/bin/fimtest-tool", bytes(tool))
    os.chmod(root.dir + LIBDIR + "/libfimtest.so.1", 0o4644)
    root.write("/usr/bin/fimtest-dropper", b"#!/bin/sh\n", 0o755)
    rc, doc, err = root.fimctl("check", "--packages")
    ch = by_path(doc)
    assert ch["/usr/bin/fimtest-tool"]["package"]["verdict"] == "mismatch", ch["/usr/bin/fimtest-tool"]
    assert ch["/usr/bin/fimtest-tool"]["package"]["evidence"] == "deb-sha256", ch["/usr/bin/fimtest-tool"]
    assert ch[LIBDIR + "/libfimtest.so.1"]["package"]["verdict"] == "mismatch", ch[LIBDIR + "/libfimtest.so.1"]
    assert ch["/usr/bin/fimtest-dropper"]["package"]["verdict"] == "unpackaged", ch["/usr/bin/fimtest-dropper"]
    assert ch["/usr/bin"]["package"]["verdict"] != "verified", ch["/usr/bin"]
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "not this")
    assert rc == 16 and "nothing was accepted" in err, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    assert {"/usr/bin/fimtest-tool", LIBDIR + "/libfimtest.so.1", "/usr/bin/fimtest-dropper"} <= set(by_path(doc)), doc
    print(f"figures: {len(names)} packages upgraded, {changes} changes, {verified} verified, "
          f"{changes - verified} left for a human, check --packages {check_seconds:.2f} s")


CASES = {
    "upgrade_verified_and_grouped": case_upgrade_verified_and_grouped,
    "planted_deb_refused": case_planted_deb_refused,
    "weak_after_clean": case_weak_after_clean,
    "auto_accept_takes_the_run_not_the_dropper": case_auto_accept_takes_the_run_not_the_dropper,
    "real_upgrade_zero_touch": case_real_upgrade_zero_touch,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-package.", as_root=True, doc=__doc__))
