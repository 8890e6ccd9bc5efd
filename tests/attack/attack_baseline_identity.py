#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Attacks that make fimctl compare with the wrong baseline (docs/design.md, Baseline:
identity): a different validly signed baseline copied into place (a decoy of other roots, at a
higher sequence), an older one restored after state.db was deleted, a key pair of the
intruder's own put in place of the host's, and init run over the baseline in use. Each must be
refused (exit 18, or 16 for init) with an alert where the issue asks for one, and the
operator's own ways out (init --force, adopt, key rotate, key sign) must still work.

Usage: attack_baseline_identity.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Root: the trusted.fimctl.identity attribute is root's to set and
read. Each case works in its own temporary directory.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import Ctx as CaseCtx, Skip, expect, fimctl_argv, run, run_main  # noqa: E402


class Ctx(CaseCtx):
    """A signed baseline of TMP/tree at TMP/var/baseline.db (state.db beside it), keys in
    TMP/keys; a decoy tree at TMP/decoy."""

    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.dir = os.path.join(tmp, "var")
        os.mkdir(self.dir, 0o700)
        self.db = os.path.join(self.dir, "baseline.db")
        self.keys = os.path.join(tmp, "keys")
        self.decoy = os.path.join(tmp, "decoy")
        for top, names in ((self.tree, ("passwd", "shadow", "sudoers")), (self.decoy, ("nothing", "here"))):
            os.mkdir(top)
            for n in names:
                with open(os.path.join(top, n), "w") as f:
                    f.write(f"{n}\n")

    def fim(self, *args, db=None, rc_want=None, fmt="ndjson"):
        r = run(fimctl_argv(self.fimctl, *args, db=db or self.db, keys=self.keys, unsigned=False, fmt=fmt))
        if rc_want is not None:
            expect(r.rc == rc_want, lambda: f"{args}: exit {r.rc}, want {rc_want}\nstderr: {r.stderr}\n"
                                            f"stdout: {r.stdout[:2000]}")
        return r

    def signed_baseline(self):
        self.fim("key", "generate", fmt=None, rc_want=0)
        self.fim("init", self.tree, rc_want=0)

    def tamper(self):
        with open(os.path.join(self.tree, "shadow"), "a") as f:
            f.write("intruder::0:0::/:/bin/sh\n")

    def state_db(self):
        return os.path.join(self.dir, "state.db")

    def remove_state(self):
        for n in os.listdir(self.dir):
            if n.startswith("state.db"):
                os.unlink(os.path.join(self.dir, n))


def alerts(r):
    return [json.loads(line) for line in r.stdout.splitlines()
            if line.startswith("{") and json.loads(line).get("type") == "alert"]


def refused(r, words, alert=None):
    """Exit 18 with `words` in the error, no report, and (given) the alert named."""
    expect(r.rc == 18, lambda: f"exit {r.rc}, want 18 (refused)\nstderr: {r.stderr}\nstdout: {r.stdout[:1500]}")
    expect(words in r.stderr, lambda: f"the error does not say {words!r}: {r.stderr}")
    expect('"type":"change"' not in r.stdout.replace(" ", ""), lambda: f"a report was printed: {r.stdout[:1500]}")
    if alert:
        codes = [a.get("code") for a in alerts(r)]
        expect(alert in codes or f"fimctl: error: {alert}: " in r.stderr,
               lambda: f"no {alert!r} alert: alerts {codes}, stderr {r.stderr}")


def case_decoy_baseline_copied_over_refused(ctx):
    """A decoy of other roots, signed with the host's own key and updated past the real
    baseline's sequence, copied over it: check refuses it (18) naming adopt, whatever the tree."""
    ctx.signed_baseline()
    decoy_db = os.path.join(ctx.tmp, "decoy.db")
    ctx.fim("init", ctx.decoy, db=decoy_db, rc_want=0)
    for i in range(3):
        ctx.fim("update", "--yes", "--reason", f"decoy {i}", db=decoy_db, rc_want=0)
    ctx.tamper()
    shutil.copyfile(decoy_db, ctx.db)
    r = ctx.fim("check")
    refused(r, "baseline")
    expect("fimctl adopt" in r.stderr, f"the refusal does not name adopt: {r.stderr}")
    expect(ctx.decoy in r.stderr, f"the refusal does not print the decoy's roots: {r.stderr}")


