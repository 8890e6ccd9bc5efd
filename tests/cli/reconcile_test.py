#!/usr/bin/env python3
"""Change reconciliation (docs/design.md, Acceptance): the change ticket an acceptance is made
under (accept/update --ticket), kept in the signed, hash-chained journal and shown by log and the
reports; several good states of one path (accept --also, ok (alternative N),
--drop-alternatives), part of the signed content and kept by update.

Usage: reconcile_test.py --fimctl PATH (--list | CASE)"""
import hashlib
import json
import os
import re
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ecs_schema import Schema  # noqa: E402
from fimtest import expect, run_fimctl, run_main  # noqa: E402
from trust_test import Ctx as TrustCtx, journal_rows  # noqa: E402


class Ctx(TrustCtx):
    """trust_test's context (a signed baseline of TMP/tree, keys of its own) plus a file to edit."""

    def write(self, name, text, mode="w"):
        with open(os.path.join(self.tree, name), mode) as f:
            f.write(text)

    def reviewed(self, rc_want):
        """Runs check; the id of the report it printed."""
        return re.search(r"(?m)^report: ([0-9a-f]{24})$", self.ok("check", rc_want=rc_want)).group(1)


ECS = Schema()


def ndjson(out):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# --- tickets ------------------------------------------------------------------------------

def case_ticket_in_journal_log_and_reports(ctx):
    """accept/update --ticket: the ticket is in every journal entry the command writes, in
    'fimctl log' (plain and ndjson) and in the report's summary (plain, json, ndjson)."""
    ctx.signed_baseline()
    ctx.write("f", "v2\n")
    reviewed = ctx.reviewed(4)
    out = ctx.ok("accept", "--report", reviewed, "--reason", "deploy", "--ticket", "CHG-1234", ctx.tree + "/f")
    expect(re.search(r"(?m)^ticket: CHG-1234$", out), f"the accept report does not name the ticket: {out}")
    rows = journal_rows(ctx.db)
    expect(len(rows) == 1 and f"\nticket={b'CHG-1234'.hex()}\n" in rows[0][1] + "\n" and rows[0][1].endswith("\n"),
           f"the journal entry does not hold the ticket: {rows}")
    ctx.write("f", "v3\n")
    ctx.write("g", "new\n")
    rc, out, err = ctx.run("--format", "json", "update", "--yes", "--reason", "release", "--ticket", "REL-9")
    expect(rc == 5, f"update: exit {rc}: {err}")
    expect(json.loads(out)["summary"]["ticket"] == "REL-9", f"the json summary has no ticket: {out}")
    rows = journal_rows(ctx.db)
    expect(len(rows) >= 3 and all(f"ticket={b'REL-9'.hex()}" in r[1] for r in rows[1:]), rows)
    out = ctx.ok("log")
    expect(out.count("  ticket: CHG-1234\n") == 1 and out.count("  ticket: REL-9\n") == len(rows) - 1, out)
    rc, out, err = ctx.run("--format", "ndjson", "log")
    recs = ndjson(out)
    expect(rc == 0 and [r.get("ticket") for r in recs] == ["CHG-1234"] + ["REL-9"] * (len(rows) - 1), recs)
    ctx.write("f", "v4\n")
    ctx.reviewed(4)
    rc, out, err = ctx.run("--format", "ndjson", "accept", "--yes", "--reason", "r", "--ticket", "T-1", "--all")
    summary = [r for r in ndjson(out) if r["type"] == "summary"]
    expect(rc == 0 and summary and summary[0]["ticket"] == "T-1", f"exit {rc}: {out} {err}")
    # Without --ticket nothing is named: no empty ticket line, no ticket key.
    ctx.write("f", "v5\n")
    ctx.reviewed(4)
    out = ctx.ok("accept", "--yes", "--reason", "r", "--all")
    expect("ticket" not in out and "ticket=" not in journal_rows(ctx.db)[-1][1], out)


