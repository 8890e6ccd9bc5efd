#!/usr/bin/env python3
"""Signed baselines from the command line: key generation and its refusals, signing at init,
verification at check, and the attacks of docs/design.md, Threat model (T04, T07, T08, T09, T10).

Usage: trust_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Every case works in its own temporary directory.
"""
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import POLICY, Ctx as CaseCtx, Failure, Skip, expect, run_fimctl, run_main  # noqa: E402,F401


class Ctx(CaseCtx):
    def __init__(self, fimctl, tmp):
        super().__init__(fimctl, tmp)
        self.keys = os.path.join(tmp, "keys")
        os.mkdir(self.tree)
        with open(os.path.join(self.tree, "f"), "w") as f:
            f.write("content\n")

    def run(self, *args, keys=None, db=None):
        r = run_fimctl(self.fimctl, *args, db=db or self.db, keys=keys or self.keys, unsigned=False,
                       fmt=None)
        return r.rc, r.stdout, r.stderr

    def ok(self, *args, rc_want=0, **kw):
        rc, out, err = self.run(*args, **kw)
        expect(rc == rc_want, f"{args}: exit {rc}, want {rc_want}\nstderr: {err}\nstdout: {out}")
        return out

    def refused(self, rc_want, says, *args, **kw):
        rc, out, err = self.run(*args, **kw)
        expect(rc == rc_want, f"{args}: exit {rc}, want {rc_want}; stderr: {err}")
        expect(out == "", f"{args}: a refusal prints no report: {out}")
        expect(err.startswith("fimctl: error: ") and says in err, f"{args}: stderr does not say {says!r}: {err}")

    def meta(self, sql, db=None):
        con = sqlite3.connect(db or self.db)
        con.execute(sql)
        con.commit()
        con.close()

    def signed_baseline(self):
        self.ok("key", "generate")
        self.ok("init", self.tree)


# --- cases ------------------------------------------------------------------------------

def case_sign_off_host(ctx):
    """The private key lives elsewhere: the host writes an unsigned baseline (refused by check
    while signing.pub is there), 'key sign' signs it where the key is, and the host's check
    verifies it. A baseline edited before signing is not signed."""
    off = os.path.join(ctx.tmp, "offhost")
    ctx.ok("key", "generate", keys=off)
    os.makedirs(ctx.keys, mode=0o700)
    shutil.copy(os.path.join(off, "signing.pub"), os.path.join(ctx.keys, "signing.pub"))
    ctx.ok("--unsigned", "init", ctx.tree)
    ctx.refused(18, "downgrade", "check")
    out = ctx.ok("key", "sign", ctx.db, keys=off)
    expect("signed" in out and "sequence 1" in out, out)
    out = ctx.ok("check")
    expect("(signed, key " in out, out)
    # Signing again (say, with a new key) replaces the signature and keeps the sequence.
    out = ctx.ok("key", "sign", ctx.db, keys=off)
    expect("replacing the signature" in out, out)
    ctx.ok("check")
    # Rows edited before signing: verification fails, nothing is written.
    before = open(ctx.db, "rb").read()
    ctx.meta("UPDATE entries SET size = size + 1 WHERE path = CAST('" + ctx.tree + "/f' AS BLOB)")
    edited = open(ctx.db, "rb").read()
    expect(edited != before, "the test's edit did not change the file")
    ctx.refused(18, "failed verification", "key", "sign", ctx.db, keys=off)
    expect(open(ctx.db, "rb").read() == edited, "a refused signing changed the file")
    expect(not [n for n in os.listdir(ctx.tmp) if ".tmp." in n], os.listdir(ctx.tmp))


def case_key_generate(ctx):
    out = ctx.ok("key", "generate")
    expect("signing.key" in out, out)
    key, pub = os.path.join(ctx.keys, "signing.key"), os.path.join(ctx.keys, "signing.pub")
    expect(os.stat(key).st_mode & 0o777 == 0o600, "signing.key is not 0600")
    expect(os.stat(ctx.keys).st_mode & 0o777 == 0o700, "the key directory is not 0700")
    expect(open(pub).read().startswith("-----BEGIN PUBLIC KEY-----"), "signing.pub is not PEM")
    before = open(key).read()
    ctx.refused(16, "a key already exists", "key", "generate")
    expect(open(key).read() == before, "the key was replaced")


