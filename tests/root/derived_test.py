#!/usr/bin/env python3
"""Derived evidence (issue 19, item 7) in the debootstrap root of package_test.py: files that
maintainer scripts write and no package ships, regenerated from verified inputs by a verified
tool and compared. .pyc files that a postinst compiles (python3 -m compileall) against the
code the root's python3.11 compiles from the packaged .py; /etc/ld.so.cache that a postinst
rebuilds (ldconfig) against what the verified ldconfig writes into a private file. The
interpreter's and ldconfig's .debs (from the cached root's apt cache) go into the test's
signed repository, so the inputs are vouched for by deb-sha256.

Usage: derived_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import glob
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import run_main  # noqa: E402
from package_test import Repo, Root, build_deb, by_path, debroot, sh  # noqa: E402

MODULES = 250  # x 2 optimization levels: 500 .pyc files per upgrade
PYDIR = "/usr/lib/fimpy"
LIB = "/usr/lib/x86_64-linux-gnu/libfimtest.so.1"


def build(tmp, name, version, files, postinst=None):
    """A package `name` of `version` holding `files` {path: (content, mode)}, with a postinst."""
    scripts = {"postinst": "#!/bin/sh\nset -e\n" + postinst + "\n"} if postinst else None
    return build_deb(tmp, version, files, name=name, scripts=scripts)


def cached_debs(fimctl, *names):
    """The cached root's own .debs of `names` (apt's cache after debootstrap)."""
    out = []
    for n in names:
        found = glob.glob(os.path.join(debroot(fimctl), "var/cache/apt/archives", n + "_*.deb"))
        assert found, f"no {n} .deb in the cached root"
        out.append(found[0])
    return out


def fimpy(tmp, version):
    files = {f"{PYDIR}/m{i}.py": (f'"""module {i}"""\nVERSION = "{version}"\n\ndef f(x):\n    assert x\n'
                                  f'    return [x * {i}, {i}.5, -0.0, "{version}"]\n'.encode(), 0o644)
             for i in range(MODULES)}
    return build(tmp, "fimpy", version, files, f"python3 -m compileall -q -f -o 0 -o 1 {PYDIR}")


def pyc_root(fimctl, tmp):
    debs = [fimpy(tmp, "1.0"), fimpy(tmp, "2.0"), *cached_debs(fimctl, "python3.11-minimal", "libpython3.11-minimal")]
    root = Root(fimctl, tmp, Repo(tmp, debs))
    root.run("apt-get", "install", "-y", "fimpy=1.0")
    assert os.path.exists(root.dir + PYDIR + "/__pycache__/m0.cpython-311.opt-1.pyc")
    rc, doc, err = root.fimctl("init", PYDIR)
    assert rc == 0, (rc, err)
    return root


def case_pyc_compiled_by_postinst_is_derived(fimctl, tmp):
    """An upgrade recompiles 500 .pyc files in its postinst: each is verified, derived (its .py
    and python3.11 by deb-sha256), and accept --package-verified leaves a clean check."""
    root = pyc_root(fimctl, tmp)
    root.run("apt-get", "install", "-y", "fimpy=2.0")
    t = time.monotonic()
    rc, doc, err = root.fimctl("check", "--packages")
    took = time.monotonic() - t
    ch = by_path(doc)
    pycs = {p: c["package"] for p, c in ch.items() if p.endswith(".pyc")}
    assert len(pycs) == 2 * MODULES, len(pycs)
    for p, n in pycs.items():
        assert n["verdict"] == "verified" and n["evidence"] == "derived", (p, n)
        assert n["name"] == "fimpy" and n["version"] == "2.0", (p, n)
    assert "python3.11-minimal" in pycs[PYDIR + "/__pycache__/m7.cpython-311.opt-1.pyc"]["detail"], pycs
    t0 = time.monotonic()
    root.fimctl("check")
    plain = time.monotonic() - t0
    print(f"check --packages with {len(pycs)} .pyc changes: {took:.2f} s (check without --packages {plain:.2f} s)",
          file=sys.stderr)
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "fimpy 2.0")
    assert rc == 0, (rc, err, doc)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 0 and not by_path(doc), (rc, err, by_path(doc).keys())


def case_pyc_with_foreign_code_is_mismatch(fimctl, tmp):
    """A .pyc keeping its header (python still loads it: mtime and size match the source) but
    holding other code, the persistence trick, is a mismatch and not accepted; a .pyc whose
    source is not its package's is not verified."""
    root = pyc_root(fimctl, tmp)
    target = PYDIR + "/__pycache__/m3.cpython-311.pyc"
    root.run("python3", "-c", "import marshal,sys\n"
             "p = sys.argv[1]; head = open(p, 'rb').read()[:16]\n"
             "code = compile(open(sys.argv[2]).read() + '\\nimport os; os.system(\"id\")\\n', sys.argv[2], 'exec')\n"
             "open(p, 'wb').write(head + marshal.dumps(code))\n", target, PYDIR + "/m3.py")
    # Its source edited (and recompiled to match): the input is not verified.
    root.write(PYDIR + "/m5.py", b"import os\nos.system('id')\n")
    root.run("python3", "-c", "import py_compile,sys; py_compile.compile(sys.argv[1])", PYDIR + "/m5.py")
    rc, doc, err = root.fimctl("check", "--packages")
    ch = by_path(doc)
    n = ch[target]["package"]
    assert n["verdict"] == "mismatch", n
    assert "not what python3.11 compiles" in n["detail"], n
    n = ch[PYDIR + "/__pycache__/m5.cpython-311.pyc"]["package"]
    assert n["verdict"] == "unverifiable" and "not verified" in n["detail"], n
    assert ch[PYDIR + "/m5.py"]["package"]["verdict"] == "mismatch", ch[PYDIR + "/m5.py"]
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--weak", "--reason", "x")
    assert rc == 16 and "nothing was accepted" in err, (rc, err)


