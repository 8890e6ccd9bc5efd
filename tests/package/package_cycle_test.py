#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The Debian package (debian/, issue 20) as built by dpkg-buildpackage (suite 'deb').

The .deb comes from the environment, FIMCTL_DEB=PATH/fimctl_VERSION_amd64.deb (scripts/test
builds it after the other suites ran, then runs this suite; without it every case skips):

  lintian        lintian on the .changes beside the .deb: no E:, and no W: whose tag
                 debian/README.source does not list (with its reason);
  install_purge  in a copy of the cached debootstrap root (tests/root/package_test.py makes
                 and locks it): apt-get install ./the.deb, the files, units enabled or not,
                 conffiles, /var/lib/fimctl 0700, the postinst's init hint and no baseline;
                 key generate + init + check; purge leaves nothing but the key and baselines,
                 and its message says so;
  container_image_builds_offline  the Containerfile on a base imported from that root, built by
                 podman with --network=none: fimctl version and --help run in the image.

Usage: package_cycle_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
(--fimctl is the harness's; the binary tested is the one in the .deb.)
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "root"))
from fimtest import SOURCE, Skip, expect, run_main  # noqa: E402
from package_test import debroot, sh  # noqa: E402

ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C"}
# What dpkg, apt and the chroot itself change whatever the package: not the package's files.
BOOKKEEPING = ("/proc/", "/var/lib/dpkg/", "/var/log/", "/var/cache/", "/var/lib/apt/", "/tmp/", "/run/",
               "/dev/", "/var/tmp/", "/etc/ld.so.cache")


def the_deb():
    deb = os.environ.get("FIMCTL_DEB", "")
    if not deb:
        raise Skip("FIMCTL_DEB is not set (scripts/test sets it after building the package)")
    expect(os.path.isfile(deb), f"FIMCTL_DEB={deb}: no such file")
    return os.path.abspath(deb)


def allowed_warnings():
    """The W: tags debian/README.source lists, each on a line '  TAG: reason'."""
    text = open(os.path.join(SOURCE, "debian", "README.source")).read()
    return set(re.findall(r"^ +W: ([a-z0-9-]+)", text, re.M))


def case_lintian(fimctl, tmp):
    deb = the_deb()
    if not os.path.exists("/usr/bin/lintian"):
        raise Skip("lintian is not installed")
    changes = re.sub(r"_[^_]+\.deb$", ".changes", deb)
    target = changes if os.path.exists(changes) else deb
    p = subprocess.run(["lintian", "--fail-on", "none", target], capture_output=True, text=True, env=ENV)
    print(p.stdout, end="")
    tags = re.findall(r"^([EW]): [^:]+: ([a-z0-9-]+)", p.stdout, re.M)
    errors = [t for kind, t in tags if kind == "E"]
    unlisted = sorted({t for kind, t in tags if kind == "W"} - allowed_warnings())
    expect(p.returncode == 0, f"lintian exit {p.returncode}: {p.stderr[-500:]}")
    expect(not errors, f"lintian errors: {errors}")
    expect(not unlisted, f"lintian warnings not listed in debian/README.source: {unlisted}")


def files_of(root):
    """Every path in root (as the chroot sees it) but dpkg's and apt's own bookkeeping."""
    out = set()
    for d, dirs, names in os.walk(root):
        for n in dirs + names:
            path = os.path.join(d, n)[len(root):]
            if not (path + "/").startswith(BOOKKEEPING) and not path.startswith(BOOKKEEPING):
                out.add(path)
    return out


