#!/usr/bin/env python3
"""fimctl watch --mount-ns: the DaemonSet's watcher runs in a pod that sees the node's / at
/host, enters the node's mount namespace (/proc/1/ns/mnt) and reports the node's own paths.
Played here with two mount namespaces of the case's own: the "node" (the case's), and the
"pod" (a child namespace in which the node's tree is hidden under a tmpfs), from which
fimctl enters the node's.

Usage: watch_node_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root)."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import fimctl_argv, run_fimctl, run_main  # noqa: E402
from watch_test import Daemon  # noqa: E402

POLICY_TEXT = """version = 1
[[rule]]
path = "{root}"
severity = "high"
"""


class PodDaemon(Daemon):
    """fimctl watch started in a "pod" mount namespace where `hidden` is covered by a tmpfs."""

    def __init__(self, fimctl, tmp, db, config, hidden, extra=()):
        self.fimctl, self.db, self.config = fimctl, db, config
        self.out = f"{tmp}/watch.{len(os.listdir(tmp))}.ndjson"
        self.sock = f"{tmp}/watch.sock"
        self.err = open(f"{self.out}.stderr", "w")
        cmd = fimctl_argv(fimctl, "watch", "--socket", self.sock, "--output", self.out, "--debounce", "20ms",
                          *extra, config=config, db=db, fmt="ndjson")
        wrapped = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs pod-view "$0" && exec "$@"', hidden, *cmd]
        self.proc = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=self.err)
        try:
            self.wait_for(lambda r: r["type"] == "rescan_done" and r["reason"] == "start", what="the start rescan")
        except BaseException:
            self.stop(signal.SIGKILL)
            raise


def setup(fimctl, tmp):
    node = f"{tmp}/node"
    root = f"{node}/usr/bin"
    os.makedirs(root)
    with open(f"{root}/tool", "w") as f:
        f.write("v1\n")
    policy = f"{tmp}/policy.toml"
    with open(policy, "w") as f:
        f.write(POLICY_TEXT.format(root=root))
    os.makedirs(f"{tmp}/db", mode=0o700)
    db = f"{tmp}/db/baseline.db"
    r = run_fimctl(fimctl, "init", config=policy, db=db)
    assert r.rc == 0, (r.rc, r.stderr)
    return node, root, policy, db


def case_watch_from_the_node_mount_namespace_reports_node_paths(fimctl, tmp):
    """From a namespace where the node's tree is not visible, watch --mount-ns marks, compares
    and reports the node's own paths (not the pod's view of them)."""
    node, root, policy, db = setup(fimctl, tmp)
    with PodDaemon(fimctl, tmp, db, policy, node, extra=["--mount-ns", f"/proc/{os.getpid()}/ns/mnt"]) as d:
        with open(f"{root}/tool", "a") as f:
            f.write("planted\n")
        rec = d.change(f"{root}/tool", "changed", "sha256")
        assert rec["path"] == f"{root}/tool", rec
        with open(f"{root}/dropper", "w") as f:
            f.write("#!/bin/sh\n")
        d.change(f"{root}/dropper", "added")
        os.kill(d.proc.pid, signal.SIGHUP)  # the policy again from the pod's -c, not the node's
        d.wait_for(lambda r: r["type"] == "reload", what="the reload")
        assert not [r for r in d.records() if r["type"] == "alert" and "reload" in r.get("code", "")], d.records()
        assert d.stop() == 0, d.stderr()


def case_without_mount_ns_the_pod_sees_no_node_tree(fimctl, tmp):
    """The control: the same daemon without --mount-ns watches the pod's view, where the root is
    absent (what /host/... paths in the DaemonSet used to work around)."""
    node, root, policy, db = setup(fimctl, tmp)
    with PodDaemon(fimctl, tmp, db, policy, node) as d:
        removed = d.wait_for(lambda r: r["type"] == "change" and r["path"] == f"{root}/tool", what="tool removed")
        assert removed[-1]["kind"] == "removed", removed


def case_mount_ns_that_cannot_be_entered_is_an_error(fimctl, tmp):
    node, root, policy, db = setup(fimctl, tmp)
    r = run_fimctl(fimctl, "watch", "--mount-ns", f"{tmp}/nothing", "--socket", f"{tmp}/s", config=policy, db=db, fmt="ndjson")
    assert r.rc == 16 and "--mount-ns" in r.stderr, (r.rc, r.stderr)
    r = run_fimctl(fimctl, "watch", "--mount-ns", policy, "--socket", f"{tmp}/s", config=policy, db=db, fmt="ndjson")
    assert r.rc == 20 and "cannot enter the mount namespace" in r.stderr, (r.rc, r.stderr)


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-node-", as_root=True, doc=__doc__))
