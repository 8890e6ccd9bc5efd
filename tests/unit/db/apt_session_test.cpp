// SPDX-License-Identifier: GPL-2.0-or-later
// state.db's apt sessions (written-by-dpkg): a path one other writer touched stays not dpkg's,
// and only a run that ended by its post hook, was watched from start to end and lost nothing
// vouches for anything.
#include <doctest/doctest.h>

#include "fim/db.h"
#include "fim/state.h"
#include "testutil.h"

using namespace fim;
using fim::test::TempDir;

namespace {

StateStore::DpkgWrite row(int64_t session, const Bytes& path, bool by_dpkg) {
  StateStore::DpkgWrite w;
  w.session = session;
  w.path = path;
  w.dev = 1;
  w.ino = 2;
  w.at_ns = 5;
  w.by_dpkg = by_dpkg;
  w.who = "sh (pid 9)";
  return w;
}

}  // namespace

TEST_CASE("a path written by anything else during a run is never dpkg's again in that run") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  auto id = (*s)->begin_apt_session(100, 7, 1000);
  REQUIRE(id.has_value());
  REQUIRE((*s)->watch_apt_session(*id, 1001, 0).has_value());
  REQUIRE((*s)->add_dpkg_writes({row(*id, "/etc/a", true), row(*id, "/etc/b", false)}).has_value());
  REQUIRE((*s)->add_dpkg_writes({row(*id, "/etc/a", false)}).has_value());  // the intruder
  REQUIRE((*s)->add_dpkg_writes({row(*id, "/etc/b", true), row(*id, "/etc/c", true)}).has_value());
  // Not ended yet: nothing.
  CHECK((*s)->dpkg_writes_since(0)->empty());
  REQUIRE((*s)->end_apt_session(100, 8, 2000).has_value());  // another process with that pid
  auto open = (*s)->apt_session(*id);
  REQUIRE(open.has_value());
  CHECK((*open)->ended_ns == 0);
  REQUIRE((*s)->end_apt_session(100, 7, 2000).has_value());
  CHECK((*s)->dpkg_writes_since(0)->empty());  // the daemon has not said it watched to the end
  REQUIRE((*s)->watch_apt_session(*id, 0, 2001).has_value());
  auto w = (*s)->dpkg_writes_since(0);
  REQUIRE(w.has_value());
  REQUIRE(w->size() == 1);
  CHECK((*w)[0].first.path == "/etc/c");
  CHECK((*w)[0].second.watched_from_ns == 1001);
  CHECK((*s)->dpkg_writes_since(1001)->empty());  // began before the baseline
  REQUIRE((*s)->mark_apt_session_lossy(*id).has_value());
  CHECK((*s)->dpkg_writes_since(0)->empty());
}

TEST_CASE("a run apt did not finish is abandoned by the next, and old runs are pruned") {
  TempDir d;
  auto s = StateStore::open(d.path());
  REQUIRE(s.has_value());
  auto first = (*s)->begin_apt_session(100, 7, 1000);
  REQUIRE(first.has_value());
  auto second = (*s)->begin_apt_session(200, 9, 3000);
  REQUIRE(second.has_value());
  auto abandoned = (*s)->apt_session(*first);
  REQUIRE(abandoned.has_value());
  CHECK((*abandoned)->ended_ns == -1);
  auto current = (*s)->open_apt_session();
  REQUIRE(current.has_value());
  CHECK((*current)->id == *second);
  REQUIRE((*s)->end_apt_session(200, 9, 4000).has_value());
  CHECK(!(*s)->open_apt_session()->has_value());
  REQUIRE((*s)->prune_apt_sessions(3500).has_value());  // first: gone; second ended after
  CHECK(!(*s)->apt_session(*first)->has_value());
  CHECK((*s)->apt_session(*second)->has_value());
}
