#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The zsh and fish completion scripts (`fimctl completion zsh|fish`) loaded in the real
shells: they register for fimctl and complete commands, nested commands, options, --format's
choices and file arguments; every command the binary lists is offered. (bash's script:
install_test.py, case completion.) A case skips when its shell is not installed.

zsh completes only inside its line editor, so the case calls the script's _fimctl as zsh's
completion system would (words, CURRENT) with compadd and _files standing in to print what
they are given; fish answers `complete -C LINE` directly.

Usage: completion_test.py --fimctl PATH (--list | CASE)
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, expect, run_main  # noqa: E402


def script_and_cases(fimctl, tmp, shell):
    if not shutil.which(shell):
        raise Skip(f"{shell} is not installed")
    out = {}
    for what in (shell, "list"):
        p = subprocess.run([fimctl, "completion", what], capture_output=True, text=True)
        expect(p.returncode == 0 and p.stdout, f"fimctl completion {what}: exit {p.returncode}: {p.stderr}")
        out[what] = p.stdout
    path = os.path.join(tmp, "fimctl." + shell)
    with open(path, "w") as f:
        f.write(out[shell])
    files = os.path.join(tmp, "files")
    os.makedirs(os.path.join(files, "subdir"))
    open(os.path.join(files, "policy.toml"), "w").close()
    # (words typed, the last one being completed; what the completions must include, must not)
    cases = [(["ch"], ["check"], []),
             ([""], ["init", "check", "config", "key"], ["completion", "--db"]),
             (["check", "--f"], ["--format"], []),
             (["config", ""], ["check", "show"], []),
             (["key", ""], ["generate"], []),
             (["check", "--format", ""], ["plain", "json", "ndjson"], []),
             (["--db", "x", "accept", "--r"], ["--reason", "--rule"], []),
             (["update", "--"], ["--reason", "--db", "--help"], ["--rule"]),
             (["-c", files + "/po"], [files + "/policy.toml"], [])]
    for line in out["list"].splitlines():
        kind, *rest = line.split("\t")
        if kind == "command":
            words = rest[0].split()
            cases.append((words[:-1] + [words[-1][:2]], [words[-1]], []))
    return path, cases


def judge(cases, offered_lines, shell):
    expect(len(offered_lines) >= len(cases), f"{shell} printed {len(offered_lines)} results for {len(cases)} lines")
    for (words, want, unwanted), offered in zip(cases, offered_lines):
        offered = offered.split()
        for w in want:
            expect(w in offered, f"{shell}: fimctl {' '.join(words)}<TAB> does not offer {w}: {offered}")
        for w in unwanted:
            expect(w not in offered, f"{shell}: fimctl {' '.join(words)}<TAB> offers {w}: {offered}")


def quote(w):
    return "'" + w.replace("'", "'\\''") + "'"


def case_zsh_completes(fimctl, tmp):
    path, cases = script_and_cases(fimctl, tmp, "zsh")
    # _files (file, dir) stands for zsh's own file completion: it globs what is typed.
    lines = ["autoload -U compinit; compinit -u -D", f"source {quote(path)}", "print -r -- ${_comps[fimctl]}",
             "compadd() { [[ $1 == -- ]] && shift; print -rn -- \"$* \"; }",
             "_files() { local g=(${~PREFIX}*(N${1:+/})); print -rn -- \"$g \"; }",
             "t() { words=(fimctl \"$@\"); CURRENT=${#words}; PREFIX=${words[CURRENT]}; _fimctl; print; }"]
    lines += ["t " + " ".join(quote(w) for w in words) for words, _, _ in cases]
    p = subprocess.run(["zsh", "-f", "-c", "\n".join(lines)], capture_output=True, text=True, cwd=tmp,
                       env=dict(os.environ, HOME=tmp))
    expect(p.returncode == 0 and not p.stderr, f"zsh: exit {p.returncode}: {p.stderr[-1500:]}")
    got = p.stdout.split("\n")
    expect(got[0] == "_fimctl", f"not registered for fimctl (compdef): {got[0]!r}")
    judge(cases, got[1:], "zsh")


def case_fish_completes(fimctl, tmp):
    path, cases = script_and_cases(fimctl, tmp, "fish")
    lines = [f"source {quote(path)}"]
    for words, _, _ in cases:
        line = "fimctl " + " ".join(words)
        lines.append(f"set r (complete -C {quote(line)} | string split -f1 \\t); echo \"$r\"")
    p = subprocess.run(["fish", "--no-config", "-c", "\n".join(lines)], capture_output=True, text=True, cwd=tmp,
                       env=dict(os.environ, HOME=tmp, XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp))
    expect(p.returncode == 0 and not p.stderr, f"fish: exit {p.returncode}: {p.stderr[-1500:]}")
    judge(cases, p.stdout.split("\n"), "fish")  # one line per case: "$r" joins the list


CASES = {"zsh_completes": case_zsh_completes, "fish_completes": case_fish_completes}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-completion-", doc=__doc__))