def case_signed_init_and_check(ctx):
    ctx.signed_baseline()
    out = ctx.ok("check")  # no --unsigned needed
    expect("(signed, key " in out and "UNSIGNED" not in out and "warning" not in out, out)
    rc, out, err = ctx.run("--format", "ndjson", "check")
    recs = [json.loads(l) for l in out.splitlines()]
    summary = recs[-1]
    expect(rc == 0 and summary["baseline"]["signed"] is True and len(summary["baseline"]["key_id"]) == 16, summary)
    expect(not [r for r in recs if r["type"] == "alert"], recs)
    with open(os.path.join(ctx.tree, "f"), "a") as f:
        f.write("more\n")
    ctx.ok("check", rc_want=4)


def case_no_key_needs_unsigned(ctx):
    ctx.refused(16, "fimctl key generate", "init", ctx.tree)
    expect(not os.path.exists(ctx.db), "a baseline was written")
    ctx.ok("--unsigned", "init", ctx.tree)
    ctx.refused(18, "is not signed", "check")
    ctx.ok("key", "generate")  # now a public key exists: an unsigned baseline is a downgrade
    ctx.refused(18, "although a public key is configured", "check")
    ctx.ok("--unsigned", "check")  # unless asked for by name


def case_tampered_manifest(ctx):
    """T04/T09: every manifest field is covered by the signature."""
    ctx.signed_baseline()
    good = ctx.db + ".good"
    shutil.copyfile(ctx.db, good)
    edits = {
        "signature": "UPDATE meta SET value = CAST((CASE WHEN substr(CAST(value AS TEXT), 1, 1) = '0' THEN '1' ELSE '0' END) || substr(CAST(value AS TEXT), 2) AS BLOB) WHERE key = 'signature'",
        "host": "UPDATE meta SET value = CAST('another-host' AS BLOB) WHERE key = 'host_id'",
        "created": "UPDATE meta SET value = CAST('1' AS BLOB) WHERE key = 'created_at'",
        "policy": "UPDATE meta SET value = CAST('00' AS BLOB) WHERE key = 'policy_digest'",
    }
    for name, sql in edits.items():
        shutil.copyfile(good, ctx.db)
        ctx.meta(sql)
        ctx.refused(18, "baseline", "check")
    shutil.copyfile(good, ctx.db)
    ctx.meta("UPDATE meta SET value = CAST('99' AS BLOB) WHERE key = 'sequence'")
    ctx.refused(18, "signature does not match", "check")
    shutil.copyfile(good, ctx.db)
    ctx.meta("UPDATE meta SET value = CAST('0' AS BLOB) WHERE key = 'signed'")  # T07: stripped
    ctx.refused(18, "although a public key is configured", "check")
    shutil.copyfile(good, ctx.db)
    ctx.meta("UPDATE entries SET size = size + 1")  # rows: the content digest
    ctx.refused(18, "failed verification", "check")
    shutil.copyfile(good, ctx.db)
    ctx.ok("check")


def case_wrong_or_missing_public_key(ctx):
    """T10: another key, no public key, a key file others can read or replace."""
    ctx.signed_baseline()
    other = os.path.join(ctx.tmp, "other-keys")
    ctx.ok("key", "generate", keys=other)
    ctx.refused(18, "is signed by key", "check", keys=other)
    os.unlink(os.path.join(other, "signing.pub"))
    ctx.refused(18, "no public key", "check", keys=other)
    key = os.path.join(ctx.keys, "signing.key")
    os.chmod(key, 0o640)
    ctx.refused(16, "can be read or written by others", "init", ctx.tree)
    os.chmod(key, 0o600)
    os.chmod(ctx.keys, 0o770)
    ctx.refused(16, "is writable by its group", "init", ctx.tree)
    os.chmod(ctx.keys, 0o700)
    if os.geteuid() == 0:
        os.chown(key, 4242, 4242)
        ctx.refused(16, "is owned by uid 4242", "init", ctx.tree)
        os.chown(key, 0, 0)
    ctx.ok("init", "--force", ctx.tree)


def case_rollback_refused(ctx):
    """T08: an older, validly signed baseline put back is refused; init continues the sequence."""
    ctx.signed_baseline()
    old = ctx.db + ".seq1"
    shutil.copyfile(ctx.db, old)
    ctx.ok("init", "--force", ctx.tree)  # sequence 2
    ctx.ok("check")
    shutil.copyfile(old, ctx.db)
    ctx.refused(18, "sequence 1 < 2", "check")
    ctx.ok("init", "--force", ctx.tree)  # sequence 3, not 2: it continues from state.db
    con = sqlite3.connect(ctx.db)
    (seq,) = con.execute("SELECT CAST(value AS TEXT) FROM meta WHERE key = 'sequence'").fetchone()
    con.close()
    expect(seq == "3", f"sequence {seq}, want 3")
    ctx.ok("check")


