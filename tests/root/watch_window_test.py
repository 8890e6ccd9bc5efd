#!/usr/bin/env python3
"""fimctl watch and maintenance windows that name a writer (suite 'root'): while the window is
open the daemon classifies each write below its paths by the process that made it, tags its own
records, and keeps in state.db what only the writer wrote; check and 'accept --window' then take
the deploy's files and not a change another process made at the same time.

Usage: watch_window_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no fanotify)."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import run_fimctl, run_main  # noqa: E402
from watch_test import Daemon, small_tree  # noqa: E402


def write_as(program, path, data):
    """Writes `data` to `path` from a shell whose command name is `program`'s file name (a copy
    of /bin/sh), which stays a moment: a writer gone before the daemon reads the event is unknown."""
    subprocess.run([program, "-c", 'printf %s "$1" > "$2"; sleep 0.5', "sh", data, path], check=True)


def case_window_takes_the_deploy_not_another_writer(fimctl, tmp):
    """window open --by-process deployer: f0 written by 'deployer' is tagged (daemon record,
    check) and taken by accept --window; f1 written at the same time by another process, and f2
    written by the deployer and then by another process, are not: they stay reported."""
    tree, db = small_tree(fimctl, tmp)
    deployer = os.path.join(tmp, "deployer")
    shutil.copy("/bin/sh", deployer)  # a command named 'deployer'
    with Daemon(fimctl, tmp, db) as d:
        r = run_fimctl(fimctl, "window", "open", "--for", "10m", "--reason", "CHG-7", "--by-process", "deployer",
                       tree, db=db, fmt=None)
        assert r.rc == 0, (r.rc, r.stderr)
        d.wait_for(lambda x: x["type"] == "alert" and x.get("code") == "baseline_replaced", what="the reload")
        time.sleep(0.6)  # the loop's timer begins classifying (4 times a second)
        write_as(deployer, f"{tree}/f0", "deployed")
        with open(f"{tree}/f1", "w") as f:
            f.write("intruder")
        write_as(deployer, f"{tree}/f2", "deployed")
        with open(f"{tree}/f2", "a") as f:
            f.write(" and tampered")
        d.wait_for(lambda x: x["type"] == "change" and x["path"] == f"{tree}/f0" and
                   (x.get("window") or {}).get("id") == "1", what="f0's change tagged with window 1")
        d.wait_for(lambda x: x["type"] == "change" and x["path"] == f"{tree}/f1", what="f1's change")
        d.wait_for(lambda x: x["type"] == "change" and x["path"] == f"{tree}/f2" and
                   any(c["attr"] == "size" and c["new"] == len("deployed and tampered") for c in x.get("changes", [])),
                   what="f2's tampered content")
        time.sleep(0.6)  # the writes reach state.db at the next tick
        last = {}
        for x in d.records():
            if x["type"] == "change":
                last[x["path"]] = (x.get("window") or {}).get("id")
        assert last[f"{tree}/f1"] is None and last[f"{tree}/f2"] is None, f"the daemon tagged another writer's: {last}"
        assert d.stop() == 0
    r = run_fimctl(fimctl, "check", db=db)
    assert r.rc == 4, (r.rc, r.stderr)
    tags = {x["path"]: (x.get("window") or {}).get("id") for x in json.loads(r.stdout)["records"] if x["type"] == "change"}
    assert tags.get(f"{tree}/f0") == "1", f"check does not tag the deployer's write: {tags}"
    assert tags.get(f"{tree}/f1") is None and tags.get(f"{tree}/f2") is None, f"check tags another writer's: {tags}"
    r = run_fimctl(fimctl, "accept", "--window", "1", "--yes", db=db)
    assert r.rc == 0, (r.rc, r.stderr)
    r = run_fimctl(fimctl, "check", db=db)
    left = {x["path"] for x in json.loads(r.stdout)["records"] if x["type"] == "change"}
    assert f"{tree}/f0" not in left and {f"{tree}/f1", f"{tree}/f2"} <= left, f"after accept --window: {left}"


def case_writes_while_the_daemon_was_down_are_not_tagged(fimctl, tmp):
    """The deployer writes while no daemon watches: nobody saw who wrote, so nothing is tagged,
    though the window names that writer and the change is inside it."""
    tree, db = small_tree(fimctl, tmp)
    deployer = os.path.join(tmp, "deployer")
    shutil.copy("/bin/sh", deployer)
    r = run_fimctl(fimctl, "window", "open", "--for", "10m", "--reason", "CHG-8", "--by-process", "deployer", tree,
                   db=db, fmt=None)
    assert r.rc == 0, (r.rc, r.stderr)
    write_as(deployer, f"{tree}/f0", "deployed")
    r = run_fimctl(fimctl, "check", db=db)
    assert r.rc == 4, (r.rc, r.stderr)
    assert not any(x.get("window") for x in json.loads(r.stdout)["records"]), r.stdout
    r = run_fimctl(fimctl, "accept", "--window", "1", "--yes", db=db)
    assert r.rc == 16 and "tags none of the" in r.stderr, (r.rc, r.stderr)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watch-window.", as_root=True, doc=__doc__))
