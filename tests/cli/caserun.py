"""The runner the cli suite files share: --list prints the case names, CASE runs one case in a
fresh temporary directory. Exit 0 pass, 1 fail (Failure), 77 skip (Skip), as meson expects."""
import argparse
import os
import shutil
import sys
import tempfile


class Failure(Exception):
    """A case's expectation did not hold."""


class Skip(Exception):
    """A case cannot run here (not root, a missing tool or kernel feature)."""


def run_main(cases, prefix, make_ctx, extra_options=()):
    """cases: name -> fn(ctx); make_ctx(args, fimctl, tmp) builds the ctx; extra_options:
    (flag, kwargs) pairs for argparse."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--fimctl", required=True)
    for flag, kwargs in extra_options:
        ap.add_argument(flag, **kwargs)
    ap.add_argument("--list", action="store_true")
    ap.add_argument("case", nargs="?")
    a = ap.parse_args()
    if a.list:
        print("\n".join(cases))
        return 0
    if a.case not in cases:
        print(f"unknown case {a.case!r} (--list shows them)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp, 0o755)
    try:
        cases[a.case](make_ctx(a, os.path.abspath(a.fimctl), tmp))
        print(f"pass: {a.case}")
        return 0
    except Skip as e:
        print(f"skip: {a.case}: {e}")
        return 77
    except Failure as e:
        print(f"FAIL: {a.case}: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
