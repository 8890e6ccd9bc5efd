// SPDX-License-Identifier: GPL-2.0-or-later
// bolt::Db (src/container/bolt.h) on arbitrary bytes: containerd's meta.db is another
// program's file. Whatever the bytes, opening, looking up containerd's paths and walking every
// bucket two levels deep ends, without a crash, sanitizer report or read outside the file.
// The input is written to a memfd and opened by its /proc/self/fd path, as a file would be.
// Seed corpus/bolt/containerd-shape.db: a bbolt file (page size 1024) of containerd's shape made
// by a python script: v1/default/containers/{a (inline), c}/image, labels, and
// v1/default/images/localhost/app:1/target/{digest, mediatype}; one branch page.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "container/bolt.h"

using namespace fim;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("bolt_fuzz", MFD_CLOEXEC);
  if (fd < 0) __builtin_trap();
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, data, size, 0) != static_cast<ssize_t>(size)) return 0;
  auto db = bolt::Db::open("/proc/self/fd/" + std::to_string(fd));
  if (!db) return 0;
  if (auto c = db->bucket_at({"v1", "default", "containers", "c"}); c && *c) {
    (void)db->get(**c, "image");
    (void)db->bucket(**c, "labels");
  }
  std::vector<bolt::Bucket> level{db->root()};
  for (int depth = 0; depth < 3 && !level.empty(); ++depth) {
    std::vector<std::string> names;
    std::vector<bolt::Bucket> next;
    for (const auto& b : level) {
      names.clear();
      (void)db->for_each(b, [&](const bolt::Entry& e) {
        if (e.is_bucket && names.size() < 16) names.emplace_back(e.key);
        return true;
      });
      for (const auto& n : names)
        if (auto sub = db->bucket(b, n); sub && *sub) next.push_back(std::move(**sub));
    }
    level = std::move(next);
  }
  return 0;
}
