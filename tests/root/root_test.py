#!/usr/bin/env python3
"""Root-only tests: mounts inside a root, device nodes, dropping privileges.

Usage: root_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root, or the kernel/tool refuses the setup).
Each case runs in its own mount namespace (unshare -m), so a failed test leaves no mount
behind on the host.
"""
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import POLICY, Skip, run_fimctl, run_main  # noqa: E402,F401


def run(fimctl, db, *args, user=None, timeout=60, config=POLICY):
    """fimctl on baseline db with --format json -> (exit code, the JSON document, stderr)."""
    r = run_fimctl(fimctl, *args, config=config, db=db, timeout=timeout, user=user or None)
    return r.rc, r.json(), r.stderr


def records(doc, kind=None):
    out = [r for r in doc["records"] if r["type"] == "change"]
    return [r for r in out if kind is None or r["kind"] == kind]


def mount(*args):
    if subprocess.run(["mount", *args], capture_output=True).returncode != 0:
        raise Skip("mount " + " ".join(args) + " refused")


def case_mount_not_crossed(fimctl, tmp):
    """A tmpfs mounted below a root is recorded as a mount point and not descended."""
    tree, db = f"{tmp}/tree", f"{tmp}/db"
    os.makedirs(f"{tree}/mnt")
    open(f"{tree}/f", "w").write("x")
    mount("-t", "tmpfs", "tmpfs", f"{tree}/mnt")
    open(f"{tree}/mnt/inside", "w").write("y")
    rc, doc, err = run(fimctl, db, "init", tree)
    assert rc == 0, (rc, err)
    assert doc["summary"]["entries"] == 3, doc["summary"]  # tree, tree/f, tree/mnt
    open(f"{tree}/mnt/inside", "w").write("changed")       # not watched: other filesystem
    rc, doc, err = run(fimctl, db, "check")
    paths = [r["path"] for r in records(doc)]
    assert not any("inside" in p for p in paths), paths


def case_bind_mount_not_crossed(fimctl, tmp):
    """A bind mount has the same st_dev as its source: the mount id must stop the walk."""
    tree, db = f"{tmp}/tree", f"{tmp}/db"
    os.makedirs(f"{tree}/a")
    os.makedirs(f"{tree}/loop")
    open(f"{tree}/a/f", "w").write("x")
    mount("--bind", tree, f"{tree}/loop")  # a loop: tree/loop/loop/... if it were followed
    rc, doc, err = run(fimctl, db, "init", tree, timeout=30)
    assert rc == 0, (rc, err)
    assert doc["summary"]["entries"] == 4, doc["summary"]  # tree, a, a/f, loop


def case_device_nodes_not_read(fimctl, tmp):
    """/dev/zero's device number under a root: reading it would never end."""
    tree, db = f"{tmp}/tree", f"{tmp}/db"
    os.makedirs(tree)
    os.mknod(f"{tree}/zero", 0o600 | 0o020000, os.makedev(1, 5))
    os.mkfifo(f"{tree}/fifo")
    rc, doc, err = run(fimctl, db, "init", tree, timeout=20)
    assert rc == 0, (rc, err)
    os.unlink(f"{tree}/zero")
    os.mknod(f"{tree}/zero", 0o600 | 0o020000, os.makedev(1, 3))
    rc, doc, err = run(fimctl, db, "check", timeout=20)
    assert rc & 4, (rc, err)
    changed = {r["path"]: r for r in records(doc, "changed")}
    attrs = [c["attr"] for c in changed[f"{tree}/zero"]["changes"]]
    assert "rdev" in attrs and "sha256" not in attrs, attrs


def case_unreadable_directory_is_incomplete(fimctl, tmp):
    """As another user: a directory that cannot be listed makes the run incomplete (bit 8);
    its baseline contents are unverified, never reported as removed."""
    tree, db = f"{tmp}/tree", f"{tmp}/state/db"
    os.makedirs(f"{tree}/secret")
    os.makedirs(f"{tmp}/state")
    open(f"{tree}/secret/f", "w").write("x")
    for p in (tmp, tree, f"{tree}/secret", f"{tree}/secret/f", f"{tmp}/state"):
        os.chown(p, 65534, 65534)
    rc, doc, err = run(fimctl, db, "init", tree, user=65534)
    assert rc == 0, (rc, err)
    os.chmod(f"{tree}/secret", 0o000)
    rc, doc, err = run(fimctl, db, "check", user=65534)
    assert rc & 8 and not rc & 2, (rc, err)
    assert doc["summary"]["unverified"] == 1, doc["summary"]
    statuses = [r for r in doc["records"] if r["type"] == "entry_status"]
    assert statuses and statuses[0]["path"] == f"{tree}/secret", statuses
    assert statuses[0]["errno"] == "EACCES", statuses


