#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""check --fast against what file times cannot see (suite 'root').

Usage: fast_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no loop device, mkfs.ext4 or debugfs).

  block_device_write_*   a file's data rewritten on the block device beneath a loop-mounted ext4
                         (unmounted, the image written, mounted again on the same loop device):
                         its times, inode and handle are those recorded, so a fast check rests on
                         stat and does not see it (the documented limit); --full finds it at once,
                         and so does the fast check whose rolling re-hash reaches it
  watched_evidence_*     a watch daemon's coverage as evidence, and a change made while it was down
"""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, expect, need_tool, run_fimctl, run_main  # noqa: E402

BLOCK = 4096


def sh(*argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    expect(p.returncode == 0, f"{' '.join(argv)}: exit {p.returncode}: {p.stderr}")
    return p.stdout


def policy(tmp, root, rehash):
    path = f"{tmp}/fimctl.toml"
    with open(path, "w") as f:
        f.write(f'version = 1\n[options]\nrehash_interval = "{rehash}"\n[[rule]]\npath = "{root}"\n')
    return path


def check(fimctl, tmp, config, *args):
    r = run_fimctl(fimctl, "check", *args, db=f"{tmp}/db/baseline.db", config=config, fmt="ndjson")
    recs = [json.loads(line) for line in r.out.splitlines()]
    expect(recs and recs[-1]["type"] == "summary", f"check {args}: exit {r.rc}: {r.stderr}")
    return r.rc, recs[-1], {x["path"]: x for x in recs if x["type"] == "change"}


def case_block_device_write_found_by_full_and_rolling(fimctl, tmp):
    for tool in ("mkfs.ext4", "debugfs", "losetup", "blockdev"):
        need_tool(tool)
    img, mnt = f"{tmp}/ext4.img", f"{tmp}/mnt"
    os.makedirs(mnt)
    os.makedirs(f"{tmp}/db", mode=0o700)
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    sh("mkfs.ext4", "-q", "-F", "-b", str(BLOCK), "-O", "^has_journal", img)
    loop = subprocess.run(["losetup", "--find", "--show", img], capture_output=True, text=True)
    if loop.returncode != 0:
        raise Skip(f"no loop device: {loop.stderr.strip()}")
    dev = loop.stdout.strip()
    try:
        sh("mount", dev, mnt)
        for i in range(20):
            with open(f"{mnt}/f{i}", "wb") as f:
                f.write(b"clean %d\n" % i * 100)
        victim = f"{mnt}/victim"
        with open(victim, "wb") as f:
            f.write(b"A" * BLOCK)
        os.sync()
        config = policy(tmp, mnt, "7d")
        r = run_fimctl(fimctl, "init", db=f"{tmp}/db/baseline.db", config=config)
        expect(r.rc == 0, f"init: {r.stderr}")
        rc, s, _ = check(fimctl, tmp, config, "--fast")
        total = s["entries"]
        # The run before: every entry, the victim among them, rested on stat evidence.
        expect(rc == 0 and s["evidence"]["stat"] == total and s["evidence"]["hashed"] == 0, s)

        sh("umount", mnt)
        out = sh("debugfs", "-R", "bmap /victim 0", img)
        block = int(re.search(r"(\d+)", out).group(1))
        with open(img, "r+b") as f:
            f.seek(block * BLOCK)
            expect(f.read(4) == b"AAAA", "debugfs named another block")
            f.seek(block * BLOCK)
            f.write(b"B" * BLOCK)
            f.flush()
            os.fsync(f.fileno())
        sh("blockdev", "--flushbufs", dev)
        sh("mount", dev, mnt)  # the same loop device
        with open(victim, "rb") as f:
            expect(f.read(4) == b"BBBB", "the write beneath did not reach the mounted file")

        rc, s, changes = check(fimctl, tmp, config, "--fast")
        expect(rc == 0 and victim not in changes and s["evidence"]["stat"] == total,
               f"the limit the rolling re-hash bounds: a fast check cannot see this: exit {rc}, {s['evidence']}")
        rc, s, changes = check(fimctl, tmp, config, "--full")
        expect(rc == 4 and victim in changes, f"--full: exit {rc}, changes {list(changes)}")
        attrs = {c["attr"] for c in changes[victim]["changes"]}
        expect(attrs == {"sha256"}, f"only the content differs: {attrs}")

        # The rolling re-hash reaches it: with a 1 s interval every entry's turn has come.
        config = policy(tmp, mnt, "1s")
        time.sleep(1.2)
        rc, s, changes = check(fimctl, tmp, config, "--fast")
        expect(rc == 4 and victim in changes and changes[victim]["evidence"] == "hashed", f"rolling: exit {rc}: {s}")
        expect(s["evidence"]["rolling"] >= 20, s["evidence"])
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
        subprocess.run(["losetup", "-d", dev], capture_output=True)


def case_watched_evidence_ends_with_the_daemon(fimctl, tmp):
    """A watch daemon covers the tree: after a full check, a fast check rests every entry on
    `watched`. The daemon stops; a file is rewritten with its mtime put back while it is down;
    the next fast check claims nothing watched, finds the file (hashed) and rests the rest on stat."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from watch_test import Daemon, small_tree  # noqa: E402
    from watched_test import covered  # noqa: E402
    from fimtest import POLICY  # noqa: E402
    tree, db = small_tree(fimctl, tmp)

    def fast(sock):
        r = run_fimctl(fimctl, "check", "--fast", "--socket", sock, db=db, config=POLICY, fmt="ndjson")
        recs = [json.loads(line) for line in r.out.splitlines()]
        expect(recs and recs[-1]["type"] == "summary", f"check --fast: exit {r.rc}: {r.stderr}")
        return r.rc, recs[-1], {x["path"]: x for x in recs if x["type"] == "change"}

    with Daemon(fimctl, tmp, db) as d:
        covered(d, tree)
        r = run_fimctl(fimctl, "check", "--full", db=db, config=POLICY, fmt="json")
        expect(r.rc == 0, f"check --full: exit {r.rc}: {r.stderr}")
        rc, s, _ = fast(d.sock)
        expect(rc == 0 and s["evidence"]["watched"] == s["entries"], f"while covered: {s['evidence']}")
        expect(d.stop() == 0, "daemon stop")
        sock = d.sock
    victim = f"{tree}/f1"
    st = os.stat(victim)
    with open(victim, "r+") as f:
        f.write("X")
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    rc, s, changes = fast(sock)
    expect(rc == 4 and victim in changes and changes[victim]["evidence"] == "hashed", f"exit {rc}: {list(changes)}")
    expect(s["evidence"]["watched"] == 0 and s["evidence"]["stat"] == s["entries"] - 1, s["evidence"])


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-fast.", as_root=True, doc=__doc__))