def case_decoy_baseline_with_xattr_refused(ctx):
    """The same decoy copied with cp -a as root, so that it carries a trusted.fimctl.identity
    attribute of its own: still refused, it is not the baseline pinned here."""
    ctx.signed_baseline()
    decoy_db = os.path.join(ctx.dir, "decoy.db")
    ctx.fim("init", ctx.decoy, db=decoy_db, rc_want=0)
    ctx.fim("update", "--yes", "--reason", "decoy", db=decoy_db, rc_want=0)
    subprocess.run(["cp", "-a", decoy_db, ctx.db], check=True)
    refused(ctx.fim("check"), "baseline")
    refused(ctx.fim("update", "--yes", "--reason", "quietly"), "baseline")


def case_rollback_after_state_db_deleted_refused(ctx):
    """An older validly signed baseline restored after state.db was deleted (the rollback check
    lived only there): refused with the alert state_reset, whether the copy kept the file's
    trusted.fimctl.identity attribute (cp -a) or not (cp)."""
    ctx.signed_baseline()
    old_plain, old_attr = os.path.join(ctx.tmp, "old.db"), os.path.join(ctx.dir, "old-a.db")
    shutil.copyfile(ctx.db, old_plain)
    subprocess.run(["cp", "-a", ctx.db, old_attr], check=True)
    ctx.tamper()
    ctx.fim("update", "--yes", "--reason", "real change", rc_want=4)
    for old, replace in ((old_plain, True), (old_attr, True), (old_plain, False)):
        ctx.remove_state()
        if replace:  # a new file at the path (else the old bytes are written into the file in use)
            os.unlink(ctx.db)
        subprocess.run(["cp", "-a", old, ctx.db], check=True)
        refused(ctx.fim("check"), "baseline", alert="state_reset")


def case_state_db_recreated_refused(ctx):
    """state.db deleted beside the baseline in use (no file swapped): the attribute says fimctl
    wrote the file here, state.db knows nothing: refused with state_reset until the operator
    adopts, which is journalled; then check runs again."""
    ctx.signed_baseline()
    ctx.remove_state()
    refused(ctx.fim("check"), "state.db", alert="state_reset")
    r = ctx.fim("adopt", ctx.db, fmt=None)
    expect(r.rc == 16 and "--reason" in r.stderr, f"adopt without --reason: exit {r.rc}: {r.stderr}")
    ctx.fim("adopt", ctx.db, "--reason", "state.db lost with /var", fmt=None, rc_want=0)
    ctx.fim("check", rc_want=0)
    log = ctx.fim("log", fmt="plain", rc_want=0).stdout
    expect("adopt" in log and "state.db lost with /var" in log, f"the adoption is not journalled: {log}")


def case_adopt_of_edited_backup_refused(ctx):
    """adopt is no way around verification: a backup with one recorded digest edited (and
    one left unsigned with a key configured) is refused (18), the baseline in use untouched."""
    import hashlib
    ctx.signed_baseline()
    before = open(ctx.db, "rb").read()
    backup = os.path.join(ctx.dir, "backup.db")
    data = bytearray(before)
    i = data.find(hashlib.sha256(b"shadow\n").digest())
    expect(i > 0, "the digest of tree/shadow is not in the baseline file")
    data[i] ^= 1
    with open(backup, "wb") as f:
        f.write(data)
    r = ctx.fim("adopt", backup, "--reason", "restore", fmt=None)
    expect(r.rc == 18, f"adopt of an edited backup: exit {r.rc}: {r.stderr}")
    unsigned = os.path.join(ctx.dir, "unsigned.db")
    r = run(fimctl_argv(ctx.fimctl, "init", ctx.decoy, db=unsigned, keys=os.path.join(ctx.tmp, "nokeys")))
    expect(r.rc == 0, r.stderr)
    r = ctx.fim("adopt", unsigned, "--reason", "restore", fmt=None)
    expect(r.rc == 18, f"adopt of an unsigned baseline with a key configured: exit {r.rc}: {r.stderr}")
    expect(open(ctx.db, "rb").read() == before, "a refused adopt changed the baseline")
    ctx.fim("check", rc_want=0)


