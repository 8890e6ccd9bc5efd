#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks on 'fimctl status' (issue 17, hole 6): after the daemon is gone, any process that
answers on the socket path with {"running":true,...} made status print "running" and exit 0;
a socket in a sticky directory could be bound by anyone; a reply dripped a byte at a time
kept the client waiting without end. status now refuses a socket directory others may write
(16), reads at most 1 MiB within 5 s, and believes an answer only from root, the running user
or the baseline's owner whose pid is the one state.db's fresh heartbeat names; otherwise it
says why and exits 8. A degraded root exits 8 too.

Usage: attack_status_spoof.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Root cases, each in a private mount namespace.
"""
import json
import os
import sqlite3
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, expect, fimctl_argv, run, run_main  # noqa: E402

NOBODY = 65534
# A fake daemon: binds PATH, drops to UID (after bind, before listen: SO_PEERCRED is taken at
# listen), answers every connection with REPLY (its own pid put in for "PID"), DRIP: one byte
# a second and never closes.
FAKE = r'''
import os, socket, sys, time
path, uid, reply, drip = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
s = socket.socket(socket.AF_UNIX)
s.bind(path)
os.chmod(path, 0o666)
if uid:
    os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
s.listen(8)
print("ready", flush=True)
reply = reply.replace('"PID"', str(os.getpid())).encode()
while True:
    c, _ = s.accept()
    if drip:
        while True:
            for b in reply:
                c.send(bytes([b])); time.sleep(1)
            reply = b" "
    c.sendall(reply); c.close()
'''


def running_doc(**extra):
    d = {"schema": "fimctl.v1", "type": "status", "running": True, "pid": "PID", "started": "now",
         "baseline": "x", "roots": [], "degraded": [], "dirty": []}
    d.update(extra)
    return json.dumps(d)  # the fake puts its pid in for "PID"


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.procs = []
        os.makedirs(self.tree)
        with open(os.path.join(self.tree, "f"), "w") as f:
            f.write("x\n")
        r = run(fimctl_argv(fimctl, "init", self.tree, db=self.db))
        expect(r.rc == 0, lambda: f"init: {r.rc} {r.stderr}")
        self.run_dir = os.path.join(tmp, "run")
        os.mkdir(self.run_dir)
        self.sock = os.path.join(self.run_dir, "watch.sock")

    def fake(self, reply, uid=0, drip=False, sock=None):
        p = subprocess.Popen([sys.executable, "-c", FAKE, sock or self.sock, str(uid), reply, "1" if drip else "0"],
                             stdout=subprocess.PIPE)
        self.procs.append(p)
        expect(p.stdout.readline().strip() == b"ready", "the fake daemon did not start")
        return p

    def beat(self, pid, age_s=0):
        """Writes the daemon row a real daemon would (pid, a heartbeat age_s old)."""
        con = sqlite3.connect(os.path.join(os.path.dirname(self.db), "state.db"))
        now = time.time_ns() - age_s * 10**9
        con.execute("INSERT OR REPLACE INTO daemon VALUES(?, ?, ?, ?, 0)", (self.db.encode(), pid, now, now))
        con.commit()
        con.close()

    def status(self, sock=None, timeout=30):
        return run([self.fimctl, "--db", self.db, "--format", "json", "status", "--socket", sock or self.sock],
                   timeout=timeout)

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()


def not_running(r, what):
    expect(r.rc != 0, lambda: f"{what}: status exited 0: {r.stdout}")
    doc = r.json()
    expect(doc is None or doc.get("running") is not True, lambda: f"{what}: status says running: {r.stdout}")


def case_fake_daemon_after_kill_refused(ctx):
    """No daemon runs (killed with -9, or never started); a root process that is not fimctl
    answers a running record on the socket: state.db names no such daemon, so status does not
    say running and exits 8."""
    ctx.fake(running_doc())
    r = ctx.status()
    not_running(r, "a fake daemon")
    expect(r.rc == 8 and "state.db" in r.stderr, lambda: f"exit {r.rc}, want 8 naming state.db: {r.stderr}")


def case_peer_of_other_user_refused(ctx):
    """The answer comes from a process of uid 65534 (neither root, nor the running user, nor
    the baseline's owner), even one whose pid state.db's fresh heartbeat names: not believed."""
    p = ctx.fake(running_doc(), uid=NOBODY)
    ctx.beat(p.pid)
    r = ctx.status()
    not_running(r, "a peer of uid 65534")
    expect(r.rc == 8 and "uid 65534" in r.stderr, lambda: f"exit {r.rc}, want 8 naming uid 65534: {r.stderr}")


def case_socket_in_sticky_dir_refused(ctx):
    """--socket in a 1777 directory, where uid 65534 bound first: refused (16) naming the
    directory, never the fake record."""
    sticky = os.path.join(ctx.tmp, "sticky")
    os.mkdir(sticky)
    os.chmod(sticky, 0o1777)
    sock = os.path.join(sticky, "watch.sock")
    p = ctx.fake(running_doc(), uid=NOBODY, sock=sock)
    ctx.beat(p.pid)
    r = ctx.status(sock=sock)
    expect(r.rc == 16 and sticky in r.stderr, lambda: f"exit {r.rc}, want 16 naming {sticky}: {r.stderr} {r.stdout}")


def case_malformed_reply_does_not_hang(ctx):
    """A reply that is not JSON ({"dirty":[}]}) is an error; one dripped a byte a second that
    never ends is cut off within seconds, not waited for."""
    ctx.fake('{"dirty":[}]}')
    r = ctx.status()
    expect(r.rc not in (0, 8) and "JSON" in r.stderr, lambda: f"malformed reply: exit {r.rc}: {r.stderr}")
    ctx.close()
    ctx.procs = []
    os.unlink(ctx.sock)
    ctx.fake('{"dirty":[}]}', drip=True)
    start = time.monotonic()
    r = ctx.status(timeout=30)
    took = time.monotonic() - start
    expect(r.rc != 0 and took < 15, lambda: f"dripped reply: exit {r.rc} after {took:.1f} s: {r.stderr}")


def case_stale_heartbeat_detected(ctx):
    """A root process answers with the pid state.db names, but that heartbeat is 10 minutes
    old (the daemon died and its pid was reused): not believed, exit 8."""
    p = ctx.fake(running_doc())
    ctx.beat(p.pid, age_s=600)
    r = ctx.status()
    not_running(r, "a stale heartbeat")
    expect(r.rc == 8 and "heartbeat" in r.stderr, lambda: f"exit {r.rc}, want 8 naming the heartbeat: {r.stderr}")


def case_degraded_root_exits_8(ctx):
    """The daemon (here one that passes every check) reports a degraded root, one not watched
    in real time: status exits 8, not 0."""
    p = ctx.fake(running_doc(degraded=["/x: fanotify_mark: EPERM"]))
    ctx.beat(p.pid)
    r = ctx.status()
    expect(r.rc == 8, lambda: f"a degraded root: exit {r.rc}, want 8: {r.stdout} {r.stderr}")
    expect(r.json().get("running") is True, lambda: f"the daemon passing every check is shown: {r.stdout}")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-status-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), as_root=True,
                      doc=__doc__))