SCHEMA_1_ATTRS = 20  # type .. xxh128


def downgrade_to_schema_1(ctx):
    """Rewrites ctx.db, a signed schema-2 baseline with an empty journal, as fimctl 1 wrote it
    (commit 6d91bf2^): no journal table, user_version 1, a content digest whose manifest tail
    ends at the policy digest, and the signature over a manifest text naming schema 1. The
    encodings are written out here, independently of src/db, and checked first against the
    schema-2 digest fimctl wrote."""
    import hashlib
    import struct
    con = sqlite3.connect(ctx.db)
    cur = con.execute("SELECT * FROM entries ORDER BY path")
    rows = cur.fetchall()
    meta = {k: bytes(v).decode() for k, v in con.execute("SELECT key, value FROM meta")}
    roots = [bytes(r) for (r,) in con.execute("SELECT path FROM roots ORDER BY path")]
    expect(con.execute("SELECT count(*) FROM journal").fetchone()[0] == 0, "the journal is not empty")

    def put(v):
        v = v if isinstance(v, bytes) else v.encode()
        return struct.pack("<I", len(v)) + v

    def content(attr_count):  # the rows as a baseline with the first attr_count attributes has them
        body = b"fimctl-baseline-content-v1\n"
        for path, status, errno, have, *attrs in rows:
            have &= (1 << attr_count) - 1
            body += struct.pack("<I", len(path)) + path + bytes([status]) + struct.pack("<I", errno & 0xFFFFFFFF)
            body += struct.pack("<Q", have)
            for i, v in enumerate(attrs[:attr_count]):
                if have & (1 << i):
                    body += bytes([i]) + (struct.pack("<Q", v & (2**64 - 1)) if isinstance(v, int) else put(bytes(v)))
        return body

    tail = b"\nmanifest\n" + put(str(len(roots))) + b"".join(put(r) for r in roots)
    tail += put(meta["roots_source"]) + put(meta["policy_digest"])
    now = hashlib.sha256(content(len(rows[0]) - 4) + tail + put("0") + put("0" * 64)).hexdigest()
    expect(now == meta["content_sha256"], f"the test's encoding is not fimctl's: {now} != {meta['content_sha256']}")
    meta["content_sha256"] = hashlib.sha256(content(SCHEMA_1_ATTRS) + tail).hexdigest()
    text = "fimctl-manifest-v1\nschema_version=1\n" + "".join(
        f"{k}={meta[k] if k not in ('policy_source', 'fimctl_version') else meta[k].encode().hex()}\n"
        for k in ("content_sha256", "entry_count", "sequence", "host_id", "policy_digest", "policy_source",
                  "roots_source")) + f"created_at={meta['created_at']}\nfimctl_version=" + \
        meta["fimctl_version"].encode().hex() + f"\nkey_id={meta['key_id']}\n"
    if not shutil.which("openssl"):
        raise Skip("no openssl(1) to sign the schema-1 manifest")
    msg = os.path.join(ctx.tmp, "manifest-v1")  # Ed25519 is one-shot: openssl reads a file, not a pipe
    with open(msg, "w") as f:
        f.write(text)
    sig = subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", os.path.join(ctx.keys, "signing.key"), "-rawin",
                          "-in", msg], capture_output=True, check=True).stdout.hex()
    con.execute("DROP TABLE journal")
    con.execute("DROP TABLE alternatives")  # schema 4
    # Schema 1 had the first 20 attributes (schema 3 added btime, handle, verity): the table as
    # it was, the rows without the later columns and their bits.
    (sql,) = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'entries'").fetchone()
    cols = [c.strip().split()[0] for c in sql[sql.index("(") + 1:sql.rindex(")")].split(",\n")]
    keep = cols[:4 + SCHEMA_1_ATTRS]
    v1_sql = sql.split(",\n  " + cols[4 + SCHEMA_1_ATTRS] + " ")[0] + "\n) WITHOUT ROWID"
    con.execute("ALTER TABLE entries RENAME TO entries_now")
    con.execute(v1_sql)
    con.execute(f"INSERT INTO entries SELECT {', '.join(keep)} FROM entries_now")
    con.execute(f"UPDATE entries SET have = have & {(1 << SCHEMA_1_ATTRS) - 1}")
    con.execute("DROP TABLE entries_now")
    con.execute("DELETE FROM meta WHERE key = 'baseline_id'")  # ids came later
    for k, v in (("schema_version", "1"), ("content_sha256", meta["content_sha256"]), ("signature", sig)):
        con.execute("UPDATE meta SET value = ? WHERE key = ?", (v.encode(), k))
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    # Nor did fimctl 1 pin an identity: its state.db has none, its file no attribute.
    state = sqlite3.connect(os.path.join(os.path.dirname(ctx.db), "state.db"))
    state.execute("DELETE FROM identity")
    state.commit()
    state.close()
    if os.geteuid() == 0:
        os.removexattr(ctx.db, "trusted.fimctl.identity")


