#!/usr/bin/env python3
"""Which apt signatures fimctl believes (issue 19, items 1-2), in a debootstrap root.

Each case copies the cached minbase root of package_test.py, serves the test's signed
repository over http on 127.0.0.1, configures apt's trust the way an administrator would
(one-line sources.list, trusted.gpg.d/*.asc, Signed-By files, inline keys, detached
Release.gpg), takes a baseline, installs fimtest 1.0 through apt and asks check --packages
what vouches for /usr/bin/fimtest-tool: deb-sha256 when the Release that lists its .deb
verifies as apt would verify it, else dpkg-md5 with the reason.

The refusal cases play the attack after apt has installed the package with a good
configuration: the Release in /var/lib/apt/lists is replaced by one signed by an expired,
revoked or unbound key, or with a SHA-1 digest (gpgv exits 0 for all of them but the
unbound key), or the source is one apt does not verify (trusted=yes).

Usage: apt_trust_test.py --fimctl PATH (--list | CASE); exit 0 pass, 1 fail, 77 skip.
"""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import package_test as pt  # noqa: E402
from fimtest import run_main  # noqa: E402

TOOL = "/usr/bin/fimtest-tool"


class Key:
    """A signing key in a gnupg home of its own; `when` fakes gpg's clock (key creation and
    signatures made in the past)."""

    def __init__(self, tmp, name, expire="never", when=None):
        self.home = os.path.join(tmp, "gpg-" + name)
        os.makedirs(self.home, mode=0o700)
        self.when = when
        self.gpg("--quick-generate-key", f"{name} <{name}@example.org>", "ed25519", "sign", expire)
        self.fpr = next(line.split(":")[9] for line in self.gpg("--list-keys", "--with-colons").splitlines()
                        if line.startswith("fpr:"))

    def gpg(self, *args):
        cmd = ["gpg", "--batch", "--homedir", self.home, "--pinentry-mode", "loopback", "--passphrase", ""]
        if self.when:
            cmd += ["--faked-system-time", self.when]
        return pt.sh(*cmd, *args).stdout

    def export(self, armour):
        cmd = ["gpg", "--batch", "--homedir", self.home, "--export"] + (["--armor"] if armour else [])
        return subprocess.run(cmd, capture_output=True, check=True).stdout

    def revoke(self):
        rev = open(os.path.join(self.home, "openpgp-revocs.d", self.fpr + ".rev")).read()
        path = os.path.join(self.home, "rev.asc")
        open(path, "w").write(rev.replace(":-----BEGIN", "-----BEGIN"))
        self.gpg("--import", path)

    def clearsign(self, src, dst, *opts):
        if os.path.exists(dst):
            os.unlink(dst)
        self.gpg(*opts, "--clearsign", "-o", dst, src)

    def detach(self, src, dst, *opts):
        if os.path.exists(dst):
            os.unlink(dst)
        self.gpg(*opts, "--detach-sign", "-o", dst, src)


class TrustRoot(pt.Root):
    """package_test's Root with apt's trust set up by `configure(root_dir, port)` instead of
    its deb822 source and Signed-By keyring."""

    def __init__(self, fimctl, tmp, repo, configure):
        self.dir = os.path.join(tmp, "root")
        self.signed = False  # Root.fimctl: an unsigned baseline
        pt.sh("cp", "-a", pt.debroot(fimctl), self.dir)
        r = self.dir
        shutil.copy(fimctl, r + "/usr/sbin/fimctl")
        for d in ("/etc/apt/keyrings", "/var/lib/fimctl"):
            os.makedirs(r + d, exist_ok=True)
        os.chmod(r + "/var/lib/fimctl", 0o700)
        open(r + "/etc/apt/sources.list", "w").write("")
        configure(r, repo.port)
        pt.sh("mount", "-t", "proc", "proc", r + "/proc")
        self.run("apt-get", "update")

    def lists(self, suffix):
        got = glob.glob(self.dir + "/var/lib/apt/lists/*_dists_fimtest_" + suffix)
        assert len(got) == 1, (suffix, os.listdir(self.dir + "/var/lib/apt/lists"))
        return got[0]


