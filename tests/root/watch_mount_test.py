#!/usr/bin/env python3
"""fimctl watch and mounts over or under its roots (suite 'root').

Usage: watch_mount_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify, mount refused).
A mount hides the files the baseline recorded and shows others without one fanotify event:
each case mounts over a watched path (or above a root) while the daemon runs, and expects the
alert, the root degraded in status while the mount stays, and the rescan's differences. The
harness runs every case in a private mount namespace, and the daemon it starts is in it too,
so it sees the case's mounts and the host never does.
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import run_main  # noqa: E402
from root_test import mount  # noqa: E402
from watch_test import Daemon, filesystem, init  # noqa: E402

POLL = ["--mount-events", "poll"]  # what Debian 12's 6.1 kernel gives: no fanotify mount events


def watched_tree(fimctl, tmp):
    """A tree on a tmpfs of its own (tmp/fs/tree) with etc/ssh and etc/passwd, and its baseline."""
    tree = f"{filesystem(tmp, 'tmpfs')}/tree"
    os.makedirs(f"{tree}/etc/ssh")
    os.makedirs(f"{tree}/bin")
    for name, text in (("etc/ssh/sshd_config", "PermitRootLogin no\n"), ("etc/ssh/ssh_host_ed25519_key", "key\n"),
                       ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("bin/tool", "tool\n")):
        with open(f"{tree}/{name}", "w") as f:
            f.write(text)
    db = f"{tmp}/db/baseline.db"
    os.makedirs(f"{tmp}/db")
    init(fimctl, db, tree)
    return tree, db


def mount_alert(d, code, point):
    return d.wait_for(lambda r: r["type"] == "alert" and r["code"] == code and r["mount"]["mount_point"] == point,
                      what=f"alert {code} at {point}")[-1]


def rescans_done(d, reason, count):
    d.wait_for(lambda r: len([x for x in d.records() if x["type"] == "rescan_done" and x["reason"] == reason]) >= count,
               what=f"{count} rescan(s) ({reason})")


def clean_status(d, timeout=20):
    """Status once no root awaits a rescan (bounded): its exit code and record."""
    end = time.monotonic() + timeout
    while True:
        rc, st = d.status()
        if (rc == 0 and not st["dirty"]) or time.monotonic() > end:
            return rc, st
        time.sleep(0.1)


def tmpfs_over_dir(fimctl, tmp, extra):
    tree, db = watched_tree(fimctl, tmp)
    with Daemon(fimctl, tmp, db, extra=extra) as d:
        mount("-t", "tmpfs", "-o", "size=1m", "evil", f"{tree}/etc/ssh")
        a = mount_alert(d, "mount_attached", f"{tree}/etc/ssh")
        m = a["mount"]
        assert m["fstype"] == "tmpfs" and m["source"] == "evil" and m["id"] > 0 and "rw" in m["options"], a
        assert a["roots"] == [tree] and a["over"] == [tree] and a["under"] == [], a
        assert a["process"] == "unknown", a
        # The rescan compares the root as it is now: the real files are hidden, the mount point
        # is another directory.
        d.change(f"{tree}/etc/ssh/sshd_config", "removed")
        d.change(f"{tree}/etc/ssh/ssh_host_ed25519_key", "removed")
        r = d.change(f"{tree}/etc/ssh", "changed")
        assert r["rescan"] == "mount", r
        rescans_done(d, "mount", 1)
        # The mounted filesystem is watched too: a file written into it is reported.
        with open(f"{tree}/etc/ssh/authorized_keys", "w") as f:
            f.write("ssh-ed25519 AAAA attacker\n")
        d.change(f"{tree}/etc/ssh/authorized_keys", "added")
        # While the mount stays, the root is not what the baseline recorded: status is not clean.
        rc, st = d.status()
        assert rc == 8 and st["changes"] >= 4, (rc, st)
        assert any(f"{tree}/etc/ssh is hidden by a mount" in x for x in st["degraded"]), st
        return a, d.records()


def case_tmpfs_mounted_over_watched_dir(fimctl, tmp):
    """mount -t tmpfs over a watched directory (mountinfo read, as on 6.1): an alert with the
    mount's type and source, the hidden files and the new mount point reported by the rescan,
    writes inside the mount reported, status not clean."""
    a, _ = tmpfs_over_dir(fimctl, tmp, POLL)
    assert a["seen_by"] == "mountinfo", a


def case_tmpfs_mounted_over_watched_dir_mount_events(fimctl, tmp):
    """The same with --mount-events auto (the default): fanotify mount events where the kernel
    has them (6.14+), mountinfo elsewhere."""
    a, records = tmpfs_over_dir(fimctl, tmp, [])
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    start = [r for r in records if r["type"] == "watch_start"][0]
    assert start["mount_events"] == (release >= (6, 14)), (start, os.uname().release)
    assert a["seen_by"] == ("mount_events" if release >= (6, 14) else "mountinfo"), a


def case_file_bind_mounted_over_watched_file(fimctl, tmp):
    """mount --bind of a file over a watched file: an alert, the content that now shows is a
    change of that file."""
    tree, db = watched_tree(fimctl, tmp)
    evil = f"{tmp}/evil"
    with open(evil, "w") as f:
        f.write("root::0:0:root:/root:/bin/sh\n")
    with Daemon(fimctl, tmp, db, extra=POLL) as d:
        mount("--bind", evil, f"{tree}/etc/passwd")
        a = mount_alert(d, "mount_attached", f"{tree}/etc/passwd")
        assert a["mount"]["root"].endswith("/evil") and a["over"] == [tree], a
        r = d.change(f"{tree}/etc/passwd", "changed", "sha256")
        assert r["rescan"] == "mount", r
        rc, st = d.status()
        assert rc == 8 and any(f"{tree}/etc/passwd is hidden by a mount" in x for x in st["degraded"]), (rc, st)


def case_bind_over_root_ancestor(fimctl, tmp):
    """A bind mount over a directory above the root: the whole root is now another tree, and
    the rescan compares that tree."""
    tree, db = watched_tree(fimctl, tmp)
    decoy = f"{tmp}/decoy"
    os.makedirs(f"{decoy}/tree/etc/ssh")
    with open(f"{decoy}/tree/etc/ssh/sshd_config", "w") as f:
        f.write("PermitRootLogin yes\n")
    above = os.path.dirname(tree)  # tmp/fs
    with Daemon(fimctl, tmp, db, extra=POLL) as d:
        mount("--bind", decoy, above)
        a = mount_alert(d, "mount_attached", above)
        assert a["under"] == [tree] and a["over"] == [] and a["roots"] == [tree], a
        d.change(f"{tree}/etc/ssh/sshd_config", "changed", "sha256")
        d.change(f"{tree}/bin/tool", "removed")
        rc, st = d.status()
        assert rc == 8 and any(x.startswith(f"{tree}: is inside a mount") for x in st["degraded"]), (rc, st)


def case_unmount_reported(fimctl, tmp):
    """The mount over a watched directory goes away: an alert for that too, the real files are
    compared again (as the baseline says: restored), and status is clean once more."""
    tree, db = watched_tree(fimctl, tmp)
    with Daemon(fimctl, tmp, db, extra=POLL) as d:
        mount("-t", "tmpfs", "-o", "size=1m", "evil", f"{tree}/etc/ssh")
        a = mount_alert(d, "mount_attached", f"{tree}/etc/ssh")
        d.change(f"{tree}/etc/ssh/sshd_config", "removed")
        rescans_done(d, "mount", 1)
        subprocess.run(["umount", f"{tree}/etc/ssh"], check=True)
        u = mount_alert(d, "mount_detached", f"{tree}/etc/ssh")
        assert u["mount"]["id"] == a["mount"]["id"] and u["over"] == [tree], u
        d.wait_for(lambda r: r["type"] == "restored" and r["path"] == f"{tree}/etc/ssh/sshd_config",
                   what="sshd_config restored")
        rc, st = clean_status(d)
        assert rc == 0 and st["degraded"] == [] and st["dirty"] == [], (rc, st)


def case_remount_of_existing_mount(fimctl, tmp):
    """A mount that was below the root before the daemon started, remounted read-only: reported
    (detached and attached again) and rescanned, but it hides nothing new, so status stays
    clean."""
    tree, _ = watched_tree(fimctl, tmp)
    os.makedirs(f"{tree}/mnt")
    mount("-t", "tmpfs", "-o", "size=1m", "data", f"{tree}/mnt")
    db = f"{tmp}/db2/baseline.db"
    os.makedirs(f"{tmp}/db2")
    init(fimctl, db, tree)
    with Daemon(fimctl, tmp, db, extra=POLL) as d:
        mount("-o", "remount,ro", f"{tree}/mnt")
        u = mount_alert(d, "mount_detached", f"{tree}/mnt")
        a = mount_alert(d, "mount_attached", f"{tree}/mnt")
        assert u["mount"]["id"] == a["mount"]["id"] and a["mount"]["options"].startswith("ro"), (u, a)
        rc, st = clean_status(d)
        assert rc == 0 and st["degraded"] == [] and st["dirty"] == [], (rc, st)


def case_bind_mounted_over_baseline_dir(fimctl, tmp):
    """mount --bind over the baseline's directory (fanotify alone, mountinfo read): the baseline
    and state.db are hidden without one write to them. An alert names fimctl's own directory,
    status exits 8 while the mount stays and is clean again once it goes. (With BPF LSM and
    --enforce the mount is denied: the vm suite's 15_mount_over_own.)"""
    tree, db = watched_tree(fimctl, tmp)
    dbdir = os.path.dirname(db)
    empty = f"{tmp}/empty"
    os.makedirs(empty)
    with Daemon(fimctl, tmp, db, extra=POLL) as d:
        mount("--bind", empty, dbdir)
        try:
            a = mount_alert(d, "mount_attached", dbdir)
            assert dbdir in a["fimctl_paths"] and a["roots"] == [] and a["process"] == "unknown", a
            assert "over fimctl's own" in a["message"], a
            # status reads state.db next to the baseline: hidden too, so it cannot vouch for
            # the daemon's answer and exits 8; the daemon lists the directory as degraded.
            rc, st = d.status()
            assert rc == 8, (rc, st)
        finally:
            subprocess.run(["umount", dbdir], check=True)
        u = mount_alert(d, "mount_detached", dbdir)
        assert u["mount"]["id"] == a["mount"]["id"] and dbdir in u["fimctl_paths"], u
        rc, st = clean_status(d)
        assert rc == 0 and st["degraded"] == [], (rc, st)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watch-mount.", as_root=True, doc=__doc__))