def verdicts(ctx):
    """check's change records and counts (not its time, the records' time and host, or the
    baseline's digest)."""
    rc, out, err = ctx.run("--format", "ndjson", "check")
    recs = [json.loads(l) for l in out.splitlines()]
    expect(recs and recs[-1]["type"] == "summary", f"check: exit {rc}: {err}\n{out}")
    summary = {k: recs[-1][k] for k in ("entries", "added", "removed", "changed", "incomplete", "exit_code")}
    changes = [{k: v for k, v in r.items() if k not in ("time", "host")} for r in recs if r["type"] == "change"]
    return rc, changes, summary


def case_migrate_older_schema(ctx):
    """A schema-1 baseline (as fimctl 1 wrote it, signed) is refused by check with exit 17 and
    the command that migrates it; that command verifies and rewrites it in the current schema,
    signed, keeping the sequence; check then gives the same verdicts as on the original. A
    schema-1 baseline edited after signing is not migrated."""
    ctx.signed_baseline()
    with open(os.path.join(ctx.tree, "g"), "w") as f:
        f.write("g\n")
    os.unlink(ctx.db)  # (not init --force: its journal would say so, and schema 1 had none)
    ctx.ok("init", ctx.tree)  # sequence 2, so the sequence is seen to be kept
    with open(os.path.join(ctx.tree, "f"), "a") as f:
        f.write("changed\n")
    os.unlink(os.path.join(ctx.tree, "g"))
    with open(os.path.join(ctx.tree, "n"), "w") as f:
        f.write("new\n")
    want = verdicts(ctx)
    expect(want[0] == 7 and len(want[1]) == 4, f"the test's changes were not all seen: {want}")
    downgrade_to_schema_1(ctx)
    old = open(ctx.db, "rb").read()
    shutil.copyfile(ctx.db, ctx.db + ".v1")
    ctx.refused(17, "older fimctl (schema 1; this one reads 4): migrate it with fimctl --db '" + ctx.db +
                "' migrate", "check")
    ctx.refused(17, "migrate it with", "log")
    # Trust first: a row edited after signing, or no public key, and nothing is written.
    ctx.meta("UPDATE entries SET size = size + 1 WHERE path = CAST('" + ctx.tree + "/f' AS BLOB)")
    ctx.refused(18, "failed verification", "migrate")
    shutil.copyfile(ctx.db + ".v1", ctx.db)
    ctx.refused(18, "no public key", "migrate", keys=os.path.join(ctx.tmp, "nokeys"))
    expect(open(ctx.db, "rb").read() == old, "a refused migration changed the baseline")
    out = ctx.ok("migrate")
    expect("from schema 1 to 4: sequence 2, 3 entries" in out and "signed with key" in out, out)
    expect(sequence_of(ctx.db) == 2, "the sequence was not kept")
    # A migrated row lacks what schema 1 did not record: a removed entry's old state says less.
    for c in want[1]:
        for a in ("btime", "handle", "verity"):
            c.get("old", {}).pop(a, None)
    expect(verdicts(ctx) == want, lambda: f"verdicts differ after migrating:\n{verdicts(ctx)}\n{want}")
    out = ctx.ok("migrate")
    expect("already in schema 4" in out, out)
    ctx.ok("log")
    expect(not [n for n in os.listdir(ctx.tmp) if ".tmp." in n], os.listdir(ctx.tmp))


def sequence_of(db):
    con = sqlite3.connect(db)
    (seq,) = con.execute("SELECT CAST(value AS TEXT) FROM meta WHERE key = 'sequence'").fetchone()
    con.close()
    return int(seq)


