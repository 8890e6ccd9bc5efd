#!/usr/bin/env python3
"""Watch benchmark (scripts/bench -c watch): event-to-report latency and writer overhead.

Usage: bench-watch.py FIMCTL WRITER WORKDIR [RUNS [OLD_FIMCTL]]
On tmpfs (ext4 on these VMs is too noisy to time, docs/design.md, Tests), as root:
  latency   the writer creates one file per 2 ms named by its CLOCK_REALTIME; the report
            record's "time" minus that, p50/p90/p99, with the default --debounce (10ms) and 0
  overhead  files/s of 100,000 create+write+close with no monitor and with fimctl watch
            running, median of RUNS: the writer inside the watched root, and the writer
            outside every root on the same filesystem (the common case: a database under /var
            while /usr and /etc are watched)
With OLD_FIMCTL, each measure is taken for both binaries in the same run, alternating.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime


def ns_of(iso):
    # 2026-12-01T13:42:05.573846162Z
    head, frac = iso.rstrip("Z").split(".")
    secs = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=__import__("datetime").timezone.utc).timestamp()
    return int(secs) * 10**9 + int(frac.ljust(9, "0")[:9])


def start(fimctl, work, tree, debounce):
    db = f"{work}/watch.db"
    for f in (db, f"{work}/state.db"):
        if os.path.exists(f):
            os.unlink(f)
    subprocess.run([fimctl, "-q", "--unsigned", "--db", db, "-c", "share/fimctl.toml", "--format", "json",
                    "init", tree], check=True, capture_output=True)
    out = f"{work}/watch.ndjson"
    if os.path.exists(out):
        os.unlink(out)
    p = subprocess.Popen([fimctl, "-q", "--unsigned", "--db", db, "-c", "share/fimctl.toml", "--format", "ndjson",
                          "watch", "--socket", f"{work}/watch.sock", "--output", out, "--debounce", debounce,
                          "--heartbeat", "0"], stderr=subprocess.DEVNULL)
    end = time.time() + 30
    while time.time() < end:
        if os.path.exists(out) and "rescan_done" in open(out).read():
            return p, out
        time.sleep(0.05)
    p.kill()
    raise SystemExit("fimctl watch did not start")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=60)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def latency(fimctl, writer, work, tree, debounce):
    subprocess.run(["rm", "-rf", tree], check=True)
    os.makedirs(tree)
    p, out = start(fimctl, work, tree, debounce)
    n = 2000
    subprocess.run([writer, "lat", tree, str(n), "2000"], check=True)
    lat = []
    end = time.time() + 30
    while time.time() < end:
        lat = []
        for line in open(out):
            r = json.loads(line)
            name = r.get("path", "").rsplit("/", 1)[-1]
            if r["type"] == "change" and r["kind"] == "added" and name.startswith("lat-"):
                lat.append((ns_of(r["time"]) - int(name[4:])) / 1e6)
        if len(lat) >= n:
            break
        time.sleep(0.2)
    stop(p)
    return lat, n


def rate(fimctl, writer, work, mnt, where):
    """files/s of the writer in mnt/tree (inside: the root) or mnt/outside, with fimctl
    watching mnt/tree (none: no monitor)."""
    tree, outside = f"{mnt}/tree", f"{mnt}/outside"
    subprocess.run(["rm", "-rf", tree, outside], check=True)
    os.makedirs(tree)
    os.makedirs(outside)
    for i in range(20):
        with open(f"{tree}/watched{i}", "w") as f:
            f.write("watched\n")
    p = None
    if fimctl:
        p, _ = start(fimctl, work, tree, "10ms")
    r = subprocess.run([writer, "rate", tree if where == "inside" else outside, "100000"], check=True,
                       capture_output=True, text=True)
    if p:
        stop(p)
    return float(r.stdout)


def main():
    fimctl, writer, work = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    bins = {"this": fimctl}
    if len(sys.argv) > 5:
        bins["old"] = sys.argv[5]
    mnt = f"{work}/tmpfs"
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", mnt], check=True)
    try:
        tree = f"{mnt}/tree"
        print(f"{'measure':<40} {'p50':>9} {'p90':>9} {'p99':>9}   (ms, event to report record)")
        for debounce in ("10ms", "0"):
            for label, b in bins.items():
                lat, n = latency(b, writer, work, tree, debounce)
                print(f"{'latency, --debounce ' + debounce + ' (' + label + ')':<40} {pct(lat, .5):9.2f} "
                      f"{pct(lat, .9):9.2f} {pct(lat, .99):9.2f}   ({len(lat)}/{n} reported)")
        rates = {}
        for _ in range(runs):
            for where in ("inside", "outside"):
                rates.setdefault(("none", where), []).append(rate(None, writer, work, mnt, where))
                for label, b in bins.items():
                    rates.setdefault((label, where), []).append(rate(b, writer, work, mnt, where))
        for where in ("inside", "outside"):
            none = statistics.median(rates[("none", where)])
            line = f"writer {where} the root, 100k create+write+close: no monitor {none:,.0f} files/s"
            for label in bins:
                w = statistics.median(rates[(label, where)])
                line += f", fimctl watch ({label}) {w:,.0f} ({(w - none) / none * 100:+.0f}%)"
            print(line + f", median of {runs}")
    finally:
        subprocess.run(["umount", "-l", mnt])


if __name__ == "__main__":
    main()
