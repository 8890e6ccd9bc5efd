#!/usr/bin/env python3
"""Prints one line "N passed, N failed, N skipped" from meson's testlog.json files.

Each meson test() counts once per build directory. Exit status 1 when anything failed,
timed out or errored, or when no test ran at all (a run that tested nothing is not a pass).
"""
import json
import sys

passed = failed = skipped = 0
failures = []
for path in sys.argv[1:]:
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