def case_install_purge(fimctl, tmp):
    deb = the_deb()
    unpacked = os.path.join(tmp, "unpacked")
    sh("dpkg-deb", "-x", deb, unpacked)
    binary = os.path.join(unpacked, "usr", "sbin", "fimctl")
    # Stripped: the debug information went to fimctl-dbgsym.
    sections = sh("readelf", "-S", "-W", binary).stdout
    expect(".debug_info" not in sections, "/usr/sbin/fimctl is not stripped")
    root = os.path.join(tmp, "root")
    sh("cp", "-a", debroot(binary), root)  # the cache holds the libraries the .deb depends on
    sh("mount", "-t", "proc", "proc", root + "/proc")
    before = files_of(root)
    sh("cp", deb, root + "/tmp/")

    def run(*cmd, check=True):
        return sh("chroot", root, *cmd, check=check, env=ENV)

    # Dependencies from what the root has (no apt-get update: the mirror is not needed).
    p = run("apt-get", "install", "-y", "--no-install-recommends", "/tmp/" + os.path.basename(deb))
    installed = p.stdout + p.stderr
    expect(re.search(r"run as root: +fimctl key generate && fimctl init", installed),
           f"the postinst does not name the init command: {installed[-1500:]}")
    expect(not os.path.exists(root + "/var/lib/fimctl/baseline.db"), "the postinst made a baseline")
    for path in ["/usr/sbin/fimctl", "/usr/share/man/man8/fimctl.8.gz", "/usr/share/man/man5/fimctl.toml.5.gz",
                 "/usr/share/bash-completion/completions/fimctl",
                 "/usr/share/zsh/vendor-completions/_fimctl", "/usr/share/fish/vendor_completions.d/fimctl.fish",
                 "/lib/systemd/system/fimctl-check.service",
                 "/lib/systemd/system/fimctl-check.timer", "/lib/systemd/system/fimctl-watch.service",
                 "/usr/libexec/fimctl/fimctl-cron", "/usr/share/fimctl/fimctl.toml"]:
        expect(os.path.isfile(root + path), f"{path} is not installed")
    expect(os.path.islink(root + "/etc/systemd/system/timers.target.wants/fimctl-check.timer"),
           "fimctl-check.timer is not enabled")
    expect(not os.path.lexists(root + "/etc/systemd/system/multi-user.target.wants/fimctl-watch.service"),
           "fimctl-watch.service is enabled")
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "fimctl").stdout
    for path in ["/etc/fimctl/fimctl.toml", "/etc/cron.d/fimctl", "/etc/apt/apt.conf.d/99fimctl", "/etc/default/fimctl"]:
        expect(re.search(rf"^ {re.escape(path)} [0-9a-f]{{32}}$", conffiles, re.M), f"{path} is no conffile: {conffiles}")
    mode = os.stat(root + "/var/lib/fimctl").st_mode & 0o7777
    expect(mode == 0o700, f"/var/lib/fimctl has mode {mode:o}, not 700")

    run("fimctl", "key", "generate")
    run("fimctl", "init")
    p = run("fimctl", "check", check=False)
    expect(p.returncode == 0, f"check after init: exit {p.returncode}: {p.stdout[-1500:]}{p.stderr[-500:]}")
    expect(os.path.exists(root + "/var/lib/fimctl/baseline.db"), "init made no baseline at the default path")
    # The scheduled check as the check unit runs it: its last report and the node-exporter
    # metrics are what purge removes (neither key nor baseline).
    run("sh", "-c", "mkdir -p /var/lib/prometheus/node-exporter && /usr/libexec/fimctl/fimctl-cron --unit")
    for path in ["/var/lib/fimctl/last-check.txt", "/var/lib/prometheus/node-exporter/fimctl.prom"]:
        expect(os.path.isfile(root + path), f"the scheduled check wrote no {path}")

    p = run("dpkg", "--purge", "fimctl")
    purged = p.stdout + p.stderr
    expect("kept the signing key in /etc/fimctl/keys" in purged and "rm -r /etc/fimctl/keys" in purged,
           f"postrm does not say it kept the key: {purged}")
    expect("kept the baselines in /var/lib/fimctl" in purged and "rm -r /var/lib/fimctl" in purged,
           f"postrm does not say it kept the baselines: {purged}")
    left = sorted(files_of(root) - before)
    kept = ("/etc/fimctl/keys/", "/var/lib/fimctl/")
    made_here = ("/var/lib/prometheus", "/var/lib/prometheus/node-exporter")  # by this test, not the package
    stray = [f for f in left if not f.startswith(kept) and
             f not in ("/etc/fimctl", "/etc/fimctl/keys", "/var/lib/fimctl") + made_here]
    expect(not os.path.exists(root + "/var/lib/fimctl/last-check.txt"), "purge kept the last report")
    expect(not stray, f"purge left files behind: {stray}")
    expect(os.path.exists(root + "/var/lib/fimctl/baseline.db") and os.listdir(root + "/etc/fimctl/keys"),
           "purge removed the key or the baseline")


def case_container_image_builds_offline(fimctl, tmp):
    """The Containerfile builds fimctl's image from the .deb on a Debian base made here (the
    cached debootstrap root, podman import), with no network; fimctl runs in it. Images removed."""
    import shutil
    deb = the_deb()
    for tool in ("podman", "runc"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed")
    podman = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
    tag = f"{os.getpid()}-{os.urandom(3).hex()}"
    base, image = f"localhost/fimtest-debian-base:{tag}", f"localhost/fimtest-fimctl:{tag}"
    root = debroot(fimctl)
    ctx = os.path.join(tmp, "context")
    os.makedirs(ctx)
    shutil.copy(os.path.join(SOURCE, "Containerfile"), ctx)
    shutil.copy(deb, ctx)
    try:
        sh("sh", "-c", f"tar -C {root} -c . | {' '.join(podman)} import - {base}", timeout=300)
        b = subprocess.run([*podman, "build", "--network=none", "--build-arg", f"BASE={base}", "-t", image,
                            "-f", os.path.join(ctx, "Containerfile"), ctx], capture_output=True, text=True, timeout=600)
        expect(b.returncode == 0, f"podman build: exit {b.returncode}: {b.stdout[-1500:]}{b.stderr[-1500:]}")
        limits = ["--ulimit", "nofile=1024:20000", "--ulimit", "nproc=1024:1024", "--network=none"]
        v = subprocess.run([*podman, "run", "--rm", *limits, image, "version"], capture_output=True, text=True, timeout=120)
        expect(v.returncode == 0 and v.stdout.startswith("fimctl "), f"fimctl version in the image: {v.stdout}{v.stderr}")
        h = subprocess.run([*podman, "run", "--rm", *limits, image], capture_output=True, text=True, timeout=120)
        expect(h.returncode == 0 and "check" in h.stdout and "watch" in h.stdout, f"--help: {h.stdout[:300]}")
    finally:
        subprocess.run([*podman, "rmi", "-f", image, base], capture_output=True)


CASES = {"lintian": case_lintian, "install_purge": case_install_purge,
         "container_image_builds_offline": case_container_image_builds_offline}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-deb-", as_root=True, doc=__doc__))
