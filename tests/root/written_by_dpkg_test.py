#!/usr/bin/env python3
"""written-by-dpkg (issue 19, item 7): the watch daemon sees who writes during an apt run.

No debootstrap root: the host's real /usr/bin/dpkg installs a .deb of the case's own making
into a private instdir/admindir (--force-script-chrootless: its postinst runs as dpkg's child,
writing below the watched tree). The "apt" process is a python process of the case's that runs
'fimctl apt-hook pre', dpkg and 'fimctl apt-hook post' as its children, exactly as apt runs
them (the hook takes the first ancestor that is not a shell when no /usr/bin/apt is found, as
for unattended-upgrades). Nothing in fimctl is pointed anywhere for the test.

Usage: written_by_dpkg_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, run, run_fimctl, run_main  # noqa: E402
from watch_test import Daemon, init  # noqa: E402

# The apt process: runs the hooks and dpkg as apt does (its argv: fimctl, db, keys, dpkg argv
# as JSON, and a pid to SIGSTOP around dpkg or 0).
APT = r"""
import json, os, signal, subprocess, sys
fimctl, db, keys, dpkg, stop = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), int(sys.argv[5])
hook = [fimctl, "--db", db, "--keys", keys, "apt-hook"]
subprocess.run(hook + ["pre"], check=True)
if stop:
    os.kill(stop, signal.SIGSTOP)
try:
    p = subprocess.run(dpkg, capture_output=True, text=True)
finally:
    if stop:
        os.kill(stop, signal.SIGCONT)
sys.stderr.write(p.stdout + p.stderr)
subprocess.run(hook + ["post"], check=True)
sys.exit(p.returncode)
"""


def need_dpkg():
    for tool in ("/usr/bin/dpkg", "/usr/bin/dpkg-deb"):
        if not os.access(tool, os.X_OK):
            raise Skip(tool + " is not here")


def make_deb(tmp, name, postinst):
    """A .deb whose postinst (configure) runs `postinst` (sh)."""
    src = os.path.join(tmp, name + "-src")
    os.makedirs(os.path.join(src, "DEBIAN"))
    with open(os.path.join(src, "DEBIAN", "control"), "w") as f:
        f.write(f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\n"
                "Description: written-by-dpkg test\n")
    with open(os.path.join(src, "DEBIAN", "postinst"), "w") as f:
        f.write('#!/bin/sh\nset -e\n[ "$1" = configure ] || exit 0\n' + postinst + "\n")
    os.chmod(os.path.join(src, "DEBIAN", "postinst"), 0o755)
    deb = os.path.join(tmp, name + ".deb")
    p = run(["dpkg-deb", "--root-owner-group", "--build", src, deb])
    assert p.rc == 0, p.stderr
    return deb


def apt_run(fimctl, tmp, db, deb, stop_pid=0):
    """Installs `deb` with the real dpkg under a python "apt" that runs the hooks around it."""
    admin, inst = os.path.join(tmp, "admin"), os.path.join(tmp, "inst")
    for d in ("updates", "info", "triggers"):
        os.makedirs(os.path.join(admin, d), exist_ok=True)
    os.makedirs(inst, exist_ok=True)
    open(os.path.join(admin, "status"), "a").close()
    dpkg = ["/usr/bin/dpkg", "--admindir=" + admin, "--instdir=" + inst, "--force-script-chrootless",
            "--force-not-root", "--log=/dev/null", "-i", deb]
    p = run([sys.executable, "-c", APT, fimctl, db, db + ".keys", json.dumps(dpkg), str(stop_pid)], timeout=60)
    assert p.rc == 0, (p.rc, p.stderr)
    return p.stderr


def sessions(db):
    con = sqlite3.connect(os.path.join(os.path.dirname(db), "state.db"))
    try:
        return con.execute("SELECT id, ended_ns, watched_from_ns, watched_to_ns, lossy FROM apt_sessions "
                           "ORDER BY id").fetchall()
    finally:
        con.close()


def writes(db):
    con = sqlite3.connect(os.path.join(os.path.dirname(db), "state.db"))
    try:
        return {p.decode() if isinstance(p, bytes) else p: (by, who)
                for p, by, who in con.execute("SELECT path, by_dpkg, who FROM dpkg_writes")}
    finally:
        con.close()


def wait_watched(db, timeout=10):
    """Until the daemon has seen the last session end (and stored its writes)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = sessions(db)
        if s and s[-1][1] != 0 and s[-1][3] != 0:
            return s[-1]
        time.sleep(0.05)
    raise AssertionError(f"the daemon did not close the apt session: {sessions(db)}")


def check_notes(fimctl, db):
    r = run_fimctl(fimctl, "check", "--packages", db=db, timeout=120)
    assert r.rc in (0, 1, 2, 3, 4, 5), (r.rc, r.stderr)
    return {x["path"]: x.get("package", {}) for x in r.json()["records"] if x["type"] == "change"}


def setup(fimctl, tmp):
    need_dpkg()
    tree = os.path.join(tmp, "tree")
    os.makedirs(os.path.join(tree, "etc"))
    with open(os.path.join(tree, "etc", "steady"), "w") as f:
        f.write("steady\n")
    db = os.path.join(tmp, "db", "baseline.db")
    os.makedirs(os.path.dirname(db))
    init(fimctl, db, tree)
    return tree, db


