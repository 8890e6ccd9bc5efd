// SPDX-License-Identifier: GPL-2.0-or-later
// The collector on a real directory: digests, link targets, special files never opened.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fim/attr.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  SharedFd dirfd = std::make_shared<const UniqueFd>(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));

  Record collect(const std::string& name, CollectOptions opts = {}) {
    Target t;
    t.dir = dirfd;
    t.name = name;
    t.path = dir / name;
    if (::fstatat(dirfd->get(), name.c_str(), &t.st, AT_SYMLINK_NOFOLLOW) != 0) t.st.st_mode = S_IFREG;
    Record r;
    Collector c;
    c.collect(t, opts, &r);
    return r;
  }
};

}  // namespace

TEST_CASE("regular file: SHA-256 and XXH3-128 of the content, stat attributes") {
  Fixture f;
  test::write_file(f.dir / "a", "hello\n");
  const Record r = f.collect("a");
  CHECK(r.status == EntryStatus::Ok);
  CHECK(r.type() == FileType::File);
  CHECK(hex_encode(r.get(Attr::Sha256).bytes) == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  CHECK(r.get(Attr::Xxh128).bytes.size() == 16);
  CHECK(r.get(Attr::Size).num == 6);
  CHECK(r.get(Attr::Nlink).num == 1);
  CHECK(r.path == f.dir / "a");
}

TEST_CASE("files larger than the read buffer hash correctly") {
  Fixture f;
  std::string big(1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31 + 7);
  test::write_file(f.dir / "big", big);
  const Record r = f.collect("big");
  CHECK(hex_encode(r.get(Attr::Sha256).bytes) == test::sha256_hex(big));
}

TEST_CASE("too_large: over the limit, metadata only, not a failure") {
  Fixture f;
  test::write_file(f.dir / "a", std::string(100, 'x'));
  CollectOptions opts;
  opts.max_hash_bytes = 10;
  const Record r = f.collect("a", opts);
  CHECK(r.status == EntryStatus::TooLarge);
  CHECK_FALSE(r.has(Attr::Sha256));
  CHECK(r.get(Attr::Size).num == 100);
  CHECK_FALSE(entry_status_is_failure(r.status));
}

TEST_CASE("symlink: target recorded, never followed") {
  Fixture f;
  REQUIRE(::symlinkat("/etc/shadow", f.dirfd->get(), "l") == 0);
  const Record r = f.collect("l");
  CHECK(r.status == EntryStatus::Ok);
  CHECK(r.type() == FileType::Symlink);
  CHECK(r.get(Attr::Link).bytes == "/etc/shadow");
  CHECK_FALSE(r.has(Attr::Sha256));
}

TEST_CASE("FIFO: recorded by type without opening it (no writer: an open would block)") {
  Fixture f;
  REQUIRE(::mkfifoat(f.dirfd->get(), "p", 0600) == 0);
  const Record r = f.collect("p");
  CHECK(r.status == EntryStatus::Ok);
  CHECK(r.type() == FileType::Fifo);
  CHECK_FALSE(r.has(Attr::Sha256));
}

TEST_CASE("an entry that vanished after the walk is 'vanished', not an error") {
  Fixture f;
  Target t;
  t.dir = f.dirfd;
  t.name = "gone";
  t.path = f.dir / "gone";
  t.st.st_mode = S_IFREG | 0644;
  Record r;
  Collector c;
  c.collect(t, {}, &r);
  CHECK(r.status == EntryStatus::Vanished);
  CHECK(r.sys_errno == ENOENT);
  CHECK_FALSE(r.has(Attr::Sha256));
}

TEST_CASE("a file swapped for a symlink after the walk is not followed") {
  Fixture f;
  test::write_file(f.dir / "x", "data");
  Target t;
  t.dir = f.dirfd;
  t.name = "x";
  t.path = f.dir / "x";
  REQUIRE(::fstatat(f.dirfd->get(), "x", &t.st, AT_SYMLINK_NOFOLLOW) == 0);
  REQUIRE(::unlinkat(f.dirfd->get(), "x", 0) == 0);
  REQUIRE(::symlinkat("/etc/passwd", f.dirfd->get(), "x") == 0);
  Record r;
  Collector c;
  c.collect(t, {}, &r);
  CHECK(r.status == EntryStatus::Unstable);  // O_NOFOLLOW: ELOOP
  CHECK_FALSE(r.has(Attr::Sha256));
}

TEST_CASE("user xattrs are collected, and only selected attributes") {
  Fixture f;
  test::write_file(f.dir / "a", "x");
  if (::setxattr((f.dir / "a").c_str(), "user.fim", "v1", 2, 0) != 0) {
    MESSAGE("user xattrs not supported here; skipping");
    return;
  }
  Record r = f.collect("a");
  CHECK(render_xattrs(r.get(Attr::Xattrs).bytes) == "user.fim=\"v1\"");
  CollectOptions only_mode;
  only_mode.mask = attr_bit(Attr::Mode);
  r = f.collect("a", only_mode);
  CHECK(r.have == (attr_bit(Attr::Type) | attr_bit(Attr::Mode)));
}

TEST_CASE("a file whose content does not match its size is 'unstable' with no digest") {
  // procfs reports size 0 for files that read as text: exactly what a file that grows
  // while it is hashed looks like. The collector must retry, then give up without a digest.
  const int dirfd = ::open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0) {
    MESSAGE("no /proc here; skipping");
    return;
  }
  Target t;
  t.dir = std::make_shared<const UniqueFd>(dirfd);
  t.name = "status";
  t.path = "/proc/self/status";
  REQUIRE(::fstatat(dirfd, "status", &t.st, AT_SYMLINK_NOFOLLOW) == 0);
  REQUIRE(t.st.st_size == 0);
  Record r;
  Collector c;
  c.collect(t, {}, &r);
  CHECK(r.status == EntryStatus::Unstable);
  CHECK_FALSE(r.has(Attr::Sha256));
  CHECK(entry_status_is_failure(r.status));
}