def prepare(fimctl, tmp, configure, detached=False):
    """The repository (signed by its own key, `repo.key`), a root configured by `configure`,
    a baseline of /usr/bin and fimtest 1.0 installed by apt after it."""
    deb = pt.build_deb(tmp, "1.0", pt.V1, ["/etc/fimtest.conf"])
    repo = pt.Repo(tmp, [deb])
    repo.key = Key.__new__(Key)
    repo.key.home, repo.key.when = repo.gnupg, None
    repo.key.fpr = next(line.split(":")[9] for line in repo.key.gpg("--list-keys", "--with-colons").splitlines()
                        if line.startswith("fpr:"))
    repo.release = os.path.join(repo.dir, "dists", "fimtest", "Release")
    if detached:  # only Release + Release.gpg, as some archives publish
        os.unlink(os.path.join(repo.dir, "dists", "fimtest", "InRelease"))
        repo.key.detach(repo.release, repo.release + ".gpg", "--armor")  # apt takes only armoured ones
    root = TrustRoot(fimctl, tmp, repo, lambda r, port: configure(r, port, repo))
    rc, doc, err = root.fimctl("init", "/usr/bin")
    assert rc == 0, (rc, err)
    root.install("1.0")
    return repo, root


def tool_note(root):
    rc, doc, err = root.fimctl("check", "--packages")
    assert doc is not None, (rc, err)
    ch = pt.by_path(doc)
    assert TOOL in ch, (list(ch), err)
    return ch[TOOL]["package"]


def assert_strong(root):
    n = tool_note(root)
    assert n["verdict"] == "verified" and n["evidence"] == "deb-sha256", n
    return n


def assert_refused(root, *reasons):
    n = tool_note(root)
    assert n["verdict"] == "verified" and n["evidence"] == "dpkg-md5", n
    for r in reasons:
        assert r in n["detail"], (r, n["detail"])
    return n


def one_line(r, port, opts=""):
    open(r + "/etc/apt/sources.list", "w").write(
        f"# a host from the Debian installer\ndeb {opts}http://127.0.0.1:{port}/ fimtest main # the test's\n")


def key_file(r, path, key, armour):
    with open(r + path, "wb") as f:
        f.write(key.export(armour))


def case_classic_asc_keyring_one_line_sources_gives_deb_sha256(fimctl, tmp):
    """One-line sources.list without signed-by, the key in trusted.gpg.d/*.asc (bookworm's
    debian-archive-keyring layout): the default keyrings verify it."""
    def configure(r, port, repo):
        one_line(r, port)
        key_file(r, "/etc/apt/trusted.gpg.d/fimtest.asc", repo.key, True)
    repo, root = prepare(fimctl, tmp, configure)
    assert_strong(root)


def case_release_gpg_detached_verified(fimctl, tmp):
    """An archive with Release + Release.gpg and no InRelease: the detached signature is
    verified over the very bytes parsed."""
    def configure(r, port, repo):
        open(r + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
            f"Types: deb\nURIs: http://127.0.0.1:{port}/\nSuites: fimtest\nComponents: main\n"
            "Signed-By: /etc/apt/keyrings/fimtest.gpg\n")
        key_file(r, "/etc/apt/keyrings/fimtest.gpg", repo.key, False)
    repo, root = prepare(fimctl, tmp, configure, detached=True)
    assert not glob.glob(root.dir + "/var/lib/apt/lists/*InRelease")
    assert_strong(root)
    # A Release edited after apt fetched it no longer matches its detached signature.
    rel = root.lists("Release")
    open(rel, "a").write("Comment: edited\n")
    assert_refused(root, "bad signature")


def swap_release(root, repo, key, *opts):
    """The lists' InRelease replaced by the same Release text signed by `key`."""
    key.clearsign(repo.release, root.lists("InRelease"), *opts)


def default_keys_with(extra):
    """One-line source, the repository's key and `extra` (a Key) in trusted.gpg.d."""
    def configure(r, port, repo):
        one_line(r, port)
        key_file(r, "/etc/apt/trusted.gpg.d/fimtest.gpg", repo.key, False)
        key_file(r, "/etc/apt/trusted.gpg.d/other.gpg", extra, False)
    return configure


def case_expired_key_refused(fimctl, tmp):
    """A Release signed by a key that has expired (gpgv says EXPKEYSIG and exits 0)."""
    old = Key(tmp, "expired", expire="1y", when="20200101T000000")
    repo, root = prepare(fimctl, tmp, default_keys_with(old))
    assert_strong(root)
    swap_release(root, repo, old)
    assert_refused(root, "expired key")


def case_revoked_key_refused(fimctl, tmp):
    """A Release signed by a key revoked since (gpgv says REVKEYSIG and exits 0)."""
    k = Key(tmp, "revoked")
    repo, root = prepare(fimctl, tmp, default_keys_with(k))
    swap_release(root, repo, k)  # signed while the key was good, then revoked
    k.revoke()
    key_file(root.dir, "/etc/apt/trusted.gpg.d/other.gpg", k, False)
    assert_refused(root, "revoked key")


