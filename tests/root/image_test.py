#!/usr/bin/env python3
"""fimctl init --image, export-image-baseline and import-image-baseline (suite 'root': the
layers are unpacked with their owners, devices and capabilities and mounted as an overlay).
The OCI image layouts are written here by python (tar, gzip, index.json, manifest, digests
computed), no registry or runtime; tests/root/podman_test.py does the same with podman's store.

Usage: image_test.py --fimctl PATH (--list | CASE)
Exit 0 pass, 1 fail, 77 skip (not root).
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sqlite3
import stat
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fimtest import expect, run, run_main  # noqa: E402

POLICY = """version = 1
[[rule]]
path = "/usr/bin"
severity = "high"

[[rule]]
path = "/etc"
severity = "medium"
"""

# A file capability (cap_net_raw+ep) as security.capability holds it (VFS_CAP_REVISION_2).
CAP_NET_RAW = bytes.fromhex("01000002" "00200000" "00000000" "00000000" "00000000")


def member(name, *, data=None, kind=tarfile.REGTYPE, mode=0o644, link="", xattrs=None, uid=0, gid=0):
    return dict(name=name, data=data, kind=kind, mode=mode, link=link, xattrs=xattrs or {}, uid=uid, gid=gid)


def layer_tar(members):
    """A layer as a pax tar (what buildah and skopeo write), members in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            ti = tarfile.TarInfo(m["name"])
            ti.type, ti.mode, ti.uid, ti.gid, ti.mtime = m["kind"], m["mode"], m["uid"], m["gid"], 1700000000
            ti.linkname = m["link"]
            ti.pax_headers = {f"SCHILY.xattr.{k}": v.decode("latin-1") for k, v in m["xattrs"].items()}
            if m["data"] is not None:
                ti.size = len(m["data"])
                t.addfile(ti, io.BytesIO(m["data"]))
            else:
                t.addfile(ti)
    return buf.getvalue()


class Layout:
    """An OCI image layout at `path`: blobs by sha256, index.json naming the manifest `tag`."""

    def __init__(self, path):
        self.path = path
        os.makedirs(f"{path}/blobs/sha256")
        with open(f"{path}/oci-layout", "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)

    def blob(self, data):
        digest = hashlib.sha256(data).hexdigest()
        with open(f"{self.path}/blobs/sha256/{digest}", "wb") as f:
            f.write(data)
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def image(self, layers, tag="1", gzipped=True, via_index=False):
        """Writes the image (layers: lists of members, lowest first); returns its manifest digest."""
        descs = []
        for members in layers:
            raw = layer_tar(members)
            data = gzip.compress(raw, mtime=0) if gzipped else raw
            d = self.blob(data)
            d["mediaType"] = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gzipped else "")
            descs.append(d)
        config = self.blob(json.dumps({"architecture": "amd64", "os": "linux",
                                       "rootfs": {"type": "layers", "diff_ids": []}}).encode())
        config["mediaType"] = "application/vnd.oci.image.config.v1+json"
        manifest = self.blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                         "config": config, "layers": descs}).encode())
        manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
        top = manifest
        if via_index:
            entry = dict(manifest, platform={"architecture": "amd64", "os": "linux"})
            other = dict(manifest, digest="sha256:" + "0" * 64, platform={"architecture": "arm64", "os": "linux"})
            top = self.blob(json.dumps({"schemaVersion": 2, "manifests": [other, entry]}).encode())
            top["mediaType"] = "application/vnd.oci.image.index.v1+json"
        top["annotations"] = {"org.opencontainers.image.ref.name": tag}
        index_path = f"{self.path}/index.json"
        index = {"schemaVersion": 2, "manifests": []}
        if os.path.exists(index_path):
            with open(index_path) as f:
                index = json.load(f)
        index["manifests"].append(top)
        with open(index_path, "w") as f:
            json.dump(index, f)
        return manifest["digest"], (top["digest"] if via_index else "")


