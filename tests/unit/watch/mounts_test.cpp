// SPDX-License-Identifier: GPL-2.0-or-later
// The watch daemon's mount table (src/daemon/mounts.h): mountinfo as the kernel writes it
// (fs/proc_namespace.c: octal escapes, optional fields, the " - " separator), the snapshot
// diff and which roots a mount point concerns.
#include <doctest/doctest.h>

#include "daemon/mounts.h"

using namespace fim;
using namespace fim::watchd;

namespace {

// A Debian 12 host's table, shortened, with a tmpfs mounted over /srv/w/etc/ssh.
const char* const kBefore =
    "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw,errors=remount-ro\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "61 22 0:5 / /dev rw,nosuid,relatime shared:2 master:9 - devtmpfs udev rw,size=4008220k,mode=755\n";

std::vector<MountEntry> parse(const std::string& text) {
  auto m = parse_mountinfo_strict(text);
  REQUIRE(m);
  return *m;
}

}  // namespace

TEST_CASE("mountinfo: every field, optional fields of any number") {
  const auto m = parse(kBefore);
  REQUIRE(m.size() == 4);
  CHECK(m[0].mount_id == 22);
  CHECK(m[0].parent_id == 1);
  CHECK(m[0].device == "254:1");
  CHECK(m[0].root == "/");
  CHECK(m[0].mount_point == "/");
  CHECK(m[0].options == "rw,relatime");
  CHECK(m[0].tags == std::vector<std::string>{"shared:1"});
  CHECK(m[0].fstype == "ext4");
  CHECK(m[0].source == "/dev/vda1");
  CHECK(m[0].super_options == "rw,errors=remount-ro");
  CHECK(m[3].tags == std::vector<std::string>{"shared:2", "master:9"});
  CHECK(m[3].source == "udev");
  // No optional field at all (a private mount).
  const auto p = parse("90 22 0:50 / /srv/w/etc/ssh rw,relatime - tmpfs none rw,size=1024k\n");
  REQUIRE(p.size() == 1);
  CHECK(p[0].tags.empty());
  CHECK(p[0].mount_point == "/srv/w/etc/ssh");
  CHECK(p[0].fstype == "tmpfs");
  CHECK(p[0].source == "none");
}

TEST_CASE("mountinfo: escaped paths, a bind of a file, an empty source") {
  // Space, tab, newline and backslash come as \040 \011 \012 \134; a lone backslash or one
  // followed by fewer than three octal digits is kept as it is.
  const auto m = parse(
      "91 22 254:1 /tmp/evil /srv/w/etc/a\\040b\\011c\\012d\\134e rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
      "92 22 0:51 / /srv/x\\04 rw - tmpfs  rw\n"
      "93 22 0:52 / /srv/\\777 rw - tmpfs my\\040source rw\n");
  REQUIRE(m.size() == 3);
  CHECK(m[0].root == "/tmp/evil");
  CHECK(m[0].mount_point == Bytes("/srv/w/etc/a b\tc\nd\\e"));
  CHECK(m[1].mount_point == "/srv/x\\04");
  CHECK(m[1].source.empty());
  CHECK(m[1].super_options == "rw");
  CHECK(m[2].mount_point == "/srv/\\777");  // not a byte: kept
  CHECK(m[2].source == "my source");
}

TEST_CASE("mountinfo: a line that is not a mount is an error; blank lines and a missing last newline are not") {
  CHECK(parse("22 1 254:1 / / rw - ext4 /dev/vda1 rw").size() == 1);
  CHECK(parse("\n22 1 254:1 / / rw - ext4 /dev/vda1 rw\n\n").size() == 1);
  CHECK(parse("").empty());
  for (const char* bad : {"22 1 254:1 / / rw ext4 /dev/vda1 rw\n",          // no separator
                          "22 1 254:1 / / rw - ext4 /dev/vda1\n",            // no super options
                          "22 1 254:1 / / rw - ext4 /dev/vda1 rw extra\n",   // one field too many
                          "x 1 254:1 / / rw - ext4 /dev/vda1 rw\n",          // no id
                          "22 1 254:1 / relative rw - ext4 /dev/vda1 rw\n",  // not absolute
                          "22 1 254:1 / / rw - ext4 /dev/vda1 rw - x\n"}) {  // two separators
    CAPTURE(bad);
    CHECK_FALSE(parse_mountinfo_strict(bad));
  }
}

TEST_CASE("mount diff: attached and detached by mount id, remounts and moves as both") {
  const auto before = parse(kBefore);
  auto after = before;
  CHECK(diff_mounts(before, after).empty());

  // Propagation changes (mount --make-private) are not a change.
  after[1].tags.clear();
  CHECK(diff_mounts(before, after).empty());

  auto tmpfs = parse("90 22 0:50 / /srv/w/etc/ssh rw,relatime - tmpfs none rw\n")[0];
  after.push_back(tmpfs);
  auto d = diff_mounts(before, after);
  REQUIRE(d.attached.size() == 1);
  CHECK(d.detached.empty());
  CHECK(d.attached[0].mount_id == 90);

  // Unmounted: detached, whatever its position in the table.
  d = diff_mounts(after, before);
  REQUIRE(d.detached.size() == 1);
  CHECK(d.detached[0].mount_point == "/srv/w/etc/ssh");
  CHECK(d.attached.empty());

  // Remounted read-only, moved, or its id reused by another mount: detached, then attached.
  for (auto change : {+[](MountEntry& m) { m.options = "ro,relatime"; }, +[](MountEntry& m) { m.mount_point = "/srv/other"; },
                      +[](MountEntry& m) { m.source = "/dev/vdb1"; }, +[](MountEntry& m) { m.super_options = "ro"; }}) {
    auto again = after;
    change(again.back());
    d = diff_mounts(after, again);
    REQUIRE(d.detached.size() == 1);
    REQUIRE(d.attached.size() == 1);
    CHECK(d.detached[0].same(after.back()));
    CHECK(d.attached[0].same(again.back()));
  }
}

TEST_CASE("mount impact: over a root (below it), under a root (at it or above it), elsewhere") {
  const std::vector<Bytes> roots = {"/srv/w/etc", "/srv/w/usr/bin", "/"};
  auto imp = mount_impact("/srv/w/etc/ssh", roots);
  CHECK(imp.over == std::vector<size_t>{0, 2});
  CHECK(imp.under.empty());
  imp = mount_impact("/srv/w/etc", roots);  // the root itself: all of it is the mount's
  CHECK(imp.under == std::vector<size_t>{0});
  CHECK(imp.over == std::vector<size_t>{2});
  imp = mount_impact("/srv", roots);  // an ancestor of two roots
  CHECK(imp.under == std::vector<size_t>{0, 1});
  // Component-wise: /srv/w/etc2 is not below /srv/w/etc.
  const std::vector<Bytes> some = {"/srv/w/etc", "/srv/w/usr/bin"};
  CHECK(mount_impact("/srv/w/etc2", some).empty());
  CHECK(mount_impact("/srv/w/usr/bin2/x", some).empty());
  CHECK(mount_impact("/var/lib/containers/storage/overlay/abc/merged", some).empty());
  CHECK(mount_impact("/srv/w/usr", some).under == std::vector<size_t>{1});
}

TEST_CASE("real_root: symlinks resolved where the path exists, the rest appended") {
  CHECK(real_root("/") == "/");
  CHECK(real_root("/nonexistent-fimctl-test/a/b") == "/nonexistent-fimctl-test/a/b");
}
