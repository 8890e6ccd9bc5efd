#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""meson install script (share/meson.build) for what install_data() cannot do:

- /etc/fimctl/fimctl.toml, a copy of the default policy, and /etc/cron.d/fimctl: installed
  only when absent, never over a file that is there (an admin's policy and schedule);
- every systemd unit in share/systemd (*.service, *.timer, *.socket, *.path), found when
  installing, so a new unit needs no edit here;
- the scheduled check's script fimctl-cron (run by the cron job and by the check units) and its
  settings /etc/default/fimctl (mail, metrics), installed only when absent like the policy;
- /etc/apt/apt.conf.d/99fimctl, the apt hook (only where /etc/apt exists, never over a file
  that is there).

The units and cron files name the binary as /usr/sbin/fimctl and the helper as
/usr/libexec/fimctl/fimctl-cron (prefix /usr); with another prefix those paths are rewritten
to the installed ones. Honours DESTDIR: paths below the prefix go to
$MESON_INSTALL_DESTDIR_PREFIX, the others (/etc) to $DESTDIR/PATH.
"""
import argparse
import glob
import os
import shutil
import sys
import tempfile

UNIT_SUFFIXES = (".service", ".timer", ".socket", ".path")


def dest(path):
    """Where absolute `path` of the installed system lands in this install."""
    prefix = os.environ.get("MESON_INSTALL_PREFIX", "")
    destprefix = os.environ.get("MESON_INSTALL_DESTDIR_PREFIX", "")
    if prefix and destprefix and (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
        return destprefix + path[len(prefix.rstrip("/")):]
    return os.environ.get("DESTDIR", "") + path


def log(msg):
    if not os.environ.get("MESON_INSTALL_QUIET"):
        print(msg)


def makedirs(path):
    """Creates missing directories 0755 whatever the umask (/etc/fimctl must be a trusted
    path: not writable by group or others)."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    for d in reversed(missing):
        os.mkdir(d)
        os.chmod(d, 0o755)


def write(text, path, mode, keep_existing=False):
    if keep_existing and os.path.lexists(path):
        log(f"Keeping existing {path}")
        return
    if os.environ.get("MESON_INSTALL_DRY_RUN"):
        log(f"Would install {path}")
        return
    makedirs(os.path.dirname(path))
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    log(f"Installing {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--share", required=True, help="the source share/ directory")
    ap.add_argument("--sbindir", required=True, help="absolute sbindir")
    ap.add_argument("--libexecdir", required=True, help="absolute libexecdir")
    ap.add_argument("--unitdir", default="", help="systemd system unit directory ('' for none)")
    ap.add_argument("--config", required=True, help="the policy path fimctl reads by default")
    ap.add_argument("--crondir", default="/etc/cron.d", help="'' for no cron job")
    ap.add_argument("--aptconfdir", default="/etc/apt/apt.conf.d", help="'' for no apt hook")
    ap.add_argument("--defaultdir", default="/etc/default", help="'' for no /etc/default/fimctl")
    a = ap.parse_args()

    def relocate(text):
        return (text.replace("/usr/sbin/fimctl", os.path.join(a.sbindir, "fimctl"))
                    .replace("/usr/libexec/fimctl/", os.path.join(a.libexecdir, "fimctl") + "/"))

    def read(*parts):
        with open(os.path.join(a.share, *parts)) as f:
            return f.read()

    write(read("fimctl.toml"), dest(a.config), 0o644, keep_existing=True)
    if a.unitdir:
        for unit in sorted(glob.glob(os.path.join(a.share, "systemd", "*"))):
            if unit.endswith(UNIT_SUFFIXES):
                write(relocate(read("systemd", os.path.basename(unit))),
                      dest(os.path.join(a.unitdir, os.path.basename(unit))), 0o644)
    # The units run the script too: installed with either schedule.
    if a.crondir or a.unitdir:
        write(relocate(read("cron", "fimctl-cron")), dest(os.path.join(a.libexecdir, "fimctl", "fimctl-cron")), 0o755)
    if a.defaultdir:
        write(read("default", "fimctl"), dest(os.path.join(a.defaultdir, "fimctl")), 0o644, keep_existing=True)
    if a.crondir:
        write(relocate(read("cron", "fimctl")), dest(os.path.join(a.crondir, "fimctl")), 0o644, keep_existing=True)
    if a.aptconfdir and os.path.isdir(dest(os.path.dirname(a.aptconfdir.rstrip("/")))):
        write(relocate(read("apt", "99fimctl")), dest(os.path.join(a.aptconfdir, "99fimctl")), 0o644, keep_existing=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
