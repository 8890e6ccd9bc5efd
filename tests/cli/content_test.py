#!/usr/bin/env python3
"""content = "diff" (docs/design.md, Content store): what changed inside a file. The content
store beside the baseline, the diff on `changed` records (plain, json, ndjson, ecs), masking,
the deny list and the not-world-readable default, `fimctl show PATH [--at SEQ]`, pruning, and
the attacks on the store (planted links, files swapped while read). Each attack case is named
for the attack and fails on a fimctl without the defence.

Usage: content_test.py --fimctl PATH (--list | CASE)"""
import glob
import json
import os
import re
import sys
import threading
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from ecs_schema import Schema  # noqa: E402
from fimtest import Ctx as CaseCtx, expect, run_fimctl, run_main  # noqa: E402

MAGIC = b"fimctl-content-v1\n"
SECRET = "hunter2-s3cr3t-XYZZY"
MASK = r"(?i)((password|secret|token|key)[[:space:]]*[=:][[:space:]]*)[^[:space:]]+"


class Ctx(CaseCtx):
    """TMP/tree under a policy of its own (TMP/policy.toml: one rule, content = "diff"), the
    baseline TMP/db, so the content store is TMP/content."""

    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        os.mkdir(self.tree)
        self.store = os.path.join(tmp, "content")
        self.policy = os.path.join(tmp, "policy.toml")
        self.set_policy()

    def set_policy(self, rule_extra="", options=""):
        with open(self.policy, "w") as f:
            f.write(f"version = 1\n[options]\n{options}\n[[rule]]\npath = \"{self.tree}\"\n"
                    f"content = \"diff\"\ncontent_mask = ['{MASK}']\n{rule_extra}\n")

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.tree, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run(self, *args, fmt="plain"):
        return run_fimctl(self.fimctl, *args, config=self.policy, db=self.db, fmt=fmt)

    def ok(self, *args, rc_want=0, fmt="plain"):
        r = self.run(*args, fmt=fmt)
        expect(r.rc == rc_want, f"{args}: exit {r.rc}, want {rc_want}\nstderr: {r.stderr}\nstdout: {r.stdout}")
        return r.stdout

    def kept(self):
        """Every kept version, decompressed: name -> text."""
        out = {}
        for p in glob.glob(os.path.join(self.store, "*")):
            data = open(p, "rb").read()
            expect(data.startswith(MAGIC), f"{p}: no fimctl-content-v1 header")
            out[os.path.basename(p)] = zlib.decompress(data[len(MAGIC):]).decode()
        return out

    def changes(self, *args, fmt="json"):
        r = self.run("check", *args, fmt=fmt)
        expect(r.rc & 16 == 0, f"check: exit {r.rc}: {r.stderr}")
        if fmt == "json":
            return {c["path"]: c for c in json.loads(r.stdout)["records"] if c["type"] == "change"}
        return {c["path"]: c for c in map(json.loads, r.stdout.splitlines()) if c.get("type") == "change"}