def case_ticket_edited_in_the_journal_refused(ctx):
    """The ticket is signed with the rest: changing it, adding one or removing it in a journal
    entry fails verification (18) for log and check."""
    ctx.signed_baseline()
    ctx.write("f", "v2\n")
    ctx.ok("accept", "--report", ctx.reviewed(4), "--reason", "r", "--ticket", "CHG-1", "--all")
    good = ctx.db + ".good"
    shutil.copyfile(ctx.db, good)
    one, two = b"CHG-1".hex(), b"CHG-2".hex()
    for sql in [f"UPDATE journal SET entry = CAST(replace(CAST(entry AS TEXT), '{one}', '{two}') AS BLOB)",
                f"UPDATE journal SET entry = CAST(replace(CAST(entry AS TEXT), 'ticket={one}\n', '') AS BLOB)",
                f"UPDATE journal SET entry = CAST(CAST(entry AS TEXT) || 'ticket={two}\n' AS BLOB)"]:
        shutil.copyfile(good, ctx.db)
        ctx.meta(sql)
        expect(open(ctx.db, "rb").read() != open(good, "rb").read(), f"the edit did nothing: {sql}")
        ctx.refused(18, "baseline", "log")
        ctx.refused(18, "baseline", "check")
    shutil.copyfile(good, ctx.db)
    expect("  ticket: CHG-1\n" in ctx.ok("log"), "the untouched copy does not verify")


def case_ticket_cannot_forge_journal_lines_or_the_terminal(ctx):
    """A ticket is any text, but it cannot add a line to the journal's text (it is hex there),
    nor drive the terminal that reads 'fimctl log' (escaped); an empty or over-long one is a
    usage error and changes nothing."""
    ctx.signed_baseline()
    ctx.write("f", "v2\n")
    reviewed = ctx.reviewed(4)
    before = open(ctx.db, "rb").read()
    for bad in ["", "x" * 257]:
        rc, out, err = ctx.run("accept", "--report", reviewed, "--reason", "r", "--ticket", bad, "--all")
        expect(rc == 16 and "--ticket" in err, f"--ticket {bad[:8]!r}: exit {rc}: {err}")
    expect(open(ctx.db, "rb").read() == before, "a refused --ticket changed the baseline")
    forged = "T\nreason=forged\nkind=removed\n\x1b]0;owned\x07\x1b[31m"
    ctx.ok("accept", "--report", reviewed, "--reason", "r", "--ticket", forged, "--all")
    text = journal_rows(ctx.db)[0][1]
    expect("reason=forged" not in text and text.count("\nkind=") == 1 and "\x1b" not in text, text)
    out = ctx.ok("log")
    expect("\x1b" not in out and "\x07" not in out and "reason: r\n" in out, f"log: {out!r}")
    expect(not re.search(r"(?m)^reason=forged", out), f"the ticket made a line of its own: {out!r}")
    rc, out, err = ctx.run("--format", "ndjson", "log")
    expect(ndjson(out)[0]["ticket"] == forged, f"ndjson does not keep the exact ticket: {out}")


# --- alternatives: several good states -------------------------------------------------------

def rewrite(ctx, name, text):
    """The file written again as a deploy writes it: a new inode, new times, the same bytes."""
    path = os.path.join(ctx.tree, name)
    os.unlink(path)
    ctx.write(name, text)


def rollout(ctx):
    """A signed baseline of f = v1, then v2 deployed and accepted with --also."""
    ctx.write("f", "v1\n")
    ctx.signed_baseline()
    ctx.write("f", "v2\n")
    ctx.ok("accept", "--report", ctx.reviewed(4), "--reason", "rollout", "--also", ctx.tree + "/f")
    ctx.ok("check")


def alternative_records(out):
    return [r for r in ndjson(out) if r["type"] == "alternative"]


