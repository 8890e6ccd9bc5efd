#!/usr/bin/env python3
"""fimctl watch and change reconciliation (suite 'root'): a file written back to a state
'accept --also' kept is an `alternative` record, not a change; any other content still is one.

Usage: watch_reconcile_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import run_fimctl, run_main  # noqa: E402
from watch_test import Daemon, sha, small_tree  # noqa: E402


def case_alternative_in_use_is_no_change_to_watch(fimctl, tmp):
    """v2 accepted with --also beside v1: the daemon sees f0 written back to v1 as alternative 2
    (no change record), and a third content as a change."""
    tree, db = small_tree(fimctl, tmp)
    f0 = f"{tree}/f0"
    with open(f0, "w") as f:
        f.write("version 2")
    r = run_fimctl(fimctl, "check", db=db)
    assert r.rc == 4, (r.rc, r.stderr)
    r = run_fimctl(fimctl, "accept", "--yes", "--also", "--reason", "rollout", f0, db=db)
    assert r.rc == 0, (r.rc, r.stderr)
    with Daemon(fimctl, tmp, db) as d:
        with open(f0, "w") as f:
            f.write("file 0")  # the content small_tree baselined: alternative 2
        d.wait_for(lambda r: r["type"] == "alternative" and r["path"] == f0 and r["alternative"] == 2,
                   what="the alternative record")
        with open(f0, "w") as f:
            f.write("backdoor")
        d.wait_for(lambda r: r["type"] == "change" and r["path"] == f0 and
                   any(c["attr"] == "sha256" and c["new"] == sha(b"backdoor") for c in r.get("changes", [])),
                   what="the change to a third content")
        changes = [r for r in d.records() if r["type"] == "change" and r["path"] == f0]
        assert all(any(c["attr"] == "sha256" and c["new"] == sha(b"backdoor") for c in r["changes"])
                   for r in changes), f"the alternative was also reported as a change: {changes}"
        assert d.stop() == 0


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watch-reconcile.", as_root=True, doc=__doc__))