def write_policy(tmp, text):
    path = f"{tmp}/policy.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


def fstype_of(path):
    return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()


def case_fstype_exclusion_is_skipped_fs(fimctl, tmp):
    """An exclusion by filesystem type: the mount point's contents are not walked, and the
    report says skipped_fs for it (a policy choice: no exit bit)."""
    tree, db = f"{tmp}/tree", f"{tmp}/db"
    if fstype_of(tmp) == "tmpfs":
        raise Skip(f"{tmp} is itself on tmpfs")
    os.makedirs(f"{tree}/mnt")
    open(f"{tree}/f", "w").write("x")
    mount("-t", "tmpfs", "tmpfs", f"{tree}/mnt")
    open(f"{tree}/mnt/inside", "w").write("y")
    pol = write_policy(tmp, f'[[rule]]\npath = "{tree}"\ncross_fs = true\n'
                            f'[[exclude]]\npath = "{tree}"\nfstype = ["tmpfs", "nfs"]\n')
    rc, doc, err = run(fimctl, db, "init", config=pol)
    assert rc == 0, (rc, err)
    assert doc["summary"]["entries"] == 3 and doc["summary"]["skipped"] == 1, doc["summary"]
    st = [r for r in doc["records"] if r["type"] == "entry_status"]
    assert len(st) == 1 and st[0]["status"] == "skipped_fs" and st[0]["path"] == f"{tree}/mnt", st
    open(f"{tree}/mnt/inside", "w").write("changed")
    rc, doc, err = run(fimctl, db, "check", config=pol)
    assert rc == 0 and not records(doc), (rc, doc, err)


def case_cross_fs_rule_descends(fimctl, tmp):
    """cross_fs on the rule that selects a directory lets the walk enter a mount below it."""
    tree, db = f"{tmp}/tree", f"{tmp}/db"
    os.makedirs(f"{tree}/mnt")
    mount("-t", "tmpfs", "tmpfs", f"{tree}/mnt")
    open(f"{tree}/mnt/inside", "w").write("y")
    pol = write_policy(tmp, f'[[rule]]\npath = "{tree}"\ncross_fs = true\n')
    rc, doc, err = run(fimctl, db, "init", config=pol)
    assert rc == 0 and doc["summary"]["entries"] == 3, (rc, doc["summary"], err)
    open(f"{tree}/mnt/inside", "w").write("changed")
    rc, doc, err = run(fimctl, db, "check", config=pol)
    assert rc == 4 and [r["path"] for r in records(doc)] == [f"{tree}/mnt/inside"], (rc, doc)


