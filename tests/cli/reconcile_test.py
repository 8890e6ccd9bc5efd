#!/usr/bin/env python3
"""Change reconciliation (docs/design.md, Acceptance): the change ticket an acceptance is made
under (accept/update --ticket), kept in the signed, hash-chained journal and shown by log and the
reports; several good states of one path (accept --also, ok (alternative N),
--drop-alternatives), part of the signed content and kept by update.

Usage: reconcile_test.py --fimctl PATH (--list | CASE)"""
import json
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import expect, run_main  # noqa: E402
from trust_test import Ctx as TrustCtx, journal_rows  # noqa: E402


class Ctx(TrustCtx):
    """trust_test's context (a signed baseline of TMP/tree, keys of its own) plus a file to edit."""

    def write(self, name, text, mode="w"):
        with open(os.path.join(self.tree, name), mode) as f:
            f.write(text)

    def reviewed(self, rc_want):
        """Runs check; the id of the report it printed."""
        return re.search(r"(?m)^report: ([0-9a-f]{24})$", self.ok("check", rc_want=rc_want)).group(1)


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


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-reconcile-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
