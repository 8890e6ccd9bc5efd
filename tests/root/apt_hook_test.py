#!/usr/bin/env python3
"""The apt hook's records of .debs (issue 19, items 4 and 5) in a debootstrap root.

`apt` (not apt-get) deletes the .debs it installed. The hook of share/apt/99fimctl
(DPkg::Pre-Install-Pkgs, `fimctl apt-hook pre-install`) verifies each .deb against the signed
index before dpkg runs and keeps what it holds in state.db, signed with the host key, plus
dpkg's file list of the version it replaces. These cases upgrade the package of
package_test.py with `apt` and check what check --packages makes of it: deb-sha256 without the
.deb, a forged record refused, unsigned records weak, a dropped file verified by the recorded
list, and apt never failing because of the hook.

Usage: apt_hook_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import os
import re
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from fimtest import run_main  # noqa: E402
from package_test import ROOTS, V1, V2, Repo, Root, build_deb, by_path  # noqa: E402

ARCHIVES = "/var/cache/apt/archives"
STATE = "/var/lib/fimctl/state.db"


def apt(root, *args):
    """`apt` ARGS, then the hook's detached recorder waited for (it holds the spool's lock)."""
    p = root.run("apt", *args)
    root.run("/usr/sbin/fimctl", "-q", "apt-hook", "record")
    return p


def setup(fimctl, tmp, key=True, clean=False):
    """fimtest 1.0 installed with apt-get, a baseline, then (clean: the cached .debs deleted)
    2.0 installed with `apt`, which deletes what it downloaded."""
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    if key:
        root.run("/usr/sbin/fimctl", "key", "generate")
    root.install("1.0")
    rc, doc, err = root.fimctl("init", *ROOTS)
    assert rc == 0, (rc, err)
    if clean:
        root.run("apt-get", "clean")
    p = apt(root, "install", "-y", "fimtest=2.0")
    assert "fimctl: apt hook:" not in p.stderr, p.stderr   # -q: silent unless something failed
    cached = os.listdir(root.dir + ARCHIVES)
    assert not any(n.startswith("fimtest_2.0") for n in cached), cached   # apt deleted it
    return root


def hook_rows(root):
    db = sqlite3.connect(root.dir + STATE)
    try:
        return db.execute("SELECT name, version, arch, body, key_id, signature FROM hook_records").fetchall()
    finally:
        db.close()


def case_upgrade_with_apt_deb_deleted_still_deb_sha256(fimctl, tmp):
    """After `apt` deleted fimtest 2.0's .deb, its files are still verified with deb-sha256
    evidence: the signed record the hook made of that .deb before dpkg ran. The hook got
    apt's protocol 3 (the configuration's tool options match its first word)."""
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    # A second hook with the same first word: what apt sends the fimctl hook, kept.
    open(root.dir + "/etc/apt/apt.conf.d/98capture", "w").write(
        'DPkg::Pre-Install-Pkgs { "fimctl_apt_hook=3 ; cat > /tmp/hook-input"; };\n')
    root.run("/usr/sbin/fimctl", "key", "generate")
    root.install("1.0")
    rc, doc, err = root.fimctl("init", *ROOTS)
    assert rc == 0, (rc, err)
    apt(root, "install", "-y", "fimtest=2.0")
    text = open(root.dir + "/tmp/hook-input").read()
    assert text.startswith("VERSION 3\n"), text[:200]
    assert re.search(r"^fimtest 1\.0 amd64 \S+ < 2\.0 amd64 \S+ /var/cache/apt/archives/fimtest_2\.0_amd64\.deb$",
                     text, re.M), text[-500:]
    assert not os.path.exists(root.dir + ARCHIVES + "/fimtest_2.0_amd64.deb")
    rows = {(r[0], r[1], r[2]): r for r in hook_rows(root)}
    assert set(rows) == {("fimtest", "1.0", "amd64"), ("fimtest", "2.0", "amd64")}, rows.keys()  # both apt runs
    assert all(r[4] and r[5] for r in rows.values()), rows   # signed
    rc, doc, err = root.fimctl("check", "--packages")
    ch = by_path(doc)
    for p in ("/usr/bin/fimtest-tool", "/usr/lib/fimtest/data", "/usr/lib/fimtest/new", "/etc/fimtest.conf"):
        n = ch[p]["package"]
        assert n["verdict"] == "verified" and n["evidence"] == "deb-sha256", (p, n)
        assert "as recorded from the signed .deb by the apt hook at" in n["detail"], (p, n)
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "fimtest 2.0 with apt")
    assert rc == 0, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 0 and not by_path(doc), (rc, by_path(doc).keys())
    # The new baseline took the run: only the installed version's record is kept.
    assert [(r[0], r[1]) for r in hook_rows(root)] == [("fimtest", "2.0")]


def case_forged_hook_record_refused(fimctl, tmp):
    """A record edited in state.db (the tool's digest replaced by a trojan's, the trojan put in
    place) does not verify: it is ignored with an alert, and the trojan is a mismatch by
    dpkg's MD5, never deb-sha256. Dropping the signature instead makes the record unsigned:
    weak, and it cannot outvote dpkg's MD5 either."""
    root = setup(fimctl, tmp, clean=True)
    trojan = b"#!/bin/sh\necho owned\n"
    root.write("/usr/bin/fimtest-tool", trojan)
    good = __import__("hashlib").sha256(V2["/usr/bin/fimtest-tool"][0]).hexdigest()
    bad = __import__("hashlib").sha256(trojan).hexdigest()
    db = sqlite3.connect(root.dir + STATE)
    (body,) = db.execute("SELECT body FROM hook_records WHERE name = 'fimtest' AND version = '2.0'").fetchone()
    body = bytes(body)
    assert good.encode() in body, body[:300]
    db.execute("UPDATE hook_records SET body = ? WHERE name = 'fimtest' AND version = '2.0'",
               (body.replace(good.encode(), bad.encode()),))
    db.commit()
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "mismatch" and n["evidence"] == "dpkg-md5", n
    assert any(r["type"] == "alert" and r["code"] == "hook_record_refused" for r in doc["records"]), doc["records"]
    # The same forgery with the signature removed: an unsigned record, labelled, still not believed.
    db.execute("UPDATE hook_records SET key_id = '', signature = '' WHERE name = 'fimtest' AND version = '2.0'")
    db.commit()
    db.close()
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "mismatch" and n["evidence"] == "dpkg-md5", n
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--weak", "--reason", "x")
    rc, doc, err = root.fimctl("check", "--packages")
    assert "/usr/bin/fimtest-tool" in by_path(doc), by_path(doc).keys()


