// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: the report transaction is a guard, so a check that fails half-way through its
// report neither loses the previous report nor leaves state.db locked in a transaction.
#include <doctest/doctest.h>

#include "fim/db.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

StateStore::Reported change(const Bytes& path, const std::string& kind) {
  return {path, kind, "old", "new", "rule"};
}

std::vector<Bytes> paths_of(StateStore& s, const Bytes& baseline, std::string* digest) {
  auto r = s.load_report(baseline, digest);
  REQUIRE(r.has_value());
  std::vector<Bytes> out;
  for (const auto& x : *r) out.push_back(x.path);
  return out;
}

}  // namespace

TEST_CASE("a committed report replaces the previous one") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/var/lib/fimctl/baseline.db";
  for (const auto& [path, digest] : {std::pair<Bytes, std::string>{"/a", "d1"}, {"/b", "d2"}}) {
    auto t = (*s)->begin_report(b);
    REQUIRE(t.has_value());
    REQUIRE(t->add(change(path, "changed")).has_value());
    REQUIRE(t->commit(digest).has_value());
    CHECK_FALSE(t->commit(digest).has_value());  // once
  }
  std::string digest;
  CHECK(paths_of(**s, b, &digest) == std::vector<Bytes>{"/b"});
  CHECK(digest == "d2");
}

TEST_CASE("an abandoned report rolls back: the previous report stays, state.db stays usable") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/var/lib/fimctl/baseline.db";
  {
    auto t = (*s)->begin_report(b);
    REQUIRE(t.has_value());
    REQUIRE(t->add(change("/etc/passwd", "changed")).has_value());
    REQUIRE(t->commit("before").has_value());
  }
  {
    // A check that fails after some changes were added (an I/O error, a baseline that does
    // not verify): the guard goes out of scope uncommitted.
    auto t = (*s)->begin_report(b);
    REQUIRE(t.has_value());
    REQUIRE(t->add(change("/etc/shadow", "added")).has_value());
    REQUIRE(t->add(change("/etc/group", "removed")).has_value());
  }
  std::string digest;
  CHECK(paths_of(**s, b, &digest) == std::vector<Bytes>{"/etc/passwd"});
  CHECK(digest == "before");
  // No transaction is left open: other writes, another connection and a second report work.
  CHECK((*s)->note_sequence(b, 3, "before").has_value());
  auto other = StateStore::open(d.path());
  REQUIRE(other.has_value());
  CHECK((*other)->mark_dirty(b, "/etc", "overflow", 5).has_value());
  auto again = (*s)->begin_report(b);
  REQUIRE(again.has_value());
  REQUIRE(again->add(change("/etc/hosts", "changed")).has_value());
  REQUIRE(again->commit("after").has_value());
  CHECK(paths_of(**other, b, &digest) == std::vector<Bytes>{"/etc/hosts"});
  CHECK(digest == "after");
  auto seq = (*other)->last_sequence(b);
  REQUIRE(seq.has_value());
  CHECK(*seq == 3);
}

TEST_CASE("state rows round trip through the statement wrapper") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = std::string("/b\0x", 4);  // bytes, not text
  REQUIRE((*s)->add_gap(b, {1, 2, "overflow"}).has_value());
  REQUIRE((*s)->add_gap(b, {3, 4, ""}).has_value());
  auto g = (*s)->gaps(b, 10);
  REQUIRE(g.has_value());
  REQUIRE(g->size() == 2);
  CHECK((*g)[0].reason == "overflow");
  CHECK((*g)[1].start_ns == 3);
  CHECK((*g)[1].reason.empty());
  REQUIRE((*s)->set_apt_snapshot({{"bash:amd64", "5.2"}, {"zsh:amd64", "5.9"}}).has_value());
  REQUIRE((*s)->set_apt_snapshot({{"bash:amd64", "5.3"}}).has_value());
  auto snap = (*s)->apt_snapshot();
  REQUIRE(snap.has_value());
  CHECK(*snap == std::map<std::string, std::string>{{"bash:amd64", "5.3"}});
  auto none = (*s)->daemon(b);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());
  REQUIRE((*s)->daemon_beat(b, 42, 10, 20, false).has_value());
  auto dm = (*s)->daemon(b);
  REQUIRE(dm.has_value());
  REQUIRE(dm->has_value());
  CHECK((*dm)->pid == 42);
  CHECK((*dm)->heartbeat_ns == 20);
}