def base_layers():
    """Two layers: the second whites out a file of the first, makes /etc opaque, adds a file
    with a capability and a hard link."""
    d = tarfile.DIRTYPE
    lower = [member("usr", kind=d, mode=0o755), member("usr/bin", kind=d, mode=0o755),
             member("usr/bin/tool", data=b"tool v1\n", mode=0o755),
             member("usr/bin/gone", data=b"removed by the next layer\n", mode=0o755),
             member("etc", kind=d, mode=0o755), member("etc/old.conf", data=b"hidden by opaque\n")]
    upper = [member("usr/bin/.wh.gone", data=b""), member("etc", kind=d, mode=0o755),
             member("etc/.wh..wh..opq", data=b""), member("etc/new.conf", data=b"only this\n"),
             member("usr/bin/ping", data=b"ping\n", mode=0o4755, xattrs={"security.capability": CAP_NET_RAW}),
             member("usr/bin/ping-link", kind=tarfile.LNKTYPE, link="usr/bin/ping", mode=0o4755),
             member("usr/bin/sh", kind=tarfile.SYMTYPE, link="/bin/busybox")]
    return [lower, upper]


class Ctx:
    def __init__(self, fimctl, tmp):
        self.fimctl, self.tmp = fimctl, tmp
        self.policy = f"{tmp}/policy.toml"
        with open(self.policy, "w") as f:
            f.write(POLICY)
        # "ci": where the image and its baseline are built; "node": where it is imported.
        for side in ("ci", "node"):
            os.makedirs(f"{tmp}/{side}", mode=0o700)
            os.makedirs(f"{tmp}/{side}/keys", mode=0o700)
        self.layout = Layout(f"{tmp}/layout")

    def fim(self, side, *args, keys=None, timeout=120):
        os.makedirs(f"{self.tmp}/{side}", mode=0o700, exist_ok=True)
        argv = [self.fimctl, "-c", self.policy, "--db", f"{self.tmp}/{side}/baseline.db",
                "--keys", keys or f"{self.tmp}/{side}/keys", *args]
        return run(argv, timeout=timeout)

    def keygen(self, keys):
        os.makedirs(keys, mode=0o700, exist_ok=True)
        r = run([self.fimctl, "--keys", keys, "key", "generate"])
        expect(r.rc == 0, f"key generate: {r.stderr}")

    def trust(self, keys, name):
        """Installs the public half of `keys` as the node's image-signing key NAME.pub."""
        os.makedirs(f"{self.tmp}/node/keys/images", mode=0o755, exist_ok=True)
        shutil.copy(f"{keys}/signing.pub", f"{self.tmp}/node/keys/images/{name}.pub")
        os.chmod(f"{self.tmp}/node/keys/images/{name}.pub", 0o644)

    def build(self, ref, *extra):
        r = self.fim("ci", "init", "--image", ref, *extra)
        expect(r.rc == 0, f"init --image {ref}: exit {r.rc}: {r.stderr}{r.stdout}")
        return r


def rows(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        cols = [c[1] for c in con.execute("PRAGMA table_info(entries)")]
        return {bytes(r[0]).decode(): dict(zip(cols, r)) for r in con.execute("SELECT * FROM entries")}
    finally:
        con.close()


def meta(db):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in con.execute("SELECT key, value FROM meta")}
    finally:
        con.close()


def image_db(ctx, side, digest):
    return f"{ctx.tmp}/{side}/images/sha256-{digest.split(':')[1]}.db"


