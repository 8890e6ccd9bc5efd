#!/usr/bin/env python3
"""fimctl with a real containerd (Debian's 1.6, suite 'root'): an OCI archive of a busybox tree
made here, imported with ctr into a containerd of the case's own (its root and state bind-mounted
over /var/lib/containerd and /run/containerd in the case's private mount namespace, its own
socket), a container with the CRI labels; fimctl names it from containerd's meta.db with the
manifest digest `ctr images ls` shows, and check --containers keys it by that digest.

Usage: containerd_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, no containerd, ctr or runc, no static busybox).
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import Skip, need_tool, run_main  # noqa: E402

POLICY = 'version = 1\n[[rule]]\npath = "/usr/bin"\nseverity = "high"\n'
LABELS = {"io.kubernetes.pod.namespace": "shop", "io.kubernetes.pod.name": "web-7d4",
          "io.kubernetes.container.name": "nginx"}


def busybox_rootfs(root):
    p = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True) if os.path.exists("/bin/busybox") else None
    if p is None or "not a dynamic executable" not in p.stdout + p.stderr:
        raise Skip("a static /bin/busybox (Debian package busybox-static) is needed for the image")
    for d in ("bin", "usr/bin", "etc", "proc", "dev", "sys", "tmp"):
        os.makedirs(f"{root}/{d}")
    shutil.copy("/bin/busybox", f"{root}/bin/busybox")
    for tool in ("sh", "sleep"):
        os.symlink("busybox", f"{root}/bin/{tool}")
    with open(f"{root}/usr/bin/tool", "w") as f:
        f.write("#!/bin/sh\necho tool\n")
    os.chmod(f"{root}/usr/bin/tool", 0o755)


def oci_archive(rootfs, out, name, nested):
    """An OCI archive of `rootfs` as one layer; `nested`: its index.json names an image index
    (linux/amd64 and a linux/arm64 entry), else the manifest. Returns (target, manifest) digests."""
    blobs = {}

    def blob(data):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return "sha256:" + d, len(data)

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, e), arcname=e)
    ld, ls = blob(buf.getvalue())
    cd, cs = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/sleep", "600"]},
                              "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode())
    md, ms = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                              "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld,
                                          "size": ls}]}).encode())
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
             "platform": {"architecture": "amd64", "os": "linux"}}
    ann = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    if nested:
        other = dict(mdesc, digest="sha256:" + "0" * 64, platform={"architecture": "arm64", "os": "linux"})
        xd, xs = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                  "manifests": [other, mdesc]}).encode())
        top, target = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": xd, "size": xs,
                       "annotations": ann}, xd
    else:
        top, target = dict(mdesc, annotations=ann), md
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [top]}).encode()
    with tarfile.open(out, "w") as t:
        for n, data in [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)] + \
                [("blobs/sha256/" + d, b) for d, b in blobs.items()]:
            ti = tarfile.TarInfo(n)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return target, md


class Containerd:
    """A containerd of the case's own at the default paths of this mount namespace."""

    def __init__(self, tmp):
        for tool in ("containerd", "ctr", "runc"):
            need_tool(tool)
        self.tmp, self.sock, self.proc, self.ids = tmp, f"{tmp}/containerd.sock", None, []
        for d, at in ((f"{tmp}/root", "/var/lib/containerd"), (f"{tmp}/state", "/run/containerd")):
            os.makedirs(d)
            os.makedirs(at, exist_ok=True)
            subprocess.run(["mount", "--bind", d, at], check=True)
        with open(f"{tmp}/config.toml", "w") as f:
            f.write(f'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
                    f'[grpc]\n  address = "{self.sock}"\n[ttrpc]\n  address = "{self.sock}.ttrpc"\n')
        self.log = open(f"{tmp}/containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", f"{tmp}/config.toml", "--root", "/var/lib/containerd",
                                      "--state", "/run/containerd", "--address", self.sock],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            if self.ctr("version", check=False).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("containerd did not start: " + open(f"{tmp}/containerd.log").read()[-2000:])

    def ctr(self, *args, check=True, timeout=60):
        p = subprocess.run(["ctr", "-a", self.sock, *args], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()}")
        return p

    def close(self):
        for cid in self.ids:
            self.ctr("task", "kill", "-s", "KILL", cid, check=False)
        for cid in self.ids:
            for _ in range(50):
                if self.ctr("task", "rm", "-f", cid, check=False).returncode == 0 or \
                        "not found" in self.ctr("task", "ls", check=False).stdout + "not found":
                    break
                time.sleep(0.1)
            self.ctr("containers", "rm", cid, check=False)
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@contextlib.contextmanager
def containerd(tmp):
    c = Containerd(tmp)
    try:
        yield c
    finally:
        c.close()


