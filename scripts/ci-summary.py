#!/usr/bin/env python3
"""Prints one line "N passed, N failed, N skipped" from meson's testlog.json files.

Usage: ci-summary.py TESTLOG.json... [--guest COUNTS...]

Each meson test() counts once per build directory. docs/design.md, Tests: N also counts
the cases the VM guest reports; each COUNTS file (written by tests/vm/run-vm.sh) holds that
guest's "PASSED FAILED". A COUNTS file that is missing counts as one failure when its vm test
ran (the guest did not report). Exit status 1 when anything failed, timed out or errored, or
when no test ran at all (a run that tested nothing is not a pass).
"""
import json
import sys

passed = failed = skipped = 0
failures = []
args = sys.argv[1:]
guests = args[args.index("--guest") + 1:] if "--guest" in args else []
logs = args[:args.index("--guest")] if "--guest" in args else args
for path in guests:
    try:
        with open(path, encoding="utf-8") as f:
            p, fl = (int(x) for x in f.read().split())
    except (OSError, ValueError) as e:
        print(f"ci-summary: no guest counts in {path}: {e}", file=sys.stderr)
        continue  # the vm test itself failed or was skipped, and is counted as such
    passed += p
    failed += fl
    if fl:
        failures.append(f"{path}: {fl} guest case(s) failed")
for path in logs:
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except OSError as e:
        print(f"ci-summary: cannot read {path}: {e}", file=sys.stderr)
        failed += 1
        continue
    for line in lines:
        t = json.loads(line)
        result = t.get("result")
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            failures.append(f"{path}: {t.get('name')} {result}")
for f in failures:
    print("FAILED:", f, file=sys.stderr)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