def case_image_baseline_applies_whiteouts_and_is_keyed_by_manifest(ctx):
    ctx.keygen(f"{ctx.tmp}/ci/keys")
    digest, _ = ctx.layout.image(base_layers())
    ctx.build(f"oci:{ctx.layout.path}:1")
    db = image_db(ctx, "ci", digest)
    expect(os.path.exists(db), f"no baseline named for the manifest digest {digest}: {os.listdir(ctx.tmp + '/ci/images')}")
    r = rows(db)
    paths = set(r)
    expect("/usr/bin/tool" in paths and "/usr/bin/ping" in paths, f"layer files missing: {sorted(paths)}")
    expect("/usr/bin/gone" not in paths, "a file whited out by the upper layer is in the baseline")
    expect("/etc/old.conf" not in paths and "/etc/new.conf" in paths, f"opaque /etc not applied: {sorted(paths)}")
    ping = r["/usr/bin/ping"]
    expect(ping["caps"] is not None and bytes(ping["caps"]) == CAP_NET_RAW, f"capability not recorded: {ping['caps']!r}")
    expect(ping["mode"] & 0o7777 == 0o4755, f"set-uid bit lost: {oct(ping['mode'])}")
    expect(ping["nlink"] == 2, f"hard link not kept: nlink {ping['nlink']}")
    expect(bytes(r["/usr/bin/sh"]["link"]) == b"/bin/busybox", "symlink target not recorded")
    for attr in ("inode", "ctime", "dev", "btime", "handle"):
        expect(r["/usr/bin/tool"].get(attr) is None, f"{attr} recorded for an image (it belongs to where it is unpacked)")
    for attr in ("mtime", "nlink"):  # a directory's: the runtime's unpacking and overlay decide them
        expect(r["/usr/bin"].get(attr) is None, f"directory {attr} recorded for an image")
    expect(r["/usr/bin/tool"].get("mtime") is not None, "a file's mtime (the layer's) not recorded")
    m = meta(db)
    expect(m.get("source") == "image" and m.get("image_digest") == digest, f"manifest does not name the image: {m}")
    expect(not [n for n in os.listdir(f"{ctx.tmp}/ci/images") if n.startswith(".image-")], "scratch left behind")


def case_image_through_an_index_records_both_digests(ctx):
    digest, index = ctx.layout.image(base_layers(), tag="multi", gzipped=False, via_index=True)
    ctx.build(f"oci:{ctx.layout.path}:multi", "--unsigned")
    m = meta(image_db(ctx, "ci", digest))
    expect(m.get("image_digest") == digest and m.get("image_index_digest") == index, f"digests: {m}")