def case_pyc_checker_start_up_tampered_is_not_trusted(fimctl, tmp):
    """The checking interpreter imports encodings from source before our program runs: with one
    of those modules edited, or a python311.zip planted ahead of them on its path, it could
    answer "same" for anything, so no .pyc is verified."""
    root = pyc_root(fimctl, tmp)
    root.run("apt-get", "install", "-y", "fimpy=2.0")
    target = PYDIR + "/__pycache__/m1.cpython-311.pyc"
    aliases = root.dir + "/usr/lib/python3.11/encodings/aliases.py"
    good = open(aliases, "rb").read()
    root.write("/usr/lib/python3.11/encodings/aliases.py", good + b"\n# a hook here would run in the checker\n")
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)[target]["package"]
    assert n["verdict"] == "unverifiable" and "start-up" in n["detail"], n
    root.write("/usr/lib/python3.11/encodings/aliases.py", good)
    root.write("/usr/lib/python311.zip", b"PK\x05\x06" + b"\0" * 18)
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)[target]["package"]
    assert n["verdict"] == "unverifiable" and "python311.zip" in n["detail"], n
    os.unlink(root.dir + "/usr/lib/python311.zip")
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)[target]["package"]
    assert n["verdict"] == "verified" and n["evidence"] == "derived", n


def case_stdlib_pycs_compiled_are_derived(fimctl, tmp):
    """python3.11's own standard library, its __pycache__ removed and compiled again
    (compileall, as py3compile does): every .pyc is derived, sitecustomize.py's through the
    symbolic link the .deb ships to its conffile in /etc; accept leaves a clean check."""
    repo = Repo(tmp, cached_debs(fimctl, "python3.11-minimal", "libpython3.11-minimal"))
    root = Root(fimctl, tmp, repo)
    root.run("find", "/usr/lib/python3.11", "-name", "__pycache__", "-prune", "-exec", "rm", "-rf", "{}", "+")
    rc, doc, err = root.fimctl("init", "/usr/lib/python3.11")
    assert rc == 0, (rc, err)
    root.run("python3", "-m", "compileall", "-q", "-o", "0", "-o", "1", "/usr/lib/python3.11")
    t = time.monotonic()
    rc, doc, err = root.fimctl("check", "--packages")
    took = time.monotonic() - t
    pycs = {p: c["package"] for p, c in by_path(doc).items() if p.endswith(".pyc")}
    assert len(pycs) > 400, len(pycs)
    odd = {p: n for p, n in pycs.items() if n["evidence"] != "derived" or n["verdict"] != "verified"}
    assert not odd, list(odd.items())[:3]
    assert "/usr/lib/python3.11/__pycache__/sitecustomize.cpython-311.pyc" in pycs
    print(f"check --packages with {len(pycs)} standard library .pyc files: {took:.2f} s", file=sys.stderr)
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "compileall")
    assert rc == 0, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 0 and not by_path(doc), (rc, err)
    # The conffile behind the link, edited: its .pyc is no longer verified.
    root.write("/etc/python3.11/sitecustomize.py", b"import os\n")
    root.run("python3", "-m", "compileall", "-q", "/usr/lib/python3.11/sitecustomize.py")
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/usr/lib/python3.11/__pycache__/sitecustomize.cpython-311.pyc"]["package"]
    assert n["verdict"] == "unverifiable", n


