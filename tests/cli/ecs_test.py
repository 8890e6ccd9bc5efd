#!/usr/bin/env python3
"""--format ecs: every document check, update and accept write (added, removed and changed
files, alerts, a name that is not UTF-8, the summary) is a valid Elastic Common Schema 9.4.0
document by the ECS project's own field list (tests/data/ecs, tests/lib/ecs_schema.py), maps
what ECS names to its fields, and keeps the rest under fimctl.*; the validator itself refuses
a misspelt or mistyped field. The daemon's records (watch): tests/root/watch_test.py.

Usage: ecs_test.py --fimctl PATH (--list | CASE)"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ecs_schema import Schema  # noqa: E402
from fimtest import Ctx, expect, run_fimctl, run_main  # noqa: E402

SCHEMA = Schema()


def docs(run):
    out = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    for d in out:
        problems = SCHEMA.problems(d)
        expect(not problems, f"invalid ECS document: {problems}: {d}")
    return out


def drifted_tree(ctx):
    """A baselined tree, then: a file added (set-uid), one removed, one changed, a name that is
    not UTF-8."""
    os.makedirs(ctx.tree)
    for name, text in (("keep", "k\n"), ("gone", "g\n"), ("edit", "e\n")):
        with open(f"{ctx.tree}/{name}", "w") as f:
            f.write(text)
    r = run_fimctl(ctx.fimctl, "init", ctx.tree, db=ctx.db)
    expect(r.rc == 0, f"init: {r.stderr}")
    with open(f"{ctx.tree}/added", "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(f"{ctx.tree}/added", 0o4755)
    os.unlink(f"{ctx.tree}/gone")
    with open(f"{ctx.tree}/edit", "a") as f:
        f.write("more\n")
    with open(os.fsencode(ctx.tree) + b"/bad\xffname", "w") as f:
        f.write("x")


def by_action(ds):
    return {d["event"]["action"]: d for d in ds}


def case_check_documents_are_valid_ecs(ctx):
    drifted_tree(ctx)
    r = run_fimctl(ctx.fimctl, "check", db=ctx.db, fmt="ecs")
    expect(r.rc & 7 == 7, f"check: exit {r.rc}: {r.stderr}")
    ds = docs(r)
    changes = [d for d in ds if d["event"]["dataset"] == "fimctl.change"]
    paths = {d.get("file", {}).get("path"): d for d in changes}
    added = paths[f"{ctx.tree}/added"]
    expect(added["event"]["type"] == ["creation"] and added["event"]["category"] == ["file"], added)
    expect(added["file"]["mode"] == "4755" and added["file"]["name"] == "added" and added["file"]["uid"] == "0"
           or os.geteuid() != 0, added["file"])
    expect(len(added["file"]["hash"]["sha256"]) == 64, added["file"])
    expect(added["fimctl"]["new"]["mode"] == "4755", "the record's own fields are not kept under fimctl.*")
    expect(paths[f"{ctx.tree}/gone"]["event"]["type"] == ["deletion"], "removed is not a deletion")
    edit = paths[f"{ctx.tree}/edit"]
    expect(edit["event"]["type"] == ["change"] and "sha256" in edit["message"], edit)
    expect(edit["file"]["hash"]["sha256"] == [c["new"] for c in edit["fimctl"]["changes"] if c["attr"] == "sha256"][0],
           "file.hash.sha256 is not the new content's")
    bad = [d for d in changes if "path_b64" in d["fimctl"]]
    expect(len(bad) == 1 and "path" not in bad[0].get("file", {}), f"a non-UTF-8 name: {bad}")
    alerts = [d for d in ds if d["event"]["kind"] == "alert"]
    expect(alerts and alerts[0]["event"]["action"] == "unsigned", alerts)
    summary = [d for d in ds if d["event"]["dataset"] == "fimctl.summary"]
    expect(len(summary) == 1 and summary[0]["fimctl"]["added"] == 2, summary)
    for d in ds:
        expect(d["ecs"]["version"] == "9.4.0" and d["host"]["id"] and d["@timestamp"], d)
        expect(d["event"]["severity"] == 47 if d["event"]["dataset"] == "fimctl.change" else True, d)


def case_update_and_accept_documents_are_valid_ecs(ctx):
    drifted_tree(ctx)
    r = run_fimctl(ctx.fimctl, "check", db=ctx.db, fmt="ndjson")
    report = [json.loads(line) for line in r.stdout.splitlines() if json.loads(line)["type"] == "summary"][0]["report_id"]
    r = run_fimctl(ctx.fimctl, "accept", "--report", report, f"{ctx.tree}/edit", "--reason", "ok", db=ctx.db, fmt="ecs")
    expect(r.rc == 0, f"accept: exit {r.rc}: {r.stderr}")
    expect(docs(r), "accept wrote nothing")
    r = run_fimctl(ctx.fimctl, "update", "--yes", "--reason", "the rest", db=ctx.db, fmt="ecs")
    expect(r.rc & 3, f"update: exit {r.rc}: {r.stderr}")
    ds = docs(r)
    expect(any(d["event"]["dataset"] == "fimctl.summary" and d["fimctl"]["command"] == "update" for d in ds), ds)


def case_json_and_ndjson_unchanged_by_ecs(ctx):
    """The ECS translation is an output of its own: ndjson records stay fimctl.v1."""
    drifted_tree(ctx)
    r = run_fimctl(ctx.fimctl, "check", db=ctx.db, fmt="ndjson")
    expect(all(json.loads(line)["schema"] == "fimctl.v1" for line in r.stdout.splitlines()), r.stdout[:300])


def case_formats_a_command_cannot_write_are_refused(ctx):
    r = run_fimctl(ctx.fimctl, "log", db=ctx.db, fmt="ecs")
    expect(r.rc == 16 and "writes plain or ndjson" in r.stderr, f"exit {r.rc}: {r.stderr}")


def case_validator_refuses_misspelt_and_mistyped_fields(ctx):
    """The test's validator is itself tested: a document fimctl wrote, then spoiled."""
    drifted_tree(ctx)
    good = [d for d in docs(run_fimctl(ctx.fimctl, "check", db=ctx.db, fmt="ecs")) if "file" in d and "size" in d["file"]][0]
    spoilt = json.loads(json.dumps(good))
    spoilt["file"]["pathh"] = spoilt["file"].pop("path")
    expect(any("file.pathh" in p for p in SCHEMA.problems(spoilt)), "a misspelt field passed")
    spoilt = json.loads(json.dumps(good))
    spoilt["file"]["size"] = str(spoilt["file"]["size"])
    expect(any("file.size" in p for p in SCHEMA.problems(spoilt)), "a mistyped field passed")
    spoilt = json.loads(json.dumps(good))
    spoilt["event"]["type"] = ["installation"]
    expect(SCHEMA.problems(spoilt), "an event.type its category does not expect passed")
    spoilt = json.loads(json.dumps(good))
    spoilt["event"]["category"] = "file"
    expect(SCHEMA.problems(spoilt), "an array field given a string passed")


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-ecs-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