def case_layer_escaping_with_dotdot_refused(ctx):
    outside = f"{ctx.tmp}/escaped"
    evil = [member("usr", kind=tarfile.DIRTYPE, mode=0o755), member("../../../../" + outside.lstrip("/"), data=b"x")]
    ctx.layout.image([evil])
    r = ctx.fim("ci", "init", "--image", f"oci:{ctx.layout.path}", "--unsigned")
    expect(r.rc == 18 and "outside the layer" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(not os.path.exists(outside), "a layer wrote outside its directory")
    expect(not os.path.exists(f"{ctx.tmp}/ci/images") or
           not [n for n in os.listdir(f"{ctx.tmp}/ci/images") if n.endswith(".db")], "a partial baseline was written")


def case_layer_escaping_through_a_symlink_refused(ctx):
    outside = f"{ctx.tmp}/outside"
    os.makedirs(outside)
    evil = [member("etc", kind=tarfile.SYMTYPE, link=outside), member("etc/cron.d", data=b"* * * * * root evil\n")]
    ctx.layout.image([evil])
    r = ctx.fim("ci", "init", "--image", f"oci:{ctx.layout.path}", "--unsigned")
    expect(r.rc != 0 and "symlink" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(os.listdir(outside) == [], "a layer wrote through a symlink out of its directory")


def case_layer_hard_link_to_a_host_file_refused(ctx):
    """A hard link naming a file outside the layer (the host's /etc/shadow through ..) is
    refused, and the file's link count is untouched."""
    before = os.stat("/etc/shadow").st_nlink
    evil = [member("etc", kind=tarfile.DIRTYPE, mode=0o755),
            member("etc/shadow-copy", kind=tarfile.LNKTYPE, link="../../../../../../etc/shadow")]
    ctx.layout.image([evil])
    r = ctx.fim("ci", "init", "--image", f"oci:{ctx.layout.path}", "--unsigned")
    expect(r.rc == 18 and "outside the layer" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(os.stat("/etc/shadow").st_nlink == before, "a layer hard-linked a host file")


def case_altered_layer_refused(ctx):
    digest, _ = ctx.layout.image(base_layers(), gzipped=False)
    blobs = f"{ctx.layout.path}/blobs/sha256"
    biggest = max(os.listdir(blobs), key=lambda n: os.path.getsize(f"{blobs}/{n}"))
    with open(f"{blobs}/{biggest}", "r+b") as f:
        f.seek(600)
        f.write(b"EVIL")
    r = ctx.fim("ci", "init", "--image", f"oci:{ctx.layout.path}", "--unsigned")
    expect(r.rc == 18 and "does not match its digest" in r.stderr, f"exit {r.rc}: {r.stderr}")


def shipped(ctx, key_name="ci"):
    """Builds the image's baseline in CI with CI's key, exports it; returns (digest, file)."""
    ctx.keygen(f"{ctx.tmp}/ci/keys")
    digest, _ = ctx.layout.image(base_layers())
    ctx.build(f"oci:{ctx.layout.path}:1")
    out = f"{ctx.tmp}/shipped.fimctl-baseline"
    r = ctx.fim("ci", "export-image-baseline", f"oci:{ctx.layout.path}:1", "-o", out)
    expect(r.rc == 0 and os.path.exists(out), f"export: exit {r.rc}: {r.stderr}")
    return digest, out


def case_import_verifies_against_trusted_image_key(ctx):
    digest, out = shipped(ctx)
    ctx.keygen(f"{ctx.tmp}/node/keys")
    ctx.trust(f"{ctx.tmp}/ci/keys", "ci")
    r = ctx.fim("node", "import-image-baseline", out)
    expect(r.rc == 0, f"import: exit {r.rc}: {r.stderr}")
    node_db = image_db(ctx, "node", digest)
    expect(os.path.exists(node_db), "not installed under its manifest digest")
    r = ctx.fim("node", "import-image-baseline", out)
    expect(r.rc == 0 and "already" in r.stdout, f"second import: exit {r.rc}: {r.stdout}{r.stderr}")


def case_import_signed_by_untrusted_key_refused(ctx):
    digest, out = shipped(ctx)
    ctx.keygen(f"{ctx.tmp}/other")
    ctx.trust(f"{ctx.tmp}/other", "other")  # a trusted key, but not the one that signed it
    r = ctx.fim("node", "import-image-baseline", out)
    expect(r.rc == 18 and "not a trusted image-signing key" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(not os.path.exists(image_db(ctx, "node", digest)), "installed although refused")


def case_import_with_key_file_others_can_write_refused(ctx):
    digest, out = shipped(ctx)
    ctx.trust(f"{ctx.tmp}/ci/keys", "ci")
    os.chmod(f"{ctx.tmp}/node/keys/images/ci.pub", 0o666)
    r = ctx.fim("node", "import-image-baseline", out)
    expect(r.rc == 18 and "ci.pub" in r.stderr, f"exit {r.rc}: {r.stderr}")
    expect(not os.path.exists(image_db(ctx, "node", digest)), "installed although refused")


def case_import_of_tampered_row_refused(ctx):
    digest, out = shipped(ctx)
    ctx.trust(f"{ctx.tmp}/ci/keys", "ci")
    con = sqlite3.connect(out)
    con.execute("UPDATE entries SET mode = mode | 2048 WHERE path = CAST('/usr/bin/tool' AS BLOB)")
    con.commit()
    con.close()
    r = ctx.fim("node", "import-image-baseline", out)
    expect(r.rc == 18, f"a tampered row was imported: exit {r.rc}: {r.stderr}")
    expect(not os.path.exists(image_db(ctx, "node", digest)), "installed although refused")


def case_import_signed_by_another_key_than_pinned_refused(ctx):
    digest, out = shipped(ctx)
    ctx.trust(f"{ctx.tmp}/ci/keys", "ci")
    expect(ctx.fim("node", "import-image-baseline", out).rc == 0, "first import failed")
    # A second trusted key signs a baseline of the same image: not taken without --force.
    other = f"{ctx.tmp}/other"
    ctx.keygen(other)
    ctx.trust(other, "other")
    r = ctx.fim("ci2", "init", "--image", f"oci:{ctx.layout.path}:1", keys=other)
    expect(r.rc == 0, f"init --image with the other key: {r.stderr}")
    r = ctx.fim("ci2", "export-image-baseline", digest, "-o", f"{ctx.tmp}/other.fimctl-baseline", keys=other)
    expect(r.rc == 0, f"export with the other key: {r.stderr}")
    r = ctx.fim("node", "import-image-baseline", f"{ctx.tmp}/other.fimctl-baseline")
    expect(r.rc == 18 and "pinned to key" in r.stderr, f"exit {r.rc}: {r.stderr}")
    r = ctx.fim("node", "import-image-baseline", f"{ctx.tmp}/other.fimctl-baseline", "--force")
    expect(r.rc == 0, f"--force: exit {r.rc}: {r.stderr}")


def case_import_rollback_refused(ctx):
    digest, old = shipped(ctx)
    ctx.trust(f"{ctx.tmp}/ci/keys", "ci")
    shutil.copy(old, f"{ctx.tmp}/old.fimctl-baseline")
    ctx.build(f"oci:{ctx.layout.path}:1", "--force")  # sequence 2
    new = f"{ctx.tmp}/new.fimctl-baseline"
    expect(ctx.fim("ci", "export-image-baseline", digest, "-o", new).rc == 0, "export of sequence 2")
    expect(ctx.fim("node", "import-image-baseline", new).rc == 0, "import of sequence 2")
    r = ctx.fim("node", "import-image-baseline", f"{ctx.tmp}/old.fimctl-baseline")
    expect(r.rc == 18 and "rolled-back" in r.stderr, f"an older image baseline was imported: exit {r.rc}: {r.stderr}")


def case_baseline_renamed_to_another_image_refused(ctx):
    ctx.keygen(f"{ctx.tmp}/ci/keys")
    digest, _ = ctx.layout.image(base_layers())
    ctx.build(f"oci:{ctx.layout.path}:1")
    other = "sha256:" + "ab" * 32
    shutil.copy(image_db(ctx, "ci", digest), image_db(ctx, "ci", other))
    r = ctx.fim("ci", "export-image-baseline", other, "-o", f"{ctx.tmp}/x")
    expect(r.rc == 18 and "built from" in r.stderr, f"a baseline named for another image was used: exit {r.rc}: {r.stderr}")


def case_image_baseline_never_taken_as_the_hosts(ctx):
    ctx.keygen(f"{ctx.tmp}/ci/keys")
    digest, _ = ctx.layout.image(base_layers())
    ctx.build(f"oci:{ctx.layout.path}:1")
    shutil.copy(image_db(ctx, "ci", digest), f"{ctx.tmp}/ci/baseline.db")
    r = ctx.fim("ci", "check")
    expect(r.rc == 18 and "baseline of an image" in r.stderr, f"exit {r.rc}: {r.stderr}")


def case_unknown_reference_is_a_usage_error(ctx):
    r = ctx.fim("ci", "init", "--image", "docker://debian:12", "--unsigned")
    expect(r.rc == 16 and "oci:DIR" in r.stderr, f"exit {r.rc}: {r.stderr}")
    r = ctx.fim("ci", "init", "--image", f"oci:{ctx.tmp}/nothing", "--unsigned")
    expect(r.rc == 16 and "not an OCI image layout" in r.stderr, f"exit {r.rc}: {r.stderr}")


CASES = {name[5:]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-image-", lambda a, fimctl, tmp: Ctx(fimctl, tmp), as_root=True, doc=__doc__))