def case_unsigned_host_hook_records_weak(fimctl, tmp):
    """A host without the private key (signing off-host) keeps the records unsigned: they are
    labelled, count as dpkg-md5 at best, and accept --package-verified takes none of them
    without --weak."""
    root = setup(fimctl, tmp, key=False, clean=True)
    rows = hook_rows(root)
    assert rows and all(r[4] == "" and r[5] == "" for r in rows), rows
    rc, doc, err = root.fimctl("check", "--packages")
    ch = by_path(doc)
    n = ch["/usr/bin/fimtest-tool"]["package"]
    assert n["verdict"] == "verified" and n["evidence"] == "dpkg-md5", n
    assert "unsigned hook record" in n["detail"], n
    old = ch["/usr/lib/fimtest/old"]["package"]
    assert old["verdict"] == "verified" and old["evidence"] == "dpkg-list", old
    assert "unsigned hook record" in old["detail"], old
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "upgrade")
    assert rc == 16 and "nothing was accepted" in err, (rc, err)


def case_removal_verified_by_recorded_list(fimctl, tmp):
    """A file 2.0 dropped, with both .debs gone and 1.0 installed before the hook was: dpkg's
    list of 1.0 as the hook kept it before dpkg ran says the upgrade removed it (verified,
    dpkg-list). A file no package listed, deleted at the same time, is still 'removed'. With
    the hook's signed record of 1.0's .deb the same removal is deb-sha256."""
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    root.run("/usr/sbin/fimctl", "key", "generate")
    hook = root.dir + "/etc/apt/apt.conf.d/99fimctl"
    os.rename(hook, hook + ".off")   # 1.0 came before fimctl: no record of its .deb
    root.install("1.0")
    os.rename(hook + ".off", hook)
    root.write("/usr/lib/fimtest/local", b"not a package's\n", 0o644)
    rc, doc, err = root.fimctl("init", *ROOTS)
    assert rc == 0, (rc, err)
    root.run("apt-get", "clean")
    apt(root, "install", "-y", "fimtest=2.0")
    os.unlink(root.dir + "/usr/lib/fimtest/local")
    assert not os.listdir(root.dir + ARCHIVES + "/partial") and not [
        n for n in os.listdir(root.dir + ARCHIVES) if n.endswith(".deb")]
    rc, doc, err = root.fimctl("check", "--packages")
    ch = by_path(doc)
    old = ch["/usr/lib/fimtest/old"]["package"]
    assert old["verdict"] == "verified" and old["evidence"] == "dpkg-list", old
    assert old["version"] == "1.0" and "removed by the apt run" in old["detail"], old
    assert "signed hook record" in old["detail"], old
    assert ch["/usr/lib/fimtest/local"]["package"]["verdict"] == "removed", ch["/usr/lib/fimtest/local"]
    assert ch["/usr/bin/fimtest-tool"]["package"]["evidence"] == "deb-sha256", ch["/usr/bin/fimtest-tool"]
    # Back to 1.0 and up again with the hook on: 1.0's .deb is recorded too, the removal is deb-sha256.
    rc, doc, err = root.fimctl("update", "--yes", "--reason", "2.0")
    assert rc < 8, (rc, err)   # the differences it took
    apt(root, "install", "-y", "--allow-downgrades", "fimtest=1.0")
    rc, doc, err = root.fimctl("update", "--yes", "--reason", "1.0")
    assert rc < 8, (rc, err)   # the differences it took
    apt(root, "install", "-y", "fimtest=2.0")
    rc, doc, err = root.fimctl("check", "--packages")
    old = by_path(doc)["/usr/lib/fimtest/old"]["package"]
    assert old["verdict"] == "verified" and old["evidence"] == "deb-sha256", old
    assert "as recorded from the signed .deb by the apt hook" in old["detail"], old