def case_update(ctx):
    """update reports what it accepts, then checks are clean; it needs the key, refuses PATHs,
    and never replaces a baseline that does not verify."""
    ctx.signed_baseline()
    with open(os.path.join(ctx.tree, "f"), "a") as f:
        f.write("accepted\n")
    with open(os.path.join(ctx.tree, "new"), "w") as f:
        f.write("n\n")
    ctx.refused(16, "--report ID", "update")  # not a terminal: bound to a report, or --yes
    out = ctx.ok("update", "--yes", rc_want=5)
    expect("fimctl update: 1 added, 0 removed, 2 changed" in out and "(signed, key " in out, out)
    expect(sequence_of(ctx.db) == 2, "update did not advance the sequence")
    ctx.ok("check")
    ctx.refused(16, "not expected", "update", ctx.tree)
    os.rename(os.path.join(ctx.keys, "signing.key"), os.path.join(ctx.tmp, "away.key"))
    ctx.refused(16, "no signing key", "update", "--yes")
    os.rename(os.path.join(ctx.tmp, "away.key"), os.path.join(ctx.keys, "signing.key"))
    ctx.meta("UPDATE entries SET size = size + 1")
    before = open(ctx.db, "rb").read()
    ctx.refused(18, "failed verification", "update", "--yes")
    expect(open(ctx.db, "rb").read() == before, "a baseline that failed verification was replaced")
    expect(not [n for n in os.listdir(ctx.tmp) if ".tmp." in n], os.listdir(ctx.tmp))


def case_kill_during_init_and_update(ctx):
    """T13: kill -9 at many moments of init and update: the baseline in place always verifies,
    and the next run removes what the killed one left behind."""
    import random
    import signal
    import time
    for d in range(20):
        os.mkdir(os.path.join(ctx.tree, f"d{d}"))
        for i in range(200):
            with open(os.path.join(ctx.tree, f"d{d}", f"f{i}"), "wb") as f:
                f.write(os.urandom(2048))
    ctx.signed_baseline()
    t0 = time.monotonic()
    ctx.ok("update", "--yes")
    full = time.monotonic() - t0
    rng = random.Random(1234)
    kills = 0
    for i in range(16):
        cmd = [ctx.fimctl, "-c", POLICY, "--db", ctx.db, "--keys", ctx.keys, "-q", "--format", "json"]
        cmd += ["update", "--yes"] if i % 2 else ["init", "--force", ctx.tree]
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, full * 0.8))
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            kills += 1
        p.wait()
        rc, out, err = ctx.run("check")
        expect(rc == 0, f"after a kill at try {i}: check exit {rc}: {err}")
    expect(kills >= 6, f"only {kills} of 16 runs were killed before they finished: the tree is too small")
    ctx.ok("update", "--yes")
    leftovers = [n for n in os.listdir(ctx.tmp) if ".tmp." in n]
    expect(not leftovers, f"temp files left behind: {leftovers}")


def case_untrusted_policy_and_baseline(ctx):
    """T12: a policy or baseline that others could rewrite is refused, naming the component."""
    ctx.signed_baseline()
    pol = os.path.join(ctx.tmp, "open", "policy.toml")
    os.makedirs(os.path.dirname(pol))
    shutil.copyfile(POLICY, pol)
    os.chmod(os.path.dirname(pol), 0o777)
    p = subprocess.run([ctx.fimctl, "-c", pol, "config", "check"], capture_output=True, text=True)
    expect(p.returncode == 16 and "is writable by everyone" in p.stderr and "not on a trusted path" in p.stderr, p.stderr)
    os.chmod(os.path.dirname(pol), 0o755)
    os.chmod(pol, 0o666)
    p = subprocess.run([ctx.fimctl, "-c", pol, "config", "check"], capture_output=True, text=True)
    expect(p.returncode == 16 and "is writable by everyone" in p.stderr, p.stderr)
    os.chmod(ctx.db, 0o664)
    ctx.refused(18, "is writable by its group", "check")
    os.chmod(ctx.db, 0o644)
    ctx.ok("check")


def journal_rows(db):
    con = sqlite3.connect(db)
    rows = con.execute("SELECT seq, CAST(entry AS TEXT), hash FROM journal ORDER BY seq").fetchall()
    con.close()
    return rows