def case_alternative_reported_ok_and_nothing_else_is(ctx):
    """After accept --also, the previous version written again is 'ok (alternative 2)' in plain,
    json and ndjson (no exit bit, not in the report id); any other content, or the old content
    with another mode or owner, is a change as before."""
    rollout(ctx)
    f = ctx.tree + "/f"
    rewrite(ctx, "f", "v1\n")
    os.utime(ctx.tree, ns=(0, os.stat(ctx.tree).st_mtime_ns))  # only f differs in kind, not the dir's atime
    out = ctx.ok("check", f)
    expect(f"ok (alternative 2): {f}" in out and "changed:" not in out, out)
    expect(re.search(r"(?m)^alternatives: 1 ", out), out)
    rc, out, err = ctx.run("--format", "ndjson", "check", f)
    alts = alternative_records(out)
    expect(rc == 0 and len(alts) == 1 and alts[0]["path"] == f and alts[0]["alternative"] == 2, out)
    expect(not [r for r in ndjson(out) if r["type"] == "change"], out)
    summary = [r for r in ndjson(out) if r["type"] == "summary"][0]
    expect(summary["alternatives"] == 1 and summary["changed"] == 0, summary)
    rc, out, err = ctx.run("--format", "json", "check", f)
    expect(rc == 0 and json.loads(out)["summary"]["alternatives"] == 1, out)
    rc, out, err = ctx.run("--format", "ecs", "check", f)
    docs = ndjson(out)
    for d in docs:
        expect(not ECS.problems(d), f"invalid ECS document: {ECS.problems(d)}: {d}")
    alt = [d for d in docs if d["event"]["dataset"] == "fimctl.alternative"]
    expect(rc == 0 and len(alt) == 1 and alt[0]["file"]["path"] == f and alt[0]["fimctl"]["alternative"] == 2, docs)
    # Not a state that was accepted: reported as changed.
    for attack in ("mode", "content", "owner"):
        rewrite(ctx, "f", "v1\n" if attack != "content" else "v1 with a backdoor\n")
        if attack == "mode":
            os.chmod(f, 0o4755)
        if attack == "owner":
            if os.geteuid() != 0:
                continue
            os.chown(f, 1, 1)
        rc, out, err = ctx.run("--format", "ndjson", "check", f)
        changes = [r for r in ndjson(out) if r["type"] == "change"]
        expect(rc == 4 and len(changes) == 1 and not alternative_records(out), f"{attack}: exit {rc}: {out}")
    # The entry's own row stays exact: v2 written again has new times, a change as before.
    rewrite(ctx, "f", "v2\n")
    rc, out, err = ctx.run("check", f)
    expect(rc == 4 and "alternative" not in out and "  sha256:" not in out, f"exit {rc}: {out}")
    # A third version, accepted with --also too: v1 and v2 are alternatives 2 and 3.
    ctx.write("f", "v3\n")
    ctx.ok("accept", "--report", ctx.reviewed(4), "--reason", "next wave", "--also", f)
    for text, n in (("v1\n", 2), ("v2\n", 3)):
        rewrite(ctx, "f", text)
        expect(f"ok (alternative {n}): {f}" in ctx.ok("check", f), f"{text!r} is not alternative {n}")


def case_alternatives_are_signed(ctx):
    """An intruder who adds his version as an alternative, edits one or removes one (or strips
    the table and calls the file schema 3) breaks the baseline's verification (18)."""
    rollout(ctx)
    good = ctx.db + ".good"
    shutil.copyfile(ctx.db, good)
    evil = hashlib.sha256(b"evil\n").digest().hex()
    con = sqlite3.connect(ctx.db)
    columns = ", ".join(c[1] for c in con.execute("PRAGMA table_info(alternatives)") if c[1] != "n")
    con.close()
    for sql in [f"UPDATE alternatives SET sha256 = X'{evil}'",
                "DELETE FROM alternatives",
                f"INSERT INTO alternatives SELECT {columns}, 3 FROM alternatives",
                "DROP TABLE alternatives; PRAGMA user_version = 3; UPDATE meta SET value = '3' WHERE key = 'schema_version'"]:
        shutil.copyfile(good, ctx.db)
        con = sqlite3.connect(ctx.db)
        con.executescript(sql)
        con.commit()
        con.close()
        rc, out, err = ctx.run("check")
        expect(rc in (17, 18) and out == "", f"{sql}: exit {rc}: {err}")
    shutil.copyfile(good, ctx.db)
    ctx.ok("check")


