// SPDX-License-Identifier: GPL-2.0-or-later
// The daemon's continuous coverage as watched_roots() reads it (what 'check --fast' rests
// `watched` evidence on): a replayed daemon with a status socket, asked the way the check
// asks. Coverage begins after the start rescan, names the paths events named, and ends (to
// begin again later, never from before) on a loss, a reload, a stop; rows a dead daemon left
// in state.db vouch for nothing.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

#include <functional>

#include "fim/coverage_rows.h"
#include "replay_daemon.h"

using namespace fim;
using fim::test::TempDir;
using namespace fim::test::replay;

namespace {

using Roots = std::vector<WatchedRoot>;

/// watched_roots() until `ok` holds for its answer (10 s), that answer.
Roots watched_until(const TempDir& d, const std::function<bool(const Roots&)>& ok) {
  Roots last;
  for (int i = 0; i < 200; ++i) {
    auto r = watched_roots(d / "sock", d / "db");
    REQUIRE(r.has_value());
    last = *r;
    if (ok(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("watched_roots() never gave the answer looked for; last: " << last.size() << " root(s)");
  return last;
}

bool covered(const Roots& r) { return r.size() == 1; }

Roots ask(const TempDir& d) {
  auto r = watched_roots(d / "sock", d / "db");
  REQUIRE(r.has_value());
  return *r;
}

}  // namespace

TEST_CASE("coverage: a root is covered after its start rescan, and a path an event named is in evented") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  test::write_file(d / "t/g", "v0");
  const int64_t before = now_ns();
  Daemon w(d, {d / "t"}, d / "sock");
  const Roots first = watched_until(d, covered);
  CHECK(first[0].root == d / "t");
  CHECK(first[0].since_ns > before);
  CHECK(first[0].evented.empty());
  w.push(named(FAN_CLOSE_WRITE, d / "t", "f"));
  // Asked right after the event: an answer either names the path or vouches for nothing; it
  // never vouches for the root without it (the event is read before the answer is built).
  const Roots now = ask(d);
  CHECK((now.empty() || now[0].evented == std::vector<Bytes>{d / "t/f"}));
  const Roots after = watched_until(d, [](const Roots& r) { return covered(r) && !r[0].evented.empty(); });
  CHECK(after[0].evented == std::vector<Bytes>{d / "t/f"});
  CHECK(after[0].since_ns == first[0].since_ns);  // an event is not a break in coverage
}

TEST_CASE("coverage: an overflow ends it; it begins again after the rescan, later, with no evented path from before") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  Daemon w(d, {d / "t"}, d / "sock");
  const Roots first = watched_until(d, covered);
  w.push(named(FAN_CLOSE_WRITE, d / "t", "f"));
  watched_until(d, [](const Roots& r) { return covered(r) && !r[0].evented.empty(); });
  Event loss;
  loss.mask = FAN_Q_OVERFLOW;
  loss.loss = "overflow";
  w.push(std::move(loss));
  const Roots now = ask(d);  // the loss is read before the answer: never the old coverage
  CHECK((now.empty() || now[0].since_ns > first[0].since_ns));
  w.wait_for("\"type\":\"rescan_done\",\"reason\":\"overflow\"");
  const Roots again = watched_until(d, [&](const Roots& r) { return covered(r) && r[0].since_ns > first[0].since_ns; });
  CHECK(again[0].evented.empty());
}

TEST_CASE("coverage: a SIGHUP reload ends it; it begins again after the compare under the new policy") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  Daemon w(d, {d / "t"}, d / "sock", true);
  const Roots first = watched_until(d, covered);
  ::kill(::getpid(), SIGHUP);
  w.wait_for("\"type\":\"reload\"");
  const Roots now = ask(d);
  CHECK((now.empty() || now[0].since_ns > first[0].since_ns));
  watched_until(d, [&](const Roots& r) { return covered(r) && r[0].since_ns > first[0].since_ns; });
}

TEST_CASE("coverage: a stopped daemon vouches for nothing, and the next one's coverage begins after its own start") {
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  Roots first;
  {
    Daemon w(d, {d / "t"}, d / "sock");
    first = watched_until(d, covered);
  }
  CHECK(ask(d).empty());
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  std::vector<Bytes> ev;
  auto row = CoverageRows(**s).get(d / "db", d / "t", &ev);
  REQUIRE(row.has_value());
  CHECK_FALSE(row->has_value());  // the clean stop ended it in state.db too
  const int64_t restart = now_ns();
  Daemon w(d, {d / "t"}, d / "sock");
  const Roots again = watched_until(d, covered);
  CHECK(again[0].since_ns > restart);
}

TEST_CASE("coverage_rows_of_a_killed_daemon_vouch_for_nothing") {
  // A daemon killed (SIGKILL: no clean stop) leaves its coverage rows and a fresh heartbeat
  // in state.db. Without a daemon that answers now, they are not evidence.
  TempDir d;
  ::mkdir((d / "t").c_str(), 0755);
  test::write_file(d / "t/f", "v0");
  { Daemon w(d, {d / "t"}); }  // a baseline and a state.db
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  REQUIRE(CoverageRows(**s).start(d / "db", d / "t", 1, ::getpid()).has_value());
  REQUIRE((*s)->daemon_beat(d / "db", ::getpid(), 1, now_ns(), false).has_value());
  CHECK(ask(d).empty());
}