def busybox_container(tmp, populate=None):
    """Starts a namespaced container (busybox image in tmp/image, overlay root, pid and mount
    namespaces, pivot_root) running sleep 60; populate(img) adds files to the image first.
    Returns (process, image, upperdir)."""
    ldd = subprocess.run(["ldd", "/bin/busybox"], capture_output=True, text=True) if os.path.exists("/bin/busybox") else None
    if ldd is None or "not a dynamic executable" not in ldd.stdout + ldd.stderr:
        raise Skip("a static /bin/busybox (Debian package busybox-static) is needed for the container image")
    img, upper, work, merged = (f"{tmp}/{n}" for n in ("image", "upper", "work", "merged"))
    for d in (f"{img}/bin", f"{img}/proc", f"{img}/dev", f"{img}/etc", upper, work, merged):
        os.makedirs(d)
    shutil.copy("/bin/busybox", f"{img}/bin/busybox")
    os.symlink("busybox", f"{img}/bin/sh")
    os.symlink("busybox", f"{img}/bin/sleep")
    if populate:
        populate(img)
    mount("-t", "overlay", "fimtest", "-o", f"lowerdir={img},upperdir={upper},workdir={work}", merged)
    script = (f"set -e; mount --make-rprivate /; mount --bind {merged} {merged}; cd {merged}; mkdir -p .old; "
              "mount -t proc proc proc; pivot_root . .old; /bin/busybox umount -l /.old; exec /bin/busybox sleep 60")
    # --kill-child: the container's init dies with unshare (else it outlives the test and other
    # tests, which see every container of the host, find it).
    ctr = subprocess.Popen(["unshare", "--mount", "--pid", "--fork", "--kill-child", "--propagation", "private",
                            "sh", "-c", script],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ctr, img, upper


def find_container(fimctl, upper, timeout=10):
    """fimctl containers' JSON listing and the container whose upper dir is `upper`."""
    import time
    end = time.monotonic() + timeout
    mine, doc = [], None
    while time.monotonic() < end and not mine:
        p = subprocess.run([fimctl, "--format", "json", "containers"], capture_output=True, timeout=30)
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        mine = [c for c in doc["containers"] if c.get("upperdir") == upper]
        time.sleep(0.1)
    assert mine, doc
    return doc, mine[0]


def case_containers_listed(fimctl, tmp):
    """fimctl containers finds a namespaced container built here (busybox image, overlay root,
    pid and mount namespaces, pivot_root) with its pid and overlay layers, and does not list a
    process that only has a private mount namespace (as systemd's PrivateTmp= gives)."""
    ctr, img, upper = busybox_container(tmp)
    plain = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "60"])
    try:
        doc, c = find_container(fimctl, upper)
        assert c["root_fstype"] == "overlay" and c["lowerdirs"] == [img] and c["own_pid_ns"], c
        assert os.readlink(f"/proc/{c['pid']}/ns/mnt") == c["mnt_ns"], c
        assert os.readlink(f"/proc/{c['pid']}/exe").endswith("busybox"), c
        plain_ns = os.readlink(f"/proc/{plain.pid}/ns/mnt")
        assert not [x for x in doc["containers"] if x["mnt_ns"] == plain_ns], doc
        p = subprocess.run([fimctl, "containers"], capture_output=True, text=True, timeout=30)
        assert f"upperdir: {upper}" in p.stdout, p.stdout
    finally:
        for proc in (ctr, plain):
            proc.kill()
            proc.wait()


def case_containers_drift(fimctl, tmp):
    """init --containers baselines the image of a running container through /proc/PID/root;
    writes made inside the container to /usr/bin, /etc/cron.d, /etc/ssh and /root/.ssh are
    each reported by check --containers under that container, with the container's paths; an
    absolute symlink in the image is not followed to the host."""
    def populate(img):
        for d in ("usr/bin", "etc/cron.d", "etc/ssh", "root/.ssh"):
            os.makedirs(f"{img}/{d}")
        open(f"{img}/usr/bin/tool", "w").write("tool 1\n")
        open(f"{img}/etc/ssh/sshd_config", "w").write("PermitRootLogin no\n")
        os.symlink("/usr/lib", f"{img}/usr/bin/hostlib")  # the host's /usr/lib is thousands of files
    ctr, img, upper = busybox_container(tmp, populate)
    db = f"{tmp}/db/baseline.db"
    os.makedirs(os.path.dirname(db), mode=0o700)
    base = [fimctl, "--db", db, "--keys", db + ".keys", "--unsigned", "--format", "ndjson"]
    try:
        _, c = find_container(fimctl, upper)
        # Other containers of this host (other tests') may be listed too, and fail: only this
        # container's records are looked at.
        p = subprocess.run([*base, "init", "--containers", "/usr/bin", "/etc/cron.d", "/etc/ssh", "/root/.ssh"],
                           capture_output=True, text=True, timeout=120)
        ours = container_records(p.stdout, upper)
        assert [r for r in ours if r["type"] == "summary"][0]["exit_code"] == 0, (p.returncode, p.stderr, ours)
        p = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        ours = container_records(p.stdout, upper)
        summary = [r for r in ours if r["type"] == "summary"][0]
        assert summary["exit_code"] == 0, (p.stderr, ours)
        assert summary["entries"] == 7, summary  # 4 roots, tool, hostlib, sshd_config: not the host's /usr/lib
        inside = ("echo '* * * * * root /tmp/x' > /etc/cron.d/evil; echo backdoor > /usr/bin/backdoor; "
                  "echo 'PermitRootLogin yes' > /etc/ssh/sshd_config; echo ssh-ed25519 AAAA >> /root/.ssh/authorized_keys")
        w = subprocess.run(["nsenter", "-t", str(c["pid"]), "-m", "-p", "--", "/bin/busybox", "sh", "-c", inside],
                           capture_output=True, text=True, timeout=30)
        assert w.returncode == 0, w.stderr
        p = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        assert p.returncode & 5 == 5, (p.returncode, p.stderr)  # the bits of every container's report
        ours = container_records(p.stdout, upper)
        assert [r for r in ours if r["type"] == "summary"][0]["exit_code"] == 5, ours
        roots = {"/usr/bin", "/etc/cron.d", "/etc/ssh", "/root/.ssh"}  # their times changed too
        changes = {(r["kind"], r["path"]) for r in ours if r["type"] == "change" and r["path"] not in roots}
        assert changes == {("added", "/etc/cron.d/evil"), ("added", "/usr/bin/backdoor"),
                           ("changed", "/etc/ssh/sshd_config"), ("added", "/root/.ssh/authorized_keys")}, changes
        head = ours[0]
        assert head["type"] == "container" and head["pid"] == c["pid"], head
        # A namespaced container of our own: no runtime metadata names it, so it is keyed by its
        # lower layers, and every record of its report says which container it is.
        assert len(head["baseline_key"]) == 64 and head["baseline_key_kind"] == "lower-layers", head
        assert head["baseline_source"] == "container", head
        assert all(r["container"]["pid"] == c["pid"] for r in ours if r["type"] == "change"), ours
        assert head["baseline"].startswith(f"{tmp}/db/images/"), head
    finally:
        ctr.kill()
        ctr.wait()


