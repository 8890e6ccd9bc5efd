#!/usr/bin/env python3
"""fimctl with podman as the real container runtime (suite 'root'): containers of an image made
here (a busybox-static tree imported with podman import, no registry), run by podman with runc
and cgroupfs; listed, checked and watched as podman names them, and killed by a response as
podman sees it.

Usage: podman_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no podman or runc, no static busybox).
Every case removes its container and image on the way out, whatever happened.
"""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

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



class Podman:
    """One image imported from a busybox tree and the containers run from it, all removed on
    the way out. `base` runs fimctl with the case's policy, baseline and keys (unsigned)."""

    def __init__(self, fimctl, tmp, policy=POLICY):
        self.tmp = tmp
        self.tag = f"fimtest-{os.getpid()}-{os.urandom(4).hex()}"  # a valid reference whatever tmp's name
        self.image = f"localhost/{self.tag}:1"
        self.names = []
        root = f"{tmp}/rootfs"
        busybox_rootfs(root)
        self.policy, self.db = f"{tmp}/policy.toml", f"{tmp}/db/baseline.db"
        with open(self.policy, "w") as f:
            f.write(policy)
        os.makedirs(f"{tmp}/tree")
        os.makedirs(os.path.dirname(self.db), mode=0o700)
        self.base = [fimctl, "-c", self.policy, "--db", self.db, "--keys", self.db + ".keys", "--unsigned"]
        subprocess.run([*self.base, "init", f"{tmp}/tree"], check=True, capture_output=True)
        subprocess.run(["tar", "-C", root, "-cf", f"{tmp}/root.tar", "."], check=True)
        podman("import", f"{tmp}/root.tar", self.image)
        self.digest = podman("image", "inspect", "--format", "{{.Digest}}", self.image)
        assert self.digest.startswith("sha256:"), self.digest

    def run(self, suffix, *options):
        name = f"{self.tag}-{suffix}"
        self.names.append(name)
        podman("run", "-d", *RUN_LIMITS, *options, "--name", name, self.image, "/bin/sleep", "600")
        return name, int(podman("inspect", "--format", "{{.State.Pid}}", name))

    def fimctl(self, *args, fmt="ndjson", timeout=120):
        return subprocess.run([*self.base, "--format", fmt, *args], capture_output=True, text=True, timeout=timeout)

    def close(self):
        for name in self.names:
            podman("rm", "-f", "-t", "0", name, check=False)
        podman("rmi", "-f", self.image, check=False)


@contextlib.contextmanager
def podman_image(fimctl, tmp, policy=POLICY):
    p = Podman(fimctl, tmp, policy)
    try:
        yield p
    finally:
        p.close()