def case_accept_and_log(ctx):
    """accept takes exactly what was reported, by path, glob, rule or all, with a reason;
    refuses an entry that changed again; every acceptance is in the signed, chained journal."""
    ctx.signed_baseline()
    for name in ("a", "b", "c.conf", "d.conf"):
        with open(os.path.join(ctx.tree, name), "w") as f:
            f.write(name + "\n")
    ctx.ok("update", "--yes", "--reason", "initial files", rc_want=5)  # 4 added + the directory, journaled
    expect(len(journal_rows(ctx.db)) >= 4, "update did not journal its additions")
    ctx.refused(16, "nothing in the last report matches", "accept", "--yes", "--reason", "x", "--all")  # update accepted all
    for name in ("a", "b", "c.conf", "d.conf"):
        with open(os.path.join(ctx.tree, name), "a") as f:
            f.write("changed\n")
    os.unlink(os.path.join(ctx.tree, "f"))
    reviewed = re.search(r"(?m)^report: ([0-9a-f]{24})$", ctx.ok("check", rc_want=6)).group(1)
    ctx.refused(16, "needs --reason", "accept", "--all")
    ctx.refused(16, "name what to accept", "accept", "--reason", "x")
    ctx.refused(16, "nothing in report " + reviewed + " matches", "accept", "--report", reviewed, "--reason", "x",
                os.path.join(ctx.tree, "zzz"))
    out = ctx.ok("accept", "--report", reviewed, "--reason", "ticket 7", os.path.join(ctx.tree, "a"))
    expect("fimctl accept: 0 added, 0 removed, 1 changed" in out, out)
    out = ctx.ok("accept", "--report", reviewed, "--reason", "configs", os.path.join(ctx.tree, "*.conf"))
    expect("2 changed" in out, out)
    with open(os.path.join(ctx.tree, "b"), "a") as f:  # changed again since the report
        f.write("again\n")
    before = open(ctx.db, "rb").read()
    ctx.refused(16, "changed again since they were reported", "accept", "--yes", "--reason", "x", "--all")
    ctx.refused(16, "report " + reviewed + " is not what is there now", "accept", "--report", reviewed, "--reason", "x",
                "--all")
    expect(open(ctx.db, "rb").read() == before, "a refused accept changed the baseline")
    ctx.ok("check", rc_want=6)  # b (again), tree dir, f removed
    rc, out, err = ctx.run("--format", "ndjson", "check")
    rule = [json.loads(l) for l in out.splitlines() if '"change"' in l][0]["rule"]
    ctx.ok("accept", "--yes", "--reason", "by rule", "--rule", rule)
    ctx.ok("check")
    out = ctx.ok("log")
    expect("reason: ticket 7" in out and "reason: configs" in out and "reason: by rule" in out, out)
    expect("hash chain intact" in out and "(sequence " in out, out)
    rows = journal_rows(ctx.db)
    expect([r[0] for r in rows] == list(range(1, len(rows) + 1)), rows)
    # The journal is signed with the rest: editing, dropping or reordering an entry is caught.
    good = ctx.db + ".good"
    shutil.copyfile(ctx.db, good)
    for sql in ["UPDATE journal SET entry = CAST(replace(CAST(entry AS TEXT), 'action=accept', 'action=update') AS BLOB)",
                "DELETE FROM journal WHERE seq = (SELECT max(seq) FROM journal)",
                "UPDATE journal SET hash = (CASE WHEN substr(hash, 1, 1) = '0' THEN '1' ELSE '0' END) || substr(hash, 2) WHERE seq = 1"]:
        shutil.copyfile(good, ctx.db)
        ctx.meta(sql)
        ctx.refused(18, "baseline", "log")
        ctx.refused(18, "baseline", "check")
    shutil.copyfile(good, ctx.db)
    ctx.ok("log")
    # update accepts everything reported: nothing of that report can be accepted again.
    with open(os.path.join(ctx.tree, "a"), "a") as f:
        f.write("later\n")
    ctx.ok("check", rc_want=4)
    ctx.ok("update", "--yes", "--reason", "release", rc_want=4)
    ctx.refused(16, "nothing in the last report matches", "accept", "--yes", "--reason", "x", "--all")


def case_status_without_the_daemons_db_names_it(ctx):
    """status believes the daemon only through the state.db beside the baseline it watches: with
    a --db where there is no baseline (its directory does not exist), the error says there is
    none (17, as check's) and names --db, instead of a bare 'cannot resolve baseline directory'."""
    missing = os.path.join(ctx.tmp, "nowhere", "baseline.db")
    ctx.refused(17, "give the running daemon's --db", "status", "--socket", os.path.join(ctx.tmp, "w.sock"), db=missing)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-trust-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