def case_containers_response(fimctl, tmp):
    """A rule with response = "kill": drift it reports gets the container's processes killed by
    check --containers (and a response record); drift under a rule without it does not."""
    def populate(img):
        for d in ("usr/bin", "etc/cron.d"):
            os.makedirs(f"{img}/{d}")
    ctr, img, upper = busybox_container(tmp, populate)
    policy = f"{tmp}/policy.toml"
    with open(policy, "w") as f:
        f.write('version = 1\n[[rule]]\npath = "/usr/bin"\n[[rule]]\npath = "/etc/cron.d"\nresponse = "kill"\n')
    db = f"{tmp}/db/baseline.db"
    os.makedirs(os.path.dirname(db), mode=0o700)
    base = [fimctl, "-c", policy, "--db", db, "--keys", db + ".keys", "--unsigned", "--format", "ndjson"]
    try:
        _, c = find_container(fimctl, upper)
        p = subprocess.run([*base, "init", "--containers"], capture_output=True, text=True, timeout=120)
        assert [r for r in container_records(p.stdout, upper) if r["type"] == "summary"][0]["exit_code"] == 0, p.stderr

        def inside(cmd):
            w = subprocess.run(["nsenter", "-t", str(c["pid"]), "-m", "-p", "--", "/bin/busybox", "sh", "-c", cmd],
                               capture_output=True, text=True, timeout=30)
            assert w.returncode == 0, w.stderr
        inside("echo x > /usr/bin/new")
        p = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        ours = container_records(p.stdout, upper)
        assert not [r for r in ours if r["type"] == "response"], ours
        assert ctr.poll() is None, "killed for drift under a rule without a response"
        inside("echo '* * * * * root /x' > /etc/cron.d/evil")
        p = subprocess.run([*base, "check", "--containers"], capture_output=True, text=True, timeout=120)
        ours = container_records(p.stdout, upper)
        resp = [r for r in ours if r["type"] == "response"]
        assert resp and resp[0]["action"] == "kill" and resp[0]["killed"] >= 1 and resp[0]["pid"] == c["pid"], ours
        assert policy in resp[0]["reason"], resp
        ctr.wait(timeout=10)  # its init is gone, so unshare returns
    finally:
        if ctr.poll() is None:
            ctr.kill()
            ctr.wait()


def container_records(ndjson, upper):
    """The records check --containers wrote for the container whose upper dir is `upper`: its
    container record, then its report up to the next container record."""
    out, on = [], False
    for line in ndjson.splitlines():
        r = json.loads(line)
        if r["type"] == "container":
            on = r.get("upperdir") == upper
        if on:
            out.append(r)
    assert out, ndjson
    return out


