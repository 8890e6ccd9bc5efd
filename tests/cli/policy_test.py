#!/usr/bin/env python3
"""The policy from the command line: config check/show, explain, includes, and init/check
under policies with rules, exclusions, groups, growing logs, severities and tags.

Usage: policy_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail. Every case works in its own temporary directory.
"""
import json
import os
import subprocess  # noqa: F401  (cases may run other tools)
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import POLICY as DEFAULT_POLICY  # noqa: E402
from fimtest import Ctx as CaseCtx, Failure, Skip, expect, run_fimctl, run_main  # noqa: E402,F401


class Ctx(CaseCtx):
    def policy(self, text, name="policy.toml"):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text.replace("TREE", self.tree))
        return path

    def run(self, *args, config=None, fmt=None):
        r = run_fimctl(self.fimctl, *args, config=config or None, db=self.db,
                       keys=os.path.join(self.tmp, "keys"), fmt=fmt or "plain")
        return r.rc, r.stdout, r.stderr

    def report(self, command, config, rc_want):
        # init here re-baselines under the case's policy on purpose: --force (no prompt, no refusal)
        cmd = (command, "--force") if command == "init" else (command,)
        rc, out, err = self.run(*cmd, config=config, fmt="ndjson")
        expect(rc == rc_want, f"{command}: exit {rc}, want {rc_want}\nstderr: {err}\nstdout: {out}")
        recs = [json.loads(line) for line in out.splitlines()]
        return recs

    def write(self, rel, data, mode=None):
        path = os.path.join(self.tree, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(data)
        if mode is not None:
            os.chmod(path, mode)


def changes(recs):
    return {r["path"]: r for r in recs if r["type"] == "change"}


def fatal(rc, out, err, rc_want, *says):
    expect(rc == rc_want, f"exit {rc}, want {rc_want}; stderr: {err}")
    expect(out == "", f"nothing may be printed on stdout: {out}")
    lines = err.splitlines()
    expect(lines and all(line.startswith("fimctl: error: ") for line in lines), f"stderr: {err!r}")
    for s in says:
        expect(s in err, f"the error does not say {s!r}: {err}")
    return lines


# --- cases ------------------------------------------------------------------------------

def case_default_policy_is_valid(ctx):
    """The shipped default policy loads, and config show loads back to the same digest."""
    rc, out, err = ctx.run("config", "check", config=DEFAULT_POLICY)
    expect(rc == 0 and "policy ok" in out and err == "", f"config check: {rc} {out} {err}")
    digest = [l for l in out.splitlines() if "digest:" in l][0].split()[-1]
    rc, shown, err = ctx.run("config", "show", config=DEFAULT_POLICY)
    expect(rc == 0, f"config show: {rc} {err}")
    again = ctx.policy(shown, "shown.toml")
    rc, out, err = ctx.run("config", "check", config=again)
    expect(rc == 0 and digest in out, f"the shown policy has another digest: {out} {err}")


def case_config_errors_all_listed(ctx):
    """Every problem: file:line:column, the key named, a suggestion; exit 16, no stdout."""
    bad = ctx.policy('[[rule]]\npath = "/a"\natrs = "R"\n\n[[rule]]\nglob = 7\n\n[options]\nseverity = "urgent"\n')
    rc, out, err = ctx.run("config", "check", config=bad)
    lines = fatal(rc, out, err, 16)
    expect(len(lines) == 3, f"want 3 problems, got: {err}")
    expect(f"{bad}:3:1: unknown key 'atrs' in [[rule]] (did you mean 'attrs'?)" in lines[0] or
           any(f"{bad}:3:1: unknown key 'atrs'" in l and "did you mean 'attrs'" in l for l in lines), err)
    expect(any(f"{bad}:6:8: [[rule]].glob must be a string, not an integer" in l for l in lines), err)
    expect(any(f"{bad}:9:12: options.severity: unknown severity 'urgent'" in l for l in lines), err)
    # init and check refuse a bad policy the same way, before touching any baseline.
    os.mkdir(ctx.tree)
    rc, out, err = ctx.run("init", ctx.tree, config=bad)
    fatal(rc, out, err, 16, "did you mean 'attrs'")
    expect(not os.path.exists(ctx.db), "a baseline was written under a bad policy")


def case_missing_or_odd_config(ctx):
    rc, out, err = ctx.run("config", "check", config=os.path.join(ctx.tmp, "absent.toml"))
    fatal(rc, out, err, 16, "cannot open policy", "No such file")
    rc, out, err = ctx.run("config", "check", config=ctx.tmp)
    fatal(rc, out, err, 16, "is not a regular file")
    big = os.path.join(ctx.tmp, "big.toml")
    with open(big, "wb") as f:
        f.truncate(100 * 1024 * 1024)
    t0 = time.monotonic()
    rc, out, err = ctx.run("config", "check", config=big)
    fatal(rc, out, err, 16, "larger than 1024 KiB")
    expect(time.monotonic() - t0 < 5, "a 100 MB policy took long to refuse")
    for name, data, says in [("nul.toml", b'version = 1\n\0', "NUL byte"),
                             ("latin1.toml", b'# caf\xe9\n', "invalid UTF-8"),
                             ("utf16.toml", b'\xff\xfev\x00', "UTF-16"),
                             ("fefe.toml", b'\xef\xbb\xbe\n', "non-ASCII character outside a string")]:
        path = os.path.join(ctx.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        rc, out, err = ctx.run("config", "check", config=path)
        fatal(rc, out, err, 16, says, f"{path}:")


def case_includes(ctx):
    """conf.d drop-ins load after the main file in name order; the later rule wins a tie;
    an include loop is an error naming the chain."""
    main = ctx.policy('[[rule]]\npath = "/srv"\nseverity = "low"\n', "etc/fimctl.toml")
    ctx.policy('[[rule]]\npath = "/srv"\nseverity = "high"\ntags = ["b"]\n', "etc/conf.d/20-b.toml")
    ctx.policy('[[rule]]\npath = "/srv"\nseverity = "critical"\ntags = ["a"]\n', "etc/conf.d/10-a.toml")
    rc, out, err = ctx.run("explain", "/srv/x", config=main)
    expect(rc == 0, f"explain: {rc} {err}")
    expect("conf.d/20-b.toml:1:1" in out.split("\n")[1] and "severity: high" in out, out)
    rc, out, err = ctx.run("config", "show", config=main)
    expect(out.count("[[rule]]") == 3 and "10-a.toml" in out and "20-b.toml" in out, out)
    a = ctx.policy('include = ["b.toml"]\n', "loop/a.toml")
    ctx.policy('include = ["a.toml"]\n', "loop/b.toml")
    rc, out, err = ctx.run("config", "check", config=a)
    fatal(rc, out, err, 16, "include loop", "a.toml -> ", "b.toml -> ")
    opts = ctx.policy('[options]\ncross_fs = true\n', "etc/conf.d/30-opts.toml")
    rc, out, err = ctx.run("config", "check", config=main)
    fatal(rc, out, err, 16, f"{opts}:1:1: [options] belongs in the main policy file only")


def case_explain(ctx):
    os.makedirs(ctx.tree)
    ctx.write("app/run.sh", "x")
    os.symlink("run.sh", os.path.join(ctx.tree, "app", "link"))
    pol = ctx.policy('''
[[rule]]
path = "TREE"
tags = ["t"]
[[exclude]]
glob = "TREE/**/*.pyc"
[[exclude]]
path = "TREE/app"
type = "symlink"
[[rule]]
regex = "TREE/app/run\\\\.sh"
attrs = "perms + sha256"
severity = "critical"
''')
    rc, out, err = ctx.run("explain", f"{ctx.tree}/app/run.sh", config=pol)
    expect(rc == 0, f"explain: {rc} {out} {err}")
    expect(f"{pol}:10:1" in out and "(matches the path itself)" in out, out)
    expect("attributes: type+mode+uid+gid+sha256\n" in out and "severity: critical" in out, out)
    expect(f"{pol}:2:1" in out and "lower precedence" in out, out)  # the TREE rule, listed second
    rc, out, err = ctx.run("explain", f"{ctx.tree}/app/x.pyc", config=pol)
    expect(rc == 1 and "excluded by exclude #2" in out and "does not exist" in out, out)
    rc, out, err = ctx.run("explain", f"{ctx.tree}/app/link", config=pol)
    expect(rc == 1 and "excluded by exclude #3" in out, out)
    rc, out, err = ctx.run("explain", "/nowhere/at/all", config=pol)
    expect(rc == 1 and "no rule covers it" in out, out)


def case_rules_drive_init_and_check(ctx):
    """What is recorded and how differences are reported follow the rules: exclusions drop
    entries, growing logs may grow, attrs narrow what counts, labels reach every record."""
    os.makedirs(ctx.tree)
    ctx.write("bin/tool", "#!/bin/sh\n", 0o755)
    ctx.write("bin/tool.pyc", "cache")
    ctx.write("log/app.log", "line 1\n")
    ctx.write("data/counter", "1")
    pol = ctx.policy('''
[groups]
Meta = "perms + size"
[[rule]]
path = "TREE"
severity = "high"
tags = ["bins", "mitre:T1036"]
[[exclude]]
glob = "TREE/**/*.pyc"
[[rule]]
path = "TREE/log"
attrs = ">"
severity = "low"
[[rule]]
path = "TREE/data"
attrs = "Meta"
''')
    recs = ctx.report("init", pol, 0)
    summary = recs[-1]
    # tree, bin, tool, log, app.log, data, counter: the .pyc is not recorded
    expect(summary["entries"] == 7, f"entries: {summary}")
    rc, out, err = ctx.run("init", "--force", ctx.tree, config=pol, fmt="ndjson")  # PATH form: same entries
    expect(rc == 0 and json.loads(out.splitlines()[-1])["entries"] == 7, out)
    ctx.report("init", pol, 0)

    time.sleep(0.02)
    ctx.write("bin/tool.pyc", "changed cache")                  # excluded: silent
    with open(os.path.join(ctx.tree, "log/app.log"), "a") as f:  # grows: not a change
        f.write("line 2\n")
    ctx.write("data/counter", "2")                               # same size, same perms: not a change
    ctx.write("bin/tool", "#!/bin/sh\necho evil\n", 0o755)
    recs = ctx.report("check", pol, 4)
    ch = changes(recs)
    expect(set(ch) == {f"{ctx.tree}/bin/tool", f"{ctx.tree}/bin"} or set(ch) == {f"{ctx.tree}/bin/tool"},
           f"changes: {sorted(ch)}")
    tool = ch[f"{ctx.tree}/bin/tool"]
    expect(tool["severity"] == "high" and tool["tags"] == ["bins", "mitre:T1036"], tool)
    expect(tool["rule"] == f"{pol}:4:1", tool)

    with open(os.path.join(ctx.tree, "log/app.log"), "w") as f:  # shrinks: a change
        f.write("x\n")
    recs = ctx.report("check", pol, 4)
    log = changes(recs)[f"{ctx.tree}/log/app.log"]
    # the digest covers the recorded size only, so a shorter log differs in both
    expect([c["attr"] for c in log["changes"]] == ["size", "sha256"] and log["severity"] == "low", log)
    rc, out, err = ctx.run("check", config=pol)
    expect("changed: " + ctx.tree + "/bin/tool [high: bins,mitre:T1036]" in out, out)


def case_policy_change_warns(ctx):
    """check under another policy: alert policy_changed, exit bit 8, how to re-baseline."""
    os.makedirs(ctx.tree)
    ctx.write("f", "x")
    a = ctx.policy('[[rule]]\npath = "TREE"\n', "a.toml")
    b = ctx.policy('[[rule]]\npath = "TREE"\nattrs = "R - sha256"\n', "b.toml")
    ctx.report("init", a, 0)
    recs = ctx.report("check", a, 0)
    expect(not [r for r in recs if r["type"] == "alert" and r["code"] == "policy_changed"], recs)
    recs = ctx.report("check", b, 8)
    alerts = [r for r in recs if r["type"] == "alert" and r["code"] == "policy_changed"]
    expect(len(alerts) == 1 and "fimctl update" in alerts[0]["message"], recs)
    expect(recs[-1]["exit_code"] == 8, recs[-1])


def case_init_paths_keep_policy_rules(ctx):
    """init PATH records PATH with default_attrs, and rules below it still apply; check
    without PATHs re-applies the same."""
    os.makedirs(ctx.tree)
    ctx.write("keep", "k")
    ctx.write("skip.tmp", "s")
    pol = ctx.policy('[options]\ndefault_attrs = "perms + sha256"\n[[exclude]]\nglob = "TREE/*.tmp"\n')
    rc, out, err = ctx.run("init", "--force", ctx.tree, config=pol, fmt="ndjson")
    expect(rc == 0 and json.loads(out.splitlines()[-1])["entries"] == 2, f"{rc} {out} {err}")
    time.sleep(0.02)
    ctx.write("skip.tmp", "changed")
    os.utime(os.path.join(ctx.tree, "keep"), (1, 1))  # mtime is not in default_attrs here
    recs = ctx.report("check", pol, 0)
    expect(not changes(recs), recs)


def case_duration_grammar(ctx):
    """One duration grammar: a policy's read_timeout takes what watch's options take
    (fractions, days), and both refuse the same malformed values."""
    for value, seconds in [("1.5h", 5400), ("1d", 86400), ("250ms", 0.25)]:
        path = ctx.policy(f'[options]\nread_timeout = "{value}"\n')
        rc, out, err = ctx.run("config", "check", config=path)
        expect(rc == 0, f"read_timeout = {value!r}: exit {rc}: {err}")
        rc, out, err = ctx.run("config", "show", config=path)
        expect(rc == 0 and f'read_timeout = "{seconds:g}s"' in out, f"config show of read_timeout {value!r}: {out}")
    for value in ["2d", "1.5x", "1e3"]:
        path = ctx.policy(f'[options]\nread_timeout = "{value}"\n')
        rc, out, err = ctx.run("config", "check", config=path)
        fatal(rc, out, err, 16, "options.read_timeout:", f"'{value}'")
    # watch parses its durations before it opens the baseline: with none there, an accepted
    # duration ends in exit 17 (no baseline), a refused one in 16 naming the option.
    missing = os.path.join(ctx.tmp, "baseline.db")
    policy = ctx.policy("")
    base = [ctx.fimctl, "-c", policy, "--db", missing, "--unsigned", "watch", "--socket", os.path.join(ctx.tmp, "s")]
    for value in ["1.5h", "1d", "250ms"]:
        p = subprocess.run(base + ["--heartbeat", value, "--full-check-interval", value], capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        expect(p.returncode == 17 and "duration" not in err, f"watch --heartbeat {value}: exit {p.returncode}: {err}")
    for value in ["1.5x", "1e3"]:
        p = subprocess.run(base + ["--heartbeat", value], capture_output=True, timeout=60)
        err = p.stderr.decode(errors="replace")
        expect(p.returncode == 16 and "--heartbeat:" in err and "is not a duration" in err,
               f"watch --heartbeat {value}: exit {p.returncode}: {err}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-policy-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
