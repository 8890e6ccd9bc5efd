// SPDX-License-Identifier: GPL-2.0-or-later
// mountinfo, overlay options and cgroup paths as the kernel and the runtimes write them.
#include <doctest/doctest.h>

#include "fim/container.h"

using namespace fim;

TEST_CASE("mountinfo lines, escapes and optional fields") {
  const auto m = parse_mountinfo(
      "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
      "36 22 0:32 / /tmp/with\\040space rw master:1 shared:2 - tmpfs tmp\\134fs rw,size=64k\n"
      "garbage line\n"
      "40 22 0:40 / /merged rw - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/u,workdir=/w\n"
      "41 22 0:41 / /short rw -\n");
  REQUIRE(m.size() == 3);
  CHECK(m[0].mount_id == 22);
  CHECK(m[0].parent_id == 1);
  CHECK(m[0].mount_point == "/");
  CHECK(m[0].fstype == "ext4");
  CHECK(m[0].source == "/dev/sda1");
  CHECK(m[1].mount_point == "/tmp/with space");
  CHECK(m[1].source == "tmp\\fs");
  CHECK(m[1].super_options == "rw,size=64k");
  CHECK(m[2].fstype == "overlay");
}

TEST_CASE("overlay layers, with escaped separators") {
  auto d = overlay_dirs("rw,lowerdir=/img/l1:/img/l2,upperdir=/c1/upper,workdir=/c1/work");
  REQUIRE(d);
  CHECK(d->lower == std::vector<Bytes>{"/img/l1", "/img/l2"});
  CHECK(d->upper == "/c1/upper");
  CHECK(d->work == "/c1/work");
  d = overlay_dirs("rw,lowerdir=/a\\:b:/c\\,d,upperdir=/u\\,x");
  REQUIRE(d);
  CHECK(d->lower == std::vector<Bytes>{"/a:b", "/c,d"});
  CHECK(d->upper == "/u,x");
  CHECK(!overlay_dirs("rw,size=64k"));
  d = overlay_dirs("ro,lowerdir=/only");  // read-only overlay: no upper
  REQUIRE(d);
  CHECK(d->upper.empty());
}

TEST_CASE("runtimes and ids from cgroup paths") {
  const std::string id(64, 'a');
  const std::string id2 = std::string(63, 'b') + "c";
  struct Case {
    std::string text, runtime, id;
  };
  const Case cases[] = {
      {"0::/system.slice/docker-" + id + ".scope\n", "docker", id},
      {"12:memory:/docker/" + id + "\n0::/\n", "docker", id},
      {"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-" + id2 + ".scope\n",
       "containerd", id2},
      {"0::/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope\n", "cri-o", id},
      {"0::/machine.slice/libpod-" + id + ".scope/container\n", "podman", id},
      {"11:cpu:/kubepods/besteffort/pod1/" + id + "\n", "kubernetes", id},
  };
  for (const auto& c : cases) {
    CAPTURE(c.text);
    const auto got = container_from_cgroup(c.text);
    REQUIRE(got);
    CHECK(got->runtime == c.runtime);
    CHECK(got->id == c.id);
  }
  for (const char* none : {"0::/user.slice/user-0.slice/session-1.scope\n", "0::/\n", "",
                           "0::/docker-ABCDEF.scope\n", "no colons at all"}) {
    CAPTURE(none);
    CHECK(!container_from_cgroup(none));
  }
}

TEST_CASE("image_digest_key: a manifest digest as a file key, nothing for anything else") {
  const std::string hex(64, 'a');
  CHECK(image_digest_key("sha256:" + hex) == "sha256-" + hex);
  CHECK(image_digest_key("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef") ==
        "sha256-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  for (const std::string& bad : {std::string("sha256:") + std::string(63, 'a'), "sha256:" + hex + "a",
                                "sha256:" + std::string(64, 'A'), "sha512:" + hex, "sha256-" + hex,
                                "sha256:" + std::string(62, 'a') + "/.", std::string("sha256:../") + std::string(61, 'a'),
                                std::string()}) {
    CAPTURE(bad);
    CHECK(!image_digest_key(bad));
  }
}