def case_disk_full_during_write(fimctl, tmp):
    """The baseline's filesystem fills up while a new baseline is written (docs/design.md, Threat
    model): a clear I/O error (exit 20), the previous baseline still in force and verifying, and no
    temporary file left behind."""
    tree, dbdir = f"{tmp}/tree", f"{tmp}/dbdir"
    os.makedirs(tree)
    os.makedirs(dbdir)
    # mode 0755: a tmpfs is 1777 by default, and the baseline's own directory must not be (Trusted paths).
    mount("-t", "tmpfs", "-o", "size=384k,mode=0755", "tmpfs", dbdir)
    db = f"{dbdir}/baseline.db"
    for i in range(20):
        with open(f"{tree}/f{i}", "w") as f:
            f.write(str(i))
    rc, doc, err = run(fimctl, db, "init", tree)
    assert rc == 0, (rc, err)
    before = open(db, "rb").read()
    for i in range(5000):  # far more rows than the rest of the filesystem holds
        with open(f"{tree}/more-{i:05d}-{'x' * 100}", "w") as f:
            f.write(str(i))
    for cmd in (["update", "--yes", "--reason", "disk full test"], ["init", "--force", tree]):
        rc, doc, err = run(fimctl, db, *cmd)
        assert rc == 20 and "fimctl: error:" in err, (cmd, rc, err)
        assert open(db, "rb").read() == before, f"{cmd}: the previous baseline was changed"
        left = [n for n in os.listdir(dbdir) if ".tmp." in n]
        assert not left, (cmd, left)
    # The disk is still full: the report is whole, and state.db's failed write is an alert and bit 8.
    rc, doc, err = run(fimctl, db, "check")
    assert rc == 13 and doc["summary"]["added"] == 5000, (rc, err, doc and doc["summary"])  # + the directory changed
    assert any(r["type"] == "alert" and r["code"] == "state" for r in doc["records"]), doc["records"][-3:]


def case_fuse_read_timeout(fimctl, tmp):
    """A read that never returns (a hung FUSE filesystem; docs/design.md, Threat model, T30): the
    entry gets status timeout after options.read_timeout, its neighbours are hashed, and init and
    check end (bounded), with exit bit 8."""
    import time
    hangfs = os.environ.get("FIMCTL_HANGFS")
    if not hangfs or not os.path.exists("/dev/fuse"):
        raise Skip("no hangfs (libfuse3-dev) or no /dev/fuse")
    mnt, db, pol = f"{tmp}/fuse", f"{tmp}/db", f"{tmp}/policy.toml"
    os.makedirs(mnt)
    fs = subprocess.Popen([hangfs, "-f", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 10
    while not os.path.ismount(mnt):
        if fs.poll() is not None or time.monotonic() > end:
            fs.kill()
            raise Skip("hangfs did not mount")
        time.sleep(0.05)
    try:
        with open(pol, "w") as f:
            f.write('[options]\nread_timeout = "2s"\n')
        for cmd in ("init", "check"):
            t0 = time.monotonic()
            rc, doc, err = run(fimctl, db, cmd, *([mnt] if cmd == "init" else []), config=pol, timeout=60)
            took = time.monotonic() - t0
            assert rc == 8, (cmd, rc, err)
            assert took < 30, (cmd, took)
            st = {r["path"]: r for r in doc["records"] if r["type"] == "entry_status"}
            assert st.get(f"{mnt}/stuck", {}).get("status") == "timeout", (cmd, doc["records"])
            assert f"{mnt}/fine" not in st, (cmd, st)
            assert doc["summary"]["bytes_hashed"] >= 4096, doc["summary"]  # "fine" was hashed
            if cmd == "check":
                # Nothing else differs: the stuck file's metadata matched, its digest was not compared.
                assert records(doc) == [], records(doc)
    finally:
        # Ending the filesystem's daemon ends the requests stuck in it, and with them the
        # fimctl processes that could not exit (their reports and exit codes came on time).
        fs.kill()
        fs.wait()
        subprocess.run(["umount", "-l", mnt], capture_output=True)


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}


if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-root.", as_root=True, doc=__doc__))
