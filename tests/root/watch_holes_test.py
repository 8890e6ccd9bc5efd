#!/usr/bin/env python3
"""fimctl watch against an intruder who knows how it maps events (suite 'root'): changes made
through names the daemon used to drop (docs/design.md, Real time; Threat model).

Usage: watch_holes_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify).
Each case plays one attack on a real filesystem with fanotify alone (no BPF LSM here) and
waits (bounded) for the record that must follow.
"""
import datetime
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import POLICY, Skip, fill_filesystem, run_fimctl, run_main  # noqa: E402
from root_test import mount  # noqa: E402
from watch_test import Daemon, daemon_with_small_queue, filesystem, files_while_stopped, init, sha  # noqa: E402


def tree_with(tmp, mnt, layout):
    """Files (path -> content) below mnt; the baseline directory beside them."""
    for rel, content in layout.items():
        os.makedirs(os.path.dirname(f"{mnt}/{rel}"), exist_ok=True)
        with open(f"{mnt}/{rel}", "w") as f:
            f.write(content)
    os.makedirs(f"{tmp}/db", exist_ok=True)
    return f"{tmp}/db/baseline.db"


def parse_time(s):
    """The daemon's times: RFC 3339 with nanoseconds; microseconds are enough to order them."""
    head, _, frac = s.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + float("0." + (frac or "0"))


def case_hard_link_from_outside_every_root(fimctl, tmp):
    """ln /watched/sbin/sshd /tmp/x; echo >> /tmp/x; chmod 6755 /tmp/x: the baseline file is
    changed through a name no root covers. It is reported under its baseline path, with the
    name it was changed through."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {"watched/sbin/sshd": "the real sshd\n", "outside/readme": "x\n"})
    init(fimctl, db, f"{mnt}/watched")
    sshd = f"{mnt}/watched/sbin/sshd"
    with Daemon(fimctl, tmp, db) as d:
        os.link(sshd, f"{mnt}/outside/x")
        with open(f"{mnt}/outside/x", "a") as f:
            f.write("backdoor\n")
        d.change(sshd, "changed", "sha256")  # the link and the write, in one compare or two
        d.change(sshd, "changed", "nlink")
        # Long after the link was made: every later write and chmod through it is an event.
        time.sleep(0.5)
        with open(f"{mnt}/outside/x", "a") as f:
            f.write("more\n")
        r = d.wait_for(lambda r: r["type"] == "change" and r["path"] == sshd and
                       any(c["attr"] == "sha256" and c["new"] == sha(open(sshd, "rb").read())
                           for c in r.get("changes", [])), what="the second write")[-1]
        assert r.get("via") == f"{mnt}/outside/x", r
        os.chmod(f"{mnt}/outside/x", 0o6755)
        d.change(sshd, "changed", "mode")
        assert d.stop() == 0


def case_root_through_symlinked_ancestor(fimctl, tmp):
    """init /srv/link/etc with /srv/link -> /data: a write to /data/etc/passwd is reported as
    /srv/link/etc/passwd, the path the baseline uses."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {"data/etc/passwd": "root:x:0:0::/root:/bin/sh\n"})
    os.symlink(f"{mnt}/data", f"{mnt}/link")
    init(fimctl, db, f"{mnt}/link/etc")
    with Daemon(fimctl, tmp, db) as d:
        with open(f"{mnt}/data/etc/passwd", "a") as f:
            f.write("evil::0:0::/:/bin/sh\n")
        d.change(f"{mnt}/link/etc/passwd", "changed", "sha256")
        with open(f"{mnt}/data/etc/shadow", "w") as f:
            f.write("new\n")
        d.change(f"{mnt}/link/etc/shadow", "added")
        assert d.stop() == 0


def case_root_through_bind_mount_written_via_other_mount(fimctl, tmp):
    """A root is reached through a bind mount (/view = bind of /data) and another root on the
    same filesystem through its own mount (/fs/other); the intruder writes through the mount
    that is not the root's (/fs/data/etc/hosts)."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {"data/etc/hosts": "127.0.0.1 localhost\n", "other/motd": "hi\n"})
    os.makedirs(f"{tmp}/view")
    mount("--bind", f"{mnt}/data", f"{tmp}/view")
    r = run_fimctl(fimctl, "init", f"{mnt}/other", f"{tmp}/view/etc", config=POLICY, db=db)
    assert r.rc == 0, (r.rc, r.stderr)
    with Daemon(fimctl, tmp, db) as d:
        with open(f"{mnt}/data/etc/hosts", "a") as f:
            f.write("10.6.6.6 updates.example.org\n")
        d.change(f"{tmp}/view/etc/hosts", "changed", "sha256")
        assert d.stop() == 0


def deep_dirs(top, levels, width):
    """levels directories of `width`-byte names below top, made with directory fds (the path
    is longer than PATH_MAX); returns the fd of the deepest and its path."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    path = top
    for i in range(levels):
        name = f"{i:03d}" + "d" * (width - 3)
        os.mkdir(name, dir_fd=fd)
        nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd, path = nfd, f"{path}/{name}"
    return fd, path


