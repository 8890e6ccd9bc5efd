#!/usr/bin/env python3
"""Ready to install: `meson install` into a DESTDIR, the systemd units (systemd-analyze
verify; check_unit_test.py runs the check unit under systemd), the cron job, the bash
completion, and the man pages against the binary's own list of commands, options and policy
keys (`fimctl completion list`).

Usage: install_test.py --fimctl PATH --build DIR (--list | CASE)
Exit 0 pass, 1 fail, 77 skip. Every case works in its own temporary directory; nothing is
installed outside it.
"""
import glob
import json
import os
import re
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from fimtest import SOURCE, Skip, expect, read, run, run_main, write  # noqa: E402


SHARE = os.path.join(SOURCE, "share")
UNIT_SUFFIXES = (".service", ".timer", ".socket", ".path")


def source_units():
    return sorted(os.path.basename(u) for u in glob.glob(os.path.join(SHARE, "systemd", "*")) if u.endswith(UNIT_SUFFIXES))


class Ctx:
    def __init__(self, fimctl, build, tmp):
        self.fimctl, self.build, self.tmp = fimctl, build, tmp
        with open(os.path.join(build, "meson-info", "intro-buildoptions.json")) as f:
            opts = {o["name"]: o["value"] for o in json.load(f)}
        self.prefix = opts["prefix"]

        def under(d):
            return d if os.path.isabs(d) else os.path.join(self.prefix, d)
        self.sbindir, self.datadir = under(opts["sbindir"]), under(opts["datadir"])
        self.mandir, self.libexecdir = under(opts["mandir"]), under(opts["libexecdir"])
        self.unitdir_option = opts.get("systemdunitdir", "")

    def run(self, cmd, timeout=120, **kw):
        r = run(cmd, timeout=timeout, **kw)
        return r.rc, r.stdout, r.stderr

    def install(self, dest):
        """meson install of the build directory into `dest` (DESTDIR)."""
        meson = shutil.which("meson")
        if not meson:
            raise Skip("meson is not on PATH")
        rc, out, err = self.run([meson, "install", "-C", self.build, "--no-rebuild", "--destdir", dest], timeout=240)
        expect(rc == 0, f"meson install: exit {rc}\n{out}\n{err}")
        return out

    def unitdir(self, dest):
        """Where the units landed (the directory depends on systemd's pkg-config file)."""
        if self.unitdir_option == "no":
            return None
        if self.unitdir_option:
            return self.unitdir_option
        found = [os.path.dirname(p)[len(dest):] for p in glob.glob(dest + "/**/fimctl-check.service", recursive=True)]
        expect(len(found) == 1, f"fimctl-check.service installed {len(found)} times: {found}")
        expect(found[0] in (os.path.join(self.prefix, "lib/systemd/system"), "/lib/systemd/system", "/usr/lib/systemd/system"),
               f"units installed to {found[0]}, which systemd does not read")
        return found[0]


