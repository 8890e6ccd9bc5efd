#!/usr/bin/env python3
"""Watch benchmark (scripts/bench -c watch): event-to-report latency and writer overhead.

Usage: bench-watch.py FIMCTL WRITER WORKDIR [RUNS]
On tmpfs (ext4 on these VMs is too noisy to time, docs/design.md, Tests), as root:
  latency   the writer creates one file per 2 ms named by its CLOCK_REALTIME; the report
            record's "time" minus that, p50/p90/p99, with the default --debounce (10ms) and 0
  overhead  files/s of 100,000 create+write+close with no monitor and with fimctl watch
            running on that tree, median of RUNS
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


def main():
    fimctl, writer, work = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    mnt = f"{work}/tmpfs"
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1g", "tmpfs", mnt], check=True)
    try:
        tree = f"{mnt}/tree"
        print(f"{'measure':<34} {'p50':>9} {'p90':>9} {'p99':>9}   (ms, event to report record)")
        for debounce in ("10ms", "0"):
            os.makedirs(tree, exist_ok=True)
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
            print(f"{'latency, --debounce ' + debounce:<34} {pct(lat, .5):9.2f} {pct(lat, .9):9.2f} {pct(lat, .99):9.2f}"
                  f"   ({len(lat)}/{n} reported)")
        rates = {"none": [], "watch": []}
        for _ in range(runs):
            for mode in ("none", "watch"):
                subprocess.run(["rm", "-rf", tree], check=True)
                os.makedirs(tree)
                p = None
                if mode == "watch":
                    p, _ = start(fimctl, work, tree, "10ms")
                r = subprocess.run([writer, "rate", tree, "100000"], check=True, capture_output=True, text=True)
                rates[mode].append(float(r.stdout))
                if p:
                    stop(p)
        none, watch = statistics.median(rates["none"]), statistics.median(rates["watch"])
        print(f"writer, 100k create+write+close: no monitor {none:,.0f} files/s, fimctl watch {watch:,.0f} files/s "
              f"({(watch - none) / none * 100:+.0f}%), median of {runs}")
    finally:
        subprocess.run(["umount", "-l", mnt])


if __name__ == "__main__":
    main()