def case_intruder_key_pair_resign_refused(ctx):
    """The intruder replaces signing.key and signing.pub with a pair of their own and re-signs
    an edited baseline (key sign) or re-inits (init --force): the pinned key refuses both with
    the alert key_changed."""
    ctx.signed_baseline()
    ctx.tamper()
    shutil.rmtree(ctx.keys)
    ctx.fim("key", "generate", fmt=None, rc_want=0)
    ctx.fim("key", "sign", ctx.db, fmt=None, rc_want=0)
    refused(ctx.fim("check"), "key", alert="key_changed")
    r = ctx.fim("init", "--force", ctx.tree)
    refused(r, "key", alert="key_changed")


def case_key_rotate_is_vouched_for(ctx):
    """key rotate: the old key vouches for the new one; the successor verifies, the journal
    holds both key ids, the old pair is kept, and a pair swapped in behind rotate's back is
    still refused."""
    ctx.signed_baseline()
    old_id = open(os.path.join(ctx.keys, "signing.pub")).read()
    r = ctx.fim("key", "rotate", fmt=None)
    expect(r.rc == 16 and "--reason" in r.stderr, f"rotate without --reason: exit {r.rc}: {r.stderr}")
    ctx.fim("key", "rotate", "--reason", "yearly rotation", fmt=None, rc_want=0)
    kept = [n for n in os.listdir(ctx.keys) if n.startswith("signing.pub.old-")]
    expect(len(kept) == 1 and open(os.path.join(ctx.keys, kept[0])).read() == old_id, f"old pair not kept: {kept}")
    ctx.fim("check", rc_want=0)
    log = ctx.fim("log", fmt="ndjson", rc_want=0).stdout
    entries = [json.loads(x) for x in log.splitlines() if x.strip()]
    rot = [e for e in entries if e.get("action") == "key rotate"]
    old_key = kept[0][len("signing.pub.old-"):]
    expect(rot and rot[-1]["old_row_sha256"] == old_key, f"rotate not journalled with the old key id: {entries}")