def case_signed_by_binds_key_to_its_source(fimctl, tmp):
    """The repository's key X is in trusted.gpg.d, but its source says Signed-By key Y: apt
    verifies it with Y only and refuses it; so does fimctl."""
    other = Key(tmp, "other")

    def configure(r, port, repo):
        open(r + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
            f"Types: deb\nURIs: http://127.0.0.1:{port}/\nSuites: fimtest\nComponents: main\n"
            "Signed-By: /etc/apt/keyrings/fimtest.gpg\n")
        key_file(r, "/etc/apt/keyrings/fimtest.gpg", repo.key, False)
    repo, root = prepare(fimctl, tmp, configure)
    assert_strong(root)
    key_file(root.dir, "/etc/apt/trusted.gpg.d/fimtest.gpg", repo.key, False)
    key_file(root.dir, "/etc/apt/keyrings/fimtest.gpg", other, False)
    assert_refused(root, "unknown key", "Signed-By /etc/apt/keyrings/fimtest.gpg")
    # Signed-By by fingerprint: the default keyrings, but only that key counts.
    open(root.dir + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
        f"Types: deb\nURIs: http://127.0.0.1:{repo.port}/\nSuites: fimtest\nComponents: main\n"
        f"Signed-By: {other.fpr}\n")
    assert_refused(root, "which its Signed-By fingerprints do not name")
    open(root.dir + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
        f"Types: deb\nURIs: http://127.0.0.1:{repo.port}/\nSuites: fimtest\nComponents: main\n"
        f"Signed-By: {repo.key.fpr.lower()}\n")
    assert_strong(root)
    # A lists file no configured source explains is not trusted, whatever signs it.
    os.unlink(root.dir + "/etc/apt/sources.list.d/fimtest.sources")
    assert_refused(root, "no configured apt source")


def case_inline_signed_by_key_block(fimctl, tmp):
    """deb822 Signed-By with the armoured key inline (" ." for its empty line)."""
    def configure(r, port, repo):
        block = repo.key.export(True).decode().strip().split("\n")
        inline = "".join(" " + (line if line else ".") + "\n" for line in block)
        open(r + "/etc/apt/sources.list.d/fimtest.sources", "w").write(
            f"# the key inline\nTypes: deb\nURIs: http://127.0.0.1:{port}/\nSuites: fimtest\nComponents: main\n"
            "Signed-By:\n" + inline)
    repo, root = prepare(fimctl, tmp, configure)
    assert_strong(root)


def case_sha1_signature_refused(fimctl, tmp):
    """A Release signed with a SHA-1 digest by the right key (gpgv exits 0; apt refuses)."""
    def configure(r, port, repo):
        one_line(r, port, "[signed-by=/etc/apt/keyrings/fimtest.gpg] ")
        key_file(r, "/etc/apt/keyrings/fimtest.gpg", repo.key, False)
    repo, root = prepare(fimctl, tmp, configure)
    assert_strong(root)
    swap_release(root, repo, repo.key, "--digest-algo", "SHA1")
    assert_refused(root, "weak digest algorithm SHA1")


def case_trusted_yes_not_trusted(fimctl, tmp):
    """[trusted=yes]: apt installs from it without verifying anything, so its signature, even
    by a key of trusted.gpg.d, is not evidence."""
    def configure(r, port, repo):
        one_line(r, port, "[trusted=yes] ")
        key_file(r, "/etc/apt/trusted.gpg.d/fimtest.gpg", repo.key, False)
    repo, root = prepare(fimctl, tmp, configure)
    assert_refused(root, "trusted=yes")


CASES = {
    "classic_asc_keyring_one_line_sources_gives_deb_sha256": case_classic_asc_keyring_one_line_sources_gives_deb_sha256,
    "release_gpg_detached_verified": case_release_gpg_detached_verified,
    "expired_key_refused": case_expired_key_refused,
    "revoked_key_refused": case_revoked_key_refused,
    "signed_by_binds_key_to_its_source": case_signed_by_binds_key_to_its_source,
    "inline_signed_by_key_block": case_inline_signed_by_key_block,
    "sha1_signature_refused": case_sha1_signature_refused,
    "trusted_yes_not_trusted": case_trusted_yes_not_trusted,
}

if __name__ == "__main__":
    sys.exit(run_main(CASES, "fimctl-apt-trust.", as_root=True, doc=__doc__))
