#!/usr/bin/env python3
"""fimctl watch --containers with podman as the runtime (suite 'root'): a container of an image
made here (a busybox-static tree imported with podman import, no registry), run by podman with
runc and cgroupfs.

Usage: watch_podman_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no podman or runc, no static busybox).
Every case removes its container and image on the way out, whatever happened.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, need_tool, run_main  # noqa: E402
from watch_test import Daemon  # noqa: E402

# Debian 12's podman 4.3 on these machines: crun refuses (hybrid cgroups, setrlimit), so runc
# with cgroupfs, and limits no higher than the host's.
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
RUN_LIMITS = ["--ulimit", "nofile=1024:20000", "--ulimit", "nproc=1024:1024"]

# The default policy's shape where it matters here: a glob below /home (a root the busybox image
# lacks) beside /usr/bin.
POLICY = """version = 1
[[rule]]
path = "/usr/bin"
severity = "high"
tags = ["binaries"]

[[rule]]
glob = "/home/*/.ssh/authorized_keys*"
severity = "critical"
tags = ["ssh"]
"""


def podman(*args, check=True, timeout=120):
    p = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout.strip()


def busybox_rootfs(root):
    """A busybox-static tree with /usr/bin and no /home."""
    need_tool("podman")
    need_tool("runc")
    ldd = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True) if os.path.exists("/bin/busybox") else None
    if ldd is None or "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise Skip("a static /bin/busybox (Debian package busybox-static) is needed for the image")
    for d in ("bin", "usr/bin", "etc", "proc", "dev", "sys", "tmp", "root"):
        os.makedirs(f"{root}/{d}")
    shutil.copy("/bin/busybox", f"{root}/bin/busybox")
    for tool in ("sh", "sleep", "chmod", "echo"):
        os.symlink("busybox", f"{root}/bin/{tool}")
    with open(f"{root}/usr/bin/tool", "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(f"{root}/usr/bin/tool", 0o755)


def case_containers_podman_missing_policy_path_still_watched(fimctl, tmp):
    """A podman container whose image lacks a policy path (/home) is still watched: a set-uid
    file written to /usr/bin inside it is reported, and no container_check_failed is raised."""
    root = f"{tmp}/rootfs"
    busybox_rootfs(root)
    name = f"fimtest-{os.getpid()}-{os.urandom(4).hex()}"  # a valid reference whatever tmp's name
    image = f"localhost/{name}:1"
    policy, tree, db = f"{tmp}/policy.toml", f"{tmp}/tree", f"{tmp}/db/baseline.db"
    with open(policy, "w") as f:
        f.write(POLICY)
    os.makedirs(tree)
    os.makedirs(os.path.dirname(db), mode=0o700)
    base = [fimctl, "-c", policy, "--db", db, "--keys", db + ".keys", "--unsigned", "--format", "ndjson"]
    subprocess.run([*base, "init", tree], check=True, capture_output=True)
    d = None
    try:
        subprocess.run(["tar", "-C", root, "-cf", f"{tmp}/root.tar", "."], check=True)
        podman("import", f"{tmp}/root.tar", image)
        podman("run", "-d", *RUN_LIMITS, "--name", name, image, "/bin/sleep", "600")
        pid = int(podman("inspect", "--format", "{{.State.Pid}}", name))
        assert pid > 0, pid
        init = subprocess.run([*base, "init", "--containers"], capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, (init.returncode, init.stderr)
        d = Daemon(fimctl, tmp, db, config=policy, extra=["--containers"])
        start = d.wait_for(lambda r: r["type"] == "container_start" and r["container"]["pid"] == pid,
                           what="container_start")[-1]
        assert start["container"]["runtime"] == "podman", start
        podman("exec", name, "/bin/sh", "-c", "echo '#!/bin/sh' > /usr/bin/rootshell; chmod 4755 /usr/bin/rootshell")
        r = d.wait_for(lambda r: r["type"] == "change" and r["path"] == "/usr/bin/rootshell" and
                       r.get("container", {}).get("pid") == pid, what="the set-uid file in the container")[-1]
        assert r["kind"] == "added" and r["source"] == "watch", r
        failed = [r for r in d.records() if r["type"] == "alert" and r.get("code") == "container_check_failed"]
        assert not failed, failed
        assert d.stop() == 0, d.stderr()
    finally:
        if d:
            d.stop()
        podman("rm", "-f", "-t", "0", name, check=False)
        podman("rmi", "-f", image, check=False)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-watch-podman.", as_root=True, doc=__doc__))