def sha(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


# --- the diff in each format ----------------------------------------------------------------

def case_diff_in_plain_json_and_ndjson(ctx):
    """A changed text file carries a unified diff: indented by 4 under its entry in plain, a
    "diff" string with "diff_lines_omitted" in json and ndjson; update shows the same."""
    f = ctx.write("app.conf", "a\nb\nc\nd\ne\nf\ng\n")
    ctx.ok("init")
    expect(sorted(ctx.kept()) == [sha("a\nb\nc\nd\ne\nf\ng\n")], f"kept: {ctx.kept()}")
    ctx.write("app.conf", "a\nb\nC\nd\ne\nf\ng\nh\n")
    want = (f"--- a{f}\n+++ b{f}\n@@ -1,7 +1,8 @@\n a\n b\n-c\n+C\n d\n e\n f\n g\n+h\n")
    out = ctx.ok("check", rc_want=4)
    block = out[out.index(f"changed: {f}"):]
    expect("\n".join("    " + line for line in want.splitlines()) in block, f"plain diff not indented under its entry: {out}")
    for fmt in ("json", "ndjson"):
        c = ctx.changes(fmt=fmt)[f]
        expect(c["diff"] == want and c["diff_lines_omitted"] == 0 and "diff_unavailable" not in c, f"{fmt}: {c}")
    # A change of metadata only has no diff fields; a file whose rule keeps no content neither.
    r = ctx.run("--format", "json", "update", "--yes", "--reason", "r", fmt=None)
    expect(r.rc == 4, r.stderr)
    c = [x for x in json.loads(r.stdout)["records"] if x["type"] == "change"][0]
    expect(c["diff"] == want, f"update's record has no diff: {c}")
    os.chmod(f, 0o664)
    c = ctx.changes()[f]
    expect("diff" not in c and "diff_unavailable" not in c, f"a mode change has diff fields: {c}")


def case_plain_diff_truncated_with_count(ctx):
    """A long diff stops at 200 lines in a report and says how many more there were."""
    ctx.write("big.txt", "".join(f"line {i}\n" for i in range(400)))
    ctx.ok("init")
    ctx.write("big.txt", "".join(f"LINE {i}\n" for i in range(400)))
    out = ctx.ok("check", rc_want=4)
    m = re.search(r"(?m)^    \.\.\. (\d+) more lines$", out)
    expect(m, f"no '... N more lines': {out[-500:]}")
    entry = out.split("\nchanged: ", 1)[1]  # the summary table above is indented too
    diff_lines = [line for line in entry.splitlines() if line.startswith("    ")]
    expect(len(diff_lines) == 201, f"{len(diff_lines)} indented lines (200 + the count)")
    c = ctx.changes()[os.path.join(ctx.tree, "big.txt")]
    expect(c["diff_lines_omitted"] == int(m.group(1)) and c["diff"].count("\n") == 200, c["diff_lines_omitted"])
    expect(len(c["diff"]) <= 16384, len(c["diff"]))


def case_diff_unavailable_says_why(ctx):
    """No kept version (content store removed, or the file was binary then): "diff": null and
    "diff_unavailable" with the reason, and a plain line saying it."""
    f = ctx.write("a.conf", "one\n")
    b = os.path.join(ctx.tree, "bin")
    with open(b, "wb") as fh:
        fh.write(b"\x00\x01binary\n")
    ctx.ok("init")
    for p in glob.glob(os.path.join(ctx.store, "*")):
        os.unlink(p)
    ctx.write("a.conf", "two\n")
    with open(b, "wb") as fh:
        fh.write(b"text now\n")
    c = ctx.changes()
    expect(c[f]["diff"] is None and c[f]["diff_unavailable"] == "not in the content store", c[f])
    expect(c[b]["diff"] is None and c[b]["diff_unavailable"], c[b])
    out = ctx.ok("check", rc_want=4)
    expect("  diff: none (not in the content store)" in out, out)


def case_ecs_documents_with_diffs_valid(ctx):
    """--format ecs: a change with a diff is a valid ECS document, the diff under fimctl.*."""
    ctx.write("a.conf", "one\n")
    ctx.ok("init")
    ctx.write("a.conf", "two\n")
    r = ctx.run("check", fmt="ecs")
    expect(r.rc == 4, r.stderr)
    schema = Schema()
    docs = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    for d in docs:
        expect(not schema.problems(d), f"invalid ECS document: {schema.problems(d)}: {d}")
    flat = json.dumps(docs)
    expect('"fimctl.diff"' in flat or '"diff"' in json.dumps([d.get("fimctl", {}) for d in docs]), flat)


# --- masking ---------------------------------------------------------------------------------

def case_masked_secret_never_in_store_or_reports(ctx):
    """A secret content_mask matches is *** in the store (decompressed here), in every report
    format and in `show`, before and after it changes; what changed beside it is shown."""
    f = ctx.write("app.conf", f"user = app\npassword = {SECRET}\nport = 1\n")
    ctx.ok("init")
    kept = ctx.kept()
    expect(kept and all(SECRET not in t for t in kept.values()), f"the secret is in the store: {kept}")
    expect("password = ***" in "".join(kept.values()), kept)
    ctx.write("app.conf", f"user = app\npassword = {SECRET}2\nport = 2\n")
    for fmt in ("plain", "json", "ndjson"):
        r = ctx.run("check", fmt=fmt)
        expect(r.rc == 4 and SECRET not in r.stdout and SECRET not in r.stderr, f"{fmt}: the secret is in the report")
        expect("+port = 2" in r.stdout, f"{fmt}: the diff is not there: {r.stdout}")
    ctx.ok("update", "--yes", "--reason", "r", rc_want=4)
    expect(all(SECRET not in t for t in ctx.kept().values()), "update kept the secret")
    expect(SECRET not in ctx.ok("show", f) and "password = ***" in ctx.ok("show", f), "show prints the secret")
    # Only the secret changes: the masked texts are equal, and the record says so.
    ctx.write("app.conf", f"user = app\npassword = other-{SECRET}\nport = 2\n")
    c = ctx.changes()[f]
    expect(c["diff"] is None and c["diff_unavailable"] == "only masked text changed", c)
    for p in glob.glob(os.path.join(ctx.tmp, "**"), recursive=True):  # nothing on disk but the tree
        if os.path.isfile(p) and not p.startswith(ctx.tree + "/"):
            data = open(p, "rb").read()
            expect(SECRET.encode() not in data, f"the secret is in {p}")


def case_bad_content_mask_refused(ctx):
    """content_mask patterns pass the checks a rule regex passes (16, naming the pattern)."""
    ctx.set_policy(rule_extra="")
    with open(ctx.policy, "a") as f:
        f.write("[[rule]]\npath = \"/nonexistent-x\"\ncontent_mask = ['(a)\\1']\n")
    r = ctx.run("config", "check")
    expect(r.rc == 16 and "back-references" in r.stderr and "content_mask" in r.stderr, r.stderr)


# --- what is never kept ------------------------------------------------------------------------

def case_shadow_never_copied_into_the_store(ctx):
    """shadow, gshadow (and their '-' backups), SSH host keys, /etc/ssl/private and fimctl's
    keys are never kept, even world-readable and under a rule with content_private = true:
    the built-in deny list is not the rule's to override; `show` says why (17)."""
    ctx.set_policy(rule_extra="content_private = true", options=f"content_deny = [\"{ctx.tree}/extra/*.conf\"]")
    secret_files = {}
    for name in ("etc/shadow", "etc/gshadow", "etc/shadow-", "etc/gshadow-", "etc/ssh/ssh_host_ed25519_key",
                 "etc/ssl/private/site.pem", "etc/fimctl/keys/signing.key", "extra/db.conf"):
        secret_files[name] = ctx.write(name, f"root:{SECRET}-{name}:19000::::::\n")
    ctx.write("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
    ctx.ok("init")
    kept = "".join(ctx.kept().values())
    expect(SECRET not in kept, f"a denied file's content is in the store: {kept}")
    expect("root:x:0:0" in kept, "the world-readable passwd was not kept")
    for name, path in secret_files.items():
        r = ctx.run("show", path)
        expect(r.rc == 17 and "deny list" in r.stderr and SECRET not in r.stdout, f"show {name}: {r.rc} {r.stderr}")
    # Changed: no diff, and the reason.
    ctx.write("etc/shadow", f"root:{SECRET}-new:19001::::::\n")
    c = ctx.changes()[secret_files["etc/shadow"]]
    expect(c["diff"] is None and "deny list" in c["diff_unavailable"], c)
    expect(SECRET not in "".join(ctx.kept().values()), "a check kept the shadow file")


def case_private_file_not_stored_by_default(ctx):
    """A file only root may read (0600, 0640) is not kept unless its rule says
    content_private = true; the diff of one says why there is none."""
    p = ctx.write("private.conf", f"token_like {SECRET}\n", mode=0o600)
    g = ctx.write("group.conf", f"group-only {SECRET}\n", mode=0o640)
    ctx.ok("init")
    expect(SECRET not in "".join(ctx.kept().values()), "a private file was kept")
    ctx.write("private.conf", "changed\n", mode=0o600)
    c = ctx.changes()[p]
    expect(c["diff"] is None and "not world-readable" in c["diff_unavailable"], c)
    r = ctx.run("show", g)
    expect(r.rc == 17 and "not world-readable" in r.stderr, r.stderr)
    # The rule may say so: then it is kept (and root's store is 0700, its files 0600).
    ctx.set_policy(rule_extra="content_private = true")
    ctx.ok("init", "--force")
    expect(f"group-only {SECRET}\n" in ctx.kept().values(), "content_private = true did not keep it")
    expect(os.stat(ctx.store).st_mode & 0o777 == 0o700, oct(os.stat(ctx.store).st_mode))
    expect(all(os.stat(p).st_mode & 0o777 == 0o600 for p in glob.glob(ctx.store + "/*")), "a kept file is not 0600")


def case_symlink_swapped_in_after_hash_not_stored(ctx):
    """An attacker swaps a world-readable file for a symlink to a secret (and back) while init
    and update run: whatever state each read sees, the secret's content is never kept (the
    content is read with O_NOFOLLOW and must hash to the recorded sha256)."""
    target = os.path.join(ctx.tmp, "secret-target")
    with open(target, "w") as f:
        f.write(f"{SECRET}\n")
    os.chmod(target, 0o644)
    f = ctx.write("swap.conf", "public\n")
    stop = threading.Event()

    def swapper():
        link, real = f + ".link", f + ".real"
        while not stop.is_set():
            try:
                os.symlink(target, link)
                os.rename(link, f)
                with open(real, "w") as fh:
                    fh.write("public\n")
                os.chmod(real, 0o644)
                os.rename(real, f)
            except OSError:
                pass

    t = threading.Thread(target=swapper)
    t.start()
    try:
        for i in range(15):
            r = ctx.run("init", "--force") if i else ctx.run("init")
            expect(r.rc in (0, 8), f"init: {r.rc}: {r.stderr}")
    finally:
        stop.set()
        t.join()
    expect(all(SECRET not in t for t in ctx.kept().values()), f"the symlink's target was kept: {ctx.kept()}")


def case_planted_symlink_in_store_refused(ctx):
    """A symlink planted in the store under a kept version's name (pointing at a secret) is
    refused, never followed: the diff is unavailable naming it, show fails with 18; a store
    directory that is itself a symlink is refused too."""
    target = os.path.join(ctx.tmp, "secret-target")
    with open(target, "w") as f:
        f.write(f"{SECRET}\n")
    f = ctx.write("a.conf", "one\n")
    ctx.ok("init")
    name = sha("one\n")
    os.unlink(os.path.join(ctx.store, name))
    os.symlink(target, os.path.join(ctx.store, name))
    r = ctx.run("show", f)
    expect(r.rc == 18 and "symbolic link" in r.stderr and SECRET not in r.stdout, f"show: {r.rc} {r.stderr}")
    ctx.write("a.conf", "two\n")
    r = ctx.run("check", fmt="json")
    expect(r.rc == 4 and SECRET not in r.stdout, f"{r.rc} {r.stdout}")
    c = [x for x in json.loads(r.stdout)["records"] if x["type"] == "change"][0]
    expect(c["diff"] is None and "symbolic link" in c["diff_unavailable"], c)
    # The whole directory a symlink: refused with an alert, no diff read through it.
    os.unlink(os.path.join(ctx.store, name))
    os.rename(ctx.store, ctx.store + ".real")
    os.symlink(ctx.store + ".real", ctx.store)
    r = ctx.run("check", fmt="json")
    expect(r.rc == 4 and "not a directory" in r.stdout, f"{r.rc} {r.stdout}")
    r = ctx.run("show", f)
    expect(r.rc == 18, f"show through a symlinked store: {r.rc} {r.stderr}")


def case_private_copy_of_a_kept_file_not_shown(ctx):
    """A 0600 file with the same bytes as a kept world-readable one: one version in the store,
    but show of the private path is refused, as its own rule decided (17)."""
    ctx.write("public.conf", "same\n")
    p = ctx.write("private.conf", "same\n", mode=0o600)
    ctx.ok("init")
    r = ctx.run("show", p)
    expect(r.rc == 17 and "not world-readable" in r.stderr and r.stdout == "", f"{r.rc} {r.stderr}")


def case_default_policy_diffs_etc_with_secrets_masked(ctx):
    """The built-in default policy (share/fimctl.toml) on a host-shaped tree (--sysroot): a text
    file in /etc keeps its content and its change carries a diff with the password masked;
    /etc/shadow (even world-readable) and fimctl's keys are never kept."""
    from default_policy_test import Ctx as HostCtx
    os.mkdir(os.path.join(ctx.tmp, "host"))
    h = HostCtx(ctx.fimctl, os.path.join(ctx.tmp, "host"))
    h.write("/etc/app.conf", f"x=1\npassword = {SECRET}\nApi_Key: {SECRET}\n".encode())
    h.write("/etc/shadow", f"root:{SECRET}:19000::::::\n".encode())
    os.chmod(h.tree + "/etc/shadow", 0o644)
    r = h.run("init")
    expect(r.rc == 0, f"init: {r.rc} {r.stderr}")
    ctx.store = os.path.join(os.path.dirname(h.db), "content")
    kept = ctx.kept()
    expect(kept and all(SECRET not in t for t in kept.values()), f"a secret in the store: {kept}")
    expect(not any("PRIVATE KEY" in t for t in kept.values()), "fimctl's signing key was kept")
    h.write("/etc/app.conf", f"x=2\npassword = {SECRET}\nApi_Key: {SECRET}\n".encode())
    rc, ch, out = h.check()
    expect(rc == 4 and SECRET not in out, f"check: {rc}")
    d = ch["/etc/app.conf"]["diff"]
    expect(d and "-x=1\n+x=2\n password = ***\n Api_Key: ***\n" in d, d)


# --- show, pruning, the size limit -----------------------------------------------------------

def case_show_current_and_at_sequence(ctx):
    """show PATH prints the current baseline's version; --at SEQ an earlier baseline's; an
    unknown SEQ or an unrecorded path is 16; a file whose content is not kept is 17."""
    f = ctx.write("a.conf", "version one\n")
    ctx.ok("init")
    ctx.write("a.conf", "version two\n")
    ctx.ok("update", "--yes", "--reason", "r", rc_want=4)
    expect(ctx.ok("show", f) == "version two\n", ctx.ok("show", f))
    expect(ctx.ok("show", "--at", "1", f) == "version one\n", "show --at 1")
    expect(ctx.ok("show", "--at", "2", f) == "version two\n", "show --at 2")
    r = ctx.run("show", "--at", "99", f)
    expect(r.rc == 16 and "sequence 99" in r.stderr and r.stdout == "", r.stderr)
    r = ctx.run("show", os.path.join(ctx.tree, "nope"))
    expect(r.rc == 16 and "not recorded" in r.stderr, r.stderr)
    r = ctx.run("show", ctx.tree)
    expect(r.rc == 17 and "dir" in r.stderr, r.stderr)


def case_accept_keeps_the_accepted_version(ctx):
    """accept keeps the content of the states it accepts, and the successor's index carries the
    other files' versions: the next change diffs against the accepted text; show --at works
    for both sequences."""
    f = ctx.write("a.conf", "one\n")
    g = ctx.write("b.conf", "bee\n")
    ctx.ok("init")
    ctx.write("a.conf", "two\n")
    ctx.ok("check", rc_want=4)
    ctx.ok("accept", "--yes", "--reason", "r", f)
    ctx.write("a.conf", "three\n")
    c = ctx.changes()[f]
    expect(c["diff"] and "-two\n+three\n" in c["diff"], c)
    expect(ctx.ok("show", "--at", "1", f) == "one\n" and ctx.ok("show", "--at", "2", f) == "two\n", "show --at")
    expect(ctx.ok("show", "--at", "2", g) == "bee\n", "accept did not carry the other files' versions")


def case_store_bounded_and_pruned(ctx):
    """content_store_max: over it, nothing more is kept and an alert says so once (the run
    does not fail); versions no kept baseline references are pruned after an update."""
    ctx.set_policy(options="content_store_max = 400")
    for i in range(8):
        ctx.write(f"f{i}.txt", "".join(f"{i} {j} {os.urandom(8).hex()}\n" for j in range(4)))
    r = ctx.run("init", fmt="json")
    expect(r.rc == 0, r.stderr)
    alerts = [x for x in json.loads(r.stdout)["records"] if x["type"] == "alert" and x["code"] == "content_store_full"]
    expect(len(alerts) == 1, f"content_store_full alerts: {alerts}")
    total = sum(os.path.getsize(p) for p in glob.glob(ctx.store + "/*"))
    expect(0 < total <= 400, f"store holds {total} bytes")
    # Pruning: a version only a dropped sequence referenced goes.
    ctx.set_policy()
    f = ctx.write("p.txt", "v0\n")
    ctx.ok("init", "--force")
    for i in range(1, 23):
        ctx.write("p.txt", f"v{i}\n")
        ctx.ok("update", "--yes", "--reason", "r", rc_want=4)
    names = set(os.listdir(ctx.store))
    expect(sha("v22\n") in names and sha("v21\n") in names, "a referenced version was pruned")
    expect(sha("v0\n") not in names and sha("v1\n") not in names, f"old versions kept: {len(names)} files")
    r = ctx.run("show", "--at", "2", f)
    expect(r.rc == 16, f"a sequence beyond the last 20: {r.rc} {r.stderr}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-content-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), doc=__doc__))