def case_postinst_written_file_is_written_by_dpkg(fimctl, tmp):
    """A file a postinst writes during a recorded apt run (its writer alive when the daemon
    reads the event) is verified with written-by-dpkg evidence naming the run."""
    tree, db = setup(fimctl, tmp)
    gen = os.path.join(tree, "etc", "generated")
    deb = make_deb(tmp, "wbdgen", f"echo generated > {gen}\nsleep 1")
    with Daemon(fimctl, tmp, db):
        apt_run(fimctl, tmp, db, deb)
        s = wait_watched(db)
        assert s[4] == 0, s
    assert writes(db)[gen][0] == 1, writes(db)
    n = check_notes(fimctl, db)[gen]
    assert n["verdict"] == "verified" and n["evidence"] == "written-by-dpkg", n
    assert "apt run" in n["detail"] and "descendant of dpkg" in n["detail"], n


def case_write_by_unrelated_process_during_apt_run_is_not(fimctl, tmp):
    """The attack: while apt runs, an intruder (no descendant of that apt's dpkg) drops a file
    and appends to one the postinst wrote. Neither is written-by-dpkg; the postinst's other
    file, untouched, is (the run was watched: the verdict is not vacuous)."""
    tree, db = setup(fimctl, tmp)
    gen, other = os.path.join(tree, "etc", "generated"), os.path.join(tree, "etc", "other")
    evil = os.path.join(tree, "etc", "evil")
    flag = os.path.join(tmp, "postinst-wrote")
    deb = make_deb(tmp, "wbdatk", f"echo generated > {gen}\necho other > {other}\ntouch {flag}\nsleep 3")
    with Daemon(fimctl, tmp, db):
        err = []
        t = threading.Thread(target=lambda: err.append(apt_run(fimctl, tmp, db, deb)))
        t.start()
        end = time.monotonic() + 20
        while not os.path.exists(flag) and time.monotonic() < end:
            time.sleep(0.02)
        assert os.path.exists(flag), "the postinst did not run"
        with open(evil, "w") as f:  # the intruder: this test's own process
            f.write("evil\n")
        with open(gen, "a") as f:
            f.write("appended by the intruder\n")
        t.join(60)
        s = wait_watched(db)
        assert s[4] == 0, s
    notes = check_notes(fimctl, db)
    assert notes[other]["evidence"] == "written-by-dpkg", notes[other]
    for p in (evil, gen):
        assert notes[p]["verdict"] == "unpackaged" and notes[p]["evidence"] == "none", (p, notes[p])


def case_exited_writer_is_unknown_not_dpkg(fimctl, tmp):
    """A postinst's short-lived child (cp) that has exited before the daemon reads its event
    has unknown ancestry: never written-by-dpkg. (The daemon is stopped while dpkg runs so the
    writer is surely gone; the measure case says how often it is in practice.)"""
    tree, db = setup(fimctl, tmp)
    src = os.path.join(tmp, "src")
    with open(src, "w") as f:
        f.write("copied\n")
    dst = os.path.join(tree, "etc", "copied")
    deb = make_deb(tmp, "wbdcp", f"cp {src} {dst}")
    with Daemon(fimctl, tmp, db) as d:
        apt_run(fimctl, tmp, db, deb, stop_pid=d.proc.pid)
        wait_watched(db)
    assert writes(db)[dst][0] == 0 and "gone" in writes(db)[dst][1], writes(db)
    n = check_notes(fimctl, db)[dst]
    assert n["verdict"] == "unpackaged" and n["evidence"] == "none", n


def case_measure_exited_cp_writers(fimctl, tmp):
    """How often a postinst's `cp` is still there when the daemon reads its event (printed);
    whatever the figure, no write whose writer was gone is counted as dpkg's."""
    tree, db = setup(fimctl, tmp)
    src = os.path.join(tmp, "src")
    with open(src, "w") as f:
        f.write("copied\n")
    n = 200
    deb = make_deb(tmp, "wbdmeasure", f"for i in $(seq 1 {n}); do cp {src} {tree}/etc/c$i; done")
    with Daemon(fimctl, tmp, db):
        apt_run(fimctl, tmp, db, deb)
        wait_watched(db)
    w = {p: v for p, v in writes(db).items() if "/etc/c" in p}
    dpkg = sum(1 for by, _ in w.values() if by)
    gone = sum(1 for _, who in w.values() if "gone" in who)
    print(f"cp writers in a postinst: {len(w)} paths, {dpkg} written-by-dpkg, {gone} writer gone "
          f"when the daemon read the event, {len(w) - dpkg - gone} other")
    assert len(w) == n, len(w)
    assert all(not by for by, who in w.values() if "gone" in who), w


def case_accept_needs_weak_for_written_by_dpkg(fimctl, tmp):
    """accept --package-verified leaves a written-by-dpkg change for a human; with --weak it
    takes it, and the next check has nothing to say about that file."""
    tree, db = setup(fimctl, tmp)
    gen = os.path.join(tree, "etc", "generated")
    deb = make_deb(tmp, "wbdacc", f"echo generated > {gen}\nsleep 1")
    with Daemon(fimctl, tmp, db):
        apt_run(fimctl, tmp, db, deb)
        wait_watched(db)
    assert check_notes(fimctl, db)[gen]["evidence"] == "written-by-dpkg"
    r = run_fimctl(fimctl, "accept", "--yes", "--package-verified", "--reason", "postinst", db=db, timeout=120)
    assert r.rc != 0 and "written-by-dpkg" in (r.stdout + r.stderr), (r.rc, r.stdout[-1000:], r.stderr[-1000:])
    assert gen in check_notes(fimctl, db)
    r = run_fimctl(fimctl, "accept", "--yes", "--package-verified", "--weak", "--reason", "postinst", db=db,
                   timeout=120)
    assert r.rc == 0, (r.rc, r.stdout[-1000:], r.stderr[-1000:])
    assert gen not in check_notes(fimctl, db)


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-wbd-", as_root=True, doc=__doc__))
