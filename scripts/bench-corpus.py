#!/usr/bin/env python3
"""Deterministic benchmark trees (same arguments, same tree: names, sizes, bytes, modes, mtimes).

  bench-corpus.py small DEST [N]       N files of 1-16 KiB, 3 levels of 16 dirs, 100 per leaf
  bench-corpus.py large DEST [M] [MIB] M files of MIB MiB
  bench-corpus.py flat DEST N          N files of 1-1024 bytes in ONE directory
  bench-corpus.py many DEST N          N files of 1-1024 bytes, 1,000 per directory
  bench-corpus.py usr DEST             cp -a of /usr/bin, /usr/lib/x86_64-linux-gnu, /usr/lib/gcc,
                                       /usr/lib/python3*, /usr/include, /usr/share/{doc,man}
The small and large trees follow docs/design.md, Tests (seed 42).
"""
import os
import random
import shutil
import subprocess
import sys

MTIME = 1704067200  # 2024-01-01T00:00:00Z


def put(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, data)
    os.close(fd)
    os.utime(path, (MTIME, MTIME))


def small(dest, n=100000, seed=42, per_dir=100, fan=16):
    rs = random.Random(seed)
    made = set()
    for i in range(n):
        leaf = i // per_dir
        a, b, c = (leaf // (fan * fan)) % fan, (leaf // fan) % fan, leaf % fan
        top = leaf // (fan ** 3)
        d = os.path.join(dest, "small", *([f"t{top:02d}"] if top else []), f"{a:02x}", f"{b:02x}", f"{c:02x}")
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        put(os.path.join(d, f"f{i:07d}.dat"), rs.randbytes(rs.randint(1024, 16384)))


def large(dest, m=20, mib=100, seed=42):
    d = os.path.join(dest, "large")
    os.makedirs(d, exist_ok=True)
    for i in range(m):
        rs = random.Random(seed * 1000 + i)
        p = os.path.join(d, f"L{i:03d}.bin")
        with open(p, "wb") as f:
            for _ in range(mib):
                f.write(rs.randbytes(1 << 20))
        os.utime(p, (MTIME, MTIME))


def spread(dest, n, per_dir, seed=7):
    rs = random.Random(seed)
    for i in range(n):
        d = os.path.join(dest, f"d{i // per_dir:05d}") if per_dir else dest
        if i % (per_dir or n) == 0:
            os.makedirs(d, exist_ok=True)
        put(os.path.join(d, f"f{i:07d}"), rs.randbytes(rs.randint(1, 1024)))


def usr(dest):
    os.makedirs(dest, exist_ok=True)
    for src in ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib/gcc", "/usr/lib/python3",
                "/usr/lib/python3.11", "/usr/include", "/usr/share/doc", "/usr/share/man"]:
        if os.path.isdir(src):
            target = os.path.join(dest, src.lstrip("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            subprocess.run(["cp", "-a", src, target], check=True)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    kind, dest, rest = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3:]]
    if os.path.exists(dest):
        print(f"refusing: {dest} exists", file=sys.stderr)
        return 1
    os.umask(0o022)
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if kind == "small":
        small(tmp, *rest)
    elif kind == "large":
        large(tmp, *rest)
    elif kind == "flat":
        spread(tmp, rest[0], 0)
    elif kind == "many":
        spread(tmp, rest[0], 1000)
    elif kind == "usr":
        usr(tmp)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    os.rename(tmp, dest)  # a tree is complete or absent: an interrupted run is regenerated
    return 0


if __name__ == "__main__":
    sys.exit(main())
