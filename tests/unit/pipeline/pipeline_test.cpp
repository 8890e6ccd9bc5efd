// SPDX-License-Identifier: GPL-2.0-or-later
// scan() order and run_init/run_check end to end, with a recording sink.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "fim/pipeline.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

struct Event {
  std::string what;
  Bytes path;
  AttrMask changed;
};

class RecordingSink final : public Sink {
 public:
  std::vector<Event> events;
  void change(ChangeKind k, const Record* o, const Record* n, AttrMask changed, const Rule*) override {
    events.push_back({std::string(change_kind_name(k)), (n ? n : o)->path, changed});
  }
  void entry_status(const Record& r, bool, const Rule*) override { events.push_back({"status", r.path, 0}); }
  void alert(std::string_view code, std::string_view) override { events.push_back({std::string(code), "", 0}); }
  Status finish(const Summary&) override { return {}; }
};

void make_tree(const TempDir& d, int n) {
  REQUIRE(::mkdir((d / "t").c_str(), 0755) == 0);
  for (int i = 0; i < n; ++i) {
    const std::string sub = d / ("t/d" + std::to_string(i % 7));
    ::mkdir(sub.c_str(), 0755);
    test::write_file(sub + "/f" + std::to_string(i), std::string(static_cast<size_t>(i * 37 % 5000), 'x'));
  }
}

RunOptions opts_for(const TempDir& d) {
  RunOptions o;
  o.policy = default_policy();
  o.db_path = d / "db";
  o.paths = {d / "t"};
  o.jobs = 3;
  o.allow_unsigned = true;
  return o;
}

}  // namespace

TEST_CASE("scan returns the same records in the same order whatever the number of threads") {
  TempDir d;
  make_tree(d, 500);
  std::vector<std::vector<Bytes>> runs;
  for (const unsigned jobs : {1u, 2u, 8u}) {
    ScanOptions so;
    so.roots = {d / "t"};
    so.jobs = jobs;
    std::vector<Bytes> seen;
    REQUIRE(scan(so, [&](ScanEntry& e) -> Status {
              seen.push_back(e.rec.path + ":" + hex_encode(e.rec.get(Attr::Sha256).bytes));
              return {};
            }, nullptr).has_value());
    runs.push_back(seen);
  }
  CHECK(runs[0].size() == 508);
  CHECK(runs[0] == runs[1]);
  CHECK(runs[0] == runs[2]);
}

TEST_CASE("an error from the consumer stops the scan and is returned") {
  TempDir d;
  make_tree(d, 300);
  ScanOptions so;
  so.roots = {d / "t"};
  so.jobs = 2;
  int n = 0;
  const Status st = scan(so, [&](ScanEntry&) -> Status {
    if (++n == 10) return make_error(Errc::Io, "stop");
    return {};
  }, nullptr);
  REQUIRE_FALSE(st.has_value());
  CHECK(st.error().message == "stop");
  CHECK(n == 10);
}

TEST_CASE("init then check: clean, then each difference once, in path order") {
  TempDir d;
  make_tree(d, 50);
  RecordingSink init_sink;
  auto s = run_init(opts_for(d), init_sink);
  REQUIRE(s.has_value());
  CHECK(s->exit_code == 0);
  CHECK(s->entries == 58);

  RunOptions check = opts_for(d);
  check.paths.clear();  // reuse the baseline's roots
  RecordingSink clean;
  s = run_check(check, clean);
  REQUIRE(s.has_value());
  CHECK(s->exit_code == 0);

  test::write_file(d / "t/d1/f1", "changed");
  ::unlink((d / "t/d2/f2").c_str());
  test::write_file(d / "t/d3/new", "");
  RecordingSink diff;
  s = run_check(check, diff);
  REQUIRE(s.has_value());
  CHECK(s->exit_code == (1 | 2 | 4));
  CHECK(s->added == 1);
  CHECK(s->removed == 1);
  const auto has = [&](const char* what, const Bytes& path) {
    return std::any_of(diff.events.begin(), diff.events.end(), [&](const Event& e) { return e.what == what && e.path == path; });
  };
  CHECK(has("changed", d / "t/d1/f1"));
  CHECK(has("removed", d / "t/d2/f2"));
  CHECK(has("added", d / "t/d3/new"));
  for (const auto& e : diff.events)
    if (e.path == d / "t/d1/f1") CHECK((e.changed & attr_bit(Attr::Sha256)));
}

TEST_CASE("check of a subtree ignores the rest and refuses paths outside the baseline") {
  TempDir d;
  make_tree(d, 30);
  RecordingSink sink;
  REQUIRE(run_init(opts_for(d), sink).has_value());
  test::write_file(d / "t/d1/f1", "changed");
  test::write_file(d / "t/d2/f2", "changed");
  RunOptions sub = opts_for(d);
  sub.paths = {d / "t/d1"};
  RecordingSink out;
  auto s = run_check(sub, out);
  REQUIRE(s.has_value());
  CHECK(s->changed == 1);  // t/d1/f1 only: t/d2/f2 lies outside the subtree
  CHECK(s->removed == 0);
  sub.paths = {d / "elsewhere"};
  s = run_check(sub, out);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == Errc::Usage);
}