def records(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def ours(recs, name):
    """The records whose container podman calls `name`."""
    return [r for r in recs if (r.get("container", {}).get("name") if r["type"] != "container" else r.get("name")) == name]


def case_containers_listed_as_podman_names_them(fimctl, tmp):
    """fimctl containers names a podman container as podman does: its name, the image reference,
    the manifest digest podman reports, and the pod labels a CRI runtime sets (as annotations);
    the baseline it would be checked against is keyed by that digest."""
    with podman_image(fimctl, tmp) as p:
        name, pid = p.run("web", "--annotation", "io.kubernetes.pod.namespace=shop",
                          "--annotation", "io.kubernetes.pod.name=web-7d4",
                          "--annotation", "io.kubernetes.container.name=nginx")
        full_id = podman("inspect", "--format", "{{.Id}}", name)
        doc = json.loads(p.fimctl("containers", fmt="json").stdout)
        c = [c for c in doc["containers"] if c["pid"] == pid]
        assert len(c) == 1, doc
        c = c[0]
        assert (c["runtime"], c["id"], c["name"], c["image"]) == ("podman", full_id, name, p.image), c
        assert c["image_digest"] == p.digest and c["metadata"] == "containers-storage", c
        assert c["pod"] == {"namespace": "shop", "name": "web-7d4", "container": "nginx"}, c
        assert c["baseline_key"] == "sha256-" + p.digest[7:] and c["baseline_key_kind"] == "manifest-digest", c
        plain = p.fimctl("containers", fmt="plain").stdout
        assert f"podman container shop/web-7d4/nginx ({p.image}, pid {pid})" in plain, plain


def case_check_drift_names_the_podman_container(fimctl, tmp):
    """check --containers: drift inside a podman container (a set-uid file in /usr/bin, a
    changed file) is reported on records that name the container as podman does, against the
    baseline keyed by the image's manifest digest; a second container of the same image that did
    not drift is clean."""
    with podman_image(fimctl, tmp) as p:
        name, pid = p.run("drifter")
        clean, _ = p.run("clean")
        init = p.fimctl("init", "--containers")
        assert init.returncode == 0, (init.returncode, init.stderr)
        assert os.path.exists(f"{tmp}/db/images/sha256-{p.digest[7:]}.db"), os.listdir(f"{tmp}/db/images")
        podman("exec", name, "/bin/sh", "-c",
               "echo '#!/bin/sh' > /usr/bin/rootshell; chmod 4755 /usr/bin/rootshell; echo x >> /usr/bin/tool")
        c = p.fimctl("check", "--containers")
        assert c.returncode & 5 == 5, (c.returncode, c.stderr)
        recs = records(c.stdout)
        mine = ours(recs, name)
        changes = {(r["kind"], r["path"]) for r in mine if r["type"] == "change" and r["path"] != "/usr/bin"}
        assert changes == {("added", "/usr/bin/rootshell"), ("changed", "/usr/bin/tool")}, mine
        for r in mine:
            if r["type"] == "change":
                assert r["container"]["image"] == p.image and r["container"]["image_digest"] == p.digest, r
                assert r["container"]["runtime"] == "podman" and r["container"]["pid"] == pid, r
        others = [r for r in ours(recs, clean) if r["type"] == "change"]
        assert not others, others


def case_image_baseline_from_podman_store_checks_its_containers(fimctl, tmp):
    """init --image containers-storage:IMAGE builds the baseline from the image podman stores,
    not from a container: named for the digest podman reports, a container that did not drift
    compares clean against it (no inode, ctime or device noise), drift is found, and
    init --containers afterwards leaves it as it is. podman save --format oci-dir of the same
    image gives a baseline of the same files (oci:DIR)."""
    with podman_image(fimctl, tmp) as p:
        # A container that drifted BEFORE any baseline: init --image does not bake that in.
        name, _ = p.run("early")
        podman("exec", name, "/bin/sh", "-c", "echo '#!/bin/sh' > /usr/bin/planted; chmod 755 /usr/bin/planted")
        r = p.fimctl("init", "--image", f"containers-storage:{p.image}")
        assert r.returncode == 0, (r.returncode, r.stderr, r.stdout)
        db = f"{tmp}/db/images/sha256-{p.digest[7:]}.db"
        assert os.path.exists(db), os.listdir(f"{tmp}/db/images")
        clean, _ = p.run("clean")
        listed = [x for x in json.loads(p.fimctl("containers", fmt="json").stdout)["containers"] if x["name"] == clean]
        assert listed and listed[0]["baseline_source"] == "image", listed
        c = p.fimctl("check", "--containers")
        recs = records(c.stdout)
        assert not [r for r in ours(recs, clean) if r["type"] == "change"], ours(recs, clean)
        planted = [r for r in ours(recs, name) if r["type"] == "change"]
        assert [(r["kind"], r["path"]) for r in planted if r["path"] != "/usr/bin"] == [("added", "/usr/bin/planted")], planted
        head = [r for r in recs if r["type"] == "container" and r["name"] == clean]
        assert head and head[0]["baseline_key_kind"] == "manifest-digest", head
        assert head[0]["baseline_source"] == "image", head
        assert all(r["container"]["baseline_source"] == "image" for r in planted), planted
        again = p.fimctl("init", "--containers")
        assert "built from the image itself" in again.stderr, again.stderr
        assert p.fimctl("check", "--containers").stdout.count("planted") >= 1, "init --containers replaced it"
        # The same image written as an OCI layout by podman: the same files recorded.
        podman("save", "--format", "oci-dir", "-o", f"{tmp}/oci", p.image)
        os.makedirs(f"{tmp}/db2", mode=0o700)
        o = subprocess.run([fimctl, "-c", p.policy, "--db", f"{tmp}/db2/baseline.db", "--keys", f"{tmp}/db2/keys",
                            "--unsigned", "init", "--image", f"oci:{tmp}/oci"], capture_output=True, text=True, timeout=120)
        assert o.returncode == 0, (o.returncode, o.stderr)
        built = [n for n in os.listdir(f"{tmp}/db2/images") if n.startswith("sha256-") and n.endswith(".db")]
        assert len(built) == 1, built

        def content(path):
            import sqlite3
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                return sorted((bytes(r[0]), r[1], r[2]) for r in con.execute("SELECT path, mode, sha256 FROM entries"))
            finally:
                con.close()
        assert content(db) == content(f"{tmp}/db2/images/{built[0]}"), "oci-dir and containers-storage differ"


def case_oci_image_whiteouts_match_podman_and_a_reappearing_file_is_drift(fimctl, tmp):
    """An OCI layout of two layers (a whiteout, an opaque directory, a file capability, a hard
    link) made here, pulled by podman (oci: transport, offline): init --image oci:DIR names the
    baseline for the digest podman runs, a container of it compares clean (the kernel's overlay
    and fimctl's agree on every whiteout), and the container bringing a whited-out file back is
    drift."""
    import tarfile
    from image_test import Layout, base_layers, member
    need_busybox = Podman.__init__  # noqa: F841 (busybox_rootfs below checks the tools)
    busybox_rootfs(f"{tmp}/bb")
    d = tarfile.DIRTYPE
    with open("/bin/busybox", "rb") as f:
        bb = f.read()
    lower = [member("bin", kind=d, mode=0o755), member("bin/busybox", data=bb, mode=0o755),
             member("bin/sleep", kind=tarfile.SYMTYPE, link="busybox"),
             member("bin/sh", kind=tarfile.SYMTYPE, link="busybox")] + base_layers()[0]
    # podman names an image pulled by oci:PATH after PATH, so PATH must be a valid reference
    # path: mkdtemp's tmp may end in "_" or hold "._", which podman refuses.
    layout_path = f"/tmp/fimtest-oci-{os.getpid()}-{os.urandom(4).hex()}"
    image = f"localhost/fimtest-oci-{os.getpid()}-{os.urandom(3).hex()}:1"
    name = image.split("/")[1].replace(":", "-")
    policy, db = f"{tmp}/policy.toml", f"{tmp}/db/baseline.db"
    with open(policy, "w") as f:
        # Not /etc whole: podman adds hostname, hosts, resolv.conf and mtab to every container.
        f.write(POLICY + '[[rule]]\npath = "/etc/old.conf"\nseverity = "medium"\n'
                '[[rule]]\npath = "/etc/new.conf"\nseverity = "medium"\n')
    os.makedirs(os.path.dirname(db), mode=0o700)
    base = [fimctl, "-c", policy, "--db", db, "--keys", db + ".keys", "--unsigned", "--format", "ndjson"]
    pulled = None
    try:
        layout = Layout(layout_path)
        digest, _ = layout.image([lower, base_layers()[1]], tag="1")
        pulled = podman("pull", "-q", f"oci:{layout.path}:1")
        podman("tag", pulled, image)
        assert podman("image", "inspect", "--format", "{{.Digest}}", image) == digest, "podman runs another manifest"
        r = subprocess.run([*base, "init", "--image", f"oci:{layout.path}:1"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (r.returncode, r.stderr)
        podman("run", "-d", *RUN_LIMITS, "--name", name, image, "/bin/sleep", "600")
        c = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        mine = [x for x in records(c.stdout) if x.get("container", {}).get("name") == name or x.get("name") == name]
        assert [x for x in mine if x["type"] == "container"], (c.returncode, c.stderr, c.stdout)
        assert not [x for x in mine if x["type"] == "change"], mine
        podman("exec", name, "/bin/sh", "-c", "echo back > /usr/bin/gone; echo old > /etc/old.conf")
        c = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        changes = {(x["kind"], x["path"]) for x in records(c.stdout)
                   if x["type"] == "change" and x["container"]["name"] == name and x["file_type"] != "dir"}
        assert changes == {("added", "/usr/bin/gone"), ("added", "/etc/old.conf")}, changes
    finally:
        podman("rm", "-f", "-t", "0", name, check=False)
        podman("rmi", "-f", image, *([pulled] if pulled else []), check=False)
        shutil.rmtree(layout_path, ignore_errors=True)


def case_no_image_baseline_is_an_alert_naming_the_image(fimctl, tmp):
    """check --containers with a podman container whose image nobody baselined: an alert naming
    the container and its image (not a line on stderr that a cron mail drops), and bit 8."""
    with podman_image(fimctl, tmp) as p:
        name, _ = p.run("unbaselined")
        c = p.fimctl("check", "--containers")
        assert c.returncode & 8, (c.returncode, c.stdout, c.stderr)
        alerts = [r for r in ours(records(c.stdout), name) if r["type"] == "alert"]
        assert len(alerts) == 1 and alerts[0]["code"] == "container_no_baseline", alerts
        assert p.image in alerts[0]["message"] and name in alerts[0]["message"], alerts
        plain = p.fimctl("check", "--containers", fmt="plain")
        assert plain.returncode & 8 and "container_no_baseline" in plain.stdout and p.image in plain.stdout, plain


def case_response_kill_stops_the_podman_container(fimctl, tmp):
    """A rule with response = "kill" reporting drift in a podman container kills it: podman
    itself then shows the container exited (not only its processes gone), and the response
    record names the container."""
    policy = POLICY.replace('tags = ["binaries"]', 'tags = ["binaries"]\nresponse = "kill"')
    with podman_image(fimctl, tmp, policy) as p:
        name, pid = p.run("victim")
        assert p.fimctl("init", "--containers").returncode == 0
        podman("exec", name, "/bin/sh", "-c", "echo '#!/bin/sh' > /usr/bin/implant; chmod 755 /usr/bin/implant")
        c = p.fimctl("check", "--containers")
        assert c.returncode & 1, (c.returncode, c.stderr)
        resp = [r for r in ours(records(c.stdout), name) if r["type"] == "response"]
        assert len(resp) == 1 and resp[0]["action"] == "kill" and resp[0]["killed"] >= 1, resp
        for _ in range(100):
            state = podman("inspect", "--format", "{{.State.Status}}", name)
            if state == "exited":
                break
            time.sleep(0.1)
        assert state == "exited", state
        assert name not in podman("ps", "--format", "{{.Names}}").split(), "podman ps still lists it"


def case_watch_names_the_podman_container(fimctl, tmp):
    """watch --containers with a podman container whose image lacks a policy path (/home): it is
    still watched, a set-uid file written to /usr/bin inside it is reported in real time on a
    record naming the container as podman does, and no container_check_failed is raised."""
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
        assert start["container"]["runtime"] == "podman" and start["container"]["name"] == name, start
        assert start["container"]["image"] == image and start["container"]["image_digest"].startswith("sha256:"), start
        podman("exec", name, "/bin/sh", "-c", "echo '#!/bin/sh' > /usr/bin/rootshell; chmod 4755 /usr/bin/rootshell")
        r = d.wait_for(lambda r: r["type"] == "change" and r["path"] == "/usr/bin/rootshell" and
                       r.get("container", {}).get("pid") == pid, what="the set-uid file in the container")[-1]
        assert r["kind"] == "added" and r["source"] == "watch", r
        assert r["container"]["name"] == name and r["container"]["image"] == image, r
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
    sys.exit(run_main(CASES, "fimctl-podman.", as_root=True, doc=__doc__))
