// SPDX-License-Identifier: GPL-2.0-or-later
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <tuple>

#include "fim/rules.h"
#include "fim/walk.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {
std::vector<Bytes> walk_paths(const std::vector<Bytes>& roots, WalkOptions opts = {}, Status* status = nullptr) {
  std::vector<Bytes> out;
  Status st = walk(roots, opts, [&](WalkItem&& item) {
    out.push_back(item.target.path);
    return true;
  });
  if (status) *status = st;
  else REQUIRE(st.has_value());
  return out;
}
}  // namespace

TEST_CASE("entries come in bytewise path order: the baseline's key order") {
  TempDir d;
  // '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < '0': a directory's contents sort between siblings.
  for (const char* dir : {"a", "a/x", "b", "a0"}) REQUIRE(::mkdir((d / dir).c_str(), 0755) == 0);
  for (const char* f : {"a-", "a.b", "a/x/1", "a/y", "b/\xff", "b/\n", "a0/z", "aa"}) test::write_file(d / f, "");
  const auto paths = walk_paths({d.path()});
  CHECK(std::is_sorted(paths.begin(), paths.end()));
  CHECK(std::adjacent_find(paths.begin(), paths.end()) == paths.end());
  CHECK(paths.size() == 13);  // root + 4 dirs + 8 files
  CHECK(paths.front() == d.path());
}

TEST_CASE("several roots interleave in path order; a root's symlink is not descended") {
  TempDir d;
  REQUIRE(::mkdir((d / "r").c_str(), 0755) == 0);
  REQUIRE(::mkdir((d / "r.x").c_str(), 0755) == 0);
  test::write_file(d / "r/f", "");
  test::write_file(d / "r.x/g", "");
  REQUIRE(::symlink((d / "r").c_str(), (d / "link").c_str()) == 0);
  const auto paths = walk_paths({d / "link", d / "r", d / "r.x"});
  CHECK(std::is_sorted(paths.begin(), paths.end()));
  CHECK(paths == std::vector<Bytes>{d / "link", d / "r", d / "r.x", d / "r.x/g", d / "r/f"});
}

TEST_CASE("missing roots: absent for the policy, fatal for command-line paths") {
  TempDir d;
  CHECK(walk_paths({d / "nope"}).empty());
  WalkOptions must;
  must.roots_must_exist = true;
  Status st;
  walk_paths({d / "nope"}, must, &st);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().code == Errc::Usage);
}

TEST_CASE("deep trees do not recurse on the stack and keep full paths") {
  TempDir d;
  std::string rel;
  int fd = ::open(d.path().c_str(), O_RDONLY | O_DIRECTORY);
  const std::string name(200, 'n');
  for (int i = 0; i < 40; ++i) {  // 40 x 201 bytes: a path far past PATH_MAX
    REQUIRE(::mkdirat(fd, name.c_str(), 0755) == 0);
    const int next = ::openat(fd, name.c_str(), O_RDONLY | O_DIRECTORY);
    ::close(fd);
    fd = next;
    rel += "/" + name;
  }
  ::close(fd);
  const auto paths = walk_paths({d.path()});
  CHECK(paths.size() == 41);
  CHECK(paths.back() == d.path() + rel);
  CHECK(paths.back().size() > 8000);
}

TEST_CASE("a directory that cannot be listed is reported as an incomplete subtree") {
  if (::geteuid() == 0) {
    MESSAGE("root reads any directory; covered by the cli tests through setpriv");
    return;
  }
  TempDir d;
  REQUIRE(::mkdir((d / "locked").c_str(), 0) == 0);
  bool saw = false;
  Status st = walk({d.path()}, {}, [&](WalkItem&& item) {
    if (item.kind == WalkItem::Kind::SubtreeIncomplete) saw = item.err == EACCES;
    return true;
  });
  CHECK(st.has_value());
  CHECK(saw);
  ::chmod((d / "locked").c_str(), 0700);
}