TEST_CASE("paths from events (watch --containers) that do not exist are absent roots, a user's PATH an error") {
  TempDir d;
  make_tree(d, 30);
  RecordingSink sink;
  REQUIRE(run_init(opts_for(d), sink).has_value());
  test::write_file(d / "t/d1/f1", "changed");
  RunOptions sub = opts_for(d);
  sub.paths = {d / "t/d1", d / "t/never"};  // within the root, missing (a policy path the image lacks)
  RecordingSink out;
  auto s = run_check(sub, out);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == Errc::Usage);
  sub.paths_may_be_absent = true;
  s = run_check(sub, out);
  REQUIRE(s.has_value());
  CHECK(s->changed == 1);  // the rest of the batch is still compared
  // A path the baseline has entries below, gone now: they are removed, not an error.
  for (int i = 2; i < 30; i += 7) ::unlink((d / ("t/d2/f" + std::to_string(i))).c_str());
  REQUIRE(::rmdir((d / "t/d2").c_str()) == 0);
  sub.paths = {d / "t/d2"};
  RecordingSink gone;
  s = run_check(sub, gone);
  REQUIRE(s.has_value());
  CHECK(s->removed == 5);  // the directory and its four files
}

TEST_CASE("init refuses to write an unsigned baseline unless asked") {
  TempDir d;
  make_tree(d, 1);
  RunOptions o = opts_for(d);
  o.allow_unsigned = false;
  RecordingSink sink;
  auto s = run_init(o, sink);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == Errc::Usage);
  CHECK(::access((d / "db").c_str(), F_OK) != 0);
}

TEST_CASE("a different policy than the baseline's sets bit 8 and says so") {
  TempDir d;
  make_tree(d, 5);
  RecordingSink sink;
  REQUIRE(run_init(opts_for(d), sink).has_value());
  RunOptions narrower = opts_for(d);
  narrower.paths.clear();
  narrower.policy.default_attrs.mask &= ~attr_bit(Attr::Sha256);
  RecordingSink out;
  auto s = run_check(narrower, out);
  REQUIRE(s.has_value());
  CHECK(s->policy_changed);
  CHECK(s->exit_code == 8);
  CHECK(std::any_of(out.events.begin(), out.events.end(), [](const Event& e) { return e.what == "policy_changed"; }));
}

TEST_CASE("accept and update act on reviewed differences: --report, a confirmation, or --yes") {
  TempDir d;
  make_tree(d, 10);
  RecordingSink sink;
  REQUIRE(run_init(opts_for(d), sink).has_value());
  RunOptions o = opts_for(d);
  o.paths.clear();
  test::write_file(d / "t/d1/f1", "reviewed");
  auto reviewed = run_check(o, sink);
  REQUIRE(reviewed.has_value());
  CHECK(reviewed->report_id.size() == 64);
  auto again = run_check(o, sink);
  REQUIRE(again.has_value());
  CHECK(again->report_id == reviewed->report_id);  // the same differences, the same id

  // Neither --report, --yes nor a terminal: refused before anything is read.
  RunOptions acc = o;
  acc.reason = "r";
  acc.accept_all = true;
  auto s = run_accept(acc, sink);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == Errc::Usage);
  RunOptions upd = o;
  s = run_update(upd, sink);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().code == Errc::Usage);

  // A change slips in after the review: the confirmation shows it, and "no" accepts nothing.
  test::write_file(d / "t/d2/slipped", "");
  REQUIRE(run_check(o, sink).has_value());
  std::vector<Bytes> shown;
  std::string asked;
  acc.confirm = [&](const std::string& q, const std::vector<StateStore::Reported>& what) {
    asked = q;
    for (const auto& r : what) shown.push_back(r.path);
    return false;
  };
  s = run_accept(acc, sink);
  REQUIRE_FALSE(s.has_value());
  CHECK(std::count(shown.begin(), shown.end(), d / "t/d2/slipped") == 1);
  CHECK(asked.rfind("accept ", 0) == 0);

  // update --report of the reviewed report: the differences now are not its.
  upd.report = reviewed->report_id.substr(0, 12);
  s = run_update(upd, sink);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().message.find(reviewed->report_id.substr(0, 16)) != std::string::npos);

  // accept --report of the reviewed report takes what it showed, and only that.
  acc.confirm = nullptr;
  acc.report = reviewed->report_id;
  acc.accept_all = false;
  acc.paths = {d / "t"};
  REQUIRE(run_accept(acc, sink).has_value());
  RecordingSink after;
  auto left = run_check(o, after);
  REQUIRE(left.has_value());
  CHECK(left->added == 1);
  const bool f1_left = std::any_of(after.events.begin(), after.events.end(),
                                   [&](const Event& e) { return e.path == d / "t/d1/f1"; });
  CHECK_FALSE(f1_left);
}