def case_hook_never_fails_apt(fimctl, tmp):
    """A corrupt state.db, or one that cannot be opened at all, does not fail an apt run: the
    hook says why on stderr and exits 0."""
    debs = [build_deb(tmp, "1.0", V1, ["/etc/fimtest.conf"]), build_deb(tmp, "2.0", V2, ["/etc/fimtest.conf"])]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    root.install("1.0")
    rc, doc, err = root.fimctl("init", *ROOTS)
    assert rc == 0, (rc, err)
    with open(root.dir + STATE, "r+b") as f:
        f.write(b"this is not a database" * 64)
    p = root.run("apt", "install", "-y", "fimtest=2.0", check=False)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert "fimctl:" in p.stderr, p.stderr[-2000:]
    assert root.run("dpkg-query", "-W", "-f", "${Version}", "fimtest").stdout == "2.0"
    os.unlink(root.dir + STATE)
    os.mkdir(root.dir + STATE)   # a directory where state.db should be
    p = root.run("apt", "install", "-y", "--allow-downgrades", "fimtest=1.0", check=False)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert root.run("dpkg-query", "-W", "-f", "${Version}", "fimtest").stdout == "1.0"


CASES = {
    "upgrade_with_apt_deb_deleted_still_deb_sha256": case_upgrade_with_apt_deb_deleted_still_deb_sha256,
    "forged_hook_record_refused": case_forged_hook_record_refused,
    "unsigned_host_hook_records_weak": case_unsigned_host_hook_records_weak,
    "removal_verified_by_recorded_list": case_removal_verified_by_recorded_list,
    "hook_never_fails_apt": case_hook_never_fails_apt,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-apt-hook.", as_root=True, doc=__doc__))
