// SPDX-License-Identifier: GPL-2.0-or-later
// state.db: the report transaction is a guard, so a check that fails half-way through its
// report neither loses the previous report nor leaves state.db locked in a transaction. The
// kept reports: the last 20, found by an unambiguous prefix of their id; and the id itself.
#include <doctest/doctest.h>

#include <cctype>
#include <cstdio>

#include "fim/db.h"
#include "fim/state.h"
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
    REQUIRE(t->commit(digest, report_id_of({change(path, "changed")})).has_value());
    CHECK_FALSE(t->commit(digest, "").has_value());  // once
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
    REQUIRE(t->commit("before", report_id_of({change("/etc/passwd", "changed")})).has_value());
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
  REQUIRE(again->commit("after", report_id_of({change("/etc/hosts", "changed")})).has_value());
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

namespace {

/// Commits a report of `entries` under `id` (by default their report id).
std::string keep(StateStore& s, const Bytes& b, const std::vector<StateStore::Reported>& entries, std::string id = "") {
  if (id.empty()) id = report_id_of(entries);
  auto t = s.begin_report(b);
  REQUIRE(t.has_value());
  for (const auto& e : entries) REQUIRE(t->add(e).has_value());
  REQUIRE(t->commit("content", id).has_value());
  return id;
}


}  // namespace

TEST_CASE("the report id: the same differences give the same id, any other field another") {
  const std::vector<StateStore::Reported> base = {{"/etc/a", "changed", "o1", "n1", "r:1:1"},
                                                   {"/etc/b", "added", "-", "n2", "r:1:1"}};
  const std::string id = report_id_of(base);
  CHECK(id.size() == 64);
  CHECK(id.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(report_id_of(base) == id);
  auto with_rule = base;
  with_rule[0].rule = "other:2:2";  // where a rule is defined is no difference of the files
  CHECK(report_id_of(with_rule) == id);
  for (int field = 0; field < 4; ++field) {
    auto v = base;
    std::string* f[] = {&v[1].path, &v[1].kind, &v[1].old_row, &v[1].new_row};
    *f[field] += "x";
    CHECK_MESSAGE(report_id_of(v) != id, "field " << field);
  }
  CHECK(report_id_of({base[0]}) != id);                 // one difference fewer
  CHECK(report_id_of({base[1], base[0]}) != id);        // order is part of it
  CHECK(report_id_of({}) != report_id_of({{"", "", "", "", ""}}));  // an empty record is still one
  // Length prefixes: moving bytes from one field to the next is another report.
  CHECK(report_id_of({{"/ab", "c", "-", "-", ""}}) != report_id_of({{"/a", "bc", "-", "-", ""}}));
}

TEST_CASE("kept reports: found by id or an unambiguous prefix of 12 digits or more, 20 kept") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/var/lib/fimctl/baseline.db", other = "/srv/other.db";
  std::vector<std::string> ids;
  for (int i = 0; i < 22; ++i) ids.push_back(keep(**s, b, {change("/f" + std::to_string(i), "changed")}));
  const auto id_n = [&](int i) { return ids[static_cast<size_t>(i)]; };
  const std::string g = keep(**s, other, {change("/g", "added")});
  // The two oldest of b are gone; b's 3rd and other's only one are there.
  for (int i : {0, 1}) {
    auto gone = (*s)->find_report(b, id_n(i));
    REQUIRE_FALSE(gone.has_value());
    CHECK(gone.error().code == Errc::Usage);
    CHECK(gone.error().message.find("last 20") != std::string::npos);
  }
  auto third = (*s)->find_report(b, id_n(2).substr(0, 12));
  REQUIRE(third.has_value());
  CHECK(third->id == id_n(2));
  REQUIRE(third->entries.size() == 1);
  CHECK(third->entries[0].path == "/f2");
  CHECK_FALSE((*s)->find_report(other, id_n(5)).has_value());  // per baseline
  auto mine = (*s)->find_report(other, g);
  REQUIRE(mine.has_value());
  CHECK(mine->entries[0].path == "/g");
  auto latest = (*s)->latest_report(b);
  REQUIRE(latest.has_value());
  REQUIRE(latest->has_value());
  CHECK((*latest)->id == id_n(21));
  // Upper case is the same id; too short, not hex: refused.
  std::string upper = id_n(21);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK((*s)->find_report(b, upper).has_value());
  CHECK_FALSE((*s)->find_report(b, id_n(21).substr(0, 11)).has_value());
  CHECK_FALSE((*s)->find_report(b, "zz" + id_n(21).substr(2)).has_value());
}