def case_init_over_baseline_refused(ctx):
    """init over the baseline in use (the README tour's trap): refused (16), the baseline
    byte for byte unchanged; init --force keeps it as .prev and journals the replacement."""
    ctx.signed_baseline()
    before = open(ctx.db, "rb").read()
    r = ctx.fim("init", ctx.decoy)
    expect(r.rc == 16 and "update" in r.stderr and "--force" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(open(ctx.db, "rb").read() == before, "init changed the baseline it refused to replace")
    ctx.fim("init", "--force", "--reason", "new layout", ctx.decoy, rc_want=0)
    expect(open(ctx.db + ".prev", "rb").read() == before, "the replaced baseline was not kept as .prev")
    log = ctx.fim("log", fmt="plain", rc_want=0).stdout
    expect("init --force" in log and "new layout" in log, f"the replacement is not journalled: {log}")
    ctx.fim("check", rc_want=0)


def case_key_sign_prints_roots(ctx):
    """key sign says what it signs: the roots (a swapped unsigned decoy is visible before it is
    signed), and the host's check accepts the baseline signed off the host and copied back."""
    r = run(fimctl_argv(ctx.fimctl, "init", ctx.tree, db=ctx.db, keys=ctx.keys))  # unsigned on the host
    expect(r.rc == 0, r.stderr)
    os.makedirs(ctx.keys, exist_ok=True)
    off = os.path.join(ctx.tmp, "offhost")
    r = run(fimctl_argv(ctx.fimctl, "key", "generate", db=ctx.db, keys=off, fmt=None))
    expect(r.rc == 0, r.stderr)
    copy = os.path.join(ctx.tmp, "copy.db")
    shutil.copyfile(ctx.db, copy)
    r = run(fimctl_argv(ctx.fimctl, "key", "sign", copy, db=ctx.db, keys=off, fmt=None))
    expect(r.rc == 0 and ctx.tree in r.stdout, f"key sign does not print the roots: {r.stdout} {r.stderr}")
    shutil.copy(os.path.join(off, "signing.pub"), os.path.join(ctx.keys, "signing.pub"))
    shutil.copyfile(copy, ctx.db)  # over the file: it keeps its trusted.fimctl.identity attribute
    ctx.fim("check", rc_want=0)


def case_same_baseline_moved_into_place_refused(ctx):
    """The baseline in use, copied to a new file and renamed over itself: same bytes, but not
    the file fimctl wrote (no trusted.fimctl.identity attribute), so refused; adopt takes it."""
    ctx.signed_baseline()
    shutil.copyfile(ctx.db, ctx.db + ".new")
    os.rename(ctx.db + ".new", ctx.db)
    refused(ctx.fim("check"), "attribute")
    ctx.fim("adopt", ctx.db, "--reason", "restored with a tool that drops xattrs", fmt=None, rc_want=0)
    ctx.fim("check", rc_want=0)


def case_state_db_forged_to_pin_decoy_refused(ctx):
    """state.db rewritten to pin a decoy (its id, roots, key and sequence), the decoy moved into
    place: the pin agrees, but the file lacks the attribute the pinned baseline had."""
    import sqlite3
    ctx.signed_baseline()
    other = os.path.join(ctx.tmp, "other")
    os.mkdir(other, 0o700)
    decoy_db = os.path.join(other, "decoy.db")
    ctx.fim("init", ctx.decoy, db=decoy_db, rc_want=0)
    ctx.fim("update", "--yes", "--reason", "decoy", db=decoy_db, rc_want=0)
    with sqlite3.connect(os.path.join(other, "state.db")) as src:
        row = src.execute("SELECT id, roots_sha256, key_id, seq FROM identity").fetchone()
    with sqlite3.connect(ctx.state_db()) as dst:
        dst.execute("UPDATE identity SET id = ?, roots_sha256 = ?, key_id = ?, seq = ?", row)
    shutil.copyfile(decoy_db, ctx.db + ".new")
    os.rename(ctx.db + ".new", ctx.db)
    refused(ctx.fim("check"), "attribute")


def case_policy_change_update_repins_roots(ctx):
    """This host's own update under a policy with another root re-pins the roots: check under
    the new policy then passes (no refusal for the roots it changed itself)."""
    ctx.fim("key", "generate", fmt=None, rc_want=0)
    pols = []
    for n, roots in enumerate(([ctx.tree], [ctx.tree, ctx.decoy])):
        pols.append(os.path.join(ctx.tmp, f"policy{n}.toml"))
        with open(pols[-1], "w") as f:
            f.write("version = 1\n" + "".join(f'[[rule]]\npath = "{r}"\n' for r in roots))
    fim = lambda pol, *a: run(fimctl_argv(ctx.fimctl, *a, db=ctx.db, keys=ctx.keys, unsigned=False, config=pol))
    r = fim(pols[0], "init")
    expect(r.rc == 0, r.stderr)
    r = fim(pols[1], "update", "--yes", "--reason", "decoy tree is watched too")
    expect(r.rc < 16, f"update: exit {r.rc}: {r.stderr}")  # the new root's entries added (1), policy changed (8)
    r = fim(pols[1], "check")
    expect(r.rc == 0, f"check after the host's own update: {r.rc} {r.stderr}")


def case_decoy_swapped_under_running_watch_refused(ctx):
    """The decoy copied over the baseline under a running daemon: the daemon does not adopt it
    as an update (it used to, and then watched the decoy's roots); it stops with 18, naming the
    baseline, and status no longer says all is well."""
    sys.path.insert(0, os.path.join(HERE, "..", "root"))
    from watch_test import Daemon, small_tree  # noqa: E402
    tree, db = small_tree(ctx.fimctl, ctx.tmp)
    decoy_db = os.path.join(ctx.tmp, "decoy.db")
    r = run(fimctl_argv(ctx.fimctl, "init", ctx.decoy, db=decoy_db))
    expect(r.rc == 0, r.stderr)
    for i in range(2):
        r = run(fimctl_argv(ctx.fimctl, "update", "--yes", "--reason", f"decoy {i}", db=decoy_db))
        expect(r.rc == 0, r.stderr)
    with Daemon(ctx.fimctl, ctx.tmp, db) as d:
        shutil.copyfile(decoy_db, db + ".new")
        os.rename(db + ".new", db)
        with open(f"{tree}/f0", "w") as f:
            f.write("changed after the swap")
        try:
            d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recs = [r for r in d.records() if r["type"] == "alert"]
            raise AssertionError(f"the daemon still runs after the swap; alerts: {recs}")
        expect(d.proc.returncode == 18 and "baseline" in d.stderr(), f"exit {d.proc.returncode}: {d.stderr()}")


def case_decoy_with_state_db_made_unreadable_refused(ctx):
    """Whoever can rename files in the baseline's directory needs no new file to switch the pin
    off: the lock file fimctl leaves there (root's, regular, one link) renamed over state.db
    makes state.db unreadable ("file is not a database"), and a decoy is then judged by its
    trusted.fimctl.identity attribute alone, which a decoy fimctl wrote in that directory
    carries for itself, and which a symlink to a decoy elsewhere lacks (absent passes). Both
    must be refused (18), not compared with (exit 0 and a warning)."""
    ctx.signed_baseline()
    decoy_db = os.path.join(ctx.dir, "decoy.db")
    ctx.fim("init", ctx.decoy, db=decoy_db, rc_want=0)
    outside = os.path.join(ctx.tmp, "outside.db")
    shutil.copyfile(decoy_db, outside)  # root's, on a trusted path, no attribute
    ctx.tamper()
    lock = ctx.db + ".lock"
    expect(os.path.exists(lock), f"no lock file beside the baseline: {os.listdir(ctx.dir)}")
    os.rename(ctx.state_db(), os.path.join(ctx.dir, "state.db.saved"))
    os.rename(lock, ctx.state_db())
    os.rename(decoy_db, ctx.db)
    r = ctx.fim("check")
    expect(r.rc == 18, lambda: f"decoy (renamed in, own attribute) with state.db unreadable: exit {r.rc}, want 18\n"
                               f"stderr: {r.stderr}\nstdout: {r.stdout[:1500]}")
    os.unlink(ctx.db)
    os.symlink(outside, ctx.db)
    r = ctx.fim("check")
    expect(r.rc == 18, lambda: f"decoy (symlink, no attribute) with state.db unreadable: exit {r.rc}, want 18\n"
                               f"stderr: {r.stderr}\nstdout: {r.stdout[:1500]}")


def case_rollback_kept_aside_with_state_db_made_unreadable_never_clean(ctx):
    """The limit without state.db, played: a copy of the baseline kept aside with the attribute
    fimctl wrote for this path (cp -a by root, or a file renamed aside), the operator removes a
    planted setuid file and updates, the intruder plants it again, makes state.db unreadable
    (the lock renamed over it) and renames the old copy back. Nothing left can tell that copy
    from the current one, so the run must never pass as clean: alert 'state' and exit bit 8
    (the old fimctl gave 5: the alert, but not the bit)."""
    ctx.signed_baseline()
    planted = os.path.join(ctx.tree, "suid")
    with open(planted, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(planted, 0o4755)
    ctx.fim("update", "--yes", "--reason", "seen")
    kept = os.path.join(ctx.dir, "kept.db")
    subprocess.run(["cp", "-a", ctx.db, kept], check=True)  # with the attribute fimctl wrote for the path
    os.unlink(planted)
    ctx.fim("update", "--yes", "--reason", "removed the planted setuid file")
    with open(planted, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(planted, 0o4755)
    os.rename(ctx.state_db(), os.path.join(ctx.dir, "state.db.saved"))
    os.rename(ctx.db + ".lock", ctx.state_db())
    os.rename(kept, ctx.db)
    r = ctx.fim("check")
    expect(r.rc != 0 and r.rc & 8 and r.rc < 16,
           lambda: f"rollback with state.db unreadable: exit {r.rc}, want the alert bit (8)\nstderr: {r.stderr}\n"
                   f"stdout: {r.stdout[:1500]}")
    expect("state" in [a.get("code") for a in alerts(r)], lambda: f"no 'state' alert: {r.stdout[:1500]}")


def case_baseline_on_read_only_media_still_checks(ctx):
    """The other side of refusing an unpinned baseline when state.db cannot be used: a baseline
    copied (without its attribute) to a read-only filesystem, where no state.db can be made,
    is still checked (nobody can have put a file there since it was mounted), clean is 0, and a
    change is reported."""
    if os.geteuid() != 0:
        raise Skip("mounts a tmpfs read-only: needs root")
    ctx.signed_baseline()
    media = os.path.join(ctx.tmp, "media")
    os.mkdir(media)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", media], check=True)
    try:
        shutil.copyfile(ctx.db, os.path.join(media, "baseline.db"))
        subprocess.run(["mount", "-o", "remount,ro", media], check=True)
        ro = os.path.join(media, "baseline.db")
        r = ctx.fim("check", db=ro)
        expect(r.rc == 0, lambda: f"clean check of a baseline on read-only media: exit {r.rc}\nstderr: {r.stderr}")
        ctx.tamper()
        r = ctx.fim("check", db=ro)
        expect(r.rc == 4, lambda: f"changed tree against read-only media: exit {r.rc}\nstderr: {r.stderr}")
    finally:
        subprocess.run(["umount", "-l", media], check=False)


def case_decoy_swapped_under_watch_with_state_db_made_unreadable_refused(ctx):
    """The same rename of the lock file over state.db, then a decoy fimctl wrote in the
    baseline's directory renamed over the baseline, under a running daemon: it must stop (18)
    as it does when state.db is intact, not alert 'state', adopt the decoy as a replaced
    baseline and go on watching the decoy's roots."""
    sys.path.insert(0, os.path.join(HERE, "..", "root"))
    from watch_test import Daemon, small_tree  # noqa: E402
    tree, db = small_tree(ctx.fimctl, ctx.tmp)
    d_dir = os.path.dirname(db)
    decoy_db = os.path.join(d_dir, "decoy.db")
    r = run(fimctl_argv(ctx.fimctl, "init", ctx.decoy, db=decoy_db))
    expect(r.rc == 0, r.stderr)
    with Daemon(ctx.fimctl, ctx.tmp, db) as d:
        os.rename(os.path.join(d_dir, "state.db"), os.path.join(d_dir, "state.db.saved"))
        os.rename(db + ".lock", os.path.join(d_dir, "state.db"))
        os.rename(decoy_db, db)
        with open(f"{tree}/f0", "w") as f:
            f.write("changed after the swap")
        try:
            d.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recs = [(x.get("type"), x.get("code") or x.get("reason")) for x in d.records()
                    if x["type"] in ("alert", "rescan_start")]
            raise AssertionError(f"the daemon still runs after the swap; alerts and rescans: {recs}")
        expect(d.proc.returncode == 18 and "baseline" in d.stderr(), f"exit {d.proc.returncode}: {d.stderr()}")


CASES = {name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-attack-identity-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), as_root=True,
                      doc=__doc__))