def cron_jobs(text):
    """The job lines of a cron.d file (not comments, blank lines or VAR=value settings)."""
    return [l for l in text.splitlines() if l.strip() and not l.lstrip().startswith("#")
            and not re.match(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=", l)]


def exec_paths(unit_text):
    """The programs a unit's Exec*= lines run (after the -, @, :, +, ! prefixes)."""
    paths = []
    for line in unit_text.splitlines():
        m = re.match(r"\s*Exec\w*=\s*[-@:+!]*(\S+)", line)
        if m:
            paths.append(m.group(1))
    return paths


# --- (a) and (b): meson install ---------------------------------------------------------

def case_install_tree(ctx):
    """meson install --destdir: binary, man pages, default policy (datadir and /etc), units,
    cron job and its helper, bash completion; the paths in units and cron files exist."""
    d = os.path.join(ctx.tmp, "dest")
    ctx.install(d)

    def has(path, mode=None, same_as=None):
        full = d + path
        expect(os.path.isfile(full), f"not installed: {path}")
        if mode is not None:
            got = os.stat(full).st_mode & 0o7777
            expect(got == mode, f"{path}: mode {got:o}, want {mode:o}")
        if same_as is not None:
            expect(read(full) == read(same_as), f"{path} differs from {same_as}")
        return full

    binary = has(os.path.join(ctx.sbindir, "fimctl"), 0o755)
    rc, out, err = ctx.run([binary, "version"])
    expect(rc == 0 and out.startswith("fimctl "), f"installed fimctl version: exit {rc}: {out}{err}")
    has(os.path.join(ctx.mandir, "man8", "fimctl.8"), same_as=os.path.join(SOURCE, "man", "fimctl.8"))
    has(os.path.join(ctx.mandir, "man5", "fimctl.toml.5"), same_as=os.path.join(SOURCE, "man", "fimctl.toml.5"))
    policy = os.path.join(SHARE, "fimctl.toml")
    has(os.path.join(ctx.datadir, "fimctl", "fimctl.toml"), same_as=policy)
    etc_policy = has("/etc/fimctl/fimctl.toml", 0o644, same_as=policy)
    got = os.stat(d + "/etc/fimctl").st_mode & 0o7777
    expect(got == 0o755, f"/etc/fimctl: mode {got:o}, want 755 (a trusted path)")
    rc, out, err = ctx.run([ctx.fimctl, "-c", etc_policy, "config", "check"])
    expect(rc == 0, f"the installed policy does not load: {err}")

    completion = has(os.path.join(ctx.datadir, "bash-completion", "completions", "fimctl"), 0o644)
    rc, out, _ = ctx.run([ctx.fimctl, "completion", "bash"])
    expect(rc == 0 and read(completion) == out, "the installed completion is not `fimctl completion bash`")
    for shell, path in [("zsh", ("zsh", "vendor-completions", "_fimctl")),
                        ("fish", ("fish", "vendor_completions.d", "fimctl.fish"))]:
        rc, out, _ = ctx.run([ctx.fimctl, "completion", shell])
        expect(rc == 0 and read(has(os.path.join(ctx.datadir, *path), 0o644)) == out,
               f"the installed {shell} completion is not `fimctl completion {shell}`")

    unitdir = ctx.unitdir(d)
    if unitdir:
        for name in source_units():
            text = read(has(os.path.join(unitdir, name), 0o644))
            for prog in exec_paths(text):
                if prog.startswith(ctx.prefix.rstrip("/") + "/"):
                    expect(os.access(d + prog, os.X_OK), f"{name} runs {prog}, which is not installed")
            if "/usr/sbin/fimctl" in read(os.path.join(SHARE, "systemd", name)):
                expect(os.path.join(ctx.sbindir, "fimctl") in text, f"{name} does not run {ctx.sbindir}/fimctl")

    cron = read(has("/etc/cron.d/fimctl", 0o644))
    helper = has(os.path.join(ctx.libexecdir, "fimctl", "fimctl-cron"), 0o755)
    helper_path = os.path.join(ctx.libexecdir, "fimctl", "fimctl-cron")
    jobs = cron_jobs(cron)
    expect(len(jobs) == 1, f"want one cron job: {jobs}")
    fields = jobs[0].split(None, 6)
    expect(len(fields) == 7 and fields[5] == "root", f"not a cron.d line (m h dom mon dow user command): {jobs[0]}")
    expect(helper_path in fields[6], f"the cron job does not run {helper_path}: {jobs[0]}")
    expect(f"FIMCTL:-{os.path.join(ctx.sbindir, 'fimctl')}" in read(helper), "fimctl-cron does not run the installed fimctl")
    has("/etc/default/fimctl", 0o644, same_as=os.path.join(SHARE, "default", "fimctl"))
    rc, out, err = ctx.run(["sh", "-n", d + "/etc/default/fimctl"])
    expect(rc == 0, f"/etc/default/fimctl is not shell: {err}")


def case_install_keeps_admin_files(ctx):
    """An existing /etc/fimctl/fimctl.toml (and /etc/cron.d/fimctl, /etc/default/fimctl)
    survives installs; the reference copy in datadir is replaced."""
    d = os.path.join(ctx.tmp, "dest")
    mine = "# the admin's policy\n[[rule]]\npath = \"/srv\"\n"
    schedule = "# the admin's schedule\n0 3 * * * root /usr/libexec/fimctl/fimctl-cron\n"
    write(d + "/etc/fimctl/fimctl.toml", mine, 0o600)
    write(d + "/etc/cron.d/fimctl", schedule, 0o644)
    settings = "MAILTO=security@example.org\n"
    write(d + "/etc/default/fimctl", settings, 0o640)
    reference = d + os.path.join(ctx.datadir, "fimctl", "fimctl.toml")
    write(reference, "# stale\n")
    for _ in range(2):
        out = ctx.install(d)
        expect(read(d + "/etc/fimctl/fimctl.toml") == mine, "the admin's /etc/fimctl/fimctl.toml was replaced")
        expect(os.stat(d + "/etc/fimctl/fimctl.toml").st_mode & 0o777 == 0o600, "its mode was changed")
        expect(read(d + "/etc/cron.d/fimctl") == schedule, "the admin's /etc/cron.d/fimctl was replaced")
        expect(read(d + "/etc/default/fimctl") == settings, "the admin's /etc/default/fimctl was replaced")
        expect(read(reference) == read(os.path.join(SHARE, "fimctl.toml")), "datadir/fimctl/fimctl.toml was not updated")
        expect(not glob.glob(d + "/etc/fimctl/.*") and not glob.glob(d + "/etc/cron.d/.*"), "temporary files left in /etc")
    # Without one, the default policy is installed.
    os.unlink(d + "/etc/fimctl/fimctl.toml")
    ctx.install(d)
    expect(read(d + "/etc/fimctl/fimctl.toml") == read(os.path.join(SHARE, "fimctl.toml")), "no policy installed")


# --- (c): systemd units -------------------------------------------------------------------

def host_unit_dirs():
    dirs = []
    for d in ("/lib/systemd/system", "/usr/lib/systemd/system"):
        if os.path.isdir(d) and os.path.realpath(d) not in [os.path.realpath(x) for x in dirs]:
            dirs.append(d)
    return dirs


def case_units_verify(ctx):
    """systemd-analyze verify passes, with no warning, on every unit in share/systemd as
    installed (--root: the programs they run must exist in the installed tree; the host's
    units stand in for the ones they name, such as timers.target; Documentation= man pages are
    looked up in the installed tree)."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        raise Skip("systemd-analyze is not installed (Debian package systemd)")
    if not host_unit_dirs():
        raise Skip("no systemd unit directory on this host")
    d = os.path.join(ctx.tmp, "dest")
    ctx.install(d)
    unitdir = ctx.unitdir(d)
    if unitdir is None:
        raise Skip("built with -Dsystemdunitdir=no")
    # The units the fimctl units name (sysinit.target, timers.target, ...) come from the host,
    # in a directory systemd searches after the installed one; programs outside the install
    # (/bin/kill) too.
    for src in host_unit_dirs():
        for f in os.listdir(src):
            target = d + "/usr/lib/systemd/system/" + f
            if not f.startswith("fimctl") and not os.path.lexists(target):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                p = os.path.join(src, f)
                if os.path.islink(p):
                    os.symlink(os.readlink(p), target)
                elif os.path.isfile(p):
                    shutil.copyfile(p, target)
    names = source_units()
    expect(names, "no units in share/systemd")
    for name in names:
        for prog in exec_paths(read(d + os.path.join(unitdir, name))):
            if not prog.startswith(ctx.prefix.rstrip("/") + "/") and os.path.isabs(prog) and not os.path.exists(d + prog):
                expect(os.path.exists(prog), f"{name} runs {prog}, which this host lacks")
                os.makedirs(os.path.dirname(d + prog), exist_ok=True)
                shutil.copy2(prog, d + prog)
    env = dict(os.environ, MANPATH=d + ctx.mandir, SYSTEMD_LOG_LEVEL="notice")
    # Documentation=man:... is checked with man(1) against the installed pages, where it exists.
    man = [] if shutil.which("man") else ["--man=no"]
    for name in names:
        rc, out, err = ctx.run([analyze, "verify", *man, "--root=" + d, os.path.join(unitdir, name)], env=env)
        expect(rc == 0 and not (out + err).strip(), f"systemd-analyze verify {name}: exit {rc}\n{out}{err}")
    # The check is a oneshot run by a daily, persistent, randomized timer.
    service = read(os.path.join(SHARE, "systemd", "fimctl-check.service"))
    timer = read(os.path.join(SHARE, "systemd", "fimctl-check.timer"))
    for want in ("Type=oneshot", "ProtectSystem=strict", "ReadWritePaths=-/var/lib/fimctl -/var/lib/prometheus/node-exporter",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "OnFailure=fimctl-check-mail.service",
                 "OnSuccess=fimctl-check-mail.service", "ConditionPathExists=|/var/lib/fimctl/baseline.db.lock"):
        expect(re.search("^" + re.escape(want) + "$", service, re.M), f"fimctl-check.service lacks {want}")
    expect(re.search(r"^ExecStart=/usr/libexec/fimctl/fimctl-cron --unit$", service, re.M), "fimctl-check.service does not run the scheduled check")
    mail = read(os.path.join(SHARE, "systemd", "fimctl-check-mail.service"))
    expect(re.search(r"^ExecStart=/usr/libexec/fimctl/fimctl-cron --mail$", mail, re.M) and "[Install]" not in mail,
           "fimctl-check-mail.service: not the script's --mail, or installable by itself")
    for want in ("OnCalendar=daily", "Persistent=true", "WantedBy=timers.target"):
        expect(re.search("^" + re.escape(want) + "$", timer, re.M), f"fimctl-check.timer lacks {want}")
    expect(re.search(r"^RandomizedDelaySec=\S+$", timer, re.M), "fimctl-check.timer lacks RandomizedDelaySec=")


# --- (d): the cron job ------------------------------------------------------------------------

FAKE_FIMCTL = """#!/bin/sh
echo "fake report: $*"
echo "fake notice" >&2
exit "${FAKE_RC:-0}"
"""


def case_cron_job(ctx):
    """fimctl-cron: silent on exit 0; on differences and on errors it prints what happened
    and the report, and logs one line with tag fimctl; nothing without fimctl or while
    systemd's timer is enabled; the cron.d line runs it only where it is installed."""
    if not shutil.which("sh"):
        raise Skip("no sh")
    helper = os.path.join(SHARE, "cron", "fimctl-cron")
    bindir = os.path.join(ctx.tmp, "bin")
    logged = os.path.join(ctx.tmp, "logger.log")
    write(os.path.join(bindir, "fimctl"), FAKE_FIMCTL, 0o755)
    write(os.path.join(bindir, "logger"), f'#!/bin/sh\necho "$*" >> {logged}\n', 0o755)
    # systemctl as on a machine whose timer is enabled (ENABLED=1) or not.
    write(os.path.join(bindir, "systemctl"),
          '#!/bin/sh\n[ "$1" = --quiet ] && shift\n'
          'case "$1 $2" in "is-enabled fimctl-check.timer") [ "${ENABLED:-0}" = 1 ];; *) exit 3;; esac\n', 0o755)
    no_systemd = os.path.join(ctx.tmp, "no-systemd")
    # No mail of the script's own (MAILTO empty: it prints for cron; scheduled_test.py tests the
    # mail), no metrics, and an initialised host (init's lock file).
    defaults = os.path.join(ctx.tmp, "default")
    write(defaults, "MAILTO=\nMETRICS_FILE=\n")
    write(os.path.join(ctx.tmp, "state", "baseline.db.lock"), "")
    base = dict(os.environ, PATH=bindir + ":/usr/bin:/bin", FIMCTL=os.path.join(bindir, "fimctl"),
                FIMCTL_SYSTEMD_DIR=no_systemd, FIMCTL_DEFAULTS=defaults, FIMCTL_STATE=os.path.join(ctx.tmp, "state"),
                FIMCTL_DPKG_STATUS=os.path.join(ctx.tmp, "no-dpkg"))

    def cron(**env):
        if os.path.exists(logged):
            os.unlink(logged)
        rc, out, err = ctx.run(["sh", helper], env=dict(base, **env))
        return rc, out + err, read(logged) if os.path.exists(logged) else ""

    rc, out, log = cron(FAKE_RC="0")
    expect(rc == 0 and out == "" and log == "", f"clean check: exit {rc}, printed {out!r}, logged {log!r}")
    for code, says, prio in [(4, "differences found (exit 4: changed)", "user.warning"),
                             (11, "differences found (exit 11: added, removed, incomplete)", "user.warning"),
                             (17, "check failed (exit 17: baseline missing", "user.err"),
                             (18, "check failed (exit 18: baseline failed verification)", "user.err")]:
        rc, out, log = cron(FAKE_RC=str(code))
        expect(rc == code, f"exit {rc}, want {code}")
        expect(says in out and "fake report: check" in out and "fake notice" in out, f"exit {code}: printed {out!r}")
        expect(log.startswith(f"-t fimctl -p {prio} -- fimctl check: ") and says in log, f"exit {code}: logged {log!r}")
    rc, out, log = cron(FAKE_RC="4", FIMCTL=os.path.join(ctx.tmp, "absent"))
    expect(rc == 0 and out == "" and log == "", f"without fimctl: exit {rc}, printed {out!r}")
    os.mkdir(no_systemd)  # now "systemd is running"
    rc, out, log = cron(FAKE_RC="4", ENABLED="1")
    expect(rc == 0 and out == "" and log == "", f"timer enabled: exit {rc}, printed {out!r}")
    rc, out, log = cron(FAKE_RC="4", ENABLED="0")
    expect(rc == 4 and "differences found" in out, f"systemd without the timer enabled: exit {rc}, printed {out!r}")

    # With the real fimctl on a real baseline: silent while clean, the report once it changes.
    tree = os.path.join(ctx.tmp, "tree")
    write(os.path.join(tree, "f"), "content\n")
    policy = os.path.join(ctx.tmp, "policy.toml")
    write(policy, f'[[rule]]\npath = "{tree}"\n')
    real = [ctx.fimctl, "-c", policy, "--db", os.path.join(ctx.tmp, "db"), "--keys", os.path.join(ctx.tmp, "keys"), "--unsigned"]
    write(os.path.join(bindir, "real-fimctl"), "#!/bin/sh\nexec " + " ".join(real) + ' "$@"\n', 0o755)
    rc, out, err = ctx.run(real + ["init"])
    expect(rc == 0, f"init: {err}")
    os.rmdir(no_systemd)
    rc, out, log = cron(FIMCTL=os.path.join(bindir, "real-fimctl"))
    expect(rc == 0 and out == "", f"clean: exit {rc}, printed {out!r}")
    write(os.path.join(tree, "f"), "changed\n")
    rc, out, log = cron(FIMCTL=os.path.join(bindir, "real-fimctl"))
    expect(rc == 4 and "differences found (exit 4: changed)" in out and f"changed: {tree}/f" in out, f"exit {rc}: {out}")

    # The cron.d line: runs the helper where it is installed, and nothing (silently) elsewhere.
    command = cron_jobs(read(os.path.join(SHARE, "cron", "fimctl")))[0].split(None, 6)[6]
    copy = os.path.join(ctx.tmp, "libexec", "fimctl-cron")
    write(copy, read(helper), 0o755)
    rc, out, _ = ctx.run(["sh", "-c", command.replace("/usr/libexec/fimctl/fimctl-cron", copy)], env=dict(base, FAKE_RC="2"))
    expect(rc == 2 and "differences found (exit 2: removed)" in out, f"the cron.d command: exit {rc}: {out}")
    rc, out, err = ctx.run(["sh", "-c", command.replace("/usr/libexec/fimctl/fimctl-cron", copy + ".absent")], env=base)
    expect(out + err == "", f"the cron.d command without the helper printed {out + err!r}")


# --- (e): bash completion ---------------------------------------------------------------------

def case_completion(ctx):
    """The generated script loads in bash and completes commands, nested commands, options
    (theirs and the global ones), --format's choices and file arguments; every command and
    option the binary lists is offered."""
    bash = shutil.which("bash")
    if not bash:
        raise Skip("no bash")
    rc, script, err = ctx.run([ctx.fimctl, "completion", "bash"])
    expect(rc == 0 and script, f"fimctl completion bash: exit {rc}: {err}")
    path = os.path.join(ctx.tmp, "fimctl.bash")
    write(path, script)
    rc, listing, err = ctx.run([ctx.fimctl, "completion", "list"])
    expect(rc == 0, f"fimctl completion list: exit {rc}: {err}")
    files = os.path.join(ctx.tmp, "files")
    os.makedirs(os.path.join(files, "subdir"))
    write(os.path.join(files, "policy.toml"), "")

    # (words typed, what the completions must include, what they must not)
    cases = [
        (["ch"], ["check"], []),
        ([""], ["init", "check", "config", "key", "version"], ["completion", "--db"]),
        (["check", "--f"], ["--format"], []),
        (["config", ""], ["check", "show"], []),
        (["key", ""], ["generate"], []),
        (["check", "--format", ""], ["plain", "json", "ndjson"], []),
        (["--format=", ""], [], []),
        (["--db", "x", "accept", "--r"], ["--reason", "--rule"], []),
        (["update", "--"], ["--reason", "--db", "--help"], ["--rule"]),
        (["-c", files + "/po"], [files + "/policy.toml"], []),
        (["--keys", files + "/"], [files + "/subdir"], [files + "/policy.toml"]),
        (["check", files + "/p"], [files + "/policy.toml"], []),
        (["config", "check", "--c"], ["--config"], []),
    ]
    # Every command and option the binary has.
    for line in listing.splitlines():
        kind, *rest = line.split("\t")
        if kind == "command":
            words = rest[0].split()
            cases.append((words[:-1] + [words[-1][:2]], [words[-1]], []))
        elif kind == "option":
            for name in rest[1].split():
                cases.append(((rest[0].split() if rest[0] else []) + [name[:3]], [name], []))
    lines = [f". {path}", "complete -p fimctl",
             't() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=(); _fimctl; '
             'printf "%s\\n" "${COMPREPLY[*]}"; }']
    for words, _, _ in cases:
        lines.append("t fimctl " + " ".join("'" + w.replace("'", "'\\''") + "'" for w in words))
    # --format=VALUE: bash splits it into --format, =, VALUE.
    lines.append("t fimctl --format = j")
    rc, out, err = ctx.run([bash, "--norc", "--noprofile", "-c", "\n".join(lines)], cwd=ctx.tmp)
    expect(rc == 0 and not err, f"bash: exit {rc}: {err}")
    got = out.split("\n")
    expect(got[0] == "complete -F _fimctl fimctl", f"not registered for fimctl: {got[0]}")
    for (words, want, unwanted), offered in zip(cases, got[1:]):
        offered = offered.split()
        for w in want:
            expect(w in offered, f"fimctl {' '.join(words)}<TAB> does not offer {w}: {offered}")
        for w in unwanted:
            expect(w not in offered, f"fimctl {' '.join(words)}<TAB> offers {w}: {offered}")
    expect(got[len(cases) + 1] == "json", f"fimctl --format=j<TAB>: {got[len(cases) + 1]!r}")


# --- (f): man pages -------------------------------------------------------------------------

FONT = re.compile(r"\\f[BIRP]|\\f\(..|\\&|\\:|\\c")


def roff_args(s):
    return [m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
            for m in re.finditer(r'"((?:[^"]|"")*)"|(\S+)', s)]


def roff_text(line):
    """A roff line as the reader sees it: macros' arguments joined, escapes resolved."""
    line = line.replace("\\-", "-").replace("\\(em", " - ").replace("\\(aq", "'").replace("\\e", "\\")
    line = FONT.sub("", line)
    m = re.match(r"\.(B|I|SM|BR|RB|BI|IB|IR|RI)\s+(.*)", line)
    if m:
        args = roff_args(m.group(2))
        return (" " if m.group(1) in ("B", "I", "SM") else "").join(args)
    if line.startswith((".SH", ".SS")):
        return " ".join(roff_args(line[3:]))
    return "" if line.startswith((".", "'")) else line


class ManPage:
    """Sections of a man page: (SH title, SS title) -> text, and every .TP tag with its
    section."""

    def __init__(self, path):
        self.path = os.path.relpath(path, SOURCE)
        self.text, self.tags = {}, []
        sh = ss = ""
        lines = read(path).splitlines()
        tag_next = False
        for line in lines:
            if line.startswith(".SH"):
                sh, ss = roff_text(line), ""
                continue
            if line.startswith(".SS"):
                ss = roff_text(line)
                continue
            if line.startswith(".TP"):
                tag_next = True
                continue
            text = roff_text(line)
            if tag_next and not line.startswith((".PD", ".\\\"")):
                self.tags.append((sh, ss, text))
                tag_next = False
            self.text[(sh, ss)] = self.text.get((sh, ss), "") + " " + text

    def section(self, sh, ss=None):
        return " ".join(t for (a, b), t in self.text.items() if a == sh and (ss is None or b == ss))


def word_in(word, text):
    return re.search(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", text) is not None


def case_man_coverage(ctx):
    """Every command, option and flag of the binary is in fimctl(8) (commands in SYNOPSIS
    and DESCRIPTION, options as a tagged paragraph in OPTIONS: the global ones at its top, a
    command's under a heading that names it), and every policy key the loader accepts is in
    fimctl.toml(5), in the subsection of its table."""
    rc, listing, err = ctx.run([ctx.fimctl, "completion", "list"])
    expect(rc == 0 and listing, f"fimctl completion list: exit {rc}: {err}")
    man8 = ManPage(os.path.join(SOURCE, "man", "fimctl.8"))
    man5 = ManPage(os.path.join(SOURCE, "man", "fimctl.toml.5"))
    # SYNOPSIS: one usage per group of lines between .br requests.
    synopsis, group = [], []
    head = read(os.path.join(SOURCE, "man", "fimctl.8")).split(".SH DESCRIPTION")[0].split(".SH SYNOPSIS")[-1]
    for line in head.splitlines() + [".br"]:
        if line.startswith(".br"):
            synopsis.append(" ".join(" ".join(roff_text(l) for l in group).split()))
            group = []
        else:
            group.append(line)
    description = man8.section("DESCRIPTION")
    missing = []
    counted = {"command": 0, "option": 0, "key": 0}
    for line in listing.splitlines():
        kind, *rest = line.split("\t")
        if kind == "command":
            counted[kind] += 1
            cmd = rest[0]
            if not any(g.startswith("fimctl") and word_in(cmd, g) for g in synopsis):
                missing.append(f"fimctl.8 SYNOPSIS: fimctl {cmd}")
            if not word_in("fimctl " + cmd, description):  # "fimctl key" in "fimctl key generate" counts
                missing.append(f"fimctl.8 DESCRIPTION: fimctl {cmd}")
        elif kind == "option":
            counted[kind] += 1
            cmd, names = rest[0], rest[1].split()
            for name in names:
                if cmd == "":
                    ok = any(sh == "OPTIONS" and ss == "" and word_in(name, tag) for sh, ss, tag in man8.tags)
                    where = "OPTIONS"
                else:
                    last = cmd.split()[-1]
                    ok = any(word_in(name, tag) and word_in(last, (sh + " " + ss).lower()) for sh, ss, tag in man8.tags)
                    where = f"a section or subsection naming '{last}' (such as .SS Options of {last})"
                if not ok:
                    missing.append(f"fimctl.8: {name} ({'fimctl ' + cmd if cmd else 'global'}) as a .TP tag in {where}")
        elif kind == "key":
            counted[kind] += 1
            table, key = rest
            heading = "Top level" if table == "the top level" else table
            text = man5.section("FILE FORMAT", heading)
            if not text:
                missing.append(f"fimctl.toml.5: no subsection '.SS {heading}' in FILE FORMAT (for key {key})")
            elif not word_in(key, text):
                missing.append(f"fimctl.toml.5 FILE FORMAT, {heading}: key '{key}'")
    expect(all(counted.values()), f"fimctl completion list lists nothing of some kind: {counted}")
    expect(not missing, lambda: "undocumented:\n  " + "\n  ".join(missing))


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-install-", lambda a, fimctl, tmp: Ctx(fimctl, os.path.abspath(a.build), tmp),
                     [("--build", {"required": True, "help": "the meson build directory (meson install runs in it)"})]))