def case_alternatives_survive_update(ctx):
    """update keeps the alternatives: one found in use becomes the entry's row and the row it
    replaces takes its number (journalled), so both versions stay good; an entry update removes
    takes its alternatives with it."""
    rollout(ctx)
    f = ctx.tree + "/f"
    rewrite(ctx, "f", "v1\n")
    ctx.write("g", "unrelated\n")
    out = ctx.ok("update", "--yes", "--reason", "release", rc_want=5)  # g added, the directory changed
    expect(f"ok (alternative 2): {f}" in out, out)
    expect(any("\nkind=alternative\n" in r[1] for r in journal_rows(ctx.db)), "the swap is not journalled")
    ctx.ok("check")
    rewrite(ctx, "f", "v2\n")
    out = ctx.ok("check", f)
    expect(f"ok (alternative 2): {f}" in out, f"v2 is no longer good after update: {out}")
    # v1 is the entry's row now, exact as rows are: written again, only its times differ.
    rewrite(ctx, "f", "v1\n")
    rc, out, err = ctx.run("check", f)
    expect(rc == 4 and "  sha256:" not in out and "alternative" not in out, f"exit {rc}: {out}")
    os.unlink(f)
    ctx.ok("update", "--yes", "--reason", "retired", rc_want=6)
    con = sqlite3.connect(ctx.db)
    expect(con.execute("SELECT count(*) FROM alternatives").fetchone()[0] == 0, "a removed entry kept its alternatives")
    con.close()


def case_drop_alternatives_ends_them(ctx):
    """accept --drop-alternatives PATH: the old version is a change again; journalled; refused
    (16, nothing written) for a path without alternatives, and with --also."""
    rollout(ctx)
    f = ctx.tree + "/f"
    before = open(ctx.db, "rb").read()
    ctx.refused(16, "has no alternatives", "accept", "--drop-alternatives", "--reason", "r", ctx.tree)
    rc, out, err = ctx.run("accept", "--drop-alternatives", "--also", "--reason", "r", f)
    expect(rc == 16 and "excludes" in err, f"exit {rc}: {err}")
    expect(open(ctx.db, "rb").read() == before, "a refused drop changed the baseline")
    ctx.ok("accept", "--drop-alternatives", "--reason", "rollout done", "--ticket", "CHG-2", f)
    log = ctx.ok("log")
    expect("reason: alternatives dropped (--drop-alternatives): rollout done" in log, log)
    rewrite(ctx, "f", "v1\n")
    rc, out, err = ctx.run("check", f)
    expect(rc == 4 and "changed: " + f in out and "alternative" not in out, f"exit {rc}: {out}")


def case_also_refused_for_added_or_removed(ctx):
    """--also keeps a previous state beside a new one: an added or removed entry has no two
    states; refused (16) and nothing accepted."""
    ctx.signed_baseline()
    ctx.write("new", "n\n")
    os.unlink(os.path.join(ctx.tree, "f"))
    reviewed = ctx.reviewed(7)
    before = open(ctx.db, "rb").read()
    for path, kind in ((ctx.tree + "/new", "was added"), (ctx.tree + "/f", "was removed")):
        ctx.refused(16, kind, "accept", "--report", reviewed, "--reason", "r", "--also", path)
    expect(open(ctx.db, "rb").read() == before, "a refused --also changed the baseline")


def case_alternative_kept_under_a_weaker_rule_vouches_for_no_content(ctx):
    """An alternative kept while the rule recorded no sha256 (perms and size only) does not
    match once the rule hashes again: an intruder's content of the same size is a change."""
    policy = os.path.join(ctx.tmp, "policy.toml")

    def fim(attrs, *args, rc_want=0):
        with open(policy, "w") as f:
            f.write(f'version = 1\n[options]\ndefault_attrs = "R"\n[[rule]]\npath = "{ctx.tree}"\n{attrs}\n')
        r = run_fimctl(ctx.fimctl, *args, config=policy, db=ctx.db, fmt=None)
        expect(r.rc == rc_want, f"{args}: exit {r.rc}, want {rc_want}: {r.stderr} {r.stdout}")
        return r.stdout

    ctx.write("f", "v1\n")
    weak = 'attrs = "perms + size"'
    fim(weak, "init", ctx.tree)
    ctx.write("f", "v2-longer\n")
    fim(weak, "check", rc_want=4)
    fim(weak, "accept", "--yes", "--also", "--reason", "r", ctx.tree + "/f")
    fim("", "update", "--yes", "--reason", "hash again", rc_want=8)  # bit 8: the policy changed
    rewrite(ctx, "f", "EV\n")  # v1's size, other bytes
    out = fim("", "check", ctx.tree + "/f", rc_want=4)
    expect("alternative" not in out and "  sha256:" in out, out)