def ldconfig_root(fimctl, tmp):
    src = os.path.join(tmp, "fimlib.c")
    open(src, "w").write("int fimtest_answer(void) { return 42; }\n")
    so = os.path.join(tmp, "libfimtest.so.1")
    sh("cc", "-shared", "-fPIC", "-Wl,-soname,libfimtest.so.1", "-o", so, src)
    deb = build(tmp, "fimlib", "1.0", {LIB: (open(so, "rb").read(), 0o644)}, "ldconfig")
    root = Root(fimctl, tmp, Repo(tmp, [deb, *cached_debs(fimctl, "libc-bin")]))
    rc, doc, err = root.fimctl("init", "/etc/ld.so.cache")
    assert rc == 0, (rc, err)
    root.run("apt-get", "install", "-y", "fimlib")
    return root


def case_ld_so_cache_rebuilt_is_derived(fimctl, tmp):
    """ldconfig in a postinst rewrites /etc/ld.so.cache: it is what the verified ldconfig
    (libc-bin's, deb-sha256) writes into a private file, so verified, derived, and accepted."""
    root = ldconfig_root(fimctl, tmp)
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/etc/ld.so.cache"]["package"]
    assert n["verdict"] == "verified" and n["evidence"] == "derived", n
    assert "libc-bin" in n["detail"], n
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--reason", "fimlib")
    assert rc == 0, (rc, err)
    rc, doc, err = root.fimctl("check", "--packages")
    assert rc == 0 and not by_path(doc), (rc, err)
    assert not glob.glob(root.dir + "/tmp/fimctl-ldconfig-*"), "the private directory is left behind"


def case_ld_so_cache_forged_is_not_verified(fimctl, tmp):
    """A cache that maps the library's soname to another file (what ldconfig would not write
    from these libraries) is a mismatch and not accepted."""
    root = ldconfig_root(fimctl, tmp)
    cache = open(root.dir + "/etc/ld.so.cache", "rb").read()
    forged = cache.replace(b"-linux-gnu/libfimtest.so.1", b"-linux-gnu/libfimevil.so.1")
    assert forged != cache
    root.write("/etc/ld.so.cache", forged)
    rc, doc, err = root.fimctl("check", "--packages")
    n = by_path(doc)["/etc/ld.so.cache"]["package"]
    assert n["verdict"] == "mismatch", n
    rc, doc, err = root.fimctl("accept", "--yes", "--package-verified", "--weak", "--reason", "x")
    assert rc == 16 and "nothing was accepted" in err, (rc, err)


CASES = {
    "pyc_compiled_by_postinst_is_derived": case_pyc_compiled_by_postinst_is_derived,
    "pyc_with_foreign_code_is_mismatch": case_pyc_with_foreign_code_is_mismatch,
    "pyc_checker_start_up_tampered_is_not_trusted": case_pyc_checker_start_up_tampered_is_not_trusted,
    "stdlib_pycs_compiled_are_derived": case_stdlib_pycs_compiled_are_derived,
    "ld_so_cache_rebuilt_is_derived": case_ld_so_cache_rebuilt_is_derived,
    "ld_so_cache_forged_is_not_verified": case_ld_so_cache_forged_is_not_verified,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-derived.", as_root=True, doc=__doc__))