TEST_CASE("a deep walk keeps few fds, and a directory moved away while the walk is below it is reported, not followed") {
  TempDir d;
  // 60 levels a1/a2/.../a60, each with a file "z" that sorts after the subdirectory's contents.
  Bytes path = d / "t";
  REQUIRE(::mkdir(path.c_str(), 0755) == 0);
  std::vector<Bytes> level;
  for (int i = 1; i <= 60; ++i) {
    path += "/a" + std::to_string(i);
    REQUIRE(::mkdir(path.c_str(), 0755) == 0);
    level.push_back(path);
  }
  for (const auto& l : level) test::write_file(l + "/z", "z");
  test::write_file(path + "/leaf", "leaf");

  SUBCASE("undisturbed: everything, in order") {
    const auto paths = walk_paths({d / "t"});
    CHECK(paths.size() == 1 + 60 + 60 + 1);
    CHECK(std::is_sorted(paths.begin(), paths.end()));
  }
  SUBCASE("a10 moved out of a9 while the walk is at the bottom") {
    std::vector<WalkItem> items;
    bool moved = false;
    const Status st = walk({d / "t"}, {}, [&](WalkItem&& item) {
      if (!moved && item.target.path == path + "/leaf") {
        REQUIRE(::rename(level[9].c_str(), (d / "moved").c_str()) == 0);  // a10 leaves a9
        moved = true;
      }
      items.push_back(std::move(item));
      return true;
    });
    REQUIRE(st.has_value());
    REQUIRE(moved);
    // a9's fd was closed while the walk was deep; ".." of a10 is not a9 any more.
    const auto lost = std::find_if(items.begin(), items.end(), [&](const WalkItem& i) {
      return i.kind == WalkItem::Kind::SubtreeIncomplete && i.target.path == level[8];
    });
    REQUIRE(lost != items.end());
    CHECK(lost->err == ESTALE);
    for (const auto& i : items) CHECK(path_within(i.target.path, d / "t"));
  }
}

TEST_CASE("types_only (init's pre-walk): the same entries and rules as a stat walk, each typed by its listing") {
  TempDir d;
  for (const char* dir : {"etc", "etc/sub", "etc/skip"}) REQUIRE(::mkdir((d / dir).c_str(), 0755) == 0);
  for (const char* f : {"etc/a", "etc/sub/b", "etc/skip/c", "etc/z.log"}) test::write_file(d / f, "x");
  REQUIRE(::symlink("a", (d / "etc/link").c_str()) == 0);
  REQUIRE(::mkfifo((d / "etc/fifo").c_str(), 0600) == 0);
  // Decided by path, glob, file type: the pre-walk must drop and keep exactly what the scan does.
  auto policy = parse_policy_text("[[rule]]\npath = \"" + d / "etc" + "\"\n"
                                  "[[exclude]]\npath = \"" + d / "etc" + "\"\ntype = [\"symlink\", \"fifo\"]\n"
                                  "[[exclude]]\npath = \"" + d / "etc/skip" + "\"\n"
                                  "[[rule]]\nglob = \"" + d / "etc/*.log" + "\"\nattrs = \"perms\"\n",
                                  "t.toml");
  REQUIRE(policy.has_value());
  const Selector sel(*policy);
  const auto items = [&](bool types_only) {
    WalkOptions o;
    o.selector = &sel;
    o.types_only = types_only;
    std::vector<std::tuple<Bytes, int, mode_t>> out;
    REQUIRE(walk({d / "etc"}, o, [&](WalkItem&& item) {
              out.emplace_back(item.target.path, item.rule, item.target.st.st_mode & S_IFMT);
              if (types_only) CHECK(item.target.st.st_size == 0);  // not stat'ed
              return true;
            }).has_value());
    return out;
  };
  const auto stat_walk = items(false);
  CHECK(stat_walk.size() == 5);  // etc, etc/a, etc/sub, etc/sub/b, etc/z.log
  CHECK(items(true) == stat_walk);
}