def case_unstable_alternative_in_the_table_refused(ctx):
    """A state that was not fully read (unstable: no sha256) is never a good state: a baseline
    holding one as an alternative is refused as malformed (update's swap never writes one:
    tests/unit/pipeline/alternatives_test.cpp)."""
    rollout(ctx)
    con = sqlite3.connect(ctx.db)
    con.execute("UPDATE alternatives SET status = 3")  # unstable: refused whatever the digest says
    con.commit()
    con.close()
    rc, out, err = ctx.run("check")
    expect(rc == 17 and "malformed alternatives" in err, f"exit {rc}: {err}")


def case_accept_without_also_ends_the_alternatives(ctx):
    """A new state accepted without --also (a security fix after a rollout) is the one good
    state: the old versions are changes again, and the journal says their alternatives ended."""
    rollout(ctx)
    f = ctx.tree + "/f"
    ctx.write("f", "v3 fixed\n")
    ctx.ok("accept", "--report", ctx.reviewed(4), "--reason", "CVE fix", f)
    expect("alternatives ended by a new state accepted without --also: CVE fix" in ctx.ok("log"), "not journalled")
    for old in ("v1\n", "v2\n"):
        rewrite(ctx, "f", old)
        rc, out, err = ctx.run("check", f)
        expect(rc == 4 and "alternative" not in out and "  sha256:" in out, f"{old!r} still good: exit {rc}: {out}")
    # update too: a new state found by update ends the alternatives.
    rewrite(ctx, "f", "v3 fixed\n")
    ctx.ok("update", "--yes", "--reason", "times", rc_want=4)
    ctx.write("f", "v4\n")
    ctx.reviewed(4)
    ctx.ok("accept", "--yes", "--reason", "r", "--also", f)  # v3 kept
    ctx.write("f", "v5\n")
    ctx.ok("update", "--yes", "--reason", "another release", rc_want=4)
    con = sqlite3.connect(ctx.db)
    expect(con.execute("SELECT count(*) FROM alternatives").fetchone()[0] == 0, "update kept alternatives of a new state")
    con.close()


def case_ticket_that_is_not_utf8_is_exact_in_json(ctx):
    """A ticket of bytes that are not UTF-8 comes out of 'log --format ndjson' and the summary
    with ticket_b64, the exact bytes (not a lossy string two tickets could share)."""
    ctx.signed_baseline()
    ctx.write("f", "v2\n")
    ctx.reviewed(4)
    r = run_fimctl(ctx.fimctl, "--format", "ndjson", "accept", "--yes", "--reason", "r", "--ticket", b"T\xff\xfe",
                   "--all", db=ctx.db, keys=ctx.keys, unsigned=False, fmt=None)
    summary = [x for x in ndjson(r.stdout) if x["type"] == "summary"]
    expect(r.rc == 0 and summary and summary[0]["ticket_b64"] == "VP/+", f"exit {r.rc}: {r.stdout} {r.stderr}")
    rc, out, err = ctx.run("--format", "ndjson", "log")
    expect(ndjson(out)[0]["ticket_b64"] == "VP/+", out)


def case_schema_3_baseline_read_as_it_is(ctx):
    """A baseline the fimctl before alternatives wrote (schema 3: no alternatives table) is
    checked as it is, without 'fimctl migrate', and its successor is written in schema 4."""
    r = run_fimctl(ctx.fimctl, "init", ctx.tree, db=ctx.db, fmt=None)
    expect(r.rc == 0, r.stderr)
    con = sqlite3.connect(ctx.db)
    con.executescript("DROP TABLE alternatives; PRAGMA user_version = 3; "
                      "UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    con.close()
    r = run_fimctl(ctx.fimctl, "check", db=ctx.db, fmt=None)
    expect(r.rc == 0, f"a schema-3 baseline: exit {r.rc}: {r.stderr}")
    ctx.write("f", "v2\n")
    r = run_fimctl(ctx.fimctl, "update", "--yes", "--reason", "r", db=ctx.db, fmt=None)
    expect(r.rc == 4, r.stderr)
    con = sqlite3.connect(ctx.db)
    expect(con.execute("PRAGMA user_version").fetchone()[0] == 4, "the successor is not schema 4")
    con.close()


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-reconcile-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