def case_containerd_container_named_by_its_manifest_digest(fimctl, tmp):
    """A containerd container of an index image: fimctl containers names it from meta.db (image,
    CRI labels) with the linux/amd64 manifest digest and the index digest `ctr images ls` shows;
    when runc runs its task, init --containers writes images/sha256-<hex>.db and check
    --containers compares the container with that baseline."""
    busybox_rootfs(f"{tmp}/rootfs")
    image = "localhost/fimtest/multi:1"
    index, manifest = oci_archive(f"{tmp}/rootfs", f"{tmp}/img.tar", image, nested=True)
    with containerd(tmp) as c:
        c.ctr("images", "import", f"{tmp}/img.tar")
        ls = c.ctr("images", "ls").stdout
        assert index in ls and "index" in ls, ls
        cid = hashlib.sha256(f"{tmp}-web".encode()).hexdigest()
        c.ids.append(cid)
        labels = [a for k, v in LABELS.items() for a in ("--label", f"{k}={v}")]
        # A cgroup of the CRI plugin's shape, so the runtime is named from it as on a node.
        c.ctr("run", "-d", "--cgroup", f"/fimtest/cri-containerd-{cid}.scope", *labels, image, cid, "/bin/sleep", "600")
        pid = int(next(l.split()[1] for l in c.ctr("task", "ls").stdout.splitlines() if l.startswith(cid)))
        db = f"{tmp}/db/baseline.db"
        os.makedirs(os.path.dirname(db), mode=0o700)
        with open(f"{tmp}/policy.toml", "w") as f:
            f.write(POLICY)
        base = [fimctl, "-c", f"{tmp}/policy.toml", "--db", db, "--keys", db + ".keys", "--unsigned"]
        start = time.monotonic()
        listed = subprocess.run([*base, "--format", "json", "containers"], capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - start
        assert listed.returncode == 0, listed.stderr
        found = [x for x in json.loads(listed.stdout)["containers"] if x["pid"] == pid]
        assert len(found) == 1, listed.stdout
        x = found[0]
        assert (x["runtime"], x["id"], x["metadata"], x["image"]) == ("containerd", cid, "containerd", image), x
        assert x["image_digest"] == manifest and x["image_index_digest"] == index, x
        assert x["pod"] == {"namespace": "shop", "name": "web-7d4", "container": "nginx"}, x
        assert x["baseline_key"] == "sha256-" + manifest[7:] and x["baseline_key_kind"] == "manifest-digest", x
        print(f"fimctl containers: {elapsed:.3f} s")
        os.makedirs(f"{tmp}/tree")
        subprocess.run([*base, "init", f"{tmp}/tree"], check=True, capture_output=True)
        init = subprocess.run([*base, "init", "--containers"], capture_output=True, text=True, timeout=120)
        assert init.returncode == 0, init.stderr
        assert os.path.exists(f"{tmp}/db/images/sha256-{manifest[7:]}.db"), os.listdir(f"{tmp}/db/images")
        check = subprocess.run([*base, "--format", "ndjson", "check", "--containers"], capture_output=True, text=True,
                               timeout=120)
        recs = [json.loads(l) for l in check.stdout.splitlines() if l.strip()]
        ours = [r for r in recs if r.get("container", {}).get("pid") == pid]
        assert ours and all(r["container"]["baseline_key"] == "sha256-" + manifest[7:] for r in ours), check.stdout
        assert not [r for r in ours if r["type"] == "alert" and r.get("code") == "container_no_baseline"], ours


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-containerd.", as_root=True, doc=__doc__))
