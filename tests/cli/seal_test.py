#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""fimctl seal on the host (docs/design.md, Evidence: verity): what is refused before the
kernel is asked, and the one clear refusal (exit 21) where the filesystem has no fs-verity.
Sealing itself runs in the vm suite (tests/vm/cases/16_*, 17_*), whose ext4 has -O verity."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Ctx, Skip, expect, run_fimctl, run_main, write  # noqa: E402


def setup(ctx):
    """TREE/bin (seal = true) and TREE/etc (no seal), each with a file, in a baseline."""
    write(os.path.join(ctx.tree, "bin", "tool"), "#!/bin/sh\necho tool\n", 0o755)
    write(os.path.join(ctx.tree, "bin", "lib.so"), "not really a library\n")
    write(os.path.join(ctx.tree, "etc", "conf"), "setting = 1\n")
    ctx.policy = os.path.join(ctx.tmp, "fimctl.toml")
    write(ctx.policy, f'[[rule]]\npath = "{ctx.tree}/bin"\nseal = true\n\n[[rule]]\npath = "{ctx.tree}/etc"\n')
    r = fim(ctx, "init")
    expect(r.rc == 0, f"init: exit {r.rc}: {r.stderr}")


def fim(ctx, *args):
    return run_fimctl(ctx.fimctl, *args, config=ctx.policy, db=ctx.db, fmt=None)


def has_verity(path):
    """Whether the filesystem of `path` lets a file be sealed (then the host cases below that
    expect the refusal cannot run here)."""
    import fcntl
    import struct
    probe = os.path.join(path, ".verity-probe")
    with open(probe, "w") as f:
        f.write("x")
    fd = os.open(probe, os.O_RDONLY)
    try:
        arg = struct.pack("=IIIIQIIQ", 1, 1, 4096, 0, 0, 0, 0, 0).ljust(128, b"\0")
        fcntl.ioctl(fd, 0x40806685, arg)  # FS_IOC_ENABLE_VERITY
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        os.unlink(probe)


def case_seal_without_fs_verity_says_so_once(ctx):
    setup(ctx)
    if has_verity(ctx.tmp):
        raise Skip("this filesystem has fs-verity: the refusal cannot be seen here (the vm suite seals)")
    r = fim(ctx, "seal", os.path.join(ctx.tree, "bin"))
    expect(r.rc == 21, f"seal without fs-verity: exit {r.rc} (want 21): {r.stdout}{r.stderr}")
    lines = [ln for ln in r.stderr.splitlines() if "fs-verity" in ln]
    expect(len(lines) == 1, f"the refusal must be said once, not per file: {r.stderr}")
    expect("ext4 needs -O verity" in lines[0] or "needs CONFIG_FS_VERITY" in lines[0], f"unclear refusal: {lines[0]}")
    expect("sealed '" not in r.stdout, f"nothing may be said sealed: {r.stdout}")


def case_seal_refuses_file_whose_rule_lacks_seal(ctx):
    """An attacker (or a mistake) naming a config file: its rule does not say seal = true, so it
    is refused (exit 16) before the kernel is asked, on any filesystem."""
    setup(ctx)
    conf = os.path.join(ctx.tree, "etc", "conf")
    r = fim(ctx, "seal", conf)
    expect(r.rc == 16, f"seal of a file without seal = true: exit {r.rc} (want 16): {r.stdout}{r.stderr}")
    expect(f"refused '{conf}'" in r.stdout and "does not say seal = true" in r.stdout, f"no clear refusal: {r.stdout}")
    # A directory: its files without seal = true are skipped, not refused one by one.
    r = fim(ctx, "seal", os.path.join(ctx.tree, "etc"))
    expect("skipped 1 files" in r.stdout and r.rc in (0, 21), f"seal of etc/: exit {r.rc}: {r.stdout}{r.stderr}")


def case_seal_refuses_content_changed_since_baseline(ctx):
    """Tamper first, then seal: fs-verity would vouch for the intruder's content from then on.
    Refused (exit 4): seal what was recorded, not what is there."""
    setup(ctx)
    tool = os.path.join(ctx.tree, "bin", "tool")
    st = os.stat(tool)
    write(tool, "#!/bin/sh\necho backdoor\n", 0o755)
    os.utime(tool, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = fim(ctx, "seal", tool)
    expect(r.rc == 4, f"seal of tampered content: exit {r.rc} (want 4): {r.stdout}{r.stderr}")
    expect("not the baseline's" in r.stdout, f"the refusal must say why: {r.stdout}")


def case_seal_refuses_path_not_in_baseline(ctx):
    setup(ctx)
    extra = os.path.join(ctx.tree, "bin", "new")
    write(extra, "added after init\n")
    r = fim(ctx, "seal", extra)
    expect(r.rc == 16 and "not in the baseline" in r.stdout, f"seal of an unrecorded file: exit {r.rc}: {r.stdout}{r.stderr}")


def case_seal_key_refused_on_growing_log(ctx):
    policy = os.path.join(ctx.tmp, "p.toml")
    write(policy, '[[rule]]\npath = "/var/log/x"\nattrs = ">"\nseal = true\n')
    r = run_fimctl(ctx.fimctl, "config", "check", config=policy, fmt=None, unsigned=False)
    expect(r.rc == 16 and "seal needs attrs with sha256 and without '>'" in r.stderr, f"exit {r.rc}: {r.stderr}")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-seal-", lambda a, fimctl, tmp: Ctx(fimctl, tmp)))