TEST_CASE("kept reports: a prefix two ids share is ambiguous; one id kept twice is not; entries that do "
          "not hash to their id are refused") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/b.db";
  const std::string a = "0123456789ab" + std::string(52, '0'), c = "0123456789ab" + std::string(52, '1');
  keep(**s, b, {change("/one", "changed")}, a);
  keep(**s, b, {change("/two", "changed")}, c);
  auto amb = (*s)->find_report(b, a.substr(0, 12));
  REQUIRE_FALSE(amb.has_value());
  CHECK(amb.error().message.find("ambiguous") != std::string::npos);
  // 13 digits find one, whose entries (made up here) are not what its id says: as if someone
  // edited state.db, which is not signed.
  auto longer = (*s)->find_report(b, a.substr(0, 13));
  REQUIRE_FALSE(longer.has_value());
  CHECK(longer.error().code == Errc::Trust);
  const std::vector<StateStore::Reported> once = {change("/one", "changed")};
  const std::string real = keep(**s, b, once);
  keep(**s, b, once);  // the same differences again: not ambiguous
  auto found = (*s)->find_report(b, real.substr(0, 12));
  REQUIRE(found.has_value());
  CHECK(found->entries.size() == 1);
}

TEST_CASE("an abandoned report is not kept, and accept moves only a current last report") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  const Bytes b = "/b.db";
  const std::string seven = keep(**s, b, {change("/x", "changed"), change("/y", "added")});
  {
    auto t = (*s)->begin_report(b);
    REQUIRE(t.has_value());
    REQUIRE(t->add(change("/z", "changed")).has_value());
  }
  auto latest = (*s)->latest_report(b);
  REQUIRE(latest.has_value());
  REQUIRE(latest->has_value());
  CHECK((*latest)->id == seven);
  REQUIRE((*s)->accepted(b, {"/x"}, "not-this-baseline", "next").has_value());
  std::string digest;
  CHECK(paths_of(**s, b, &digest) == std::vector<Bytes>{"/y"});
  CHECK(digest == "content");  // made against another baseline: stays tied to it
  REQUIRE((*s)->accepted(b, {}, "content", "next").has_value());
  paths_of(**s, b, &digest);
  CHECK(digest == "next");
  auto kept = (*s)->find_report(b, seven);
  REQUIRE(kept.has_value());
  CHECK(kept->entries.size() == 2);  // kept reports stay as they were made
  REQUIRE((*s)->clear_report(b, "after-update").has_value());
  CHECK(paths_of(**s, b, &digest).empty());
  CHECK(digest == "after-update");
}

TEST_CASE("the identity attribute names the path it was written for, in one spelling only") {
  BaselineIdentity i{"0123456789abcdef0123456789abcdef", "", "1a2b3c4d5e6f7a8b", 7, false,
                     path_tag("/var/lib/fimctl/baseline.db")};
  CHECK(i.at.size() == 32);
  CHECK(i.at != path_tag("/var/lib/fimctl/decoy.db"));
  const std::string text = identity_xattr_text(i);
  CHECK(text == "v2 id=0123456789abcdef0123456789abcdef key=1a2b3c4d5e6f7a8b seq=7 at=" + i.at);
  auto back = parse_identity_xattr(text);
  REQUIRE(back);
  CHECK(*back == i);
  CHECK(back->at == i.at);
  // v1 (before the path was recorded) still reads, with no path.
  auto v1 = parse_identity_xattr("v1 id=0123456789abcdef0123456789abcdef key=- seq=3");
  REQUIRE(v1);
  CHECK(v1->at.empty());
  CHECK(v1->sequence == 3);
  // A v2 without at=, a short tag, a v1 with one, or anything appended is malformed.
  CHECK_FALSE(parse_identity_xattr("v2 id=0123456789abcdef0123456789abcdef key=- seq=3"));
  CHECK_FALSE(parse_identity_xattr("v2 id=0123456789abcdef0123456789abcdef key=- seq=3 at=abc"));
  CHECK_FALSE(parse_identity_xattr("v1 id=0123456789abcdef0123456789abcdef key=- seq=3 at=" + i.at));
  CHECK_FALSE(parse_identity_xattr(text + " "));
  CHECK_FALSE(parse_identity_xattr(text + " x=1"));
}
