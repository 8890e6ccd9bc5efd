# Shared by scripts/test, scripts/quickstart and scripts/bench. Sourced, not run.
# shellcheck shell=bash

# Debian 12 packages the build and the test suites use. Trim an entry only when nothing
# uses it; add one only with the reason in README.md (Dependencies).
# clang, bpftool and libbpf-dev (+ libelf-dev, zlib1g-dev for its static link) build the
# BPF LSM sensors (bpf/); without them fimctl builds without the sensors.
FIM_BUILD_PACKAGES=(
  meson ninja-build pkg-config g++ python3
  libsqlite3-dev libssl-dev libxxhash-dev libcli11-dev doctest-dev libtomlplusplus-dev
  nlohmann-json3-dev
  clang libbpf-dev bpftool libelf-dev zlib1g-dev
)
# nlohmann-json3-dev: header-only JSON parser, the one JSON reader (fimctl status reads the
# daemon's status document with it; src/report/json_reader.cpp is its only user).
# Tools the tests drive: setfacl/getfacl (acl), setfattr (attr), setcap (libcap2-bin),
# setpriv (util-linux) to drop root in tests of what other users may do.
# clang and its runtimes build the libFuzzer targets (tests/fuzz).
# systemd: systemd-analyze verifies the units in share/systemd, and systemd itself runs the
# check unit in private namespaces to test its hardening (tests/cli/install_test.py; unshare
# is in util-linux).
# fuse3 + libfuse3-dev: tests/root/hangfs.c, a FUSE filesystem whose read never returns
# (the read_timeout test; e2fsprogs' mkfs.ext4 makes the loop image of the watch tests).
# busybox-static: the image of the namespaced containers the root tests build (no Docker).
# podman, runc: the real container runtime of the root suite (tests/root/podman_test.py), on
# an image imported from a busybox tree; runc because crun refuses this hosts' hybrid cgroups.
# containerd: a real containerd (Debian's 1.6) on a private root and socket names its container by
# the manifest digest it keeps in its bolt metadata (tests/root/containerd_test.py; ctr comes with it).
# prometheus: promtool checks the scheduled check's node-exporter textfile (tests/cli/scheduled_test.py).
# zsh, fish: the generated zsh and fish completion scripts are loaded and run in the real
# shells (tests/cli/completion_test.py).
# python3-yaml: the manifests of share/k8s are parsed and checked (tests/cli/k8s_test.py).
# debootstrap, gpg: the package tests build a Debian root, sign an apt
# repository of their own and upgrade a package in it (tests/root/package_test.py); gpgv and
# apt-helper, which check --packages runs, come with apt itself.
FIM_TEST_PACKAGES=(acl attr libcap2-bin util-linux clang libclang-rt-14-dev systemd fuse3 libfuse3-dev e2fsprogs
                   busybox-static debootstrap gpg python3-yaml podman runc containerd prometheus zsh fish)

# The Debian package (debian/; scripts/quickstart and scripts/test build it): debhelper runs
# the build (dh with the meson build system), dpkg-dev has dpkg-buildpackage, fakeroot is not
# needed (Rules-Requires-Root: no). lintian checks the package (scripts/test only).
FIM_DEB_PACKAGES=(debhelper dpkg-dev)
FIM_DEB_TEST_PACKAGES=(lintian)

# The vm suite (tests/vm/run-vm.sh): qemu boots Debian's kernels (TCG), cpio + busybox-static
# make the initramfs, xz-utils unpacks 6.12's modules, e2fsprogs the ext4 image.
FIM_VM_PACKAGES=(qemu-system-x86 cpio busybox-static xz-utils e2fsprogs)

# Installs whatever of "$@" is missing, with one apt-get update first when needed.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
    return 1
  fi
  echo "installing: ${missing[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# build_deb DIR: builds the binary packages from a copy of the source tree in DIR/src, so
# that dpkg-buildpackage's outputs (obj-*, debian/fimctl, and the .debs it writes to the
# parent directory) stay out of the tree: the .debs, .changes and .buildinfo land in DIR.
# Prints the path of fimctl_VERSION_ARCH.deb. Extra environment (DEB_BUILD_OPTIONS) passes on.
build_deb() {
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir/src"
  tar --exclude='./build*' --exclude=./.git --exclude='./obj-*' --exclude=./debian/.debhelper \
      --exclude=./debian/fimctl --exclude=./debian/fimctl-dbgsym --exclude=./debian/tmp -cf - . |
    tar -xf - -C "$dir/src"
  (cd "$dir/src" && dpkg-buildpackage -b -uc -us) >&2
  local version
  version=$(dpkg-parsechangelog -l debian/changelog -S Version)
  echo "$dir/fimctl_${version}_$(dpkg --print-architecture).deb"
}

# meson setup DIR [OPTIONS...], once; later runs just rebuild.
setup_build() {
  local dir=$1
  shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --wrap-mode=nodownload "$@" >&2
  fi
  ninja -C "$dir" >&2
}