def case_change_deeper_than_path_max(fimctl, tmp):
    """A file at the bottom of 50 levels of 120-byte names (6,000 bytes of path) is changed."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {"watched/top": "top\n"})
    fd, deep = deep_dirs(f"{mnt}/watched", 50, 120)
    assert len(deep) > 4096, len(deep)
    try:
        wfd = os.open("target", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(wfd, b"original\n")
        os.close(wfd)
        init(fimctl, db, f"{mnt}/watched")
        with Daemon(fimctl, tmp, db) as d:
            wfd = os.open("target", os.O_WRONLY | os.O_APPEND, dir_fd=fd)
            os.write(wfd, b"tampered\n")
            os.close(wfd)
            d.change(f"{deep}/target", "changed", "sha256")
            wfd = os.open("planted", os.O_WRONLY | os.O_CREAT, 0o4755, dir_fd=fd)
            os.close(wfd)
            d.change(f"{deep}/planted", "added")
            assert d.stop() == 0
    finally:
        os.close(fd)


def case_transient_setuid_file_in_cron_dir(fimctl, tmp):
    """A set-uid file is created in a cron directory and deleted 3 ms later: a transient
    record (with the events and the pid), and the directory's own change."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {"watched/etc/cron.d/backup": "0 3 * * * root /backup\n"})
    init(fimctl, db, f"{mnt}/watched")
    cron = f"{mnt}/watched/etc/cron.d"
    with Daemon(fimctl, tmp, db) as d:
        fd = os.open(f"{cron}/evil", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"* * * * * root /tmp/x\n")
        os.fchmod(fd, 0o4755)
        os.close(fd)
        time.sleep(0.003)
        os.unlink(f"{cron}/evil")
        r = d.change(f"{cron}/evil", "transient")
        assert "create" in r["events"] and r.get("pid") == os.getpid(), r
        d.change(cron, "changed")
        assert d.stop() == 0


def case_overflow_gap_spans_the_rescan(fimctl, tmp):
    """The kernel queue overflows: the gap record runs from the last event read before the
    loss to the end of the rescan that recovers from it, not just the moment of the overflow."""
    mnt = filesystem(tmp, "tmpfs")
    db = tree_with(tmp, mnt, {f"watched/f{i}": f"{i}\n" * 2000 for i in range(200)})
    init(fimctl, db, f"{mnt}/watched")
    with daemon_with_small_queue(fimctl, tmp, db) as d:
        stopped = time.time()
        files_while_stopped(d, f"{mnt}/watched")
        done = d.wait_for(lambda r: r["type"] == "rescan_done" and r["reason"] == "overflow", what="the rescan")[0]
        gap = d.wait_for(lambda r: r["type"] == "gap" and r["reason"] == "overflow", what="the gap")[0]
        assert parse_time(gap["start"]) <= stopped + 0.001, (gap, stopped)
        assert parse_time(gap["end"]) >= parse_time(done["time"]) - 0.001, (gap, done)
        assert d.stop() == 0


def case_state_db_full_is_not_silent(fimctl, tmp):
    """The filesystem holding state.db fills up while the daemon runs: what it can no longer
    record (heartbeat, dirty roots, gaps) is an alert, and status is not clean until a write
    succeeds again."""
    mnt = filesystem(tmp, "tmpfs")
    db_dir = f"{tmp}/dbfs"
    os.makedirs(db_dir)
    mount("-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", db_dir)
    tree_with(tmp, mnt, {"watched/f": "x\n"})
    db = f"{db_dir}/baseline.db"
    init(fimctl, db, f"{mnt}/watched")
    with Daemon(fimctl, tmp, db) as d:
        fill_filesystem(f"{db_dir}/filler")
        d.wait_for(lambda r: r["type"] == "alert" and r["code"] == "coverage_not_recorded", timeout=40,
                   what="the coverage_not_recorded alert")
        rc, st = d.status()
        assert rc == 8 and any("coverage not recorded" in x for x in st["degraded"]), (rc, st)
        os.unlink(f"{db_dir}/filler")
        end = time.monotonic() + 40
        while time.monotonic() < end:
            rc, st = d.status()
            if not any("coverage not recorded" in x for x in st["degraded"]):
                break
            time.sleep(0.5)
        assert not any("coverage not recorded" in x for x in st["degraded"]), st
        assert d.stop() == 0


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-holes.", as_root=True, doc=__doc__))
